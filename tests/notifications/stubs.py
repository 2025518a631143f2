"""Loopback stubs of the provider APIs the notification channels call, for tests.

Each stub is a ThreadingHTTPServer on 127.0.0.1 (port 0) in a daemon thread that records every
request and answers like the provider, including its errors:

- `WeComStub` — `/cgi-bin/gettoken`, `/cgi-bin/message/send`, `/cgi-bin/media/get` (qyapi.weixin.qq.com)
- `OfficialAccountStub` — `/cgi-bin/token`, `/cgi-bin/message/template/send`, `/cgi-bin/media/get`
  (api.weixin.qq.com)
- `AliyunSmsStub` — dysmsapi `SendSms`; verifies the HMAC-SHA1 signature with the shared secret
- `TencentSmsStub` — SMS API 3.0 `SendSms`; verifies the TC3-HMAC-SHA256 Authorization header

The WeChat stubs issue real-looking tokens and check them: `expire_tokens()` makes the server
answer 42001 for the tokens it issued, `revoke_tokens()` 40014 — the client must fetch a new one.
Their `media` dict (media id → `File`) is what `media/get` serves; an unknown id gets 40007.
Any stub can be scripted: `fail(path=…, times=N, status=500 | body={…})` answers the next N
matching requests with that; `delay(path=…, seconds=…)` holds them longer than the client waits
(released when the stub stops, so nothing sleeps past the test).

Channels reach a stub through a requests adapter that rewrites the provider's host to the stub
(`stub.session(timeout)`, or `stub.installed()` for channels built out of reach, e.g. inside the
outbox), so wechatpy's own token fetch and refresh run; the SMS stubs also accept being the
`endpoint` in the tenant settings. The signature checks here are written independently of
`notifications/channels/sms.py`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import re
import secrets
import socket
import string
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from notifications.channels import http_session, transport_override


@dataclass
class Recorded:
    """One request as the stub received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    original_url: str = ""  # the URL the client meant, when it came through LoopbackAdapter
    status: int = 0  # what the stub answered


@dataclass
class File:
    """A binary answer: the bytes, their Content-Type and the name in Content-Disposition."""

    data: bytes
    content_type: str = "image/jpeg"
    filename: str = ""


@dataclass
class _Script:
    path: str | None
    times: int
    status: int | None
    body: Any
    delay: float


class LoopbackAdapter(HTTPAdapter):
    """Sends every request to the stub at `netloc` over plain HTTP, keeping path and query; the
    URL the client meant goes along in the X-Stub-Original-Url header."""

    def __init__(self, netloc: str):
        super().__init__(max_retries=0)
        self.netloc = netloc

    def send(self, request, **kwargs):
        original = request.url
        parts = urlsplit(original)
        request = request.copy()
        request.url = urlunsplit(("http", self.netloc, parts.path or "/", parts.query, ""))
        request.headers["X-Stub-Original-Url"] = original
        kwargs["proxies"] = {}  # never through an HTTP(S)_PROXY from the environment
        return super().send(request, **kwargs)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], OSError):  # the client gave up (timeout) or the stub stopped
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes: without TCP_NODELAY, Nagle and the client's delayed
    # ACK hold every answer ~40 ms on loopback, which would swamp any timing taken through a stub.
    disable_nagle_algorithm = True

    def setup(self):
        super().setup()
        self.server.stub._connections.add(self.connection)

    def finish(self):
        self.server.stub._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def do_GET(self):
        self.server.stub._dispatch(self)

    do_POST = do_GET

    def log_message(self, format, *args):  # quiet
        pass


