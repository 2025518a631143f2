"""The ticket pages as people use them, through the test client, each test checking what the
person sees and what the database holds afterwards:

- the public web form `/s/<tenant>/<template>/` (a template made from the canyin_tousu preset):
  it renders, 404s for unknown/inactive/non-public/unpublished, a valid browser POST makes one
  web ticket with its customer, timeline event and outbox row and lands on the thanks page;
  every bad input (missing, malformed, cross-tenant store, oversized text, bad or oversized
  image) is a field error that writes nothing; CSRF and the per-IP rate limit are enforced;
- the tracking page `/track/<token>/`: status and public events only, the customer's reply;
- the staff "new ticket" pages: choosing a template, phone / walk-in tickets with an existing or
  an inline customer, pre-linking from ?customer= / ?opportunity=, the customer search, and
  another tenant's customer or opportunity;
- the ticket actions: comments with files, assignment, status, split, merge; regional scoping
  and tenancy (404 for the page, its actions and its attachments); public attachments;
- `/healthz`.

Messages are read in English (the language cookie), as the other view tests do; one public-form
test reads the default zh-hans."""

import html
import mimetypes
import re

import pytest
import time_machine
from django.conf import settings
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings
from django.urls import reverse

from notifications.models import Notification
from scrm.models import Customer
from scrm.services import region_grant
from scrm.tenancy import tenant_scope
from tests.factories import CustomerFactory, OpportunityFactory, RegionFactory, StoreFactory, published_template
from tickets import views
from tickets.models import Attachment, EventKind, Source, Status, Ticket, TimelineEvent
from tickets.services import template_from_preset, template_update, ticket_comment_add, ticket_intake
from workflow.lifecycle import ticket_status_change

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
MB = 1024 * 1024
FORM_URL = "/s/weidao/canyin_tousu/"


# --- helpers and fixtures ---------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _clean_slate(settings, tmp_path):
    """Uploads go to a temporary folder; no rate-limit count or cached value leaks between tests."""
    settings.MEDIA_ROOT = tmp_path / "media"
    cache.clear()
    # The public form keeps its POST form classes per published-version id; SQLite hands the
    # same ids out again after each test's rollback, so a class from another test could be used.
    getattr(views, "_POST_FORM_CLASSES", {}).clear()
    yield
    cache.clear()


def in_english(client):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def upload(name, content):
    """A file as a browser sends it: the content type guessed from the name."""
    return SimpleUploadedFile(name, content, content_type=mimetypes.guess_type(name)[0] or "application/octet-stream")


def rows(tenant):
    """What a request could have written, counted in the tenant's scope."""
    with tenant_scope(tenant):
        return {
            "tickets": Ticket.objects.count(), "customers": Customer.objects.count(),
            "events": TimelineEvent.objects.count(), "notifications": Notification.objects.count(),
            "attachments": Attachment.objects.count(),
        }


def media_files(tmp_path):
    folder = tmp_path / "media"
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def field_errors(response):
    """{field name: [messages]} as the page shows them next to the inputs."""
    found = {}
    for name, message in re.findall(r'data-field-error="([^"]+)">(.*?)</div>', response.content.decode(), re.S):
        found.setdefault(name, []).append(html.unescape(message))
    return found


def text(response):
    return html.unescape(response.content.decode())


def fresh(tenant, ticket):
    with tenant_scope(tenant):
        return Ticket.objects.select_related("customer", "opportunity", "assignee", "merged_into").get(pk=ticket.pk)


def events(tenant, ticket, kind=None):
    with tenant_scope(tenant):
        qs = TimelineEvent.objects.filter(ticket_id=ticket.pk).order_by("id")
        return list(qs.filter(kind=kind) if kind else qs)


def download(response):
    return b"".join(response.streaming_content)


@pytest.fixture
def public():
    """An anonymous browser in English."""
    return in_english(Client())


@pytest.fixture
def store_a(tenant_a):
    with tenant_scope(tenant_a):
        east = RegionFactory(tenant=tenant_a, name="华东", code="east")
        return StoreFactory(tenant=tenant_a, region=east, name="徐汇店", code="xh")


@pytest.fixture
def store_b(tenant_b):
    with tenant_scope(tenant_b):
        return StoreFactory(tenant=tenant_b, region=RegionFactory(tenant=tenant_b, code="b"), name="B店", code="b1")


@pytest.fixture
def complaint(tenant_a):
    """The 餐饮投诉 preset, published and public (it asks for contact name and phone itself)."""
    with tenant_scope(tenant_a):
        return template_from_preset(tenant=tenant_a, preset_slug="canyin_tousu")


def complaint_post(store_obj, **overrides):
    """What a browser sends for a filled-in 餐饮投诉 form, plus `overrides`."""
    data = {
        "store": str(store_obj.pk), "dined_at": "2026-11-20T12:30", "order_no": "A1234567", "complaint_type": "quality",
        "description": "酸菜鱼里吃出一根头发，很不卫生", "contact_name": "张三", "contact_phone": "138 0013 8000",
        "expectation": "apology",
    }
    data.update(overrides)
    return data


def web_ticket(tenant, template, store, phone="13800138000"):
    """A ticket as the public form makes it (the same service call, without the POST)."""
    with tenant_scope(tenant):
        return ticket_intake(
            tenant=tenant, source=Source.WEB, template=template, audience="public",
            data={"store": store.pk, "dined_at": "2026-11-20T12:30", "complaint_type": "service",
                  "description": "服务员态度很差，上菜也很慢", "contact_name": "张三", "contact_phone": phone},
            contact={"name": "张三", "phone": phone},
        )


# --- public form: GET ---------------------------------------------------------------------------

def test_public_form_shows_the_public_fields(tenant_a, complaint, store_a, public):
    response = public.get(FORM_URL)
    assert response.status_code == 200
    body = text(response)
    assert "餐饮投诉" in body
    for label in ("Restaurant", "Time of meal", "Order number", "Complaint type", "What happened", "Photos",
                  "Contact name", "Contact phone", "Preferred resolution"):
        assert label in body
    assert "徐汇店" in body and f'value="{store_a.pk}"' in body  # the store picker offers the tenant's stores
    for staff_only in ("refund_amount", "handling_note", "satisfaction", "Handling notes"):
        assert staff_only not in body
    # The template asks for the phone itself: no second, fixed contact block.
    assert body.count('name="contact_phone"') == 1
    assert 'enctype="multipart/form-data"' in body and "csrfmiddlewaretoken" in body


def test_public_form_fields_are_cached_until_the_configuration_changes(
        tenant_a, complaint, store_a, public, django_assert_max_num_queries):
    first = text(public.get(FORM_URL))
    # The second visitor gets the same fields from the cache: no form is built, no picker read.
    with django_assert_max_num_queries(3):
        second = text(public.get(FORM_URL))
    strip = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')
    assert strip.sub("", first) == strip.sub("", second)
    # A new store changes the tenant's configuration stamp: the next visitor sees it.
    with tenant_scope(tenant_a):
        StoreFactory(tenant=tenant_a, region=store_a.region, name="静安店", code="ja")
    assert "静安店" in text(public.get(FORM_URL))
    # Each language has its own copy.
    zh = Client()
    zh.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    assert "联系电话" in text(zh.get(FORM_URL)) and "Contact phone" in text(public.get(FORM_URL))


