"""Delivery channels against loopback stubs of WeCom, the official-account API, Aliyun and Tencent
SMS (tests/notifications/stubs.py): request shapes, signatures, token reuse and refresh, and the
error classes the outbox acts on. Everything runs on 127.0.0.1; nothing sleeps — a timeout is a
short client timeout against a stub that holds its answer until the test ends."""

import json
import logging
import smtplib
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import pytest
import time_machine
from django.utils import translation
from wechatpy.session.redisstorage import RedisStorage

from notifications.channels import (
    DeliveryError,
    Message,
    MissingAddress,
    MissingCredentials,
    Recipient,
    channel_for,
)
from notifications.channels.console import ConsoleChannel
from notifications.channels.email import EmailChannel
from notifications.channels.sms import (
    AliyunSms,
    SmsChannel,
    TencentSms,
    aliyun_signature,
    aliyun_string_to_sign,
    tc3_canonical_request,
    tc3_signature,
    tc3_string_to_sign,
)
from notifications.channels.wechat import WeChatChannel
from notifications.channels.wecom import ExpiringMemoryStorage, WeComChannel, token_storage
from tests.notifications.stubs import TencentSmsStub

CORP_ID, WECOM_SECRET, AGENT_ID = "ww5f3c0a9b7e1d2c4a", "wecom-app-secret-3f9a0c1e7b5d", 1000002
APP_ID, WECHAT_SECRET = "wx8a1b2c3d4e5f6a7b", "wechat-app-secret-1c2d3e4f5a6b"
ALIYUN_ID, ALIYUN_SECRET = "LTAI5tAliyunTestKeyId", "aliyun-test-secret-9f8e7d6c5b4a"
TENCENT_ID, TENCENT_KEY, SDK_APP_ID = "AKIDtencentTestSecretId", "tencent-test-secret-key-0a1b2c", "1400787878"

SHORT = 0.3  # the client timeout in timeout tests; stubs hold their answer longer

MESSAGE = Message(subject="工单 T-1024 已派单", body="门店：徐汇店\n请于 18:00 前上门处理。")
STAFF = Recipient(name="张三", wecom_userid="zhangsan", phone="13812345678", email="zhangsan@example.com")


def error_of(call, expected=DeliveryError):
    with pytest.raises(expected) as info:
        call()
    return info.value


# --- fixtures --------------------------------------------------------------------------


@pytest.fixture
def tokens():
    return ExpiringMemoryStorage()


# wecom_stub, wechat_stub and aliyun_stub come from conftest.py.

@pytest.fixture
def tencent_stub():
    with TencentSmsStub(secret_id=TENCENT_ID, secret_key=TENCENT_KEY, sdk_app_id=SDK_APP_ID) as stub:
        yield stub


def wecom(stub, tokens, *, timeout=5.0, secret=WECOM_SECRET):
    return WeComChannel(
        corp_id=CORP_ID, agent_id=AGENT_ID, secret=secret, session=stub.session(timeout), token_storage=tokens,
        timeout=timeout,
    )


def wechat(stub, tokens, *, timeout=5.0):
    return WeChatChannel(
        app_id=APP_ID, secret=WECHAT_SECRET, session=stub.session(timeout), token_storage=tokens, timeout=timeout
    )


def aliyun_settings(stub, **overrides):
    conf = {"provider": "aliyun", "access_key_id": ALIYUN_ID, "access_key_secret": ALIYUN_SECRET,
            "sign_name": "味道江南", "endpoint": stub.base_url}
    return {"sms": {**conf, **overrides}}


def tencent_settings(stub, **overrides):
    conf = {"provider": "tencent", "access_key_id": TENCENT_ID, "access_key_secret": TENCENT_KEY,
            "sign_name": "美嘉售后", "sdk_app_id": SDK_APP_ID, "region": "ap-shanghai", "endpoint": stub.base_url}
    return {"sms": {**conf, **overrides}}


SMS = Message(subject="", body="", template_code="SMS_154950909", params={"code": "T-1024", "time": "18:00"})


# --- the registry ----------------------------------------------------------------------


def test_channel_for_builds_each_channel_and_refuses_unknown_names():
    assert isinstance(channel_for("console", {}), ConsoleChannel)
    assert isinstance(channel_for("email", {}), EmailChannel)
    assert isinstance(channel_for("wecom", {"wecom": {"corp_id": CORP_ID, "agent_id": "1000002", "secret": "s"}}),
                      WeComChannel)
    assert isinstance(channel_for("wechat", {"wechat": {"app_id": APP_ID, "secret": "s"}}), WeChatChannel)
    sms = channel_for("sms", {"sms": {"provider": "tencent", "access_key_id": "i", "access_key_secret": "k",
                                      "sign_name": "n", "sdk_app_id": "1400"}})
    assert isinstance(sms, SmsChannel) and isinstance(sms.provider, TencentSms)
    for name in ("inapp", "fax", ""):
        with pytest.raises(ValueError, match="unknown notification channel"):
            channel_for(name, {})


