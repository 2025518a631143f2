"""SMS through a provider's HTTP API: Aliyun (dysmsapi SendSms) or Tencent Cloud (SMS API 3.0 SendSms).

Credentials: `tenant.settings["sms"] = {"provider": "aliyun"|"tencent", "access_key_id",
"access_key_secret", "sign_name", "region", "sdk_app_id" (Tencent), "endpoint" (optional)}`.
The message's `template_code` is the provider's approved template; `params` fill it (Aliyun by
name; Tencent by position — keys "1", "2", … in numeric order, otherwise in insertion order).

The two signing schemes are written here from the providers' public descriptions:
- Aliyun RPC signature 1.0: sort all parameters but Signature by name, percent-encode names and
  values per RFC 3986 (space %20, `*` %2A, `~` kept), join as `k=v&…`; sign
  `METHOD&%2F&percentEncode(query)` with HMAC-SHA1 under `AccessKeySecret + "&"`, Base64.
- Tencent TC3-HMAC-SHA256: canonical request (method, "/", "", lower-cased signed headers,
  SHA-256 of the body), string to sign `TC3-HMAC-SHA256\\n<ts>\\n<date>/sms/tc3_request\\n<sha256>`,
  key derived HMAC-SHA256("TC3"+secret, date) → service → "tc3_request"; sent in Authorization.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

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
    transport_error,
)
from scrm.phone import phone_normalize

_MOBILE = re.compile(r"^1[3-9]\d{9}$")


def _unreadable(response: requests.Response) -> DeliveryError:
    if response.status_code >= 400:
        return http_status_error(response.status_code, response.text[:200])
    return DeliveryError(
        _("The provider gave an answer that could not be read."), retryable=False, code="bad_answer",
        detail=response.text[:200],
    )


def _provider_refused_credentials(code: str, detail: str) -> MissingCredentials:
    return MissingCredentials(_("The provider refused the configured credentials."), code=code, detail=detail)


def _provider_busy(code: str, detail: str) -> DeliveryError:
    return DeliveryError(_("The provider is busy; try again later."), retryable=True, code=code, detail=detail)


def _bad_number(code: str, detail: str) -> MissingAddress:
    return MissingAddress(_("The provider rejected the recipient's phone number."), code=code, detail=detail)


def _rejected(code: str, detail: str) -> DeliveryError:
    return DeliveryError(_("The provider rejected the message."), retryable=False, code=code, detail=detail)


# --- Aliyun ----------------------------------------------------------------------------


def aliyun_percent_encode(value: Any) -> str:
    """RFC 3986 percent-encoding of UTF-8: only A-Z a-z 0-9 - _ . ~ stay as they are."""
    return quote(str(value), safe="")


def aliyun_canonical_query(params: dict[str, Any]) -> str:
    return "&".join(
        f"{aliyun_percent_encode(name)}={aliyun_percent_encode(value)}" for name, value in sorted(params.items())
    )


def aliyun_string_to_sign(method: str, params: dict[str, Any]) -> str:
    canonical = aliyun_canonical_query({k: v for k, v in params.items() if k != "Signature"})
    return f"{method.upper()}&{aliyun_percent_encode('/')}&{aliyun_percent_encode(canonical)}"


def aliyun_signature(method: str, params: dict[str, Any], access_key_secret: str) -> str:
    key = f"{access_key_secret}&".encode()
    digest = hmac.new(key, aliyun_string_to_sign(method, params).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


ALIYUN_RETRYABLE = frozenset({
    "isv.BUSINESS_LIMIT_CONTROL",  # per-number flow control (1/min, 5/h …)
    "isp.SYSTEM_ERROR",
    "Throttling", "Throttling.User", "Throttling.Api",
    "ServiceUnavailable", "InternalError",
    "SignatureNonceUsed",  # a fresh nonce on the next try fixes it
})
ALIYUN_CREDENTIALS = frozenset({
    "InvalidAccessKeyId.NotFound", "InvalidAccessKeyId.Inactive", "SignatureDoesNotMatch",
    "isp.RAM_PERMISSION_DENY", "Forbidden.RAM",
})
ALIYUN_ADDRESS = frozenset({"isv.MOBILE_NUMBER_ILLEGAL"})


class AliyunSms:
    """Aliyun dysmsapi `SendSms` (version 2017-05-25), RPC style: common parameters in the query
    string, the message in a form body, both covered by the signature."""

    name = "aliyun"
    DEFAULT_ENDPOINT = "https://dysmsapi.aliyuncs.com/"
    VERSION = "2017-05-25"
    REQUIRED = ("access_key_id", "access_key_secret", "sign_name")

    def __init__(self, *, access_key_id, access_key_secret, sign_name, region="", endpoint="", **_unused):
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.sign_name = sign_name
        self.region = region or "cn-hangzhou"
        self.endpoint = endpoint or self.DEFAULT_ENDPOINT

    def build_request(
        self, *, phone: str, template_code: str, params: dict, idempotency_key: str,
        now: datetime | None = None, nonce: str | None = None,
    ) -> requests.Request:
        now = now or datetime.now(UTC)
        common = {
            "AccessKeyId": self.access_key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "RegionId": self.region,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": nonce or uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "Timestamp": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": self.VERSION,
        }
        business = {
            "PhoneNumbers": phone,
            "SignName": self.sign_name,
            "TemplateCode": template_code,
            "OutId": idempotency_key,  # echoed in delivery receipts
        }
        if params:
            business["TemplateParam"] = json.dumps(
                {str(k): str(v) for k, v in params.items()}, ensure_ascii=False, separators=(",", ":")
            )
        signature = aliyun_signature("POST", {**common, **business}, self.access_key_secret)
        query = aliyun_canonical_query(common) + "&Signature=" + aliyun_percent_encode(signature)
        return requests.Request(
            "POST",
            f"{self.endpoint}?{query}",
            data=aliyun_canonical_query(business).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8", "Accept": "application/json"},
        )

    def parse_response(self, response: requests.Response) -> str:
        if response.status_code >= 500:
            raise http_status_error(response.status_code, response.text[:200])
        try:
            data = response.json()
            code = str(data.get("Code") or "")
        except (ValueError, AttributeError):
            raise _unreadable(response) from None
        if code == "OK" and response.status_code < 300:
            return str(data.get("BizId") or data.get("RequestId") or "")
        detail = str(data.get("Message") or "")
        if not code:
            raise _unreadable(response)
        if code in ALIYUN_RETRYABLE:
            raise _provider_busy(code, detail)
        if code in ALIYUN_CREDENTIALS:
            raise _provider_refused_credentials(code, detail)
        if code in ALIYUN_ADDRESS:
            raise _bad_number(code, detail)
        raise _rejected(code, detail)


# --- Tencent Cloud ---------------------------------------------------------------------

TC3_ALGORITHM = "TC3-HMAC-SHA256"


def _sha256_hex(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def _hmac_sha256(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def tc3_date(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def tc3_canonical_request(
    *, method: str, headers: dict[str, str], signed_headers: list[str], payload: bytes, path: str = "/", query: str = ""
) -> str:
    """`headers` keyed by lower-case name; names and values of the signed ones enter lower-cased."""
    lowered = {name.lower(): value for name, value in headers.items()}
    canonical_headers = "".join(f"{name}:{lowered[name].strip().lower()}\n" for name in signed_headers)
    return "\n".join([method.upper(), path, query, canonical_headers, ";".join(signed_headers), _sha256_hex(payload)])


def tc3_string_to_sign(*, timestamp: int, service: str, canonical_request: str) -> str:
    scope = f"{tc3_date(timestamp)}/{service}/tc3_request"
    return f"{TC3_ALGORITHM}\n{timestamp}\n{scope}\n{_sha256_hex(canonical_request)}"


def tc3_signature(*, secret_key: str, timestamp: int, service: str, canonical_request: str) -> str:
    secret_date = _hmac_sha256(f"TC3{secret_key}".encode(), tc3_date(timestamp))
    secret_service = _hmac_sha256(secret_date, service)
    secret_signing = _hmac_sha256(secret_service, "tc3_request")
    string_to_sign = tc3_string_to_sign(timestamp=timestamp, service=service, canonical_request=canonical_request)
    return hmac.new(secret_signing, string_to_sign.encode(), hashlib.sha256).hexdigest()


TENCENT_RETRYABLE_PREFIXES = ("InternalError", "RequestLimitExceeded")
TENCENT_RETRYABLE = frozenset({
    "LimitExceeded.PhoneNumberThirtySecondLimit", "LimitExceeded.PhoneNumberOneHourLimit",
    "LimitExceeded.DeliveryFrequencyLimit",
})
TENCENT_ADDRESS = frozenset({"InvalidParameterValue.IncorrectPhoneNumber", "FailedOperation.PhoneNumberInBlacklist"})


class TencentSms:
    """Tencent Cloud SMS API 3.0 `SendSms` (version 2021-01-11): a signed JSON POST."""

    name = "tencent"
    DEFAULT_ENDPOINT = "https://sms.tencentcloudapi.com/"
    SERVICE = "sms"
    VERSION = "2021-01-11"
    SIGNED_HEADERS = ["content-type", "host", "x-tc-action"]
    REQUIRED = ("access_key_id", "access_key_secret", "sign_name", "sdk_app_id")

    def __init__(self, *, access_key_id, access_key_secret, sign_name, sdk_app_id, region="", endpoint="", **_unused):
        self.secret_id = access_key_id
        self.secret_key = access_key_secret
        self.sign_name = sign_name
        self.sdk_app_id = str(sdk_app_id)
        self.region = region or "ap-guangzhou"
        self.endpoint = endpoint or self.DEFAULT_ENDPOINT

    @staticmethod
    def template_params(params: dict) -> list[str]:
        keys = list(params)
        if keys and all(str(k).isdigit() for k in keys):
            keys.sort(key=lambda k: int(k))
        return [str(params[k]) for k in keys]

    def build_request(
        self, *, phone: str, template_code: str, params: dict, idempotency_key: str, timestamp: int | None = None,
    ) -> requests.Request:
        timestamp = int(datetime.now(UTC).timestamp()) if timestamp is None else timestamp
        body = {
            "PhoneNumberSet": [f"+86{phone}"],
            "SmsSdkAppId": self.sdk_app_id,
            "SignName": self.sign_name,
            "TemplateId": str(template_code),
            "TemplateParamSet": self.template_params(params),
            "SessionContext": idempotency_key,  # echoed back and in delivery receipts
        }
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Host": urlsplit(self.endpoint).netloc,
            "X-TC-Action": "SendSms",
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Version": self.VERSION,
            "X-TC-Region": self.region,
        }
        canonical = tc3_canonical_request(
            method="POST", headers=headers, signed_headers=self.SIGNED_HEADERS, payload=payload
        )
        signature = tc3_signature(
            secret_key=self.secret_key, timestamp=timestamp, service=self.SERVICE, canonical_request=canonical
        )
        scope = f"{tc3_date(timestamp)}/{self.SERVICE}/tc3_request"
        headers["Authorization"] = (
            f"{TC3_ALGORITHM} Credential={self.secret_id}/{scope}, "
            f"SignedHeaders={';'.join(self.SIGNED_HEADERS)}, Signature={signature}"
        )
        return requests.Request("POST", self.endpoint, data=payload, headers=headers)

    @staticmethod
    def _classify(code: str, detail: str) -> DeliveryError:
        if code.startswith(TENCENT_RETRYABLE_PREFIXES) or code in TENCENT_RETRYABLE:
            return _provider_busy(code, detail)
        if code.startswith(("AuthFailure", "UnauthorizedOperation")) and code != "AuthFailure.SignatureExpire":
            return _provider_refused_credentials(code, detail)
        if code in TENCENT_ADDRESS:
            return _bad_number(code, detail)
        return _rejected(code, detail)

    def parse_response(self, response: requests.Response) -> str:
        if response.status_code >= 500:
            raise http_status_error(response.status_code, response.text[:200])
        try:
            data = response.json()["Response"]
            error = data.get("Error")
            statuses = data.get("SendStatusSet") or []
        except (ValueError, KeyError, TypeError, AttributeError):
            raise _unreadable(response) from None
        if error:
            raise self._classify(str(error.get("Code") or ""), str(error.get("Message") or ""))
        if response.status_code >= 400 or not statuses or not isinstance(statuses[0], dict):
            raise _unreadable(response)
        status = statuses[0]
        code = str(status.get("Code") or "")
        if code == "Ok":
            return str(status.get("SerialNo") or data.get("RequestId") or "")
        raise self._classify(code, str(status.get("Message") or ""))


PROVIDERS = {"aliyun": AliyunSms, "tencent": TencentSms}


# --- the channel -----------------------------------------------------------------------


class SmsChannel(Channel):
    """A template SMS to one mainland mobile number."""

    name = "sms"

    def __init__(self, *, provider, session: requests.Session | None = None, timeout: float | None = None):
        self.provider = provider
        self.timeout = default_timeout() if timeout is None else timeout
        self.session = session if session is not None else http_session(self.timeout)

    @classmethod
    def from_settings(cls, tenant_settings: dict, **options: Any) -> SmsChannel:
        conf = (tenant_settings or {}).get("sms") or {}
        provider_class = PROVIDERS.get(conf.get("provider") or "")
        if provider_class is None:
            raise MissingCredentials(_("SMS is not configured for this tenant."), code="missing:provider")
        missing = [key for key in provider_class.REQUIRED if not conf.get(key)]
        if missing:
            raise MissingCredentials(_("SMS is not configured for this tenant."), code="missing:" + ",".join(missing))
        provider = provider_class(
            **{key: str(value) for key, value in conf.items() if key != "provider" and value not in (None, "")}
        )
        return cls(provider=provider, session=options.get("session"), timeout=options.get("timeout"))

    def send(self, *, message: Message, recipient: Recipient, idempotency_key: str) -> str:
        if not (recipient.phone or "").strip():
            raise MissingAddress(_("The recipient has no phone number."), code="no_phone")
        try:
            phone = phone_normalize(recipient.phone)
        except ValidationError:
            phone = ""
        if not _MOBILE.match(phone):
            raise MissingAddress(_("The recipient's phone number is not a mainland mobile number."), code="not_mobile")
        if not message.template_code:
            raise DeliveryError(_("The message has no SMS template code."), retryable=False, code="no_template")
        request = self.provider.build_request(
            phone=phone, template_code=message.template_code, params=message.params, idempotency_key=idempotency_key
        )
        prepared = self.session.prepare_request(request)
        try:
            response = self.session.send(prepared, timeout=self.timeout, allow_redirects=False)
        except requests.RequestException as exc:
            raise transport_error(exc) from None
        return self.provider.parse_response(response)
