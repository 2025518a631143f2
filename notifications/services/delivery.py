"""Delivering one outbox row at most once: a conditional update claims it (pending → sending with
a lease), the network call runs outside any transaction, and the outcome is written only by the
claim that holds it (matched on `attempts`); a customer's refused address falls back to their
next channel. Also the in-app inbox's read receipts."""

import datetime
import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from ..channels import DeliveryError, Message, MissingAddress, MissingCredentials, Recipient, channel_for
from ..models import CODED_CHANNELS, ChannelName, DeliveryStatus, Notification
from .emit import CUSTOMER_CHANNEL_ORDER, _customer_address, _language, _name, _Renderer, _rows_save

logger = logging.getLogger(__name__)

LEASE = datetime.timedelta(minutes=5)


def _max_attempts():
    return getattr(settings, "NOTIFICATION_MAX_ATTEMPTS", 5)


def _backoff(attempts):
    base = getattr(settings, "NOTIFICATION_BACKOFF_SECONDS", 30)
    return datetime.timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), 6 * 3600))



def _recipient(notification):
    """Who to send to: the address written with the row, for the row's channel."""
    address = notification.address
    channel = notification.channel
    if notification.user_id:
        user = notification.user
        return Recipient(name=_name(user), user_id=user.pk,
                         email=address if channel == ChannelName.EMAIL else user.email,
                         wecom_userid=address if channel == ChannelName.WECOM else "",
                         phone=address if channel == ChannelName.SMS else "")
    customer = notification.customer
    return Recipient(name=customer.name,
                     phone=address if channel == ChannelName.SMS else "",
                     email=address if channel == ChannelName.EMAIL else "",
                     wechat_openid=address if channel == ChannelName.WECHAT else "")


def notification_deliver(*, notification_id, session=None):
    """Deliver one row at most once: a conditional update claims it (so a task run twice, or two
    workers, cannot both send), the channel sends with the row's idempotency key, and the
    outcome is recorded: sent, retry later with exponential backoff, waiting for credentials
    (no attempt used up), skipped (a customer's next channel is then tried), or dead-lettered
    after the last attempt. Returns the final status, or None if the row was not ours to send."""
    now = timezone.now()
    claimed = Notification.objects.filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now), pk=notification_id,
        status=DeliveryStatus.PENDING,
    ).update(status=DeliveryStatus.SENDING, attempts=F("attempts") + 1, next_attempt_at=now + LEASE)
    if not claimed:
        return None
    notification = Notification.objects.select_related("user", "customer", "tenant").get(pk=notification_id)
    params = notification.params or {}
    message = Message(subject=notification.subject, body=notification.body, url=notification.url,
                      template_code=params.get("template_code", ""), params=params.get("values") or {})
    fallback = None
    fields: dict[str, Any]  # the row's outcome: the columns to write
    try:
        # `make run` (NOTIFICATIONS_CONSOLE) prints every external message instead of sending it.
        name = "console" if settings.NOTIFICATIONS_CONSOLE else notification.channel
        if name in CODED_CHANNELS and not message.template_code:
            message = _coded_message(notification, message)
        options = {"session": session} if session is not None else {}
        channel = channel_for(name, notification.tenant.settings, **options)
        provider_id = channel.send(message=message, recipient=_recipient(notification),
                                   idempotency_key=f"{notification.tenant_id}:{notification.idempotency_key}")
    except MissingCredentials as exc:
        fields = {"status": DeliveryStatus.WAITING, "last_error": str(exc)[:500], "next_attempt_at": None,
                  "attempts": F("attempts") - 1}
    except MissingAddress as exc:
        fields = {"status": DeliveryStatus.SKIPPED, "last_error": str(exc)[:500], "next_attempt_at": None}
        fallback = str(exc)
    except DeliveryError as exc:
        fields = _failure(notification, str(exc), exc.retryable)
    except Exception as exc:  # an unexpected client error is retried like a network one
        logger.exception("notification %s failed", notification_id)
        fields = _failure(notification, f"{type(exc).__name__}: {exc}", True)
    else:
        fields = {"status": DeliveryStatus.SENT, "sent_at": timezone.now(), "last_error": "",
                  "provider_message_id": str(provider_id)[:128], "next_attempt_at": None}
    # Only the claim that holds the row records its outcome (a lease that ran out and was claimed
    # again has a higher attempt count).
    recorded = Notification.objects.filter(
        pk=notification_id, status=DeliveryStatus.SENDING, attempts=notification.attempts,
    ).update(**fields)
    if recorded and fallback is not None and notification.customer_id:
        _customer_fallback(notification, fallback)
    return fields["status"]


