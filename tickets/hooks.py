"""Callbacks the WeChat platforms call: WeChat Work (企业微信) at /hooks/wecom/<tenant>/ and a
WeChat official account (公众号) at /hooks/wechat/<tenant>/. Each checks the signature with the
tenant's token (403 and nothing written when it fails), decrypts, and hands text and image
messages to `inbound_message_receive`, which makes one ticket — or a comment on the sender's
open ticket — per message id, however often the platform redelivers it. Each client IP may call
CALLBACK_RATE_PER_MINUTE times a minute (429 after).

Per-tenant settings: `Tenant.settings["wecom"] = {"corp_id", "agent_id", "secret", "token",
"encoding_aes_key"}` and `Tenant.settings["wechat"] = {"app_id", "secret", "token",
"encoding_aes_key"}` (the AES key only for the official account's safe mode). An official account
with an AES key takes safe-mode deliveries only, and only with a timestamp within
CALLBACK_MAX_AGE_SECONDS of now."""

import binascii
import logging
import time
from xml.parsers.expat import ExpatError

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, HttpResponseBadRequest, HttpResponseForbidden
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from wechatpy import parse_message as wechat_parse_message
from wechatpy.crypto import WeChatCrypto as WeChatMpCrypto
from wechatpy.enterprise import parse_message as wecom_parse_message
from wechatpy.enterprise.crypto import WeChatCrypto as WeComCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.utils import check_signature

from scrm.ratelimit import client_ip, rate_limited, window_left
from scrm.selectors import tenant_active_get
from scrm.tenancy import tenant_scope

from .models import Source
from .services import inbound_message_receive

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
WECOM_KEYS = ("corp_id", "token", "encoding_aes_key")
WECHAT_KEYS = ("app_id", "token")
# What a broken (not forged) payload raises while being parsed or decrypted.
MALFORMED = (ExpatError, KeyError, TypeError, ValueError, AttributeError, IndexError, binascii.Error,
             UnicodeDecodeError)


class _Refused(Exception):
    def __init__(self, response):
        self.response = response


def _limited(request):
    """429 when this client IP sent more than CALLBACK_RATE_PER_MINUTE callbacks this minute: a
    flood of forged deliveries then costs a counter, not a tenant read and a decryption each. The
    platforms retry a refused delivery, so nothing genuine is lost."""
    if rate_limited(scope="callback", ident=client_ip(request), limit=settings.CALLBACK_RATE_PER_MINUTE):
        response = HttpResponse("too many requests", status=429, content_type="text/plain")
        response["Retry-After"] = str(window_left())
        return response
    return None


def _fresh(timestamp):
    """The callback's timestamp is within CALLBACK_MAX_AGE_SECONDS of now (either way: clocks
    drift)."""
    try:
        return abs(time.time() - int(timestamp)) <= settings.CALLBACK_MAX_AGE_SECONDS
    except (TypeError, ValueError, OverflowError):
        return False


def _tenant_config(slug, section, required):
    """The tenant and its channel settings, or 404 when either is missing (no difference shown)."""
    tenant = tenant_active_get(slug=slug)
    config = (tenant.settings or {}).get(section) if tenant is not None else None
    if not isinstance(config, dict) or not all(config.get(key) for key in required):
        raise Http404
    return tenant, config


def _body(request):
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_BODY_BYTES:
        raise _Refused(HttpResponse("payload too large", status=413, content_type="text/plain"))
    body = request.body
    if len(body) > MAX_BODY_BYTES:
        raise _Refused(HttpResponse("payload too large", status=413, content_type="text/plain"))
    if not body.strip():
        raise _Refused(HttpResponseBadRequest("empty body", content_type="text/plain"))
    return body


def _message_text(message):
    """The text a message contributes to a ticket, or None for messages we do not take in
    (events such as subscribe or enter_agent, voice, video, location)."""
    if message.type == "text":
        return message.content or ""
    if message.type == "image":
        return _("[Image] %(url)s") % {"url": message.image or ""}
    return None


def _raw(message):
    return {str(k): v for k, v in dict(message._data).items()}


def _receive(*, tenant, channel, message, sender):
    """Hand one parsed message to the inbound service inside the tenant's scope."""
    text = _message_text(message)
    if text is None:
        return HttpResponse("success", content_type="text/plain")
    # MsgId identifies a message; the platforms' own advice for ones without is sender + time.
    external_id = str(message.id) if message.id else f"{message.source}:{message.time}"
    try:
        with tenant_scope(tenant):
            inbound_message_receive(
                tenant=tenant, channel=channel, external_id=external_id, sender=sender, body=text, raw=_raw(message),
            )
    except ValidationError as exc:
        # Nothing was written (the service is atomic); a redelivery would fail the same way.
        logger.warning("%s message %s for tenant %s refused: %s", channel, external_id, tenant.slug, exc.messages)
        return HttpResponse("unprocessable", status=422, content_type="text/plain")
    return HttpResponse("success", content_type="text/plain")


