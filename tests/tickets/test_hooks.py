"""The WeChat Work and WeChat official account callbacks, driven by messages that wechatpy itself
encrypts and signs: one ticket per MsgId, a comment for the sender's next message, 403 and
nothing written for a forged signature, the URL verification handshake, and the picture of an
image message fetched from the platform's media API (a loopback stub) and attached once."""

import hashlib
import time

import pytest
import time_machine
import xmltodict
from celery.exceptions import Retry
from django.core.cache import cache
from django.urls import include, path
from django.utils import translation
from wechatpy.crypto import WeChatCrypto as WeChatMpCrypto
from wechatpy.enterprise.crypto import PrpCrypto
from wechatpy.enterprise.crypto import WeChatCrypto as WeComCrypto

from notifications.channels.wecom import token_storage
from scrm.models import Customer
from scrm.tenancy import tenant_scope
from scrm.urls import urlpatterns as root_urlpatterns
from tests.commit_hooks import app_callbacks
from tests.notifications.stubs import File, OfficialAccountStub, WeComStub
from tickets.models import Attachment, EventKind, InboundMessage, Source, Ticket, TimelineEvent
from tickets.services import (
    category_get_or_create,
    inbound_media_fetch,
    template_create,
    template_draft_set,
    template_publish,
)
from tickets.tasks import inbound_media_fetch_task
from workflow.lifecycle import ticket_status_change

urlpatterns = [path("", include("tickets.hooks_urls")), *root_urlpatterns]
pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CORP_ID = "wx5823bf96d3bd56c7"
APP_ID = "wx0123456789abcdef"
USER = "wmJ8ZkCQAAexample-userid"
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
TIMESTAMP = "1793577600"
NONCE = "1372623149"
WECOM_URL = "/hooks/wecom/weidao/"
WECHAT_URL = "/hooks/wechat/weidao/"
FIELDS = [{"key": "desc", "type": "textarea", "label": {"zh-hans": "描述"}, "required": False, "public": "edit"}]


@pytest.fixture(autouse=True)
def _at_delivery_time():
    """The callbacks carry TIMESTAMP; official-account deliveries are taken only while it is fresh."""
    with time_machine.travel(int(TIMESTAMP) + 30, tick=True):
        yield


def plain_mode(tenant):
    """The official account without safe mode (no EncodingAESKey): plain deliveries are taken."""
    del tenant.settings["wechat"]["encoding_aes_key"]
    tenant.save()
    return tenant


@pytest.fixture
def tenant(tenant_a):
    tenant_a.settings = {
        "wecom": {"corp_id": CORP_ID, "agent_id": "1000002", "secret": "s", "token": TOKEN,
                  "encoding_aes_key": AES_KEY},
        "wechat": {"app_id": APP_ID, "secret": "s", "token": TOKEN, "encoding_aes_key": AES_KEY},
    }
    tenant_a.save()
    with tenant_scope(tenant_a):
        category = category_get_or_create(tenant=tenant_a, code="consult", name="咨询")
        template = template_create(tenant=tenant_a, name="客服咨询", slug="consult", category=category,
                                   number_prefix="ZX", is_public=True)
        template_draft_set(template=template, fields=FIELDS)
        template_publish(template=template)
    return tenant_a


def text_xml(content, msg_id, *, sender=USER, to=CORP_ID, msg_type="text"):
    extra = f"<Content><![CDATA[{content}]]></Content>" if msg_type == "text" else (
        f"<PicUrl><![CDATA[{content}]]></PicUrl><MediaId><![CDATA[media-{msg_id}]]></MediaId>"
    )
    return (
        f"<xml><ToUserName><![CDATA[{to}]]></ToUserName><FromUserName><![CDATA[{sender}]]></FromUserName>"
        f"<CreateTime>1793577600</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>{extra}"
        f"<MsgId>{msg_id}</MsgId><AgentID>1000002</AgentID></xml>"
    )