def test_a_refused_post_shows_its_errors_not_the_cached_empty_form(tenant_a, complaint, store_a, public):
    public.get(FORM_URL)  # the empty form is cached
    response = public.post(FORM_URL, complaint_post(store_a, contact_phone="12"))
    assert response.status_code == 400
    body = text(response)
    assert "Please correct the errors below." in body and 'data-field-error="contact_phone"' in body
    assert 'value="酸菜鱼里吃出一根头发' in body or "酸菜鱼里吃出一根头发" in body  # what they typed stays


def _make_unreachable(case, tenant_a, complaint):
    """Change the setup as `case` says; the URL that must now be a 404."""
    if case == "unknown-tenant":
        return "/s/nobody/canyin_tousu/"
    if case == "unknown-template":
        return "/s/weidao/no-such-form/"
    if case == "inactive-tenant":
        tenant_a.is_active = False
        tenant_a.save()
        return FORM_URL
    with tenant_scope(tenant_a):
        if case == "not-public":
            template_update(template=complaint, is_public=False)
        elif case == "inactive-template":
            template_update(template=complaint, is_active=False)
        else:  # unpublished: the published one moves aside, a never-published draft takes its slug
            template_update(template=complaint, slug="published-one")
            draft = template_from_preset(tenant=tenant_a, preset_slug="canyin_tousu", publish=False)
            assert draft.slug == "canyin_tousu" and draft.is_public and draft.current_version is None
    return FORM_URL


@pytest.mark.parametrize("case", ["unknown-tenant", "unknown-template", "inactive-tenant", "not-public",
                                  "inactive-template", "unpublished"])
def test_public_form_is_404_when_not_offered(tenant_a, complaint, store_a, public, case):
    assert public.get(FORM_URL).status_code == 200  # offered (and cached) before the change
    url = _make_unreachable(case, tenant_a, complaint)
    before = rows(tenant_a)

    assert public.get(url).status_code == 404
    assert public.post(url, complaint_post(store_a)).status_code == 404
    assert rows(tenant_a) == before


# --- public form: a valid POST ------------------------------------------------------------------

def test_valid_post_creates_one_web_ticket_and_shows_the_thanks_page(tenant_a, complaint, store_a, public):
    response = public.post(FORM_URL, complaint_post(store_a))

    with tenant_scope(tenant_a):
        ticket = Ticket.objects.select_related("customer").get()
        assert response.status_code == 302
        assert response["Location"] == f"/s/thanks/{ticket.tracking_token}/"
        assert ticket.source == Source.WEB and ticket.status == Status.NEW
        assert ticket.template == complaint and ticket.template_version == complaint.current_version
        assert (ticket.store, ticket.region) == (store_a, store_a.region)
        assert ticket.priority == "high"  # the preset's default
        assert ticket.data["complaint_type"] == "quality" and ticket.data["order_no"] == "A1234567"
        assert ticket.data["store"] == store_a.pk
        assert ticket.data["contact_phone"] == "13800138000"
        customer = Customer.objects.get()
        assert ticket.customer == customer
        assert (customer.name, customer.phone) == ("张三", "13800138000")
        [event] = TimelineEvent.objects.filter(ticket=ticket)
        assert event.kind == EventKind.CREATED and event.is_public
        assert event.text == "Ticket created via Web form."
        [notification] = Notification.objects.filter(ticket=ticket)
        assert notification.customer == customer and notification.event == "ticket_created"
        assert ticket.raw_payload["form"]["contact_name"] == "张三"
        assert "csrfmiddlewaretoken" not in ticket.raw_payload["form"]
    assert rows(tenant_a) == {"tickets": 1, "customers": 1, "events": 1, "notifications": 1, "attachments": 0}

    thanks = public.get(response["Location"])
    assert thanks.status_code == 200
    body = text(thanks)
    assert f'data-testid="ticket-number">{ticket.number}<' in body
    assert f'href="/track/{ticket.tracking_token}/"' in body
    assert "Track my request" in body


def test_valid_post_links_the_existing_customer_by_phone(tenant_a, complaint, store_a, public):
    with tenant_scope(tenant_a):
        regular = CustomerFactory(tenant=tenant_a, name="老顾客", phone="13800138000")

    response = public.post(FORM_URL, complaint_post(store_a, contact_phone="+86 138-0013-8000"))

    assert response.status_code == 302
    with tenant_scope(tenant_a):
        assert Ticket.objects.get().customer == regular
        assert list(Customer.objects.all()) == [regular]


def test_photo_is_stored_as_a_public_attachment_of_the_ticket(tenant_a, complaint, store_a, public, tmp_path):
    response = public.post(FORM_URL, {**complaint_post(store_a), "photos": [upload("菜.png", PNG)]})

    assert response.status_code == 302
    with tenant_scope(tenant_a):
        ticket = Ticket.objects.get()
        attachment = Attachment.objects.get()
    assert attachment.ticket == ticket and attachment.is_public and attachment.field_key == "photos"
    assert (attachment.name, attachment.size, attachment.content_type) == ("菜.png", len(PNG), "image/png")
    assert ticket.data["photos"] == [{"id": attachment.pk, "name": "菜.png", "size": len(PNG)}]
    assert len(media_files(tmp_path)) == 1
    served = public.get(reverse("ticket-public-attachment", args=[ticket.tracking_token, attachment.pk]))
    assert served.status_code == 200 and download(served) == PNG


def test_thanks_page_for_an_unknown_token_is_404(tenant_a, public):
    assert public.get(f"/s/thanks/{tenant_a.pk:x}-nothing/").status_code == 404
    assert public.get("/s/thanks/not-hex/").status_code == 404


# --- public form: bad input ---------------------------------------------------------------------

