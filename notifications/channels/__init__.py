"""Delivery channels: one interface that sends one already rendered message to one recipient.

The outbox (built on top of this package) picks a channel with `channel_for(name, tenant.settings)`
and calls `channel.send(message=…, recipient=…, idempotency_key=…)`. A channel returns the
provider's message id or raises a `DeliveryError`; it never returns half a result:

| raised | meaning for the outbox |
| --- | --- |
| `DeliveryError(retryable=True)` | transient (timeout, HTTP 5xx, provider busy): retry with backoff |
| `DeliveryError(retryable=False)` | the provider refused this message: dead letter |
| `MissingCredentials` (`waiting`) | channel not configured, or its credentials refused: wait, burn no retries |
| `MissingAddress` (`fallback`) | no usable address here (absent, or rejected by the provider): next channel |

`channel_for` raises `MissingCredentials` itself when the tenant settings lack the channel's
credentials; "inapp" is written by the outbox and has no channel here.

HTTP: every channel talks through a `requests` session made by `http_session()`, which applies a
default timeout to every request (wechatpy's token fetch passes none). Tests reach loopback stubs
either by passing `session=` (a session with a host-rewriting adapter mounted, see
`tests/notifications/stubs.py`) or, when the channel is built deep inside the outbox, with the
`transport_override(prefix, adapter)` context manager, which mounts the adapter on every session
`http_session()` makes while it is active.
"""

from __future__ import annotations

import abc
import contextlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import requests
from django.conf import settings
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _
from requests.adapters import BaseAdapter

DEFAULT_TIMEOUT = 5.0  # seconds; settings.NOTIFICATIONS_HTTP_TIMEOUT overrides it


@dataclass
class Message:
    """An already rendered notification: the channel only delivers it."""

    subject: str
    body: str  # plain text
    html: str = ""  # optional (email)
    template_code: str = ""  # SMS template code / official-account template id
    params: dict = field(default_factory=dict)  # template parameters (SMS, official-account template)
    url: str = ""  # a link, e.g. the tracking page


@dataclass
class Recipient:
    """Where one person can be reached; a channel uses the one address it understands."""

    name: str = ""
    phone: str = ""
    email: str = ""
    wecom_userid: str = ""
    wechat_openid: str = ""
    user_id: int | None = None


class DeliveryError(Exception):
    """A message was not delivered. `reason` is translatable (lazy) text for people; `code` is the
    provider's error code (or our own short tag, e.g. "timeout", "http_503"); `detail` is the
    provider's own message, with tokens and secrets removed."""

    retryable: bool = False
    waiting: bool = False  # MissingCredentials: hold the notification until the tenant configures the channel
    fallback: bool = False  # MissingAddress: try the recipient's next channel

    def __init__(self, reason: Any, *, retryable: bool | None = None, code: Any = "", detail: Any = ""):
        super().__init__(reason)
        self.reason = reason
        if retryable is not None:
            self.retryable = retryable
        self.code = "" if code is None else str(code)
        self.detail = redact(str(detail or ""))[:500]

    def __str__(self) -> str:
        text = str(self.reason)
        if self.code:
            text += f" [{self.code}]"
        if self.detail:
            text += f" {self.detail}"
        return text


class MissingCredentials(DeliveryError):
    """The tenant has not configured this channel (or the provider refused its credentials).
    Not retryable by backoff: the notification waits until the settings are fixed."""

    retryable = False
    waiting = True

    def __init__(self, reason: Any, *, code: Any = "", detail: Any = ""):
        super().__init__(reason, retryable=False, code=code, detail=detail)


class MissingAddress(DeliveryError):
    """The recipient cannot be reached on this channel: no address, or the provider rejected it
    (unknown WeCom user, illegal mobile number, unsubscribed openid). The outbox falls back."""

    retryable = False
    fallback = True

    def __init__(self, reason: Any, *, code: Any = "", detail: Any = ""):
        super().__init__(reason, retryable=False, code=code, detail=detail)