def sha1_signature(*parts):
    """WeChat's signature, written out: SHA-1 of the sorted parts joined."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def wecom_post(client, xml, *, crypto=None, signature=None, nonce=NONCE):
    crypto = crypto or WeComCrypto(TOKEN, AES_KEY, CORP_ID)
    envelope = crypto.encrypt_message(xml, nonce, TIMESTAMP)
    parsed = xmltodict.parse(envelope)["xml"]
    assert parsed["MsgSignature"] == sha1_signature(crypto.token, TIMESTAMP, nonce, parsed["Encrypt"])
    query = f"msg_signature={signature or parsed['MsgSignature']}&timestamp={TIMESTAMP}&nonce={nonce}"
    return client.post(f"{WECOM_URL}?{query}", data=envelope, content_type="text/xml")


def state(tenant):
    with tenant_scope(tenant):
        return (Ticket.objects.count(), InboundMessage.objects.count(), Customer.objects.count(),
                TimelineEvent.objects.count())


# --- WeChat Work ------------------------------------------------------------------------

def test_encrypted_text_message_becomes_one_ticket(client, tenant):
    response = wecom_post(client, text_xml("门店空调漏水，请派人看看", 6000001))
    assert response.status_code == 200
    assert response.content == b"success"
    with tenant_scope(tenant):
        ticket = Ticket.objects.select_related("customer").get()
        assert ticket.source == Source.WECOM
        assert ticket.number.startswith("ZX-")
        assert ticket.description == "门店空调漏水，请派人看看"
        assert ticket.customer.wecom_external_userid == USER
        assert ticket.raw_payload["MsgId"] == "6000001"
        assert ticket.raw_payload["FromUserName"] == USER
        message = InboundMessage.objects.get()
        assert (message.channel, message.external_id, message.sender, message.ticket_id) == (
            "wecom", "6000001", USER, ticket.pk)


def test_same_msgid_twice_is_one_ticket(client, tenant):
    xml = text_xml("第一条", 6000002)
    assert wecom_post(client, xml).status_code == 200
    after_first = state(tenant)
    again = wecom_post(client, xml, nonce="99887766")  # the platform's retry: new nonce, same message
    assert again.status_code == 200
    assert again.content == b"success"
    assert state(tenant) == after_first
    assert after_first[:3] == (1, 1, 1)


def test_next_message_from_the_sender_comments_the_open_ticket(client, tenant):
    wecom_post(client, text_xml("空调漏水", 6000003))
    wecom_post(client, text_xml("补充：是二楼包间", 6000004))
    with tenant_scope(tenant):
        ticket = Ticket.objects.get()
        comments = list(ticket.events.filter(kind=EventKind.COMMENT).values_list("message", "is_public"))
        assert comments == [("补充：是二楼包间", True)]
        assert InboundMessage.objects.get(external_id="6000004").ticket_id == ticket.pk
        assert Customer.objects.count() == 1
        ticket_status_change(ticket=ticket, action="resolve", actor=None)
    wecom_post(client, text_xml("又漏了", 6000005))
    with tenant_scope(tenant):
        assert Ticket.objects.count() == 2
        assert Ticket.objects.order_by("-id").first().description == "又漏了"


def test_image_message_is_noted(client, tenant):
    url = "https://wework.qpic.cn/wwpic/photo-1.jpg"
    assert wecom_post(client, text_xml(url, 6000006, msg_type="image")).status_code == 200
    with tenant_scope(tenant):
        ticket = Ticket.objects.get()
        assert url in ticket.description
        assert ticket.raw_payload["MediaId"] == "media-6000006"


def test_events_are_acknowledged_and_not_stored(client, tenant):
    xml = (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[{USER}]]></FromUserName>"
        "<CreateTime>1793577600</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[enter_agent]]></Event><AgentID>1000002</AgentID></xml>"
    )
    response = wecom_post(client, xml)
    assert (response.status_code, response.content) == (200, b"success")
    assert state(tenant) == (0, 0, 0, 0)


def test_forged_signature_is_403_and_writes_nothing(client, tenant):
    response = wecom_post(client, text_xml("假消息", 6000007), signature="0" * 40)
    assert response.status_code == 403
    assert state(tenant) == (0, 0, 0, 0)


def test_wrong_token_or_corp_is_403(client, tenant):
    wrong_token = WeComCrypto("not-the-token", AES_KEY, CORP_ID)
    assert wecom_post(client, text_xml("x", 6000008), crypto=wrong_token).status_code == 403
    # Signed with the right token but encrypted for another corp: the corp id inside does not match.
    other_corp = WeComCrypto(TOKEN, AES_KEY, "wwOtherCorp")
    assert wecom_post(client, text_xml("x", 6000009), crypto=other_corp).status_code == 403
    assert state(tenant) == (0, 0, 0, 0)


def test_url_verification_returns_the_decrypted_echostr(client, tenant):
    echostr = PrpCrypto(WeComCrypto(TOKEN, AES_KEY, CORP_ID).key).encrypt("6148735218741937", CORP_ID).decode()
    signature = sha1_signature(TOKEN, TIMESTAMP, NONCE, echostr)
    query = {"msg_signature": signature, "timestamp": TIMESTAMP, "nonce": NONCE, "echostr": echostr}
    response = client.get(WECOM_URL, query)
    assert response.status_code == 200
    assert response.content == b"6148735218741937"
    assert client.get(WECOM_URL, {**query, "msg_signature": "f" * 40}).status_code == 403
    assert client.get(WECOM_URL, {k: v for k, v in query.items() if k != "echostr"}).status_code == 400


@pytest.mark.parametrize("body, code", [
    (b"<xml><Encrypt>unterminated", 400),
    (b"not xml at all", 400),
    (b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'aaaa'>]><xml><Encrypt>&a;</Encrypt></xml>", 400),
    (b"<xml><Other>1</Other></xml>", 400),
    (b"", 400),
    (b"<xml>" + b"a" * (64 * 1024) + b"</xml>", 413),
])
def test_malformed_or_oversized_bodies(client, tenant, body, code):
    query = f"msg_signature={'a' * 40}&timestamp={TIMESTAMP}&nonce={NONCE}"
    response = client.post(f"{WECOM_URL}?{query}", data=body, content_type="text/xml")
    assert response.status_code == code
    assert state(tenant) == (0, 0, 0, 0)


def test_missing_signature_is_403(client, tenant):
    assert client.post(WECOM_URL, data=b"<xml/>", content_type="text/xml").status_code == 403


def test_unknown_or_unconfigured_tenant_is_404(client, tenant, tenant_b):
    assert client.get("/hooks/wecom/no-such-tenant/", {"echostr": "x"}).status_code == 404
    assert client.post("/hooks/wecom/meijia/", data=b"<xml/>", content_type="text/xml").status_code == 404
    assert client.get("/hooks/wechat/meijia/", {"echostr": "x"}).status_code == 404
    tenant.is_active = False
    tenant.save()
    assert wecom_post(client, text_xml("x", 6000010)).status_code == 404


def test_other_methods_are_405(client, tenant):
    assert client.put(WECOM_URL, data=b"<xml/>", content_type="text/xml").status_code == 405


def test_tenant_without_a_template_gets_422_and_nothing_written(client, tenant_a):
    tenant_a.settings = {"wecom": {"corp_id": CORP_ID, "token": TOKEN, "encoding_aes_key": AES_KEY}}
    tenant_a.save()
    response = wecom_post(client, text_xml("有人吗", 6000011))
    assert response.status_code == 422
    assert state(tenant_a) == (0, 0, 0, 0)


# --- WeChat official account ------------------------------------------------------------

def mp_text(content, msg_id):
    return text_xml(content, msg_id, sender=OPENID, to="gh_123456789abc").replace(
        "<AgentID>1000002</AgentID>", "")


def test_official_account_plain_mode(client, tenant):
    plain_mode(tenant)
    query = f"signature={sha1_signature(TOKEN, TIMESTAMP, NONCE)}&timestamp={TIMESTAMP}&nonce={NONCE}"
    response = client.post(f"{WECHAT_URL}?{query}", data=mp_text("订的包间能改时间吗", 7000001),
                           content_type="text/xml")
    assert (response.status_code, response.content) == (200, b"success")
    client.post(f"{WECHAT_URL}?{query}", data=mp_text("订的包间能改时间吗", 7000001), content_type="text/xml")
    with tenant_scope(tenant):
        ticket = Ticket.objects.select_related("customer").get()
        assert ticket.source == Source.WECHAT
        assert ticket.customer.wechat_openid == OPENID
        assert ticket.description == "订的包间能改时间吗"
        assert InboundMessage.objects.get().channel == "wechat"


def test_official_account_safe_mode(client, tenant):
    crypto = WeChatMpCrypto(TOKEN, AES_KEY, APP_ID)
    envelope = crypto.encrypt_message(mp_text("加密的消息", 7000002), NONCE, TIMESTAMP)
    msg_signature = xmltodict.parse(envelope)["xml"]["MsgSignature"]
    plain = sha1_signature(TOKEN, TIMESTAMP, NONCE)
    query = f"signature={plain}&timestamp={TIMESTAMP}&nonce={NONCE}&encrypt_type=aes&msg_signature="
    response = client.post(f"{WECHAT_URL}?{query}{msg_signature}", data=envelope, content_type="text/xml")
    assert (response.status_code, response.content) == (200, b"success")
    forged = client.post(f"{WECHAT_URL}?{query}{'0' * 40}", data=envelope, content_type="text/xml")
    assert forged.status_code == 403
    with tenant_scope(tenant):
        assert Ticket.objects.get().description == "加密的消息"
        assert InboundMessage.objects.count() == 1


def test_official_account_forged_signature_and_verification(client, tenant):
    good = {"signature": sha1_signature(TOKEN, TIMESTAMP, NONCE), "timestamp": TIMESTAMP, "nonce": NONCE}
    assert client.get(WECHAT_URL, {**good, "echostr": "5835646851"}).content == b"5835646851"
    assert client.get(WECHAT_URL, {**good, "signature": "0" * 40, "echostr": "1"}).status_code == 403
    forged = f"signature={'0' * 40}&timestamp={TIMESTAMP}&nonce={NONCE}"
    response = client.post(f"{WECHAT_URL}?{forged}", data=mp_text("假的", 7000003), content_type="text/xml")
    assert response.status_code == 403
    assert state(tenant) == (0, 0, 0, 0)


def test_official_account_with_safe_mode_refuses_plain_deliveries(client, tenant):
    query = f"signature={sha1_signature(TOKEN, TIMESTAMP, NONCE)}&timestamp={TIMESTAMP}&nonce={NONCE}"
    response = client.post(f"{WECHAT_URL}?{query}", data=mp_text("降级到明文", 7000010), content_type="text/xml")
    assert (response.status_code, response.content) == (403, b"safe mode required")
    raw = client.post(f"{WECHAT_URL}?{query}&encrypt_type=raw", data=mp_text("降级", 7000011), content_type="text/xml")
    assert raw.status_code == 403
    assert state(tenant) == (0, 0, 0, 0)


@pytest.mark.parametrize("age", [301, -301, 10**6])
def test_official_account_refuses_a_stale_or_future_timestamp(client, tenant, age):
    plain_mode(tenant)
    then = str(int(time.time()) - age)
    query = f"signature={sha1_signature(TOKEN, then, NONCE)}&timestamp={then}&nonce={NONCE}"
    response = client.post(f"{WECHAT_URL}?{query}", data=mp_text("旧签名新内容", 7000012), content_type="text/xml")
    assert (response.status_code, response.content) == (403, b"stale timestamp")
    assert client.get(WECHAT_URL + "?" + query + "&echostr=42").status_code == 403
    assert state(tenant) == (0, 0, 0, 0)


def test_official_account_takes_a_timestamp_within_the_window(client, tenant):
    plain_mode(tenant)
    then = str(int(time.time()) - 290)
    query = f"signature={sha1_signature(TOKEN, then, NONCE)}&timestamp={then}&nonce={NONCE}"
    response = client.post(f"{WECHAT_URL}?{query}", data=mp_text("还在窗口内", 7000013), content_type="text/xml")
    assert response.status_code == 200


# --- rate limit -------------------------------------------------------------------------

@time_machine.travel("2026-11-23 10:00:05 +0800", tick=False)  # every call in one window
def test_a_flood_from_one_ip_is_429_before_any_read_and_writes_nothing(client, tenant, settings,
                                                                       django_assert_num_queries):
    cache.clear()
    plain_mode(tenant)
    settings.CALLBACK_RATE_PER_MINUTE = 2
    assert wecom_post(client, text_xml("第一条", 6100001)).status_code == 200
    assert wecom_post(client, text_xml("伪造", 6100002), signature="0" * 40).status_code == 403
    with django_assert_num_queries(0):  # no tenant read, no decryption: a counter only
        refused = wecom_post(client, text_xml("第三条", 6100003))
    assert (refused.status_code, refused.content) == (429, b"too many requests")
    assert refused["Retry-After"] == "55"
    now = str(int(time.time()))
    query = f"signature={sha1_signature(TOKEN, now, NONCE)}&timestamp={now}&nonce={NONCE}"
    wechat = client.post(f"{WECHAT_URL}?{query}", data=mp_text("公众号也算", 7100001), content_type="text/xml")
    assert wechat.status_code == 429
    assert state(tenant) == (1, 1, 1, 1)  # the first message only
    # Another client address has its own count.
    other = client.post(WECHAT_URL + "?" + query, data=mp_text("别处来的", 7100002), content_type="text/xml",
                        REMOTE_ADDR="10.1.2.3")
    assert other.status_code == 200


# --- pictures: fetched from the platform and attached once ------------------------------

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + bytes(range(256)) * 8


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def wecom_api(media_root):
    token_storage().clear()  # a token issued by another test's stub means nothing to this one
    with WeComStub(corp_id=CORP_ID, secret="s", agent_id=1000002) as stub, stub.installed():
        yield stub
    token_storage().clear()


@pytest.fixture
def wechat_api(media_root):
    token_storage().clear()
    with OfficialAccountStub(app_id=APP_ID, secret="s") as stub, stub.installed():
        yield stub
    token_storage().clear()


def image_xml(msg_id, *, sender=USER):
    return text_xml(f"https://wework.qpic.cn/wwpic/{msg_id}.jpg", msg_id, sender=sender, msg_type="image")


def send_image(client, msg_id, capture, **kwargs):
    """An image message, with the fetch task it enqueues run when the request's transaction commits."""
    with capture(execute=True):
        response = wecom_post(client, image_xml(msg_id, **kwargs))
    assert (response.status_code, response.content) == (200, b"success")