class StubServer:
    """Base of the stubs: lifecycle, recording, scripting. Subclasses implement `handle`."""

    prefixes: tuple[str, ...] = ()  # the provider URL prefixes this stub stands in for

    def __init__(self):
        self.requests: list[Recorded] = []
        self._scripts: list[_Script] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle -------------------------------------------------------------------------
    def start(self) -> StubServer:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.stub = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()  # let delayed answers go
        self._server.shutdown()
        for conn in list(self._connections):  # wake handler threads idling on keep-alive connections
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def netloc(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.netloc}/"

    def adapter(self) -> LoopbackAdapter:
        return LoopbackAdapter(self.netloc)

    def session(self, timeout: float = 5.0) -> requests.Session:
        """A channel session (with its default timeout) whose provider URLs lead here."""
        session = http_session(timeout)
        adapter = self.adapter()
        for prefix in self.prefixes:
            session.mount(prefix, adapter)
        return session

    @contextlib.contextmanager
    def installed(self):
        """Every session `http_session()` makes inside the block sends the provider URLs here."""
        adapter = self.adapter()
        with contextlib.ExitStack() as stack:
            for prefix in self.prefixes:
                stack.enter_context(transport_override(prefix, adapter))
            yield self

    # scripting -------------------------------------------------------------------------
    def fail(self, *, path: str | None = None, times: int = 1, status: int = 500, body: Any = None) -> None:
        """Answer the next `times` requests (to `path`, or any) with `status` and `body`."""
        with self._lock:
            self._scripts.append(_Script(path, times, status, body, 0.0))

    def delay(self, *, path: str | None = None, times: int = 1, seconds: float = 5.0) -> None:
        """Hold the next `times` requests for `seconds` (or until the stub stops), then answer normally."""
        with self._lock:
            self._scripts.append(_Script(path, times, None, None, seconds))

    def calls(self, path: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    # dispatch --------------------------------------------------------------------------
    def _take_script(self, path: str) -> _Script | None:
        with self._lock:
            for script in self._scripts:
                if script.times > 0 and script.path in (None, path):
                    script.times -= 1
                    return script
        return None

    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        parts = urlsplit(handler.path)
        headers = {name.lower(): value for name, value in handler.headers.items()}
        recorded = Recorded(
            method=handler.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers=headers,
            body=body,
            original_url=headers.get("x-stub-original-url", ""),
        )
        with contextlib.suppress(ValueError):
            recorded.json = json.loads(body) if body else None
        if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            recorded.form = dict(parse_qsl(body.decode(), keep_blank_values=True))
        with self._lock:
            self.requests.append(recorded)

        script = self._take_script(parts.path)
        if script and script.delay:
            self._release.wait(script.delay)
        if script and script.status is not None:
            status, payload = script.status, script.body
        else:
            status, payload = self.handle(recorded)
        recorded.status = status
        extra = {}
        if isinstance(payload, File):
            data, content_type = payload.data, payload.content_type
            if payload.filename:
                extra["Content-Disposition"] = f'attachment; filename="{payload.filename}"'
        elif isinstance(payload, (dict, list)):
            data, content_type = json.dumps(payload, ensure_ascii=False).encode(), "application/json; charset=utf-8"
        else:
            data, content_type = str(payload or "").encode(), "text/plain; charset=utf-8"
        with contextlib.suppress(OSError):
            handler.send_response(status)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
            handler.wfile.flush()

    def handle(self, req: Recorded) -> tuple[int, Any]:
        raise NotImplementedError


# --- WeChat family ---------------------------------------------------------------------


class _TokenStub(StubServer):
    """Issues access tokens and checks them on every API call like WeChat does."""

    def __init__(self, *, expires_in: int = 7200):
        super().__init__()
        self.expires_in = expires_in
        self.valid_tokens: set[str] = set()
        self.expired_tokens: set[str] = set()
        self.issued: list[str] = []
        self.media: dict[str, File] = {}
        self._counter = 0

    def expire_tokens(self) -> None:
        """The tokens issued so far are now expired: the server answers 42001 for them."""
        with self._lock:
            self.expired_tokens |= self.valid_tokens
            self.valid_tokens = set()

    def revoke_tokens(self) -> None:
        """The server forgets its tokens: it answers 40014 (invalid access_token) for them."""
        with self._lock:
            self.valid_tokens = set()

    def _issue(self) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self.valid_tokens.add(token)
            self.issued.append(token)
        return token

    def _next_id(self) -> int:
        with self._lock:
            self._counter += 1
            return self._counter

    def _token_error(self, req: Recorded) -> dict | None:
        token = req.query.get("access_token", "")
        with self._lock:
            if token in self.valid_tokens:
                return None
            if token in self.expired_tokens:
                return {"errcode": 42001, "errmsg": "access_token expired"}
        return {"errcode": 40014, "errmsg": "invalid access_token"}

    def _media_get(self, req: Recorded) -> tuple[int, Any]:
        error = self._token_error(req)
        if error:
            return 200, error
        media = self.media.get(req.query.get("media_id", ""))
        if media is None:
            return 200, {"errcode": 40007, "errmsg": "invalid media_id"}
        return 200, media


class WeComStub(_TokenStub):
    """WeCom: `GET /cgi-bin/gettoken?corpid&corpsecret`, `POST /cgi-bin/message/send?access_token`,
    `GET /cgi-bin/media/get?access_token&media_id`."""

    prefixes = ("https://qyapi.weixin.qq.com/",)
    TOKEN_PATH = "/cgi-bin/gettoken"
    SEND_PATH = "/cgi-bin/message/send"
    MEDIA_PATH = "/cgi-bin/media/get"

    def __init__(self, *, corp_id: str, secret: str, agent_id: int, unknown_users=(), **kwargs):
        super().__init__(**kwargs)
        self.corp_id, self.secret, self.agent_id = corp_id, secret, agent_id
        self.unknown_users = set(unknown_users)

    def handle(self, req: Recorded) -> tuple[int, Any]:
        if req.path == self.TOKEN_PATH and req.method == "GET":
            if req.query.get("corpid") != self.corp_id:
                return 200, {"errcode": 40013, "errmsg": "invalid corpid"}
            if req.query.get("corpsecret") != self.secret:
                return 200, {"errcode": 40001, "errmsg": "invalid credential"}
            return 200, {"errcode": 0, "errmsg": "ok", "access_token": self._issue(), "expires_in": self.expires_in}
        if req.path == self.SEND_PATH and req.method == "POST":
            error = self._token_error(req)
            if error:
                return 200, error
            body = req.json if isinstance(req.json, dict) else {}
            if body.get("agentid") != self.agent_id:
                return 200, {"errcode": 40056, "errmsg": "invalid agentid"}
            if body.get("msgtype") not in body:
                return 200, {"errcode": 40008, "errmsg": "invalid message type"}
            users = [u for u in str(body.get("touser") or "").split("|") if u]
            unknown = [u for u in users if u in self.unknown_users]
            if not users or len(unknown) == len(users):
                invalid = "|".join(unknown)
                return 200, {"errcode": 81013, "errmsg": "user & party & tag all invalid", "invaliduser": invalid}
            return 200, {
                "errcode": 0, "errmsg": "ok", "invaliduser": "|".join(unknown), "msgid": f"wecom-msg-{self._next_id()}"
            }
        if req.path == self.MEDIA_PATH and req.method == "GET":
            return self._media_get(req)
        return 404, "not found"


class OfficialAccountStub(_TokenStub):
    """Official account: `GET /cgi-bin/token?grant_type&appid&secret`,
    `POST /cgi-bin/message/template/send?access_token`, `GET /cgi-bin/media/get?access_token&media_id`."""

    prefixes = ("https://api.weixin.qq.com/",)
    TOKEN_PATH = "/cgi-bin/token"
    SEND_PATH = "/cgi-bin/message/template/send"
    MEDIA_PATH = "/cgi-bin/media/get"

    def __init__(self, *, app_id: str, secret: str, unfollowed=(), **kwargs):
        super().__init__(**kwargs)
        self.app_id, self.secret = app_id, secret
        self.unfollowed = set(unfollowed)

    def handle(self, req: Recorded) -> tuple[int, Any]:
        if req.path == self.TOKEN_PATH and req.method == "GET":
            if req.query.get("grant_type") != "client_credential":
                return 200, {"errcode": 40002, "errmsg": "invalid grant_type"}
            if req.query.get("appid") != self.app_id:
                return 200, {"errcode": 40013, "errmsg": "invalid appid"}
            if req.query.get("secret") != self.secret:
                return 200, {"errcode": 40125, "errmsg": "invalid appsecret"}
            return 200, {"access_token": self._issue(), "expires_in": self.expires_in}
        if req.path == self.SEND_PATH and req.method == "POST":
            error = self._token_error(req)
            if error:
                return 200, error
            body = req.json if isinstance(req.json, dict) else {}
            if not body.get("template_id"):
                return 200, {"errcode": 40037, "errmsg": "invalid template_id"}
            if body.get("touser") in self.unfollowed:
                return 200, {"errcode": 43004, "errmsg": "require subscribe"}
            return 200, {"errcode": 0, "errmsg": "ok", "msgid": 200228332 + self._next_id()}
        if req.path == self.MEDIA_PATH and req.method == "GET":
            return self._media_get(req)
        return 404, "not found"


# --- SMS -------------------------------------------------------------------------------

_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-_.~")


def _rfc3986(text: str) -> str:
    return "".join(ch if ch in _UNRESERVED else "".join(f"%{byte:02X}" for byte in ch.encode()) for ch in text)


class AliyunSmsStub(StubServer):
    """Aliyun dysmsapi `SendSms`: takes the parameters from the query string and the form body,
    checks the common parameters, the timestamp window, nonce reuse and the HMAC-SHA1 signature."""

    prefixes = ("https://dysmsapi.aliyuncs.com/",)
    COMMON = ("AccessKeyId", "Action", "Format", "SignatureMethod", "SignatureNonce", "SignatureVersion",
              "Timestamp", "Version", "Signature")

    def __init__(self, *, access_key_id: str, access_key_secret: str):
        super().__init__()
        self.access_key_id, self.access_key_secret = access_key_id, access_key_secret
        self.nonces: set[str] = set()
        self.sent: list[dict[str, str]] = []  # the verified parameters of every accepted SendSms

    @staticmethod
    def _error(status: int, code: str, message: str) -> tuple[int, dict]:
        return status, {"Code": code, "Message": message, "RequestId": str(uuid.uuid4())}

    def expected_signature(self, method: str, params: dict[str, str]) -> str:
        pairs = sorted((k, v) for k, v in params.items() if k != "Signature")
        canonical = "&".join(_rfc3986(k) + "=" + _rfc3986(v) for k, v in pairs)
        to_sign = method + "&" + _rfc3986("/") + "&" + _rfc3986(canonical)
        mac = hmac.new((self.access_key_secret + "&").encode(), to_sign.encode(), hashlib.sha1)
        return base64.b64encode(mac.digest()).decode()

    def handle(self, req: Recorded) -> tuple[int, Any]:
        if req.path != "/":
            return 404, "not found"
        params = {**req.query, **req.form}
        missing = [name for name in self.COMMON if not params.get(name)]
        if missing:
            return self._error(400, "MissingParameter", f"missing {missing[0]}")
        if params["AccessKeyId"] != self.access_key_id:
            return self._error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        if params["SignatureMethod"] != "HMAC-SHA1" or params["SignatureVersion"] != "1.0":
            return self._error(400, "InvalidSignatureMethod", "unsupported signature method")
        try:
            sent_at = datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            return self._error(400, "InvalidTimeStamp.Format", "Specified time stamp is not valid.")
        if abs((datetime.now(UTC) - sent_at).total_seconds()) > 15 * 60:
            return self._error(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
        if not hmac.compare_digest(params["Signature"], self.expected_signature(req.method, params)):
            return self._error(400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation.")
        with self._lock:
            if params["SignatureNonce"] in self.nonces:
                return self._error(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
            self.nonces.add(params["SignatureNonce"])
        if params["Action"] != "SendSms" or params["Version"] != "2017-05-25" or params["Format"] != "JSON":
            return self._error(400, "InvalidParameter", "unsupported Action, Version or Format")
        for name in ("PhoneNumbers", "SignName", "TemplateCode"):
            if not params.get(name):
                return self._error(400, f"Missing{name}", f"{name} is mandatory for this action.")
        if not re.fullmatch(r"1[3-9]\d{9}", params["PhoneNumbers"]):
            return self._error(200, "isv.MOBILE_NUMBER_ILLEGAL", "invalid mobile number")
        if "TemplateParam" in params:
            try:
                template_param = json.loads(params["TemplateParam"])
            except ValueError:
                template_param = None
            if not isinstance(template_param, dict):
                return self._error(200, "isv.INVALID_JSON_PARAM", "JSON parameter is not valid.")
        with self._lock:
            self.sent.append(params)
            biz_id = f"{900619746936498440 + len(self.sent)}^0"
        return 200, {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": str(uuid.uuid4())}


_AUTHORIZATION = re.compile(
    r"TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[a-z]+)/tc3_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})"
)


class TencentSmsStub(StubServer):
    """Tencent Cloud SMS API 3.0 `SendSms`: checks the X-TC-* headers, the timestamp window and the
    TC3-HMAC-SHA256 signature recomputed from the headers and body as received."""

    prefixes = ("https://sms.tencentcloudapi.com/",)

    def __init__(self, *, secret_id: str, secret_key: str, sdk_app_id: str):
        super().__init__()
        self.secret_id, self.secret_key, self.sdk_app_id = secret_id, secret_key, sdk_app_id
        self.sent: list[dict] = []

    @staticmethod
    def _error(code: str, message: str) -> tuple[int, dict]:
        return 200, {"Response": {"Error": {"Code": code, "Message": message}, "RequestId": str(uuid.uuid4())}}

    def expected_signature(self, req: Recorded, *, timestamp: int, date: str, signed: list[str]) -> str:
        canonical_headers = "".join(f"{name}:{req.headers.get(name, '').strip().lower()}\n" for name in signed)
        canonical_request = "\n".join(
            ["POST", "/", "", canonical_headers, ";".join(signed), hashlib.sha256(req.body).hexdigest()]
        )
        scope = f"{date}/sms/tc3_request"
        to_sign = "\n".join(
            ["TC3-HMAC-SHA256", str(timestamp), scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
        )
        key = ("TC3" + self.secret_key).encode()
        for part in (date, "sms", "tc3_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()

    def handle(self, req: Recorded) -> tuple[int, Any]:
        if req.path != "/" or req.method != "POST":
            return 404, "not found"
        if not req.headers.get("content-type", "").startswith("application/json"):
            return self._error("InvalidParameter.ContentType", "content type must be application/json")
        match = _AUTHORIZATION.fullmatch(req.headers.get("authorization", ""))
        if not match:
            return self._error("AuthFailure.InvalidAuthorization", "Authorization header is malformed")
        if match["id"] != self.secret_id:
            return self._error("AuthFailure.SecretIdNotFound", "The SecretId is not found")
        try:
            timestamp = int(req.headers.get("x-tc-timestamp", ""))
        except ValueError:
            return self._error("InvalidParameter.Timestamp", "X-TC-Timestamp is missing")
        if abs(time.time() - timestamp) > 300:
            return self._error("AuthFailure.SignatureExpire", "Signature expired")
        signed = match["signed"].split(";")
        date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
        if match["date"] != date or match["service"] != "sms" or not {"content-type", "host"} <= set(signed):
            return self._error("AuthFailure.SignatureFailure", "credential scope or signed headers are wrong")
        expected = self.expected_signature(req, timestamp=timestamp, date=date, signed=signed)
        if not hmac.compare_digest(match["signature"], expected):
            return self._error("AuthFailure.SignatureFailure", "The provided credentials could not be validated.")
        if req.headers.get("x-tc-action") != "SendSms" or req.headers.get("x-tc-version") != "2021-01-11":
            return self._error("InvalidAction", "unknown action or version")
        if not req.headers.get("x-tc-region"):
            return self._error("MissingParameter", "X-TC-Region is missing")
        body = req.json if isinstance(req.json, dict) else {}
        if body.get("SmsSdkAppId") != self.sdk_app_id:
            return self._error("UnauthorizedOperation.SmsSdkAppIdVerifyFail", "SdkAppId does not belong to you")
        if not body.get("SignName") or not body.get("TemplateId") or not body.get("PhoneNumberSet"):
            return self._error("MissingParameter", "SignName, TemplateId and PhoneNumberSet are required")
        with self._lock:
            self.sent.append(body)
            serial = len(self.sent)
        statuses = []
        for number in body["PhoneNumberSet"]:
            ok = bool(re.fullmatch(r"\+861[3-9]\d{9}", number))
            statuses.append({
                "SerialNo": f"2645:{serial}" if ok else "",
                "PhoneNumber": number,
                "Fee": 1 if ok else 0,
                "SessionContext": body.get("SessionContext", ""),
                "Code": "Ok" if ok else "InvalidParameterValue.IncorrectPhoneNumber",
                "Message": "send success" if ok else "invalid number",
                "IsoCode": "CN",
            })
        return 200, {"Response": {"SendStatusSet": statuses, "RequestId": str(uuid.uuid4())}}