class Channel(abc.ABC):
    """Delivers a rendered message to one recipient and returns the provider's message id."""

    name: ClassVar[str]

    @classmethod
    @abc.abstractmethod
    def from_settings(cls, tenant_settings: dict, **options: Any) -> Channel:
        """Build the channel from `Tenant.settings`; raise MissingCredentials if it is not configured."""

    @abc.abstractmethod
    def send(self, *, message: Message, recipient: Recipient, idempotency_key: str) -> str:
        """Deliver or raise DeliveryError. `idempotency_key` is the same on every retry of one notification."""


CHANNELS = {
    "wecom": "notifications.channels.wecom.WeComChannel",
    "wechat": "notifications.channels.wechat.WeChatChannel",
    "sms": "notifications.channels.sms.SmsChannel",
    "email": "notifications.channels.email.EmailChannel",
    "console": "notifications.channels.console.ConsoleChannel",
}


def channel_for(name: str, tenant_settings: dict | None, **options: Any) -> Channel:
    """The channel `name` configured from a tenant's settings.

    `options` go to the channel: `session` (a requests session), `timeout` (seconds) and, for the
    WeChat channels, `token_storage`. Raises MissingCredentials when the tenant lacks credentials,
    ValueError for a name that is not a channel ("inapp" is the outbox's own)."""
    try:
        path = CHANNELS[name]
    except KeyError:
        raise ValueError(f"unknown notification channel {name!r}") from None
    return import_string(path).from_settings(tenant_settings or {}, **options)


# --- HTTP ------------------------------------------------------------------------------


def default_timeout() -> float:
    return float(getattr(settings, "NOTIFICATIONS_HTTP_TIMEOUT", DEFAULT_TIMEOUT))


class TimeoutSession(requests.Session):
    """A requests session that never waits forever: requests sent without a timeout get `timeout`."""

    def __init__(self, timeout: float | None = None):
        super().__init__()
        self.timeout = default_timeout() if timeout is None else timeout

    def send(self, request, **kwargs):
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


_overrides: dict[str, BaseAdapter] = {}
_overrides_lock = threading.Lock()


def http_session(timeout: float | None = None) -> TimeoutSession:
    """A new session for one channel, with any adapters installed by `transport_override` mounted."""
    session = TimeoutSession(timeout)
    with _overrides_lock:
        for prefix, adapter in _overrides.items():
            session.mount(prefix, adapter)
    return session


@contextlib.contextmanager
def transport_override(prefix: str, adapter: BaseAdapter) -> Iterator[None]:
    """Test seam: sessions made by `http_session()` inside the block send URLs under `prefix`
    through `adapter` (e.g. one that rewrites https://qyapi.weixin.qq.com/ to a loopback stub)."""
    with _overrides_lock:
        previous = _overrides.get(prefix)
        _overrides[prefix] = adapter
    try:
        yield
    finally:
        with _overrides_lock:
            if previous is None:
                _overrides.pop(prefix, None)
            else:
                _overrides[prefix] = previous


_SECRET_QUERY = re.compile(r"((?:access_token|corpsecret|secret|appsecret|Signature)=)[^&\s'\"]+", re.IGNORECASE)


def redact(text: str) -> str:
    """Remove tokens and secrets that providers put in query strings (they end up in exception text)."""
    return _SECRET_QUERY.sub(r"\1***", text)


def transport_error(exc: requests.RequestException) -> DeliveryError:
    """A request that got no usable HTTP answer: always worth another try later."""
    if isinstance(exc, requests.Timeout):
        return DeliveryError(_("The provider did not answer in time."), retryable=True, code="timeout")
    return DeliveryError(
        _("Could not reach the provider."), retryable=True, code=type(exc).__name__, detail=redact(str(exc))
    )


def http_status_error(status: int, detail: str = "") -> DeliveryError:
    """An HTTP error answer without a provider error code: 5xx, 408 and 429 are transient."""
    retryable = status >= 500 or status in (408, 429)
    return DeliveryError(
        _("The provider answered with an HTTP error."), retryable=retryable, code=f"http_{status}", detail=detail
    )