@csrf_exempt
@require_http_methods(["GET", "POST"])
def wecom_callback(request, tenant_slug):
    """WeChat Work: GET verifies the URL (decrypt the echostr), POST delivers an encrypted message."""
    if (refused := _limited(request)) is not None:
        return refused
    tenant, config = _tenant_config(tenant_slug, "wecom", WECOM_KEYS)
    try:
        crypto = WeComCrypto(config["token"], config["encoding_aes_key"], config["corp_id"])
    except (AssertionError, ValueError, binascii.Error):
        logger.error("tenant %s has an invalid WeCom encoding_aes_key", tenant.slug)
        raise Http404 from None
    signature = request.GET.get("msg_signature", "")
    timestamp = request.GET.get("timestamp", "")
    nonce = request.GET.get("nonce", "")
    if not (signature and timestamp and nonce):
        return HttpResponseForbidden("missing signature", content_type="text/plain")
    try:
        if request.method == "GET":
            echostr = request.GET.get("echostr", "")
            if not echostr:
                return HttpResponseBadRequest("missing echostr", content_type="text/plain")
            return HttpResponse(crypto.check_signature(signature, timestamp, nonce, echostr),
                                content_type="text/plain")
        xml = crypto.decrypt_message(_body(request), signature, timestamp, nonce)
        message = wecom_parse_message(xml)
        if message is None:
            raise ValueError("empty message")
    except _Refused as refused:
        return refused.response
    except (InvalidSignatureException, InvalidCorpIdException):
        return HttpResponseForbidden("invalid signature", content_type="text/plain")
    except MALFORMED:
        return HttpResponseBadRequest("malformed message", content_type="text/plain")
    return _receive(tenant=tenant, channel=Source.WECOM, message=message,
                    sender={"wecom_external_userid": message.source})


@csrf_exempt
@require_http_methods(["GET", "POST"])
def wechat_callback(request, tenant_slug):
    """WeChat official account: the plain signature on every call; in safe mode
    (`encrypt_type=aes`) the message is decrypted with the tenant's EncodingAESKey."""
    if (refused := _limited(request)) is not None:
        return refused
    tenant, config = _tenant_config(tenant_slug, "wechat", WECHAT_KEYS)
    timestamp = request.GET.get("timestamp", "")
    nonce = request.GET.get("nonce", "")
    try:
        check_signature(config["token"], request.GET.get("signature", ""), timestamp, nonce)
    except InvalidSignatureException:
        return HttpResponseForbidden("invalid signature", content_type="text/plain")
    # The plain signature covers token, timestamp and nonce, not the body: an old signature
    # would carry any body. Only a fresh one is taken.
    if not _fresh(timestamp):
        return HttpResponseForbidden("stale timestamp", content_type="text/plain")
    if request.method == "GET":
        return HttpResponse(request.GET.get("echostr", ""), content_type="text/plain")
    aes = request.GET.get("encrypt_type", "raw") == "aes"
    if config.get("encoding_aes_key") and not aes:
        # Safe mode configured: a plain delivery is a downgrade someone else chose.
        return HttpResponseForbidden("safe mode required", content_type="text/plain")
    try:
        body = _body(request)
        if aes:
            if not config.get("encoding_aes_key"):
                return HttpResponseBadRequest("safe mode is not configured", content_type="text/plain")
            try:
                crypto = WeChatMpCrypto(config["token"], config["encoding_aes_key"], config["app_id"])
            except (AssertionError, ValueError, binascii.Error):
                logger.error("tenant %s has an invalid WeChat encoding_aes_key", tenant.slug)
                raise Http404 from None
            body = crypto.decrypt_message(body, request.GET.get("msg_signature", ""), timestamp, nonce)
        message = wechat_parse_message(body)
        if message is None:
            raise ValueError("empty message")
    except _Refused as refused:
        return refused.response
    except (InvalidSignatureException, InvalidAppIdException):
        return HttpResponseForbidden("invalid signature", content_type="text/plain")
    except MALFORMED:
        return HttpResponseBadRequest("malformed message", content_type="text/plain")
    return _receive(tenant=tenant, channel=Source.WECHAT, message=message,
                    sender={"wechat_openid": message.source})