BAD_PUBLIC_INPUT = [
    pytest.param({"store": ""}, None, "store", "This field is required.", id="missing-store"),
    pytest.param({"dined_at": ""}, None, "dined_at", "This field is required.", id="missing-datetime"),
    pytest.param({"complaint_type": ""}, None, "complaint_type", "This field is required.", id="missing-choice"),
    pytest.param({"description": "   "}, None, "description", "This field is required.", id="blank-description"),
    pytest.param({"contact_name": ""}, None, "contact_name", "This field is required.", id="missing-name"),
    pytest.param({"contact_phone": ""}, None, "contact_phone", "This field is required.", id="missing-phone"),
    pytest.param({"contact_phone": "12345"}, None, "contact_phone",
                 "Enter a mainland mobile (e.g. 13812345678) or landline with area code (e.g. 021-62345678).",
                 id="bad-phone"),
    pytest.param({"contact_phone": "1" * 25}, None, "contact_phone", "Phone number is too long.", id="long-phone"),
    pytest.param({"dined_at": "2026-13-45T99:00"}, None, "dined_at", "Enter a valid date/time.",
                 id="bad-datetime"),
    pytest.param({"dined_at": "yesterday"}, None, "dined_at", "Enter a valid date/time.", id="datetime-words"),
    pytest.param({"dined_at": "2099-01-01T12:00"}, None, "dined_at", "Ensure this value is less than or equal to",
                 id="future-datetime"),
    pytest.param({"store": "STORE_B"}, None, "store", "Store STORE_B was not found.", id="other-tenants-store"),
    pytest.param({"store": "abc"}, None, "store",
                 "Select a valid choice. That choice is not one of the available choices.", id="store-not-an-id"),
    pytest.param({"complaint_type": "bribe"}, None, "complaint_type",
                 "Select a valid choice. bribe is not one of the available choices.", id="unknown-choice"),
    pytest.param({"order_no": "A1"}, None, "order_no", "Enter a value in the expected format.", id="bad-pattern"),
    pytest.param({"description": "太差了"}, None, "description",
                 "Ensure this value has at least 10 characters (it has 3).", id="short-text"),
    pytest.param({"description": "很" * 2001}, None, "description",
                 "Ensure this value has at most 2000 characters (it has 2001).", id="oversized-text"),
    pytest.param({"contact_name": "名" * 31}, None, "contact_name",
                 "Ensure this value has at most 30 characters (it has 31).", id="oversized-name"),
    pytest.param({}, lambda: [upload("virus.exe", b"MZ\x90\x00")], "photos",
                 "“virus.exe”: this file type is not allowed (allowed: jpg, jpeg, png, gif, webp).",
                 id="image-bad-type"),
    pytest.param({}, lambda: [upload("page.html", b"<script>alert(1)</script>")], "photos",
                 "“page.html”: this file type is not allowed", id="image-html"),
    pytest.param({}, lambda: [upload("fake.png", b"this is not a picture")], "photos",
                 "“fake.png” is not a valid image (PNG, JPEG, GIF or WebP).", id="image-bad-content"),
    pytest.param({}, lambda: [upload("big.png", PNG + b"\x00" * (10 * MB))], "photos",
                 "“big.png” is larger than 10 MB.", id="image-oversized"),
    pytest.param({}, lambda: [upload(f"{i}.png", PNG) for i in range(4)], "photos", "Upload at most 3 files.",
                 id="image-too-many"),
]


@pytest.mark.parametrize("overrides, files, field, message", BAD_PUBLIC_INPUT)
def test_bad_input_is_a_field_error_and_writes_nothing(
    tenant_a, complaint, store_a, store_b, public, tmp_path, overrides, files, field, message
):
    overrides = {k: str(store_b.pk) if v == "STORE_B" else v for k, v in overrides.items()}
    message = message.replace("STORE_B", str(store_b.pk))
    data = complaint_post(store_a, **overrides)
    if files is not None:
        data["photos"] = files()
    before = rows(tenant_a)

    response = public.post(FORM_URL, data)

    assert response.status_code == 400
    body = text(response)
    assert "Please correct the errors below." in body
    errors = field_errors(response)
    assert list(errors) == [field], errors
    assert any(e.startswith(message) for e in errors[field]), errors
    # The customer's other answers are still there to correct and send again.
    if field != "description":
        assert "酸菜鱼里吃出一根头发" in body
    assert rows(tenant_a) == before == {"tickets": 0, "customers": 0, "events": 0, "notifications": 0,
                                        "attachments": 0}
    assert media_files(tmp_path) == []


def test_empty_form_lists_every_required_field(tenant_a, complaint, public):
    response = public.post(FORM_URL, {})
    assert response.status_code == 400
    errors = field_errors(response)
    assert set(errors) == {"store", "dined_at", "complaint_type", "description", "contact_name", "contact_phone"}
    assert all(messages == ["This field is required."] for messages in errors.values())
    assert rows(tenant_a)["tickets"] == 0


def test_errors_are_in_chinese_by_default(tenant_a, complaint, store_a, client):
    response = client.post(FORM_URL, complaint_post(store_a, description="", dined_at="not a time"))
    assert response.status_code == 400
    assert "请修正下方标出的错误。" in text(response)
    assert field_errors(response) == {"dined_at": ["请输入有效的日期时间。"], "description": ["此字段为必填项。"]}
    assert rows(tenant_a)["tickets"] == 0