@pytest.mark.parametrize(
    ("name", "tenant_settings", "code"),
    [
        ("wecom", {}, "missing:corp_id,agent_id,secret"),
        ("wecom", {"wecom": {"corp_id": CORP_ID, "agent_id": AGENT_ID}}, "missing:secret"),
        ("wecom", {"wecom": {"corp_id": CORP_ID, "agent_id": "app-one", "secret": "s"}}, "agent_id"),
        ("wechat", {"wechat": {"app_id": APP_ID, "secret": ""}}, "missing:secret"),
        ("sms", {}, "missing:provider"),
        ("sms", {"sms": {"provider": "yunpian", "access_key_id": "i"}}, "missing:provider"),
        ("sms", {"sms": {"provider": "aliyun", "access_key_id": "i", "sign_name": "n"}}, "missing:access_key_secret"),
        ("sms", {"sms": {"provider": "tencent", "access_key_id": "i", "access_key_secret": "k", "sign_name": "n"}},
         "missing:sdk_app_id"),
    ],
)
def test_missing_credentials_wait_instead_of_retrying(name, tenant_settings, code):
    error = error_of(lambda: channel_for(name, tenant_settings), MissingCredentials)
    assert (error.code, error.retryable, error.waiting, error.fallback) == (code, False, True, False)


# --- WeCom -----------------------------------------------------------------------------


def test_wecom_sends_a_text_message_to_one_member(wecom_stub, tokens):
    message_id = wecom(wecom_stub, tokens).send(message=MESSAGE, recipient=STAFF, idempotency_key="n-1-wecom")

    assert message_id == "wecom-msg-1"
    token_call, send_call = wecom_stub.requests
    assert (token_call.method, token_call.path) == ("GET", "/cgi-bin/gettoken")
    assert token_call.query == {"corpid": CORP_ID, "corpsecret": WECOM_SECRET}
    assert token_call.original_url.startswith("https://qyapi.weixin.qq.com/cgi-bin/gettoken?")
    assert (send_call.method, send_call.path) == ("POST", "/cgi-bin/message/send")
    assert send_call.original_url.startswith("https://qyapi.weixin.qq.com/cgi-bin/message/send?")
    assert send_call.query == {"access_token": wecom_stub.issued[0]}
    assert send_call.json == {
        "touser": "zhangsan",
        "toparty": "",
        "totag": "",
        "agentid": AGENT_ID,
        "msgtype": "text",
        "text": {"content": "工单 T-1024 已派单\n门店：徐汇店\n请于 18:00 前上门处理。"},
        "safe": 0,
        "enable_duplicate_check": 1,
        "duplicate_check_interval": 1800,
    }


def test_wecom_sends_a_text_card_when_the_message_has_a_link(wecom_stub, tokens):
    message = Message(subject="工单 T-1024 已派单", body="请于 18:00 前上门处理。", url="https://scrm.example.com/t/abc")

    with translation.override("en"):
        wecom(wecom_stub, tokens).send(message=message, recipient=STAFF, idempotency_key="n-2-wecom")

    body = wecom_stub.calls("/cgi-bin/message/send")[0].json
    assert body["msgtype"] == "textcard"
    assert body["textcard"] == {
        "title": "工单 T-1024 已派单",
        "description": "请于 18:00 前上门处理。",
        "url": "https://scrm.example.com/t/abc",
        "btntxt": "Details",
    }


def test_wecom_fetches_the_token_once_and_reuses_it(wecom_stub, tokens):
    wecom(wecom_stub, tokens).send(message=MESSAGE, recipient=STAFF, idempotency_key="n-1")
    # a second channel (another task, another process with Redis) finds the token in the store
    wecom(wecom_stub, tokens).send(message=MESSAGE, recipient=STAFF, idempotency_key="n-2")

    assert len(wecom_stub.calls("/cgi-bin/gettoken")) == 1
    sends = wecom_stub.calls("/cgi-bin/message/send")
    assert [call.query["access_token"] for call in sends] == [wecom_stub.issued[0]] * 2
    assert [call.status for call in sends] == [200, 200]


@pytest.mark.parametrize(("invalidate", "errcode"), [("expire_tokens", 42001), ("revoke_tokens", 40014)])
def test_wecom_refused_token_is_refreshed_once_and_the_send_retried_once(wecom_stub, tokens, invalidate, errcode):
    channel = wecom(wecom_stub, tokens)
    channel.send(message=MESSAGE, recipient=STAFF, idempotency_key="n-1")
    getattr(wecom_stub, invalidate)()

    assert channel.send(message=MESSAGE, recipient=STAFF, idempotency_key="n-2") == "wecom-msg-2"

    old, new = wecom_stub.issued
    assert len(wecom_stub.calls("/cgi-bin/gettoken")) == 2
    sends = wecom_stub.calls("/cgi-bin/message/send")
    assert [call.query["access_token"] for call in sends] == [old, old, new]
    assert sends[1].json == sends[2].json  # the same message, retried
    assert tokens.get(channel.client.access_token_key) == new