def media_calls(stub):
    return [r.query["media_id"] for r in stub.calls(stub.MEDIA_PATH)]


def attachment_state(tenant):
    with tenant_scope(tenant):
        return (Attachment.objects.count(), TimelineEvent.objects.filter(kind=EventKind.ATTACHMENT).count())


def test_picture_is_fetched_and_attached_to_the_new_ticket_once(client, tenant, wecom_api,
                                                               django_capture_on_commit_callbacks):
    wecom_api.media["media-6200001"] = File(JPEG, "image/jpeg", "IMG_0412.jpg")
    send_image(client, 6200001, django_capture_on_commit_callbacks)
    with tenant_scope(tenant):
        ticket = Ticket.objects.get()
        attachment = Attachment.objects.get()
        assert (attachment.ticket_id, attachment.name, attachment.content_type, attachment.size) == (
            ticket.pk, "IMG_0412.jpg", "image/jpeg", len(JPEG))
        with attachment.file.open("rb") as f:
            assert f.read() == JPEG
        event = attachment.event
        assert (event.kind, event.is_public, event.ticket_id) == (EventKind.ATTACHMENT, True, ticket.pk)
        # Stored as a code; shown in the reader's language.
        assert (event.code, event.params, event.message) == ("ticket.picture_received", {"source": "wecom"}, "")
        with translation.override("zh-hans"):
            assert event.text == "收到来自企业微信的图片。"
        with translation.override("en"):
            assert event.text == "Picture received via WeChat Work."
        assert InboundMessage.objects.get().media_attachment_id == attachment.pk
    assert media_calls(wecom_api) == ["media-6200001"]

    # The platform redelivers the message, and the task is delivered twice: still one picture.
    send_image(client, 6200001, django_capture_on_commit_callbacks)
    with tenant_scope(tenant):
        message = InboundMessage.objects.get()
        assert inbound_media_fetch(message=message) is None
        inbound_media_fetch_task.delay(tenant_id=tenant.pk, message_id=message.pk)
    assert media_calls(wecom_api) == ["media-6200001"]
    assert attachment_state(tenant) == (1, 1)


