"""WeCom (企业微信) application messages to staff, through wechatpy 1.8.18's `wechatpy.enterprise`.

Credentials: `tenant.settings["wecom"] = {"corp_id", "agent_id", "secret"}` (the app's secret).

Access tokens live in a shared store (`token_storage()`): wechatpy's RedisStorage when
settings.REDIS_URL is set, so every web and worker process uses one token per app; a process-local
MemoryStorage otherwise. Both drop a token five minutes before WeCom does.

Token refresh, as wechatpy 1.8.18 does it (client/base.py): `BaseWeChatClient._handle_result`, on
errcode 40001, 40014 or 42001 and `auto_retry=True`, calls `fetch_access_token()` and then
`_request()` again — with no limit, so a token the server keeps refusing recurses until
RecursionError, fetching a token each time. `_BoundedTokenRetry` keeps wechatpy's path but allows
it once per call: one refresh, one retry, then the error is raised. wechatpy's token fetch also
passes no timeout; our `TimeoutSession` supplies one.

This module also holds the wechatpy helpers that `wechat.py` (official accounts) shares, and
`media_download`, which fetches a picture a user sent (WeCom and official account alike).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import requests
from django.conf import settings
from django.utils.translation import gettext_lazy as _
from wechatpy.client import WeChatClient as _OfficialAccountClient
from wechatpy.enterprise import WeChatClient as _EnterpriseClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session import SessionStorage
from wechatpy.session.memorystorage import MemoryStorage
from wechatpy.session.redisstorage import RedisStorage

from notifications.channels import (
    Channel,
    DeliveryError,
    Message,
    MissingAddress,
    MissingCredentials,
    Recipient,
    default_timeout,
    http_session,
    http_status_error,
    redact,
    transport_error,
)

logger = logging.getLogger(__name__)

# invalid credential / invalid access_token / access_token expired: wechatpy refreshes the token
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})
# system busy, API frequency limits, too many concurrent calls: worth another try later
RETRYABLE_ERRCODES = frozenset({-1, 45009, 45011, 45033})
TOKEN_EARLY_EXPIRY = 300  # seconds before the provider's expiry that a stored token is dropped
DUPLICATE_CHECK_SECONDS = 1800  # WeCom drops an identical message to the same user within this window


# --- token storage ---------------------------------------------------------------------


class ExpiringMemoryStorage(MemoryStorage):
    """wechatpy's MemoryStorage ignores the ttl; this one honours it (less the early expiry)."""

    def __init__(self):
        super().__init__()
        self._deadlines: dict[str, float] = {}

    def get(self, key, default=None):
        deadline = self._deadlines.get(key)
        if deadline is not None and time.time() >= deadline:
            self.delete(key)
        return super().get(key, default)

    def set(self, key, value, ttl=None):
        if value is None:
            return
        super().set(key, value, ttl)
        if ttl:
            self._deadlines[key] = time.time() + max(int(ttl) - TOKEN_EARLY_EXPIRY, 1)
        else:
            self._deadlines.pop(key, None)

    def delete(self, key):
        super().delete(key)
        self._deadlines.pop(key, None)

    def clear(self):
        self._data.clear()
        self._deadlines.clear()


class EarlyExpiryRedisStorage(RedisStorage):
    """wechatpy's RedisStorage, keeping a token a little shorter than the provider does."""

    def set(self, key, value, ttl=None):
        if ttl:
            ttl = max(int(ttl) - TOKEN_EARLY_EXPIRY, 1)
        super().set(key, value, ttl)

    def clear(self):
        """Forget every token under this store's prefix (as ExpiringMemoryStorage.clear does)."""
        keys = list(self.redis.scan_iter(match=self.key_name("*")))
        if keys:
            self.redis.delete(*keys)


_memory_storage = ExpiringMemoryStorage()


@functools.lru_cache(maxsize=4)
def _redis_storage(url: str) -> RedisStorage:
    import redis

    return EarlyExpiryRedisStorage(redis.Redis.from_url(url), prefix="scrm:wechatpy")


def token_storage() -> SessionStorage:
    """Where access tokens are kept: Redis (shared by all processes) if REDIS_URL is set, else memory."""
    url = getattr(settings, "REDIS_URL", None)
    if url:
        return _redis_storage(url)
    return _memory_storage


# --- wechatpy clients ------------------------------------------------------------------


class TokenFetchError(WeChatClientException):
    """The access-token endpoint itself refused (bad corp id / secret, IP not allowed …)."""


def _errcode(result: dict) -> int | None:
    try:
        return int(result.get("errcode", 0) or 0)
    except (TypeError, ValueError):
        return None