def test_wecom_gives_up_after_one_refresh_when_the_token_keeps_being_refused(wecom_stub, tokens):
    # wechatpy 1.8.18 alone would refresh and retry again and again (it recurses without a limit)
    wecom_stub.fail(path="/cgi-bin/message/send", times=3, status=200,
                    body={"errcode": 42001, "errmsg": "access_token expired"})

    error = error_of(lambda: wecom(wecom_stub, tokens).send(message=MESSAGE, recipient=STAFF, idempotency_key="n-1"))

    assert (type(error), error.retryable, error.code) == (DeliveryError, True, "42001")
    assert len(wecom_stub.calls("/cgi-bin/gettoken")) == 2
    assert len(wecom_stub.calls("/cgi-bin/message/send")) == 2


def test_wecom_wrong_secret_waits_for_configuration(wecom_stub, tokens):
    channel = wecom(wecom_stub, tokens, secret="not-the-secret")

    error = error_of(lambda: channel.send(message=MESSAGE, recipient=STAFF, idempotency_key="n-1"), MissingCredentials)

    assert (error.code, error.retryable, error.waiting) == ("40001", False, True)
    assert [call.path for call in wecom_stub.requests] == ["/cgi-bin/gettoken"]
    assert "not-the-secret" not in str(error)


@pytest.mark.parametrize(
    ("path", "status", "body", "code"),
    [
        ("/cgi-bin/message/send", 500, "Internal Server Error", "http_500"),
        ("/cgi-bin/message/send", 502, "Bad Gateway", "http_502"),
        ("/cgi-bin/gettoken", 503, "Service Unavailable", "http_503"),
        ("/cgi-bin/message/send", 200, {"errcode": -1, "errmsg": "system busy"}, "-1"),
        ("/cgi-bin/message/send", 200, {"errcode": 45009, "errmsg": "api freq out of limit"}, "45009"),
    ],
)
def test_wecom_transient_failures_are_retryable(wecom_stub, tokens, path, status, body, code):
    wecom_stub.fail(path=path, status=status, body=body)

    error = error_of(lambda: wecom(wecom_stub, tokens).send(message=MESSAGE, recipient=STAFF, idempotency_key="n-1"))

    assert (type(error), error.retryable, error.code) == (DeliveryError, True, code)


@pytest.mark.parametrize("path", ["/cgi-bin/message/send", "/cgi-bin/gettoken"])
def test_wecom_timeout_is_retryable(wecom_stub, tokens, path):
    # the token fetch too: wechatpy passes no timeout there, the channel's session supplies it
    wecom_stub.delay(path=path, seconds=30)
    channel = wecom(wecom_stub, tokens, timeout=SHORT)

    error = error_of(lambda: channel.send(message=MESSAGE, recipient=STAFF, idempotency_key="n-1"))

    assert (type(error), error.retryable, error.code) == (DeliveryError, True, "timeout")
    assert wecom_stub.requests[-1].path == path


def test_wecom_configuration_error_is_not_retryable(wecom_stub, tokens):
    wecom_stub.fail(path="/cgi-bin/message/send", status=200,
                    body={"errcode": 60020, "errmsg": "not allow to access from your ip"})

    error = error_of(lambda: wecom(wecom_stub, tokens).send(message=MESSAGE, recipient=STAFF, idempotency_key="n-1"))

    assert (type(error), error.retryable, error.code) == (DeliveryError, False, "60020")
    assert error.detail == "not allow to access from your ip"


def test_wecom_unknown_member_falls_back(wecom_stub, tokens):
    recipient = Recipient(name="离职员工", wecom_userid="left.company")

    error = error_of(
        lambda: wecom(wecom_stub, tokens).send(message=MESSAGE, recipient=recipient, idempotency_key="n-1"),
        MissingAddress,
    )

    assert (error.code, error.retryable, error.fallback) == ("81013", False, True)


@pytest.mark.parametrize(("userid", "code"), [("", "no_wecom_userid"), ("  ", "no_wecom_userid"),
                                              ("@all", "bad_wecom_userid"), ("a|b", "bad_wecom_userid")])
def test_wecom_needs_exactly_one_member(wecom_stub, tokens, userid, code):
    recipient = Recipient(name="客户", phone="13812345678", wecom_userid=userid)

    error = error_of(
        lambda: wecom(wecom_stub, tokens).send(message=MESSAGE, recipient=recipient, idempotency_key="n-1"),
        MissingAddress,
    )

    assert (error.code, error.fallback) == (code, True)
    assert wecom_stub.requests == []


def test_transport_override_reaches_a_channel_built_by_channel_for(wecom_stub):
    token_storage().clear()
    tenant_settings = {"wecom": {"corp_id": CORP_ID, "agent_id": str(AGENT_ID), "secret": WECOM_SECRET}}
    try:
        with wecom_stub.installed():
            channel = channel_for("wecom", tenant_settings)  # default session and token store
            assert channel.send(message=MESSAGE, recipient=STAFF, idempotency_key="n-1") == "wecom-msg-1"
        assert token_storage().get(channel.client.access_token_key) == wecom_stub.issued[0]
    finally:
        token_storage().clear()
    assert [call.path for call in wecom_stub.requests] == ["/cgi-bin/gettoken", "/cgi-bin/message/send"]