def test_a_picture_for_the_open_ticket_lands_on_it(client, tenant, wecom_api, django_capture_on_commit_callbacks):
    wecom_api.media["media-6200003"] = File(b"\x89PNG\r\n\x1a\n" + bytes(64), "image/png")
    with django_capture_on_commit_callbacks(execute=True):
        wecom_post(client, text_xml("包间的椅子坏了", 6200002))
    send_image(client, 6200003, django_capture_on_commit_callbacks)
    with tenant_scope(tenant):
        ticket = Ticket.objects.get()
        attachment = Attachment.objects.get()
        # No name from the platform: one from the channel and message id, typed by the bytes.
        assert (attachment.ticket_id, attachment.name, attachment.content_type) == (
            ticket.pk, "wecom-6200003.png", "image/png")


def test_official_account_picture(client, tenant, wechat_api, django_capture_on_commit_callbacks):
    plain_mode(tenant)
    wechat_api.media["media-7200001"] = File(b"GIF89a" + bytes(32), "image/gif", "sticker.gif")
    xml = text_xml("http://mmbiz.qpic.cn/p.jpg", 7200001, sender=OPENID, to="gh_123456789abc",
                   msg_type="image").replace("<AgentID>1000002</AgentID>", "")
    query = f"signature={sha1_signature(TOKEN, TIMESTAMP, NONCE)}&timestamp={TIMESTAMP}&nonce={NONCE}"
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"{WECHAT_URL}?{query}", data=xml, content_type="text/xml").status_code == 200
    with tenant_scope(tenant):
        attachment = Attachment.objects.select_related("ticket").get()
        assert (attachment.ticket.source, attachment.name, attachment.content_type) == (
            Source.WECHAT, "sticker.gif", "image/gif")
    assert media_calls(wechat_api) == ["media-7200001"]