class _BoundedTokenRetry:
    """Mixin for wechatpy clients: wechatpy's token refresh-and-retry, at most once per API call."""

    def __init__(self, *args, **kwargs):
        self._calls = threading.local()
        super().__init__(*args, **kwargs)

    def _request(self, method, url_or_endpoint, **kwargs):
        depth = getattr(self._calls, "depth", 0)
        self._calls.depth = depth + 1
        try:
            return super()._request(method, url_or_endpoint, **kwargs)
        finally:
            self._calls.depth = depth

    def _handle_result(self, res, method=None, url=None, result_processor=None, **kwargs):
        if getattr(self._calls, "depth", 0) > 1:  # we are inside wechatpy's one retry
            result = res if isinstance(res, dict) else self._decode_result(res)
            if isinstance(result, dict) and _errcode(result) in TOKEN_ERRCODES:
                raise WeChatClientException(
                    _errcode(result),
                    result.get("errmsg", ""),
                    client=self,
                    request=getattr(res, "request", None),
                    response=res,
                )
        return super()._handle_result(res, method, url, result_processor, **kwargs)

    def fetch_access_token(self):
        try:
            return super().fetch_access_token()
        except WeChatClientException as exc:
            raise TokenFetchError(
                exc.errcode, exc.errmsg, client=self, request=exc.request, response=exc.response
            ) from None


class WeComClient(_BoundedTokenRetry, _EnterpriseClient):
    """wechatpy's enterprise client with the bounded token retry."""

    @property
    def access_token_key(self):
        # wechatpy's key embeds the first 10 characters of the secret; a digest keys the same per app.
        digest = hashlib.sha256(self.secret.encode()).hexdigest()[:16]
        return f"wecom_{self.corp_id}_{digest}_access_token"


class OfficialAccountClient(_BoundedTokenRetry, _OfficialAccountClient):
    """wechatpy's official-account client with the bounded token retry."""


def build_client(client_class, app_id: str, secret: str, *, session, token_storage_, timeout):
    client = client_class(app_id, secret, session=token_storage_ or token_storage(), timeout=timeout)
    client._http = session  # wechatpy sends everything, token fetch included, through _http
    return client


def wechat_error(
    exc: requests.RequestException | WeChatClientException, *, address_errcodes: frozenset[int] = frozenset()
) -> DeliveryError:
    """Translate what a wechatpy call raised into a DeliveryError."""
    if isinstance(exc, requests.RequestException):
        return transport_error(exc)
    errcode, errmsg = exc.errcode, str(exc.errmsg or "")
    if errcode is None:  # HTTP error status, raised by wechatpy's raise_for_status()
        status = getattr(exc.response, "status_code", None) or 0
        return http_status_error(status)
    if errcode in RETRYABLE_ERRCODES:
        return DeliveryError(_("The provider is busy; try again later."), retryable=True, code=errcode, detail=errmsg)
    if isinstance(exc, TokenFetchError):
        return MissingCredentials(_("The provider refused the configured credentials."), code=errcode, detail=errmsg)
    if errcode in TOKEN_ERRCODES:  # still refused after one refresh and one retry
        return DeliveryError(
            _("The provider kept refusing a fresh access token."), retryable=True, code=errcode, detail=errmsg
        )
    if errcode in address_errcodes:
        return MissingAddress(_("The provider does not know this recipient."), code=errcode, detail=errmsg)
    return DeliveryError(_("The provider rejected the message."), retryable=False, code=errcode, detail=errmsg)


def call_wechat(func, *args, address_errcodes: frozenset[int] = frozenset(), **kwargs) -> dict:
    """Run one wechatpy API call; return its JSON result or raise DeliveryError (secrets kept out of it)."""
    try:
        result = func(*args, **kwargs)
    except (requests.RequestException, WeChatClientException) as exc:
        error = wechat_error(exc, address_errcodes=address_errcodes)
    else:
        if isinstance(result, dict):
            return result
        error = DeliveryError(
            _("The provider gave an answer that could not be read."),
            retryable=True,
            code="bad_answer",
            detail=redact(getattr(result, "text", "")[:200]),
        )
    # `from None`: the original exception text can hold the access token or the secret.
    raise error from None


# --- temporary media: the pictures users send ------------------------------------------

# invalid media_id: also the answer for an expired one (temporary media are kept three days)
MEDIA_GONE_ERRCODES = frozenset({40007})
_FILENAME = re.compile(r"""filename\*?=(?:UTF-8'')?"?([^";]+)"?""", re.IGNORECASE)


@dataclass(frozen=True)
class Media:
    content: bytes
    content_type: str  # as the platform declared it; the caller checks the bytes
    filename: str  # the platform's name for it, or ""