# --- token storage ---------------------------------------------------------------------


def test_token_storage_is_redis_when_redis_url_is_set(settings):
    settings.REDIS_URL = "redis://127.0.0.1:6399/15"  # never connected to in this test
    storage = token_storage()
    assert isinstance(storage, RedisStorage)
    assert storage.prefix == "scrm:wechatpy"
    settings.REDIS_URL = None
    assert isinstance(token_storage(), ExpiringMemoryStorage)


def test_memory_token_storage_drops_a_token_five_minutes_before_it_expires():
    storage = ExpiringMemoryStorage()
    with time_machine.travel(datetime(2025, 3, 1, 9, 0, tzinfo=UTC), tick=False) as traveller:
        storage.set("wecom_key", "token-1", 7200)
        traveller.shift(6899)
        assert storage.get("wecom_key") == "token-1"
        traveller.shift(1)
        assert storage.get("wecom_key") is None


# --- official account ------------------------------------------------------------------

CUSTOMER = Recipient(name="李女士", phone="13900001111", wechat_openid="o6_bmjrPTlm6_2sgVt7hMZOPfL2M")
TEMPLATE = Message(
    subject="服务进度",
    body="您的工单已派单",
    template_code="ngqIpbwh8bUfcSsECmogfXcV14J0tQlEpBO27izEYtY",
    params={"first": "您的报修已受理", "keyword1": "T-1024", "remark": {"value": "感谢支持", "color": "#173177"}},
    url="https://scrm.example.com/track/abc",
)


def test_wechat_sends_a_template_message(wechat_stub, tokens):
    message_id = wechat(wechat_stub, tokens).send(message=TEMPLATE, recipient=CUSTOMER, idempotency_key="n-9")

    assert message_id == "200228333"
    token_call, send_call = wechat_stub.requests
    assert (token_call.method, token_call.path) == ("GET", "/cgi-bin/token")
    assert token_call.query == {"grant_type": "client_credential", "appid": APP_ID, "secret": WECHAT_SECRET}
    assert token_call.original_url.startswith("https://api.weixin.qq.com/cgi-bin/token?")
    assert (send_call.method, send_call.path, send_call.query) == (
        "POST", "/cgi-bin/message/template/send", {"access_token": wechat_stub.issued[0]}
    )
    assert send_call.json == {
        "touser": "o6_bmjrPTlm6_2sgVt7hMZOPfL2M",
        "template_id": "ngqIpbwh8bUfcSsECmogfXcV14J0tQlEpBO27izEYtY",
        "url": "https://scrm.example.com/track/abc",
        "data": {
            "first": {"value": "您的报修已受理"},
            "keyword1": {"value": "T-1024"},
            "remark": {"value": "感谢支持", "color": "#173177"},
        },
    }


def test_wechat_reuses_the_token_and_refreshes_it_once_when_expired(wechat_stub, tokens):
    channel = wechat(wechat_stub, tokens)
    channel.send(message=TEMPLATE, recipient=CUSTOMER, idempotency_key="n-1")
    channel.send(message=TEMPLATE, recipient=CUSTOMER, idempotency_key="n-2")
    wechat_stub.expire_tokens()
    channel.send(message=TEMPLATE, recipient=CUSTOMER, idempotency_key="n-3")

    old, new = wechat_stub.issued
    assert len(wechat_stub.calls("/cgi-bin/token")) == 2
    sends = wechat_stub.calls("/cgi-bin/message/template/send")
    assert [call.query["access_token"] for call in sends] == [old, old, old, new]
    assert [call.status for call in sends] == [200, 200, 200, 200]


def test_wechat_unfollowed_customer_falls_back(wechat_stub, tokens):
    recipient = Recipient(name="王先生", wechat_openid="o-unfollowed")

    error = error_of(
        lambda: wechat(wechat_stub, tokens).send(message=TEMPLATE, recipient=recipient, idempotency_key="n-1"),
        MissingAddress,
    )

    assert (error.code, error.retryable, error.fallback) == ("43004", False, True)


def test_wechat_without_openid_or_template_sends_nothing(wechat_stub, tokens):
    channel = wechat(wechat_stub, tokens)

    no_openid = error_of(
        lambda: channel.send(message=TEMPLATE, recipient=Recipient(phone="13900001111"), idempotency_key="n-1"),
        MissingAddress,
    )
    no_template = error_of(
        lambda: channel.send(message=MESSAGE, recipient=CUSTOMER, idempotency_key="n-1"), DeliveryError
    )

    assert (no_openid.code, no_openid.fallback) == ("no_wechat_openid", True)
    assert (type(no_template), no_template.code, no_template.retryable) == (DeliveryError, "no_template", False)
    assert wechat_stub.requests == []