def test_a_refused_token_is_refreshed_once(client, tenant, wecom_api, django_capture_on_commit_callbacks):
    wecom_api.media["media-6200004"] = File(JPEG)
    wecom_api.media["media-6200005"] = File(JPEG)
    send_image(client, 6200004, django_capture_on_commit_callbacks)
    wecom_api.expire_tokens()
    send_image(client, 6200005, django_capture_on_commit_callbacks, sender="another-member")
    assert len(wecom_api.calls(wecom_api.TOKEN_PATH)) == 2
    assert media_calls(wecom_api) == ["media-6200004", "media-6200005", "media-6200005"]
    assert attachment_state(tenant) == (2, 2)


def _taken_in_with_fetch_pending(client, tenant, msg_id, capture):
    with capture() as callbacks:
        assert wecom_post(client, image_xml(msg_id)).status_code == 200
    callbacks = app_callbacks(callbacks)
    assert len(callbacks) == 1  # the fetch, enqueued when the message's transaction commits
    with tenant_scope(tenant):
        return callbacks[0], {"tenant_id": tenant.pk, "message_id": InboundMessage.objects.get().pk}


def test_a_passing_failure_is_tried_again_later(client, tenant, wecom_api, django_capture_on_commit_callbacks):
    wecom_api.media["media-6200006"] = File(JPEG)
    wecom_api.fail(path=wecom_api.MEDIA_PATH, times=2, status=502)
    enqueue, kwargs = _taken_in_with_fetch_pending(client, tenant, 6200006, django_capture_on_commit_callbacks)
    with pytest.raises(Retry) as first:
        enqueue()
    with pytest.raises(Retry) as second:  # the broker's second delivery, a minute later
        inbound_media_fetch_task.apply(kwargs=kwargs, retries=1)
    assert (first.value.when, second.value.when) == (60, 120)
    assert attachment_state(tenant) == (0, 0)  # nothing noted while a try is left
    inbound_media_fetch_task.apply(kwargs=kwargs, retries=2)
    assert media_calls(wecom_api) == ["media-6200006"] * 3
    assert attachment_state(tenant) == (1, 1)


