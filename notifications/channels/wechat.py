"""WeChat official-account (服务号) template messages to customers, through wechatpy 1.8.18.

Credentials: `tenant.settings["wechat"] = {"app_id", "secret"}`. The message's `template_code` is
the template id chosen in the official-account backend; `params` fill its fields — a value is either
text or a dict such as `{"value": "…", "color": "#173177"}`; `url` is where a tap leads.

Tokens, the bounded refresh-and-retry and the error mapping are shared with WeCom (`wecom.py`).
Note that fetching an official-account token invalidates the previous one after a short overlap:
keep one token store (Redis) for all processes so they do not take turns refreshing.
"""

from __future__ import annotations

import logging
from typing import Any

import requests
from django.utils.translation import gettext_lazy as _
from wechatpy.session import SessionStorage

from notifications.channels import (
    Channel,
    DeliveryError,
    Message,
    MissingAddress,
    MissingCredentials,
    Recipient,
    default_timeout,
    http_session,
)
from notifications.channels.wecom import OfficialAccountClient, build_client, call_wechat

logger = logging.getLogger(__name__)

# invalid openid; the user does not follow the account; the user blocked it
WECHAT_ADDRESS_ERRCODES = frozenset({40003, 43004, 43019})


class WeChatChannel(Channel):
    """Official-account template message to one follower (by openid)."""

    name = "wechat"

    def __init__(
        self,
        *,
        app_id: str,
        secret: str,
        session: requests.Session | None = None,
        token_storage: SessionStorage | None = None,
        timeout: float | None = None,
    ):
        self.timeout = default_timeout() if timeout is None else timeout
        self.session = session if session is not None else http_session(self.timeout)
        self.client = build_client(
            OfficialAccountClient, app_id, secret, session=self.session, token_storage_=token_storage,
            timeout=self.timeout,
        )

    @classmethod
    def from_settings(cls, tenant_settings: dict, **options: Any) -> WeChatChannel:
        conf = (tenant_settings or {}).get("wechat") or {}
        missing = [key for key in ("app_id", "secret") if not conf.get(key)]
        if missing:
            raise MissingCredentials(
                _("The WeChat official account is not configured for this tenant."), code="missing:" + ",".join(missing)
            )
        return cls(
            app_id=str(conf["app_id"]), secret=str(conf["secret"]),
            session=options.get("session"), token_storage=options.get("token_storage"), timeout=options.get("timeout"),
        )

    def send(self, *, message: Message, recipient: Recipient, idempotency_key: str) -> str:
        openid = (recipient.wechat_openid or "").strip()
        if not openid:
            raise MissingAddress(_("The recipient has no WeChat openid."), code="no_wechat_openid")
        if not message.template_code:
            raise DeliveryError(
                _("The message has no official-account template id."), retryable=False, code="no_template"
            )
        data = {
            key: value if isinstance(value, dict) else {"value": str(value)} for key, value in message.params.items()
        }
        logger.info("wechat template send template=%s key=%s", message.template_code, idempotency_key)
        result = call_wechat(
            self.client.message.send_template,
            openid,
            message.template_code,
            data,
            url=message.url or None,
            address_errcodes=WECHAT_ADDRESS_ERRCODES,
        )
        return str(result.get("msgid") or "")