def test_post_without_csrf_token_is_403_and_writes_nothing(tenant_a, complaint, store_a):
    browser = in_english(Client(enforce_csrf_checks=True))
    before = rows(tenant_a)

    assert browser.post(FORM_URL, complaint_post(store_a)).status_code == 403
    assert browser.post(FORM_URL, {**complaint_post(store_a), "csrfmiddlewaretoken": "forged" * 8}).status_code == 403
    assert rows(tenant_a) == before

    # The token the form page hands out is what lets a real browser through.
    page = browser.get(FORM_URL).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = browser.post(FORM_URL, {**complaint_post(store_a), "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert rows(tenant_a)["tickets"] == 1


@time_machine.travel("2026-11-23 10:00:05 +0800", tick=False)  # all posts in one rate-limit window
def test_third_post_from_one_ip_in_a_minute_is_rate_limited(tenant_a, complaint, store_a, public):
    with override_settings(PUBLIC_FORM_RATE_PER_MINUTE=2):
        for _n in range(2):
            assert public.post(FORM_URL, complaint_post(store_a), REMOTE_ADDR="203.0.113.7").status_code == 302
        before = rows(tenant_a)
        assert before["tickets"] == 2

        response = public.post(FORM_URL, complaint_post(store_a), REMOTE_ADDR="203.0.113.7")

        assert response.status_code == 429
        assert "Too many submissions from your network. Please wait a minute and try again." in text(response)
        assert rows(tenant_a) == before
        # The limit is per address: another customer is not held up.
        assert public.post(FORM_URL, complaint_post(store_a), REMOTE_ADDR="203.0.113.8").status_code == 302
    assert rows(tenant_a)["tickets"] == 3


@time_machine.travel("2026-11-23 10:00:05 +0800", tick=False)
def test_rate_limit_counts_the_forwarded_client_address(tenant_a, complaint, store_a, public):
    # Behind one proxy of ours (nginx appends the address it saw), the client is the last entry;
    # what the client wrote to the left of it is not believed.
    with override_settings(PUBLIC_FORM_RATE_PER_MINUTE=1, TRUSTED_PROXY_COUNT=1):
        proxy = {"REMOTE_ADDR": "10.0.0.1"}
        assert public.post(FORM_URL, complaint_post(store_a), HTTP_X_FORWARDED_FOR="198.51.100.1",
                           **proxy).status_code == 302
        assert public.post(FORM_URL, complaint_post(store_a), HTTP_X_FORWARDED_FOR="203.0.113.99, 198.51.100.1",
                           **proxy).status_code == 429
        assert public.post(FORM_URL, complaint_post(store_a), HTTP_X_FORWARDED_FOR="198.51.100.2",
                           **proxy).status_code == 302
    assert rows(tenant_a)["tickets"] == 2


@time_machine.travel("2026-11-23 10:00:05 +0800", tick=False)
def test_a_fresh_forwarded_header_per_request_does_not_escape_the_limit(tenant_a, complaint, store_a, public):
    for proxies, header in ((0, "198.51.100.{n}"), (1, "198.51.100.{n}, 203.0.113.7")):
        cache.clear()
        with override_settings(PUBLIC_FORM_RATE_PER_MINUTE=1, TRUSTED_PROXY_COUNT=proxies):
            statuses = [public.post(FORM_URL, complaint_post(store_a), REMOTE_ADDR="203.0.113.7",
                                    HTTP_X_FORWARDED_FOR=header.format(n=n)).status_code for n in range(3)]
        assert statuses == [302, 429, 429]
    assert rows(tenant_a)["tickets"] == 2


# --- tracking page ------------------------------------------------------------------------------

def track_url(ticket):
    return f"/track/{ticket.tracking_token}/"


def test_tracking_page_shows_status_and_only_public_events(tenant_a, complaint, store_a, agent_a, public):
    ticket = web_ticket(tenant_a, complaint, store_a)
    with tenant_scope(tenant_a):
        ticket_comment_add(ticket=ticket, body="内部备注：店长已核实，准备赔付", actor=agent_a, is_public=False)
        ticket_comment_add(ticket=ticket, body="您好，门店经理将在今天内联系您", actor=agent_a, is_public=True)
        ticket_status_change(ticket=ticket, action="start", actor=agent_a)

    response = public.get(track_url(ticket))

    assert response.status_code == 200
    body = text(response)
    assert f'data-testid="ticket-number">{ticket.number}<' in body
    assert '<span class="badge status-in_progress">In progress</span>' in body
    assert "Ticket created via Web form." in body
    assert "您好，门店经理将在今天内联系您" in body
    assert "内部备注" not in body and "准备赔付" not in body
    assert "徐汇店" in body
    assert 'data-testid="reply-form"' in body


@pytest.mark.parametrize("token", ["not-hex-at-all", "{tenant:x}-no-such-ticket", "{tenant:x}", "ffffff-abc"])
def test_tracking_an_unknown_token_is_404(tenant_a, complaint, store_a, public, token):
    web_ticket(tenant_a, complaint, store_a)
    token = token.format(tenant=tenant_a.pk)
    assert public.get(f"/track/{token}/").status_code == 404
    before = rows(tenant_a)
    assert public.post(f"/track/{token}/", {"body": "还在吗"}).status_code == 404
    assert rows(tenant_a) == before


def test_tracking_a_ticket_of_an_inactive_tenant_is_404(tenant_a, complaint, store_a, public):
    ticket = web_ticket(tenant_a, complaint, store_a)
    tenant_a.is_active = False
    tenant_a.save()
    assert public.get(track_url(ticket)).status_code == 404


def test_customer_reply_adds_a_public_comment(tenant_a, complaint, store_a, public):
    ticket = web_ticket(tenant_a, complaint, store_a)

    response = public.post(track_url(ticket), {"body": "  请尽快给我回电话  "})

    assert response.status_code == 302 and response["Location"] == track_url(ticket)
    [comment] = events(tenant_a, ticket, EventKind.COMMENT)
    assert comment.is_public and comment.actor is None
    assert (comment.message, comment.actor_label) == ("请尽快给我回电话", "张三")
    body = text(public.get(track_url(ticket)))
    assert "请尽快给我回电话" in body and "张三" in body


@pytest.mark.parametrize("body, message", [
    ("", "This field is required."),
    ("    ", "This field is required."),
    ("话" * 2001, "Ensure this value has at most 2000 characters (it has 2001)."),
])
def test_bad_reply_is_an_error_and_writes_nothing(tenant_a, complaint, store_a, public, body, message):
    ticket = web_ticket(tenant_a, complaint, store_a)
    before = rows(tenant_a)

    response = public.post(track_url(ticket), {"body": body})

    assert response.status_code == 400
    assert field_errors(response) == {"body": [message]}
    assert rows(tenant_a) == before


def test_reply_to_a_closed_ticket_is_refused(tenant_a, complaint, store_a, agent_a, public):
    ticket = web_ticket(tenant_a, complaint, store_a)
    with tenant_scope(tenant_a):
        ticket_status_change(ticket=ticket, action="cancel", actor=agent_a)
    assert 'data-testid="reply-form"' not in text(public.get(track_url(ticket)))
    before = rows(tenant_a)

    response = public.post(track_url(ticket), {"body": "为什么取消了？"})

    assert response.status_code == 400
    assert rows(tenant_a) == before


def test_reply_to_a_closed_ticket_says_why(tenant_a, complaint, store_a, agent_a, public):
    ticket = web_ticket(tenant_a, complaint, store_a)
    with tenant_scope(tenant_a):
        ticket_status_change(ticket=ticket, action="cancel", actor=agent_a)

    response = public.post(track_url(ticket), {"body": "为什么取消了？"})

    assert response.status_code == 400
    assert "This ticket is closed; please submit a new request." in text(response)


@time_machine.travel("2026-11-23 10:00:05 +0800", tick=False)
def test_replies_are_rate_limited(tenant_a, complaint, store_a, public):
    ticket = web_ticket(tenant_a, complaint, store_a)
    with override_settings(PUBLIC_FORM_RATE_PER_MINUTE=2):
        for n in range(2):
            assert public.post(track_url(ticket), {"body": f"第{n}次催单"}).status_code == 302
        before = rows(tenant_a)
        response = public.post(track_url(ticket), {"body": "第三次催单"})
    assert response.status_code == 429
    assert "Too many submissions" in text(response)
    assert rows(tenant_a) == before


# --- staff: new ticket --------------------------------------------------------------------------

@pytest.fixture
def agent(client_for, agent_a):
    return in_english(client_for(agent_a))


@pytest.fixture
def repair(tenant_a):
    """A simple published template: order_no (required, at most 20), amount (staff only), detail."""
    with tenant_scope(tenant_a):
        return published_template(tenant_a, name="报修", slug="repair", prefix="WX", category_code="repair",
                                  category_name="维修")


def create_url(template, **query):
    url = reverse("ticket-create", args=[template.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def staff_post(**overrides):
    """What the staff 'new ticket' form sends for a phone call from a new customer, plus `overrides`."""
    data = {
        "title": "", "description": "顾客来电：冰箱冷藏室不制冷", "priority": "normal", "source": "phone",
        "customer_id": "", "customer_name": "王五", "customer_phone": "139 0013 9000",
        "order_no": "BX20261123", "amount": "", "detail": "冷藏室温度 15 度",
    }
    data.update(overrides)
    return data


def test_choose_page_lists_the_published_templates(tenant_a, repair, agent):
    with tenant_scope(tenant_a):
        draft = template_from_preset(tenant=tenant_a, preset_slug="canyin_tousu", publish=False)
        customer = CustomerFactory(tenant=tenant_a)

    response = agent.get(reverse("ticket-new"), {"customer": customer.pk})

    assert response.status_code == 200
    body = text(response)
    assert "报修" in body and f'href="{create_url(repair, customer=customer.pk)}"' in body
    assert create_url(draft) not in body


@pytest.mark.parametrize("source, label", [("phone", "Phone"), ("staff", "Staff")])
def test_agent_creates_a_ticket_with_a_new_customer_inline(tenant_a, repair, agent, agent_a, source, label):
    response = agent.post(create_url(repair), staff_post(source=source))

    with tenant_scope(tenant_a):
        ticket = Ticket.objects.select_related("customer").get()
        assert response.status_code == 302
        assert response["Location"] == reverse("ticket-detail", args=[ticket.pk])
        assert ticket.source == source and ticket.created_by == agent_a
        assert ticket.raw_payload == {"entered_by": "agent_a"}
        assert (ticket.customer.name, ticket.customer.phone) == ("王五", "13900139000")
        assert ticket.title == "报修 · 王五"
        assert ticket.description == "顾客来电：冰箱冷藏室不制冷"
        assert ticket.data["order_no"] == "BX20261123" and ticket.data["detail"] == "冷藏室温度 15 度"
        [event] = TimelineEvent.objects.filter(ticket=ticket)
        assert event.kind == EventKind.CREATED and event.actor == agent_a
        assert event.text == f"Ticket created via {label}."
    assert rows(tenant_a)["tickets"] == 1 and rows(tenant_a)["customers"] == 1

    page = agent.get(response["Location"])
    assert f"Ticket {ticket.number} created." in text(page)


def test_agent_links_an_existing_customer(tenant_a, repair, agent):
    with tenant_scope(tenant_a):
        customer = CustomerFactory(tenant=tenant_a, name="赵六", phone="13700137000")

    response = agent.post(create_url(repair), staff_post(customer_id=customer.pk, customer_name="",
                                                         customer_phone="", source="staff"))

    assert response.status_code == 302
    with tenant_scope(tenant_a):
        ticket = Ticket.objects.get()
        assert ticket.customer == customer and ticket.source == Source.STAFF
        assert list(Customer.objects.all()) == [customer]


def test_new_ticket_form_renders_for_staff(tenant_a, repair, agent):
    response = agent.get(create_url(repair))
    assert response.status_code == 200
    body = text(response)
    assert "New ticket · 报修" in body
    for name in ("customer_id", "customer_name", "customer_phone", "title", "priority", "source", "order_no",
                 "amount", "detail"):
        assert f'name="{name}"' in body
    assert reverse("ticket-customer-search") in body


BAD_STAFF_INPUT = [
    pytest.param({"customer_name": "", "customer_phone": ""}, "customer_phone",
                 "Pick a customer or enter a phone number to create one.", id="no-customer"),
    pytest.param({"customer_phone": "010"}, "customer_phone",
                 "Enter a mainland mobile (e.g. 13812345678) or landline with area code (e.g. 021-62345678).",
                 id="bad-phone"),
    pytest.param({"order_no": ""}, "order_no", "This field is required.", id="missing-field"),
    pytest.param({"order_no": "X" * 21}, "order_no", "Ensure this value has at most 20 characters (it has 21).",
                 id="oversized-field"),
    pytest.param({"title": "标" * 201}, "title", "Ensure this value has at most 200 characters (it has 201).",
                 id="oversized-title"),
    pytest.param({"amount": "很多钱"}, "amount", "Enter a number.", id="bad-money"),
    pytest.param({"priority": "asap"}, "priority", "Select a valid choice. asap is not one of the available choices.",
                 id="bad-priority"),
    pytest.param({"source": "api"}, "source", "Select a valid choice. api is not one of the available choices.",
                 id="source-not-offered"),
]


@pytest.mark.parametrize("overrides, field, message", BAD_STAFF_INPUT)
def test_bad_new_ticket_input_is_a_field_error_and_writes_nothing(tenant_a, repair, agent, overrides, field, message):
    before = rows(tenant_a)

    response = agent.post(create_url(repair), staff_post(**overrides))

    assert response.status_code == 400
    errors = field_errors(response)
    assert list(errors) == [field] and errors[field][0] == message, errors
    assert rows(tenant_a) == before


def test_a_bad_phone_on_the_new_ticket_form_is_one_clear_error(tenant_a, repair, agent):
    response = agent.post(create_url(repair), staff_post(customer_phone="010"))

    assert response.status_code == 400
    assert field_errors(response) == {"customer_phone": [
        "Enter a mainland mobile (e.g. 13812345678) or landline with area code (e.g. 021-62345678)."]}


def test_new_ticket_from_a_customer_is_pre_linked(tenant_a, repair, agent):
    with tenant_scope(tenant_a):
        customer = CustomerFactory(tenant=tenant_a, name="孙八", phone="13600136000")

    page = agent.get(create_url(repair, customer=customer.pk))

    assert page.status_code == 200
    body = text(page)
    assert "孙八 · 13600136000" in body
    assert re.search(rf'name="customer_id" value="{customer.pk}"', body)
    response = agent.post(create_url(repair, customer=customer.pk),
                          staff_post(customer_id=customer.pk, customer_name="", customer_phone=""))
    assert response.status_code == 302
    with tenant_scope(tenant_a):
        assert Ticket.objects.get().customer == customer
        assert Customer.objects.count() == 1


def test_new_ticket_from_an_opportunity_links_it_and_its_customer(tenant_a, repair, agent):
    with tenant_scope(tenant_a):
        opportunity = OpportunityFactory(customer=CustomerFactory(tenant=tenant_a, name="周九"),
                                         title="中央空调安装")

    page = agent.get(create_url(repair, opportunity=opportunity.pk))

    assert page.status_code == 200
    body = text(page)
    assert "中央空调安装" in body and "周九" in body
    assert re.search(rf'name="customer_id" value="{opportunity.customer_id}"', body)
    response = agent.post(create_url(repair, opportunity=opportunity.pk),
                          staff_post(customer_id=opportunity.customer_id, customer_name="", customer_phone=""))
    assert response.status_code == 302
    with tenant_scope(tenant_a):
        ticket = Ticket.objects.get()
        assert ticket.opportunity == opportunity and ticket.customer_id == opportunity.customer_id


def test_another_tenants_customer_id_is_refused(tenant_a, tenant_b, repair, agent):
    with tenant_scope(tenant_b):
        stranger = CustomerFactory(tenant=tenant_b, name="外租户客户")
    before = rows(tenant_a)

    response = agent.post(create_url(repair), staff_post(customer_id=stranger.pk, customer_name="",
                                                         customer_phone=""))

    assert response.status_code == 400
    assert rows(tenant_a) == before


def test_another_tenants_opportunity_id_is_refused(tenant_a, tenant_b, repair, agent):
    with tenant_scope(tenant_b):
        stranger = OpportunityFactory(customer=CustomerFactory(tenant=tenant_b))
    before = rows(tenant_a)

    response = agent.post(create_url(repair, opportunity=stranger.pk), staff_post())

    assert response.status_code == 400
    assert rows(tenant_a) == before


def test_a_customer_or_opportunity_in_the_url_the_user_cannot_see_is_404(tenant_a, tenant_b, repair, agent):
    with tenant_scope(tenant_b):
        customer = CustomerFactory(tenant=tenant_b)
        opportunity = OpportunityFactory(customer=customer)
    assert agent.get(create_url(repair, customer=customer.pk)).status_code == 404
    assert agent.get(create_url(repair, opportunity=opportunity.pk)).status_code == 404


def test_a_regional_manager_cannot_file_for_a_customer_outside_their_regions(
        tenant_a, repair, store_a, regional_manager_a, client_for):
    with tenant_scope(tenant_a):
        north = RegionFactory(tenant=tenant_a, name="华北", code="north")
        StoreFactory(tenant=tenant_a, region=north, code="bj")
        theirs = CustomerFactory(tenant=tenant_a, name="华东客户", store=store_a, region=store_a.region)
    region_grant(user=regional_manager_a, region=north)
    manager = in_english(client_for(regional_manager_a))
    before = rows(tenant_a)

    response = manager.post(create_url(repair), staff_post(customer_id=theirs.pk, customer_name="",
                                                           customer_phone=""))

    assert response.status_code == 400
    assert "This customer does not exist or you may not see it" in text(response)
    assert rows(tenant_a) == before


def test_new_ticket_buttons_only_for_those_who_may_file_tickets(tenant_a, finance_a, agent, client_for):
    with tenant_scope(tenant_a):
        customer = CustomerFactory(tenant=tenant_a)
        OpportunityFactory(customer=customer)
    finance = in_english(client_for(finance_a))
    for client, shown in ((agent, True), (finance, False)):  # finance reads customers, files no tickets
        response = client.get(reverse("customer-detail", args=[customer.pk]))
        assert response.status_code == 200
        assert (f"{reverse('ticket-new')}?customer={customer.pk}" in text(response)) is shown
        assert (f"{reverse('ticket-new')}?opportunity=" in text(response)) is shown


def test_another_tenants_template_is_404(tenant_b, agent):
    with tenant_scope(tenant_b):
        theirs = published_template(tenant_b, slug="theirs", prefix="MJ")
    assert agent.get(create_url(theirs)).status_code == 404
    assert agent.post(create_url(theirs), staff_post()).status_code == 404
    with tenant_scope(tenant_b):
        assert Ticket.objects.count() == 0


def test_customer_page_offers_a_pre_linked_new_ticket(tenant_a, agent):
    with tenant_scope(tenant_a):
        customer = CustomerFactory(tenant=tenant_a)
    body = text(agent.get(reverse("customer-detail", args=[customer.pk])))
    assert f"{reverse('ticket-new')}?customer={customer.pk}" in body


def test_customer_search_lists_only_the_tenants_customers(tenant_a, tenant_b, agent, client_for, admin_b):
    with tenant_scope(tenant_a):
        mine = CustomerFactory(tenant=tenant_a, name="张三", phone="13800138000")
        CustomerFactory(tenant=tenant_a, name="李四", phone="13900000000")
    with tenant_scope(tenant_b):
        theirs = CustomerFactory(tenant=tenant_b, name="张三", phone="13800138000")
    url = reverse("ticket-customer-search")

    for q in ("1380013", "13800138000", "张三", "张"):
        response = agent.get(url, {"q": q})
        assert response.status_code == 200
        found = re.findall(r'data-customer-id="(\d+)"', response.content.decode())
        assert found == ([] if q == "张" else [str(mine.pk)]), q  # one character is too short to search
    assert 'data-customer-label="张三 · 13800138000"' in text(agent.get(url, {"q": "张三"}))
    assert "No customer found" in text(agent.get(url, {"q": "王二麻子"}))
    other = in_english(client_for(admin_b))
    assert re.findall(r'data-customer-id="(\d+)"', other.get(url, {"q": "张三"}).content.decode()) == [str(theirs.pk)]


# --- staff: ticket actions ----------------------------------------------------------------------

@pytest.fixture
def ticket(tenant_a, repair, store_a):
    """A phone ticket of a customer of 徐汇店 (region 华东)."""
    with tenant_scope(tenant_a):
        customer = CustomerFactory(tenant=tenant_a, name="钱七", store=store_a, region=store_a.region)
        return ticket_intake(tenant=tenant_a, source=Source.PHONE, template=repair, customer=customer,
                             data={"order_no": "BX0001"}, title="冰箱不制冷")


def action_url(ticket, action):
    return reverse("ticket-action", args=[ticket.pk, action])


def detail_url(ticket):
    return reverse("ticket-detail", args=[ticket.pk])


def test_ticket_page_shows_the_ticket(tenant_a, ticket, agent):
    response = agent.get(detail_url(ticket))
    assert response.status_code == 200
    body = text(response)
    assert ticket.number in body and "冰箱不制冷" in body and "钱七" in body and "BX0001" in body
    assert "Ticket created via Phone." in body


def test_internal_comment_with_a_file(tenant_a, ticket, agent, public):
    response = agent.post(action_url(ticket, "comment"), {
        "body": "已联系师傅，明早上门", "files": [upload("报价单.pdf", b"%PDF-1.4 quote")],
    })

    assert response.status_code == 302 and response["Location"] == detail_url(ticket)
    [comment] = events(tenant_a, ticket, EventKind.COMMENT)
    assert not comment.is_public and comment.message == "已联系师傅，明早上门"
    with tenant_scope(tenant_a):
        attachment = Attachment.objects.get()
    assert attachment.event_id == comment.pk and not attachment.is_public and attachment.name == "报价单.pdf"

    page = text(agent.get(detail_url(ticket)))
    assert "Comment added." in page and "已联系师傅，明早上门" in page and "Internal" in page
    assert reverse("ticket-attachment", args=[attachment.pk]) in page
    served = agent.get(reverse("ticket-attachment", args=[attachment.pk]))
    assert served.status_code == 200 and download(served) == b"%PDF-1.4 quote"
    assert "attachment" in served["Content-Disposition"]
    # The customer sees neither the comment nor its file.
    tracking = text(public.get(track_url(ticket)))
    assert "已联系师傅" not in tracking and "报价单.pdf" not in tracking
    assert public.get(reverse("ticket-public-attachment", args=[ticket.tracking_token, attachment.pk])).status_code \
        == 404


def test_public_comment_with_a_file_reaches_the_tracking_page(tenant_a, ticket, agent, public):
    with tenant_scope(tenant_a):
        other = ticket_intake(tenant=tenant_a, source=Source.PHONE, template=ticket.template,
                              customer=ticket.customer, data={"order_no": "BX0002"})

    response = agent.post(action_url(ticket, "comment"), {
        "body": "师傅明早 9 点上门", "is_public": "on", "files": [upload("上门须知.txt", "请保持电话畅通".encode())],
    })

    assert response.status_code == 302
    [comment] = events(tenant_a, ticket, EventKind.COMMENT)
    assert comment.is_public
    with tenant_scope(tenant_a):
        attachment = Attachment.objects.get()
    assert attachment.is_public and attachment.event_id == comment.pk
    tracking = text(public.get(track_url(ticket)))
    assert "师傅明早 9 点上门" in tracking and "上门须知.txt" in tracking
    file_url = reverse("ticket-public-attachment", args=[ticket.tracking_token, attachment.pk])
    assert file_url in tracking
    served = public.get(file_url)
    assert served.status_code == 200 and download(served) == "请保持电话畅通".encode()
    # Only through its own ticket's link.
    assert public.get(reverse("ticket-public-attachment", args=[other.tracking_token, attachment.pk])).status_code \
        == 404
    assert public.get(reverse("ticket-public-attachment", args=["ffff-nothing", attachment.pk])).status_code == 404


def test_pictures_show_as_thumbnails_on_both_pages(tenant_a, ticket, agent, public):
    agent.post(action_url(ticket, "comment"), {
        "body": "现场照片", "is_public": "on", "files": [upload("现场.png", PNG), upload("报价单.pdf", b"%PDF-1.4 q")],
    })
    with tenant_scope(tenant_a):
        picture, pdf = Attachment.objects.get(name="现场.png"), Attachment.objects.get(name="报价单.pdf")
    assert picture.content_type == "image/png"
    staff_page = agent.get(detail_url(ticket)).content.decode()
    tracking = public.get(track_url(ticket)).content.decode()
    for page, url_name, token in ((staff_page, "ticket-attachment", ()),
                                  (tracking, "ticket-public-attachment", (ticket.tracking_token,))):
        assert f'<img src="{reverse(url_name, args=[*token, picture.pk])}" alt="现场.png"' in page
        assert f'<img src="{reverse(url_name, args=[*token, pdf.pk])}"' not in page


@pytest.mark.parametrize("data, message", [
    ({"body": ""}, "Write a comment or attach a file."),
    ({"body": "   ", "is_public": "on"}, "Write a comment or attach a file."),
    ({"body": "字" * 10001}, "Ensure this value has at most 10000 characters (it has 10001)."),
    ({"body": "病毒", "files": lambda: [upload("run.exe", b"MZ")]}, "“run.exe”: this file type is not allowed"),
    ({"body": "空文件", "files": lambda: [upload("empty.pdf", b"")]}, "The submitted file is empty."),
    ({"body": "太多", "files": lambda: [upload(f"{i}.txt", b"x") for i in range(6)]}, "At most 5 files at once."),
])
def test_bad_comment_is_an_error_and_writes_nothing(tenant_a, ticket, agent, tmp_path, data, message):
    data = {k: v() if callable(v) else v for k, v in data.items()}
    before = rows(tenant_a)

    response = agent.post(action_url(ticket, "comment"), data)

    assert response.status_code == 400
    assert message in text(response)
    assert rows(tenant_a) == before
    assert media_files(tmp_path) == []


def test_assign_to_a_member_of_staff(tenant_a, ticket, agent, agent_a, engineer_a):
    response = agent.post(action_url(ticket, "assign"), {"assignee": engineer_a.pk})

    assert response.status_code == 302
    assert fresh(tenant_a, ticket).assignee == engineer_a
    [event] = events(tenant_a, ticket, EventKind.ASSIGNED)
    assert event.actor == agent_a
    assert event.change_rows == [{"field": "assignee", "label": "Assignee", "old": "—", "new": "engineer_a"}]
    page = text(agent.get(detail_url(ticket)))
    assert "Assignment saved." in page


def test_assign_to_a_user_of_another_tenant_is_refused(tenant_a, ticket, agent, admin_b):
    before = rows(tenant_a)

    response = agent.post(action_url(ticket, "assign"), {"assignee": admin_b.pk})

    assert response.status_code == 400
    assert "Select a valid choice. That choice is not one of the available choices." in text(response)
    assert fresh(tenant_a, ticket).assignee is None
    assert events(tenant_a, ticket, EventKind.ASSIGNED) == []
    assert rows(tenant_a) == before


def test_status_change(tenant_a, ticket, agent, agent_a):
    response = agent.post(action_url(ticket, "status"), {"to": "start", "note": "已派师傅"})

    assert response.status_code == 302
    assert fresh(tenant_a, ticket).status == Status.IN_PROGRESS
    [event] = events(tenant_a, ticket, EventKind.STATUS)
    assert event.is_public and event.message == "已派师傅" and event.actor == agent_a
    assert event.changes == [{"field": "status", "old": "new", "new": "in_progress"}]
    assert event.change_rows == [{"field": "status", "label": "Status", "old": "New", "new": "In progress"}]
    assert "Status changed." in text(agent.get(detail_url(ticket)))


@pytest.mark.parametrize("to, message", [
    ("reopen", "A ticket that is New cannot do that."),
    ("wait", "A ticket that is New cannot do that."),
    ("fly", "Unknown action."),
    ("", "Unknown action."),
])
def test_impossible_status_change_is_refused(tenant_a, ticket, agent, to, message):
    before = rows(tenant_a)

    response = agent.post(action_url(ticket, "status"), {"to": to})

    assert response.status_code == 400
    assert message in text(response)
    assert fresh(tenant_a, ticket).status == Status.NEW
    assert rows(tenant_a) == before


def test_split_into_child_tickets(tenant_a, ticket, agent):
    response = agent.post(action_url(ticket, "split"), {"titles": "上门安装\n\n  上门维修  \n", "template": ""})

    assert response.status_code == 302
    with tenant_scope(tenant_a):
        children = list(Ticket.objects.filter(parent_id=ticket.pk).order_by("id"))
    assert [c.title for c in children] == ["上门安装", "上门维修"]
    assert all(c.customer_id == ticket.customer_id and c.template_id == ticket.template_id for c in children)
    assert all(c.data["order_no"] == "BX0001" for c in children)
    [split] = events(tenant_a, ticket, EventKind.SPLIT)
    assert split.text == f"Split into {children[0].number}、{children[1].number}."
    parent_page = text(agent.get(detail_url(ticket)))
    assert "Split into 2 tickets." in parent_page
    assert all(c.number in parent_page for c in children)
    child_page = text(agent.get(detail_url(children[0])))
    assert "Split from" in child_page and f'href="{detail_url(ticket)}"' in child_page
    assert f"Split from {ticket.number}." in child_page


@pytest.mark.parametrize("titles, message", [
    ("  \n ", "This field is required."),
    ("\n".join(f"子工单{i}" for i in range(21)), "At most 20 child tickets at once."),
    ("长" * 201, "Each title may have at most 200 characters."),
])
def test_bad_split_writes_nothing(tenant_a, ticket, agent, titles, message):
    before = rows(tenant_a)

    response = agent.post(action_url(ticket, "split"), {"titles": titles, "template": ""})

    assert response.status_code == 400
    assert field_errors(response).get("titles") == [message]
    assert rows(tenant_a) == before


def test_merge_into_another_ticket_of_the_tenant(tenant_a, ticket, agent, public):
    with tenant_scope(tenant_a):
        target = ticket_intake(tenant=tenant_a, source=Source.WEB, template=ticket.template,
                               customer=ticket.customer, data={"order_no": "BX0002"}, title="冰箱还是不制冷")

    response = agent.post(action_url(ticket, "merge"), {"target_number": f"  {target.number.lower()} "})

    assert response.status_code == 302 and response["Location"] == detail_url(target)
    source = fresh(tenant_a, ticket)
    assert source.status == Status.CLOSED and source.merged_into_id == target.pk and source.closed_at
    assert fresh(tenant_a, target).status == Status.NEW
    [on_source] = events(tenant_a, ticket, EventKind.MERGED)
    [on_target] = events(tenant_a, target, EventKind.MERGED)
    assert on_source.text == f"Merged into {target.number}." and on_source.is_public
    assert on_target.text == f"{ticket.number} was merged into this ticket."

    target_page = text(agent.get(response["Location"]))
    assert f"Merged into {target.number}." in target_page  # the success message
    assert f"{ticket.number} was merged into this ticket." in target_page
    assert "Merged duplicate" in target_page and f'href="{detail_url(ticket)}"' in target_page
    source_page = text(agent.get(detail_url(ticket)))
    assert f'Merged into <a href="{detail_url(target)}">{target.number}</a>' in source_page
    assert f"Merged into {target.number}." in source_page  # its timeline
    assert "we handle them together" in text(public.get(track_url(ticket)))


@pytest.fixture
def ticket_b(tenant_b):
    """Tenant B's tickets use the same prefix: their second one has a number tenant A lacks."""
    with tenant_scope(tenant_b):
        template = published_template(tenant_b, slug="repair", prefix="WX")
        customer = CustomerFactory(tenant=tenant_b)
        for n in range(2):
            last = ticket_intake(tenant=tenant_b, source=Source.PHONE, template=template, customer=customer,
                                 data={"order_no": f"MJ{n}"})
    return last


@pytest.mark.parametrize("target, message", [
    ("other-tenant", "No ticket with this number."),
    ("unknown", "No ticket with this number."),
    ("itself", "A ticket cannot be merged into itself."),
    ("blank", "This field is required."),
])
def test_bad_merge_is_refused_and_changes_nothing(tenant_a, tenant_b, ticket, ticket_b, agent, target, message):
    number = {"other-tenant": ticket_b.number, "unknown": "WX-20000101-0001", "itself": ticket.number,
              "blank": ""}[target]
    assert ticket_b.number.endswith("-0002") and ticket.number.endswith("-0001")
    before, before_b = rows(tenant_a), rows(tenant_b)

    response = agent.post(action_url(ticket, "merge"), {"target_number": number})

    assert response.status_code == 400
    assert message in text(response)
    assert fresh(tenant_a, ticket).status == Status.NEW and fresh(tenant_a, ticket).merged_into_id is None
    assert fresh(tenant_b, ticket_b).status == Status.NEW
    assert (rows(tenant_a), rows(tenant_b)) == (before, before_b)


def test_unknown_action_is_404(tenant_a, ticket, agent):
    before = rows(tenant_a)
    assert agent.post(action_url(ticket, "explode")).status_code == 404
    assert rows(tenant_a) == before


# --- who may see a ticket -----------------------------------------------------------------------

@pytest.fixture
def outsider(request, tenant_a, client_for):
    """A user who must not see `ticket`: a regional manager of another region, or tenant B's admin."""
    if request.param == "regional-manager-of-another-region":
        user = request.getfixturevalue("regional_manager_a")
        with tenant_scope(tenant_a):
            north = RegionFactory(tenant=tenant_a, name="华北", code="north")
            StoreFactory(tenant=tenant_a, region=north, code="bj")
        region_grant(user=user, region=north)
    else:
        user = request.getfixturevalue("admin_b")
    return in_english(client_for(user))


ACTION_POSTS = [
    ("comment", {"body": "偷看"}),
    ("assign", {"assignee": ""}),
    ("status", {"to": "start"}),
    ("split", {"titles": "偷拆"}),
    ("merge", {"target_number": "WX-20000101-0001"}),
    ("edit", {"order_no": "HACKED"}),
]


@pytest.mark.parametrize("outsider", ["regional-manager-of-another-region", "admin-of-tenant-b"], indirect=True)
def test_a_user_who_cannot_see_the_ticket_gets_404_everywhere(tenant_a, ticket, agent, outsider):
    agent.post(action_url(ticket, "comment"), {"body": "附件", "files": [upload("a.txt", b"secret")]})
    with tenant_scope(tenant_a):
        attachment = Attachment.objects.get()
    before = rows(tenant_a)

    assert outsider.get(detail_url(ticket)).status_code == 404
    for action, data in ACTION_POSTS:
        assert outsider.post(action_url(ticket, action), data).status_code == 404, action
        assert outsider.get(action_url(ticket, action), HTTP_HX_REQUEST="true").status_code == 404, action
    assert outsider.get(reverse("ticket-attachment", args=[attachment.pk])).status_code == 404

    assert rows(tenant_a) == before
    after = fresh(tenant_a, ticket)
    assert (after.status, after.assignee_id, after.data["order_no"]) == (Status.NEW, None, "BX0001")


def test_a_regional_manager_of_the_tickets_region_sees_it(tenant_a, ticket, store_a, regional_manager_a, client_for):
    region_grant(user=regional_manager_a, region=store_a.region)
    manager = in_english(client_for(regional_manager_a))
    assert manager.get(detail_url(ticket)).status_code == 200
    assert manager.post(action_url(ticket, "comment"), {"body": "区域经理已跟进"}).status_code == 302
    assert [e.message for e in events(tenant_a, ticket, EventKind.COMMENT)] == ["区域经理已跟进"]


# --- health -------------------------------------------------------------------------------------

def test_healthz_reports_database_cache_and_broker(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "cache": "ok", "broker": "ok"}}
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


def test_healthz_live_only_says_the_process_answers(client):
    response = client.get("/healthz", {"live": "1"})
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_healthz_is_503_when_the_broker_is_down(client, monkeypatch):
    from scrm.celery import app

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(app, "connection_for_write", refuse)
    response = client.get("/healthz")
    assert response.status_code == 503
    payload = response.json()
    assert payload["status"] == "degraded"
    assert payload["checks"] == {"database": "ok", "cache": "ok", "broker": "error: ConnectionRefusedError"}


def test_healthz_takes_only_get(client):
    assert client.post("/healthz").status_code == 405


# --- everyday use (issue 14, item 8) -----------------------------------------------------------

def test_a_chosen_photo_is_named_for_choosing_again_after_an_error(tenant_a, complaint, store_a, public):
    response = public.post(FORM_URL, {**complaint_post(store_a, description=""), "photos": [upload("菜.png", PNG)]})
    assert response.status_code == 400
    body = response.content.decode()
    assert 'data-reselect="photos"' in body and "菜.png" in body
    with tenant_scope(tenant_a):
        assert not Ticket.objects.exists() and not Attachment.objects.exists()


def test_store_picker_is_grouped_by_region_and_searchable(tenant_a, complaint, store_a, public):
    body = public.get(FORM_URL).content.decode()
    assert f'<optgroup label="{store_a.region.name}">' in body
    assert 'data-searchable="1"' in body and "js/select_search.js" in body