def test_the_last_passing_failure_is_noted(client, tenant, wecom_api, django_capture_on_commit_callbacks):
    wecom_api.fail(path=wecom_api.MEDIA_PATH, times=1, status=503)
    _enqueue, kwargs = _taken_in_with_fetch_pending(client, tenant, 6200007, django_capture_on_commit_callbacks)
    inbound_media_fetch_task.apply(kwargs=kwargs, retries=inbound_media_fetch_task.max_retries)
    assert "http_503" in _refused(tenant)
    assert media_calls(wecom_api) == ["media-6200007"]


def _refused(tenant):
    """The note on the timeline and the message's error, with nothing attached."""
    with tenant_scope(tenant):
        assert not Attachment.objects.exists()
        note = TimelineEvent.objects.get(kind=EventKind.ATTACHMENT)
        assert note.is_public is False
        message = InboundMessage.objects.get()
        assert message.media_attachment_id is None
        assert message.media_error and message.media_error in note.text
        return note.text


@pytest.mark.parametrize(("media", "limit_mb", "expected"), [
    (None, 10, "三天"),  # an expired or unknown media id: 40007
    (File(b"<html>not a picture</html>", "image/jpeg", "x.jpg"), 10, "不是有效的图片"),
    (File(JPEG + bytes(2**20), "image/jpeg"), 1, "1 MB"),
])
def test_what_cannot_be_attached_is_noted_once(client, tenant, wecom_api, settings, media, limit_mb, expected,
                                                django_capture_on_commit_callbacks):
    settings.INBOUND_MEDIA_MAX_MB = limit_mb
    if media is not None:
        wecom_api.media["media-6200008"] = media
    send_image(client, 6200008, django_capture_on_commit_callbacks)
    assert expected in _refused(tenant)
    assert media_calls(wecom_api) == ["media-6200008"]  # not tried again: it would not change
    assert [p for p in settings.MEDIA_ROOT.rglob("*") if p.is_file()] == []  # no file left behind


