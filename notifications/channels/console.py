"""A channel that only logs: `make run` and demos, where nothing may leave the machine."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from notifications.channels import Channel, Message, Recipient

logger = logging.getLogger(__name__)


class ConsoleChannel(Channel):
    """Writes the message to the log (the console under `make run`) and reports it delivered."""

    name = "console"

    @classmethod
    def from_settings(cls, tenant_settings: dict, **options: Any) -> ConsoleChannel:
        return cls()

    def send(self, *, message: Message, recipient: Recipient, idempotency_key: str) -> str:
        message_id = "console-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]
        addresses = {
            "phone": recipient.phone,
            "email": recipient.email,
            "wecom": recipient.wecom_userid,
            "wechat": recipient.wechat_openid,
            "user": recipient.user_id,
        }
        to = ", ".join(f"{kind}={value}" for kind, value in addresses.items() if value not in ("", None))
        lines = [
            f"notification {message_id} (key {idempotency_key})",
            f"  to: {recipient.name or '-'} {to}".rstrip(),
            f"  subject: {message.subject}",
            *(f"  | {line}" for line in message.body.splitlines()),
        ]
        if message.url:
            lines.append(f"  url: {message.url}")
        if message.template_code:
            lines.append(f"  template: {message.template_code} {message.params}")
        logger.info("\n".join(lines))
        return message_id
