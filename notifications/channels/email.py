"""Email through Django's mail framework (SMTP in production, console/file/locmem elsewhere).

Optional per-tenant settings: `tenant.settings["email"] = {"from_email", "reply_to"}`; the server
itself is global (EMAIL_* settings), so email needs no tenant credentials. The Message-ID derives
from the idempotency key, so a retried notification carries the same id and mail clients that
see it twice can tell.
"""

from __future__ import annotations

import hashlib
import logging
import smtplib
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.validators import validate_email
from django.utils.translation import gettext_lazy as _

from notifications.channels import Channel, DeliveryError, Message, MissingAddress, Recipient

logger = logging.getLogger(__name__)


class EmailChannel(Channel):
    """A text email, with an HTML alternative when the message has one."""

    name = "email"

    def __init__(self, *, from_email: str | None = None, reply_to: str | None = None, connection=None):
        self.from_email = from_email or settings.DEFAULT_FROM_EMAIL
        self.reply_to = reply_to
        self.connection = connection

    @classmethod
    def from_settings(cls, tenant_settings: dict, **options: Any) -> EmailChannel:
        conf = (tenant_settings or {}).get("email") or {}
        return cls(
            from_email=conf.get("from_email") or None,
            reply_to=conf.get("reply_to") or None,
            connection=options.get("connection"),
        )

    def _message_id(self, idempotency_key: str) -> str:
        domain = self.from_email.rpartition("@")[2].strip(" >") or "localhost"
        return f"<{hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]}@{domain}>"

    def send(self, *, message: Message, recipient: Recipient, idempotency_key: str) -> str:
        address = (recipient.email or "").strip()
        if not address:
            raise MissingAddress(_("The recipient has no email address."), code="no_email")
        try:
            validate_email(address)
        except ValidationError:
            raise MissingAddress(_("The recipient's email address is not valid."), code="bad_email") from None
        message_id = self._message_id(idempotency_key)
        email = EmailMultiAlternatives(
            subject=message.subject,
            body=message.body,
            from_email=self.from_email,
            to=[address],
            reply_to=[self.reply_to] if self.reply_to else None,
            headers={"Message-ID": message_id},
            connection=self.connection,
        )
        if message.html:
            email.attach_alternative(message.html, "text/html")
        try:
            sent = email.send(fail_silently=False)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _msg in exc.recipients.values()]
            if codes and all(code >= 500 for code in codes):
                raise MissingAddress(
                    _("The mail server refused the recipient's address."), code=str(codes[0])
                ) from None
            raise DeliveryError(
                _("The mail server could not take the message now."), retryable=True, code=str(codes[:1])
            ) from None
        except smtplib.SMTPResponseException as exc:  # includes authentication failures (535)
            transient = 400 <= exc.smtp_code < 500
            reason = _("The mail server could not take the message now.") if transient else None
            raise DeliveryError(
                reason or _("The mail server refused the message."),
                retryable=transient,
                code=str(exc.smtp_code),
                detail=exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error,
            ) from None
        except (smtplib.SMTPException, OSError) as exc:  # disconnects, refused connections, timeouts
            raise DeliveryError(
                _("Could not reach the mail server."), retryable=True, code=type(exc).__name__, detail=str(exc)
            ) from None
        if sent != 1:
            raise DeliveryError(_("The mail server did not accept the message."), retryable=True, code="not_sent")
        logger.info("email sent message_id=%s key=%s", message_id, idempotency_key)
        return message_id