def test_wechat_http_error_and_timeout_are_retryable(wechat_stub, tokens):
    wechat_stub.fail(path="/cgi-bin/message/template/send", status=500, body="Internal Server Error")
    server_error = error_of(
        lambda: wechat(wechat_stub, tokens).send(message=TEMPLATE, recipient=CUSTOMER, idempotency_key="n-1")
    )
    wechat_stub.delay(path="/cgi-bin/message/template/send", seconds=30)
    timeout = error_of(
        lambda: wechat(wechat_stub, tokens, timeout=SHORT).send(
            message=TEMPLATE, recipient=CUSTOMER, idempotency_key="n-1"
        )
    )

    assert (server_error.retryable, server_error.code) == (True, "http_500")
    assert (timeout.retryable, timeout.code) == (True, "timeout")


def test_wechat_wrong_app_secret_waits_for_configuration(wechat_stub, tokens):
    channel = WeChatChannel(app_id=APP_ID, secret="wrong", session=wechat_stub.session(), token_storage=tokens)

    error = error_of(lambda: channel.send(message=TEMPLATE, recipient=CUSTOMER, idempotency_key="n-1"),
                     MissingCredentials)

    assert (error.code, error.waiting) == ("40125", True)


# --- SMS: signing --------------------------------------------------------------------------


def test_aliyun_signature_matches_the_documented_example():
    # Alibaba Cloud's RPC signature example (AccessKey secret "testsecret").
    params = {
        "AccessKeyId": "testid", "Action": "DescribeRegions", "Format": "XML", "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf", "SignatureVersion": "1.0",
        "Timestamp": "2016-02-23T12:46:24Z", "Version": "2014-05-26",
    }
    assert aliyun_string_to_sign("GET", params) == (
        "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1"
        "%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0"
        "%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
    )
    assert aliyun_signature("GET", params, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
    # RFC 3986 details: space is %20, "*" is %2A, "~" stays, non-ASCII is UTF-8
    encoded = aliyun_string_to_sign("POST", {"A": "a b*~", "B": "味"})
    assert encoded == "POST&%2F&A%3Da%2520b%252A~%26B%3D%25E5%2591%25B3"


def test_tencent_tc3_signature_matches_the_documented_example():
    # Tencent Cloud's TC3-HMAC-SHA256 example (CVM DescribeInstances, timestamp 1551113065).
    payload = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
    canonical = tc3_canonical_request(
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", "Host": "cvm.tencentcloudapi.com"},
        signed_headers=["content-type", "host"],
        payload=payload,
    )
    assert canonical == (
        "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\n"
        "content-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
    )
    assert tc3_string_to_sign(timestamp=1551113065, service="cvm", canonical_request=canonical) == (
        "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n"
        "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
    )
    assert tc3_signature(
        secret_key="Gu5t9xGARNpq86cd98joQYCN3*******", timestamp=1551113065, service="cvm", canonical_request=canonical
    ) == "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"


# --- SMS: Aliyun -----------------------------------------------------------------------


def test_aliyun_sends_a_signed_sendsms_request(aliyun_stub):
    channel = channel_for("sms", aliyun_settings(aliyun_stub))
    recipient = Recipient(name="李女士", phone="+86 139-0000-1111")

    message_id = channel.send(message=SMS, recipient=recipient, idempotency_key="n-7-sms")

    assert message_id == "900619746936498441^0"
    (call,) = aliyun_stub.requests
    assert (call.method, call.path, call.status) == ("POST", "/", 200)
    assert call.headers["content-type"] == "application/x-www-form-urlencoded; charset=utf-8"
    params = {**call.query, **call.form}
    assert set(call.query) == {"AccessKeyId", "Action", "Format", "RegionId", "SignatureMethod", "SignatureNonce",
                               "SignatureVersion", "Timestamp", "Version", "Signature"}
    nonce, timestamp, signature = params.pop("SignatureNonce"), params.pop("Timestamp"), params.pop("Signature")
    assert params == {
        "AccessKeyId": ALIYUN_ID,
        "Action": "SendSms",
        "Format": "JSON",
        "RegionId": "cn-hangzhou",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "Version": "2017-05-25",
        "PhoneNumbers": "13900001111",
        "SignName": "味道江南",
        "TemplateCode": "SMS_154950909",
        "TemplateParam": '{"code":"T-1024","time":"18:00"}',
        "OutId": "n-7-sms",
    }
    assert len(nonce) == 32
    sent_at = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - sent_at).total_seconds()) < 60
    assert signature == aliyun_stub.expected_signature("POST", {**call.query, **call.form})
    assert len(aliyun_stub.sent) == 1


def test_aliyun_default_endpoint_through_the_adapter(aliyun_stub):
    conf = aliyun_settings(aliyun_stub)
    del conf["sms"]["endpoint"]
    channel = channel_for("sms", conf, session=aliyun_stub.session())

    channel.send(message=SMS, recipient=STAFF, idempotency_key="n-1")

    (call,) = aliyun_stub.requests
    assert urlsplit(call.original_url)[:3] == ("https", "dysmsapi.aliyuncs.com", "/")
    assert call.status == 200