def media_download(client, media_id: str, *, max_bytes: int) -> Media:
    """A temporary media file by its id from `media/get` of the client's API (WeCom or the
    official account: both answer with the file itself, or with JSON holding an errcode).
    wechatpy's own download bypasses the client's session (no timeout, no token refresh), so
    this goes through the session, refreshes a refused token once, and stops reading past
    `max_bytes`. Raises DeliveryError; `retryable` says whether a later try may succeed."""
    url = client.API_BASE_URL + "media/get"
    for attempt in range(2):
        try:
            response = client._http.get(url, params={"access_token": client.access_token, "media_id": media_id},
                                        stream=True)
        except (requests.RequestException, WeChatClientException) as exc:
            raise wechat_error(exc) from None
        with response:
            if response.status_code != 200:
                raise http_status_error(response.status_code)
            content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if content_type in ("application/json", "text/plain"):
                try:
                    result = json.loads(response.raw.read(65536, decode_content=True) or b"{}")
                except ValueError:
                    result = {}
                errcode = _errcode(result) if isinstance(result, dict) else None
                if errcode in TOKEN_ERRCODES and attempt == 0:
                    try:
                        client.fetch_access_token()
                    except (requests.RequestException, WeChatClientException) as exc:
                        raise wechat_error(exc) from None
                    continue
                errmsg = result.get("errmsg", "") if isinstance(result, dict) else ""
                if errcode in MEDIA_GONE_ERRCODES:
                    raise DeliveryError(_("The platform no longer has this file (it keeps them for three days)."),
                                        retryable=False, code=errcode, detail=errmsg)
                if not errcode:
                    raise DeliveryError(_("The provider gave an answer that could not be read."), retryable=True,
                                        code="bad_answer")
                raise wechat_error(WeChatClientException(errcode, errmsg, client=client))
            too_large = DeliveryError(_("The file is larger than %(limit)d MB.") % {"limit": max_bytes // 2**20},
                                      retryable=False, code="too_large")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise too_large
            content = bytearray()
            try:
                for chunk in response.iter_content(65536):
                    content += chunk
                    if len(content) > max_bytes:
                        raise too_large
            except requests.RequestException as exc:
                raise transport_error(exc) from None
            found = _FILENAME.search(response.headers.get("Content-Disposition", ""))
            filename = PurePath(found.group(1).replace("\\", "/")).name if found else ""
            return Media(bytes(content), content_type, filename)
    raise DeliveryError(_("The provider kept refusing a fresh access token."), retryable=True, code="token")


# --- the channel -----------------------------------------------------------------------

# invalid userid; all recipients invalid or outside the app's visible range
WECOM_ADDRESS_ERRCODES = frozenset({40003, 81013})


class WeComChannel(Channel):
    """WeCom app message (text, or a text card when the message has a link) to one member."""

    name = "wecom"

    def __init__(
        self,
        *,
        corp_id: str,
        agent_id: int | str,
        secret: str,
        session: requests.Session | None = None,
        token_storage: SessionStorage | None = None,
        timeout: float | None = None,
    ):
        try:
            self.agent_id = int(agent_id)
        except (TypeError, ValueError):
            raise MissingCredentials(_("The WeCom agent id must be a number."), code="agent_id") from None
        self.timeout = default_timeout() if timeout is None else timeout
        self.session = session if session is not None else http_session(self.timeout)
        self.client = build_client(
            WeComClient, corp_id, secret, session=self.session, token_storage_=token_storage, timeout=self.timeout
        )

    @classmethod
    def from_settings(cls, tenant_settings: dict, **options: Any) -> WeComChannel:
        conf = (tenant_settings or {}).get("wecom") or {}
        missing = [key for key in ("corp_id", "agent_id", "secret") if not conf.get(key)]
        if missing:
            raise MissingCredentials(_("WeCom is not configured for this tenant."), code="missing:" + ",".join(missing))
        return cls(
            corp_id=str(conf["corp_id"]), agent_id=conf["agent_id"], secret=str(conf["secret"]),
            session=options.get("session"), token_storage=options.get("token_storage"), timeout=options.get("timeout"),
        )

    def send(self, *, message: Message, recipient: Recipient, idempotency_key: str) -> str:
        userid = (recipient.wecom_userid or "").strip()
        if not userid:
            raise MissingAddress(_("The recipient has no WeCom user id."), code="no_wecom_userid")
        if "|" in userid or userid.lower() == "@all":  # one member, never a list or the whole company
            raise MissingAddress(_("The recipient's WeCom user id is not valid."), code="bad_wecom_userid")
        if message.url:
            msg = {
                "msgtype": "textcard",
                "textcard": {
                    "title": message.subject or (message.body.splitlines() or [""])[0][:60],
                    "description": message.body,
                    "url": message.url,
                    "btntxt": str(_("Details")),
                },
            }
        else:
            content = f"{message.subject}\n{message.body}" if message.subject else message.body
            msg = {"msgtype": "text", "text": {"content": content}, "safe": 0}
        # WeCom has no idempotency key; its duplicate check drops the same content sent to the same
        # member again within the window, which covers a retry after a send that timed out but arrived.
        msg.update(enable_duplicate_check=1, duplicate_check_interval=DUPLICATE_CHECK_SECONDS)
        logger.info("wecom send agent=%s key=%s", self.agent_id, idempotency_key)
        result = call_wechat(
            self.client.message.send, self.agent_id, userid, msg=msg, address_errcodes=WECOM_ADDRESS_ERRCODES
        )
        invalid = str(result.get("invaliduser") or "")
        if invalid:  # accepted, but not for our member (left the company, outside the app's range)
            raise MissingAddress(
                _("The provider does not know this recipient."), code="invaliduser", detail=invalid
            )
        return str(result.get("msgid") or "")