def test_without_the_app_secret_nothing_is_fetched(client, tenant, wecom_api, django_capture_on_commit_callbacks):
    tenant.settings["wecom"]["secret"] = ""
    tenant.save()
    send_image(client, 6200009, django_capture_on_commit_callbacks)
    _refused(tenant)
    assert wecom_api.requests == []


def test_a_refused_message_enqueues_no_fetch(client, tenant_a, django_capture_on_commit_callbacks):
    tenant_a.settings = {"wecom": {"corp_id": CORP_ID, "agent_id": "1000002", "secret": "s", "token": TOKEN,
                                   "encoding_aes_key": AES_KEY}}
    tenant_a.save()  # no published template: the message is refused with 422
    with django_capture_on_commit_callbacks() as callbacks:
        assert wecom_post(client, image_xml(6200010)).status_code == 422
    assert callbacks == []


def test_the_task_does_not_reach_another_tenants_message(client, tenant, tenant_b, wecom_api,
                                                         django_capture_on_commit_callbacks):
    wecom_api.media["media-6200011"] = File(JPEG)
    with django_capture_on_commit_callbacks():  # taken in, fetch not run
        wecom_post(client, image_xml(6200011))
    with tenant_scope(tenant):
        message = InboundMessage.objects.get()
    with pytest.raises(InboundMessage.DoesNotExist):
        inbound_media_fetch_task.delay(tenant_id=tenant_b.pk, message_id=message.pk)
    assert wecom_api.requests == []
    assert attachment_state(tenant) == (0, 0)