def test_aliyun_stub_rejects_a_bad_signature(aliyun_stub):
    channel = channel_for("sms", aliyun_settings(aliyun_stub, access_key_secret="not-the-secret"))

    error = error_of(lambda: channel.send(message=SMS, recipient=STAFF, idempotency_key="n-1"), MissingCredentials)

    assert (error.code, error.waiting) == ("SignatureDoesNotMatch", True)
    assert aliyun_stub.requests[0].status == 400
    assert aliyun_stub.sent == []


def test_aliyun_request_tampered_after_signing_is_rejected(aliyun_stub):
    provider = AliyunSms(access_key_id=ALIYUN_ID, access_key_secret=ALIYUN_SECRET, sign_name="味道江南",
                         endpoint=aliyun_stub.base_url)
    request = provider.build_request(phone="13900001111", template_code="SMS_1", params={}, idempotency_key="k")
    form = dict(parse_qsl(request.data.decode()))
    request.data = "&".join(f"{k}={v}" for k, v in {**form, "PhoneNumbers": "13900002222"}.items()).encode()

    response = aliyun_stub.session().send(aliyun_stub.session().prepare_request(request))

    assert (response.status_code, response.json()["Code"]) == (400, "SignatureDoesNotMatch")


@pytest.mark.parametrize(
    ("status", "body", "error_class", "retryable", "code"),
    [
        (200, {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发分钟级流控"}, DeliveryError, True,
         "isv.BUSINESS_LIMIT_CONTROL"),
        (200, {"Code": "isp.SYSTEM_ERROR", "Message": "system error"}, DeliveryError, True, "isp.SYSTEM_ERROR"),
        (200, {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "非法手机号"}, MissingAddress, False,
         "isv.MOBILE_NUMBER_ILLEGAL"),
        (200, {"Code": "isv.SMS_TEMPLATE_ILLEGAL", "Message": "模板不合法"}, DeliveryError, False,
         "isv.SMS_TEMPLATE_ILLEGAL"),
        (404, {"Code": "InvalidAccessKeyId.NotFound", "Message": "not found"}, MissingCredentials, False,
         "InvalidAccessKeyId.NotFound"),
        (500, "Internal Server Error", DeliveryError, True, "http_500"),
        (503, {"Code": "ServiceUnavailable"}, DeliveryError, True, "http_503"),
    ],
)
def test_aliyun_errors(aliyun_stub, status, body, error_class, retryable, code):
    aliyun_stub.fail(status=status, body=body)
    channel = channel_for("sms", aliyun_settings(aliyun_stub))

    error = error_of(lambda: channel.send(message=SMS, recipient=STAFF, idempotency_key="n-1"), error_class)

    assert (type(error), error.retryable, error.code) == (error_class, retryable, code)


def test_aliyun_timeout_is_retryable(aliyun_stub):
    aliyun_stub.delay(seconds=30)
    channel = channel_for("sms", aliyun_settings(aliyun_stub), timeout=SHORT)

    error = error_of(lambda: channel.send(message=SMS, recipient=STAFF, idempotency_key="n-1"))

    assert (type(error), error.retryable, error.code) == (DeliveryError, True, "timeout")


# --- SMS: Tencent ----------------------------------------------------------------------


def test_tencent_sends_a_signed_sendsms_request(tencent_stub):
    channel = channel_for("sms", tencent_settings(tencent_stub))
    message = Message(subject="", body="", template_code="1610203", params={"2": "18:00", "1": "T-1024"})

    message_id = channel.send(message=message, recipient=STAFF, idempotency_key="n-8-sms")

    assert message_id == "2645:1"
    (call,) = tencent_stub.requests
    assert (call.method, call.path, call.status) == ("POST", "/", 200)
    assert call.json == {
        "PhoneNumberSet": ["+8613812345678"],
        "SmsSdkAppId": SDK_APP_ID,
        "SignName": "美嘉售后",
        "TemplateId": "1610203",
        "TemplateParamSet": ["T-1024", "18:00"],
        "SessionContext": "n-8-sms",
    }
    timestamp = int(call.headers["x-tc-timestamp"])
    assert abs(datetime.now(UTC).timestamp() - timestamp) < 60
    assert call.headers["content-type"] == "application/json; charset=utf-8"
    assert call.headers["host"] == tencent_stub.netloc
    assert (call.headers["x-tc-action"], call.headers["x-tc-version"], call.headers["x-tc-region"]) == (
        "SendSms", "2021-01-11", "ap-shanghai"
    )
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    signature = tencent_stub.expected_signature(
        call, timestamp=timestamp, date=date, signed=["content-type", "host", "x-tc-action"]
    )
    assert call.headers["authorization"] == (
        f"TC3-HMAC-SHA256 Credential={TENCENT_ID}/{date}/sms/tc3_request, "
        f"SignedHeaders=content-type;host;x-tc-action, Signature={signature}"
    )


def test_tencent_default_endpoint_signs_the_real_host(tencent_stub):
    conf = tencent_settings(tencent_stub)
    del conf["sms"]["endpoint"], conf["sms"]["region"]
    channel = channel_for("sms", conf, session=tencent_stub.session())

    assert channel.send(message=SMS, recipient=STAFF, idempotency_key="n-1") == "2645:1"

    (call,) = tencent_stub.requests
    assert call.original_url == "https://sms.tencentcloudapi.com/"
    assert (call.headers["host"], call.headers["x-tc-region"]) == ("sms.tencentcloudapi.com", "ap-guangzhou")
    assert call.json["TemplateParamSet"] == ["T-1024", "18:00"]  # named params keep their order


def test_tencent_stub_rejects_a_bad_signature(tencent_stub):
    channel = channel_for("sms", tencent_settings(tencent_stub, access_key_secret="not-the-key"))

    error = error_of(lambda: channel.send(message=SMS, recipient=STAFF, idempotency_key="n-1"), MissingCredentials)

    assert (error.code, error.waiting) == ("AuthFailure.SignatureFailure", True)
    assert tencent_stub.sent == []


def test_tencent_request_tampered_after_signing_is_rejected(tencent_stub):
    provider = TencentSms(access_key_id=TENCENT_ID, access_key_secret=TENCENT_KEY, sign_name="美嘉售后",
                          sdk_app_id=SDK_APP_ID, endpoint=tencent_stub.base_url)
    request = provider.build_request(phone="13812345678", template_code="1", params={}, idempotency_key="k")
    request.data = request.data.replace(b"13812345678", b"13812340000")

    response = tencent_stub.session().send(tencent_stub.session().prepare_request(request))

    assert response.json()["Response"]["Error"]["Code"] == "AuthFailure.SignatureFailure"


def tencent_status(code):
    return {"Response": {"SendStatusSet": [{"SerialNo": "", "PhoneNumber": "+8613812345678", "Fee": 0,
                                            "SessionContext": "", "Code": code, "Message": code, "IsoCode": "CN"}],
                         "RequestId": "r-1"}}


def tencent_error(code):
    return {"Response": {"Error": {"Code": code, "Message": code}, "RequestId": "r-1"}}


@pytest.mark.parametrize(
    ("status", "body", "error_class", "retryable", "code"),
    [
        (200, tencent_status("LimitExceeded.PhoneNumberThirtySecondLimit"), DeliveryError, True,
         "LimitExceeded.PhoneNumberThirtySecondLimit"),
        (200, tencent_status("InvalidParameterValue.IncorrectPhoneNumber"), MissingAddress, False,
         "InvalidParameterValue.IncorrectPhoneNumber"),
        (200, tencent_status("FailedOperation.TemplateIncorrectOrUnapproved"), DeliveryError, False,
         "FailedOperation.TemplateIncorrectOrUnapproved"),
        (200, tencent_error("InternalError.Timeout"), DeliveryError, True, "InternalError.Timeout"),
        (200, tencent_error("RequestLimitExceeded"), DeliveryError, True, "RequestLimitExceeded"),
        (200, tencent_error("AuthFailure.SecretIdNotFound"), MissingCredentials, False,
         "AuthFailure.SecretIdNotFound"),
        (200, tencent_error("AuthFailure.SignatureExpire"), DeliveryError, False, "AuthFailure.SignatureExpire"),
        (500, "Internal Server Error", DeliveryError, True, "http_500"),
        (200, "<html>gateway</html>", DeliveryError, False, "bad_answer"),
    ],
)
def test_tencent_errors(tencent_stub, status, body, error_class, retryable, code):
    tencent_stub.fail(status=status, body=body)
    channel = channel_for("sms", tencent_settings(tencent_stub))

    error = error_of(lambda: channel.send(message=SMS, recipient=STAFF, idempotency_key="n-1"), error_class)

    assert (type(error), error.retryable, error.code) == (error_class, retryable, code)


def test_tencent_timeout_is_retryable(tencent_stub):
    tencent_stub.delay(seconds=30)
    channel = channel_for("sms", tencent_settings(tencent_stub), timeout=SHORT)

    error = error_of(lambda: channel.send(message=SMS, recipient=STAFF, idempotency_key="n-1"))

    assert (type(error), error.retryable, error.code) == (DeliveryError, True, "timeout")


# --- SMS: no number, no template -------------------------------------------------------


@pytest.mark.parametrize(
    ("phone", "code"),
    [("", "no_phone"), ("   ", "no_phone"), ("021-62345678", "not_mobile"), ("400-8208820", "not_mobile"),
     ("12345", "not_mobile")],
)
def test_sms_needs_a_mainland_mobile_number(aliyun_stub, phone, code):
    channel = channel_for("sms", aliyun_settings(aliyun_stub))

    error = error_of(
        lambda: channel.send(message=SMS, recipient=Recipient(name="x", phone=phone, email="x@example.com"),
                             idempotency_key="n-1"),
        MissingAddress,
    )

    assert (error.code, error.fallback, error.retryable) == (code, True, False)
    assert aliyun_stub.requests == []


def test_sms_needs_a_template(tencent_stub):
    channel = channel_for("sms", tencent_settings(tencent_stub))

    error = error_of(lambda: channel.send(message=MESSAGE, recipient=STAFF, idempotency_key="n-1"))

    assert (type(error), error.code, error.retryable) == (DeliveryError, "no_template", False)
    assert tencent_stub.requests == []


# --- email -----------------------------------------------------------------------------


def test_email_sends_text_and_html(mailoutbox, settings):
    settings.DEFAULT_FROM_EMAIL = "SCRM 工单 <noreply@scrm.example.com>"
    message = Message(subject="工单 T-1024 已完成", body="请为本次服务评分。", html="<p>请为本次<b>服务</b>评分。</p>")

    message_id = channel_for("email", {}).send(message=message, recipient=STAFF, idempotency_key="n-5-email")

    (mail,) = mailoutbox
    assert (mail.subject, mail.body, mail.to) == ("工单 T-1024 已完成", "请为本次服务评分。", ["zhangsan@example.com"])
    assert mail.from_email == "SCRM 工单 <noreply@scrm.example.com>"
    assert mail.alternatives == [("<p>请为本次<b>服务</b>评分。</p>", "text/html")]
    assert mail.extra_headers["Message-ID"] == message_id
    assert message_id.endswith("@scrm.example.com>") and len(message_id) == len("<@scrm.example.com>") + 32
    # a retry of the same notification carries the same Message-ID
    assert EmailChannel().send(message=message, recipient=STAFF, idempotency_key="n-5-email") == message_id


def test_email_uses_the_tenant_sender_and_plain_text_only_without_html(mailoutbox):
    tenant_settings = {"email": {"from_email": "service@weidao.example.com", "reply_to": "kefu@weidao.example.com"}}

    channel_for("email", tenant_settings).send(message=MESSAGE, recipient=STAFF, idempotency_key="n-6")

    (mail,) = mailoutbox
    assert (mail.from_email, mail.reply_to, mail.alternatives) == (
        "service@weidao.example.com", ["kefu@weidao.example.com"], []
    )


@pytest.mark.parametrize(("email", "code"), [("", "no_email"), ("not-an-address", "bad_email")])
def test_email_without_a_usable_address_falls_back(mailoutbox, email, code):
    error = error_of(
        lambda: EmailChannel().send(message=MESSAGE, recipient=Recipient(name="x", email=email), idempotency_key="k"),
        MissingAddress,
    )
    assert (error.code, error.fallback) == (code, True)
    assert mailoutbox == []


class _FailingConnection:
    def __init__(self, exc):
        self.exc = exc

    def send_messages(self, messages):
        raise self.exc


@pytest.mark.parametrize(
    ("exc", "error_class", "retryable", "code"),
    [
        (smtplib.SMTPRecipientsRefused({"a@example.com": (550, b"no such user")}), MissingAddress, False, "550"),
        (smtplib.SMTPResponseException(451, b"try later"), DeliveryError, True, "451"),
        (smtplib.SMTPAuthenticationError(535, b"bad login"), DeliveryError, False, "535"),
        (smtplib.SMTPServerDisconnected("gone"), DeliveryError, True, "SMTPServerDisconnected"),
        (TimeoutError("timed out"), DeliveryError, True, "TimeoutError"),
    ],
)
def test_email_server_errors(exc, error_class, retryable, code):
    channel = EmailChannel(connection=_FailingConnection(exc))

    error = error_of(lambda: channel.send(message=MESSAGE, recipient=STAFF, idempotency_key="k"), error_class)

    assert (type(error), error.retryable, error.code) == (error_class, retryable, code)


# --- console ---------------------------------------------------------------------------


def test_console_logs_the_message_and_returns_a_stable_id(caplog):
    with caplog.at_level(logging.INFO, logger="notifications.channels.console"):
        first = channel_for("console", {}).send(message=MESSAGE, recipient=STAFF, idempotency_key="n-3")
        second = ConsoleChannel().send(message=MESSAGE, recipient=STAFF, idempotency_key="n-3")

    assert first == second and first.startswith("console-") and len(first) == len("console-") + 16
    (record, _second) = caplog.records
    text = record.getMessage()
    assert "to: 张三 phone=13812345678, email=zhangsan@example.com, wecom=zhangsan" in text
    assert "subject: 工单 T-1024 已派单" in text
    assert "  | 请于 18:00 前上门处理。" in text


# --- error objects ---------------------------------------------------------------------


def test_error_text_keeps_secrets_out():
    error = DeliveryError(
        "x", code="ConnectionError",
        detail="Max retries exceeded with url: /cgi-bin/gettoken?corpid=ww1&corpsecret=TOPSECRET&x=1",
    )
    assert "TOPSECRET" not in str(error)
    assert error.detail == "Max retries exceeded with url: /cgi-bin/gettoken?corpid=ww1&corpsecret=***&x=1"
    assert json.dumps(error.detail)