def notifications_deliver(*, notification_ids, session=None):
    """Deliver several rows of one tenant (one Celery message carries them, see sweep._enqueue),
    each exactly as `notification_deliver` would alone: its own claim, backoff and dead letter.
    A row that raises is logged and left to the sweep (its lease runs out); the others still go.
    Returns {id: final status or None}."""
    outcomes = {}
    for notification_id in notification_ids:
        try:
            outcomes[notification_id] = notification_deliver(notification_id=notification_id, session=session)
        except Exception:  # e.g. the database dropped the connection for this row only
            logger.exception("notification %s could not be delivered; the sweep tries again", notification_id)
            outcomes[notification_id] = None
    return outcomes


def _coded_message(notification, message):
    """SMS and WeChat providers send only templates they approved. A row written before the tenant
    saved such a template (with the provider's code) takes it from the template saved now,
    rendered with the row's variables; without one it waits (MissingCredentials), burning no
    attempt, until the template is saved and the waiting rows are released or retried."""
    variables = (notification.params or {}).get("variables") or {}
    render = _Renderer(notification.tenant_id, notification.event, _language(notification.tenant), variables)
    (subject, body, params), _note = render(notification.channel)
    if not params.get("template_code"):
        raise MissingCredentials(
            _("No %(channel)s template with the provider's template code is saved for this event; the message "
              "waits until one is (Notification templates).") % {"channel": ChannelName(notification.channel).label},
            code="no_template_code")
    params["variables"] = variables
    Notification.objects.filter(pk=notification.pk).update(subject=subject[:200], body=body[:4000], params=params)
    return Message(subject=subject, body=body, url=message.url, template_code=params["template_code"],
                   params=params.get("values") or {})


def _failure(notification, error, retryable):
    if retryable and notification.attempts < _max_attempts():
        return {"status": DeliveryStatus.PENDING, "last_error": error[:500],
                "next_attempt_at": timezone.now() + _backoff(notification.attempts)}
    return {"status": DeliveryStatus.DEAD, "last_error": error[:500], "next_attempt_at": None}


@transaction.atomic
def _customer_fallback(notification, error):
    """A provider refused a customer's address (unfollowed openid, bad number): write the row
    for their next reachable channel, with a note saying why. Returns it, or None."""
    if notification.channel not in CUSTOMER_CHANNEL_ORDER:
        return None
    customer, tenant = notification.customer, notification.tenant
    variables = (notification.params or {}).get("variables")
    if variables is None:
        return None
    prefix = notification.idempotency_key.rsplit(":", 1)[0]
    render = _Renderer(tenant.pk, notification.event, _language(tenant), variables)
    for channel in CUSTOMER_CHANNEL_ORDER[CUSTOMER_CHANNEL_ORDER.index(notification.channel) + 1:]:
        address = _customer_address(channel, customer)
        if not address:
            continue
        (subject, body, params), render_note = render(channel)
        params["variables"] = variables
        note = _("%(failed)s failed (%(error)s), so %(channel)s.") % {
            "failed": ChannelName(notification.channel).label, "error": error, "channel": ChannelName(channel).label}
        row = Notification(
            tenant=tenant, event=notification.event, channel=channel, idempotency_key=f"{prefix}:{channel}",
            customer=customer, ticket_id=notification.ticket_id, address=address[:255], subject=subject[:200],
            body=body[:4000], url=notification.url, params=params,
            note=" ".join(n for n in (note, render_note) if n)[:300], next_attempt_at=timezone.now(),
        )
        saved = _rows_save([row], tenant_id=tenant.pk)
        return saved[0] if saved else None
    return None


@transaction.atomic
def notifications_mark_read(*, user, ids=None):
    qs = Notification.objects.filter(user=user, channel=ChannelName.INAPP, read_at__isnull=True)
    if ids is not None:
        qs = qs.filter(pk__in=ids)
    return qs.update(read_at=timezone.now())
