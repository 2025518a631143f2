"""The field-service pages as the engineer and the manager use them: 今日任务, the visit page and its
JSON actions (check-in/out, photo, signature), the manager's day of check-ins; the ticket and
tracking pages showing the visit; bad input, other tenants and other engineers refused."""

import datetime

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from scrm.models import Role
from tests.conftest import make_member
from tests.visits_helpers import jpeg_upload, signature_upload, visit_template, visit_ticket
from tickets.models import SiteVisit, TimelineEvent

pytestmark = pytest.mark.django_db

NEAR = {"lat": "31.230900", "lng": "121.473700", "accuracy": "15"}
FAR = {"lat": "31.680000", "lng": "121.473700"}


@pytest.fixture(autouse=True)
def _wgs84_sites(settings):
    settings.FIELDSERVICE_DATUM = "wgs84"
    settings.FIELDSERVICE_RADIUS_M = 300


@pytest.fixture
def ticket(scope_a, engineer_a):
    at = timezone.localtime().replace(hour=14, minute=0, second=0, microsecond=0)
    return visit_ticket(scope_a, engineer=engineer_a, appointment=at)


def act(client, ticket, action, data=None, files=None):
    return client.post(reverse("field-visit-action", args=[ticket.pk, action]), {**(data or {}), **(files or {})})


def test_today_lists_the_engineers_visits_in_time_order(scope_a, engineer_a, client_for):
    template = visit_template(scope_a)
    day = timezone.localtime()
    late = visit_ticket(scope_a, engineer=engineer_a, template=template, title="热水器维修",
                        appointment=day.replace(hour=16, minute=30))
    early = visit_ticket(scope_a, engineer=engineer_a, template=template, title="空调安装",
                         appointment=day.replace(hour=9, minute=0))
    tomorrow = visit_ticket(scope_a, engineer=engineer_a, template=template, title="明天的单",
                            appointment=day + datetime.timedelta(days=1))
    visit_ticket(scope_a, template=template, title="别人的单", appointment=day)  # not theirs
    response = client_for(engineer_a).get(reverse("field-today"))
    assert response.status_code == 200
    today = [row.ticket.pk for row in response.context["today"]]
    assert today == [early.pk, late.pk]
    assert [row.ticket.pk for row in response.context["later"]] == [tomorrow.pk]
    body = response.content.decode()
    assert "https://uri.amap.com/navigation?to=121.4737%2C31.2304" in body
    assert 'href="tel:13912345678"' in body and "别人的单" not in body
    assert 'data-testid="parts-slot"' not in body and 'data-testid="earnings-slot"' not in body


def test_today_is_bounded_in_queries(scope_a, engineer_a, client_for, django_assert_max_num_queries):
    template = visit_template(scope_a)
    client = client_for(engineer_a)
    visit_ticket(scope_a, engineer=engineer_a, template=template, appointment=timezone.localtime())
    with django_assert_max_num_queries(14) as few:
        client.get(reverse("field-today"))
    for _ in range(8):
        visit_ticket(scope_a, engineer=engineer_a, template=template, appointment=timezone.localtime())
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(reverse("field-today"))
    assert len(response.context["today"]) == 9


def test_engineer_checks_in_near_the_site(ticket, engineer_a, client_for):
    response = act(client_for(engineer_a), ticket, "checkin", NEAR)
    assert response.status_code == 200 and response.json()["ok"]
    visit = SiteVisit.objects.get(ticket=ticket)
    assert visit.verdict == "within" and visit.in_accuracy_m == 15


def test_far_checkin_asks_for_a_reason_and_flags(ticket, engineer_a, client_for, manager_a):
    client = client_for(engineer_a)
    response = act(client, ticket, "checkin", FAR)
    assert response.status_code == 400
    assert response.json()["needs_reason"] and response.json()["field"] == "reason"
    assert not SiteVisit.objects.filter(ticket=ticket).exists()
    response = act(client, ticket, "checkin", {**FAR, "reason": "客户在隔壁仓库"})
    assert response.status_code == 200
    # The manager sees it among the day's flagged check-ins and marks it reviewed.
    manager = client_for(manager_a)
    page = manager.get(reverse("field-checkins"), {"flagged": "1"})
    assert page.status_code == 200 and "客户在隔壁仓库" in page.content.decode()
    assert page.context["pending"] == 1 and len(page.context["plot"]) == 1
    visit = SiteVisit.objects.get(ticket=ticket)
    assert manager.post(reverse("field-checkin-review", args=[visit.pk])).status_code == 302
    visit.refresh_from_db()
    assert visit.reviewed_by == manager_a


def test_no_location_checkin_with_reason_and_photo(ticket, engineer_a, client_for):
    client = client_for(engineer_a)
    assert act(client, ticket, "checkin", {"reason": "企业微信未授权定位"}).json()["needs_reason"]
    response = act(client, ticket, "checkin", {"reason": "企业微信未授权定位"}, {"photo": jpeg_upload()})
    assert response.status_code == 200
    assert SiteVisit.objects.get(ticket=ticket).verdict == "no_location"


@pytest.mark.parametrize("data", [
    {"lat": "91", "lng": "121"}, {"lat": "NaN", "lng": "121"}, {"lat": "31.2"}, {"lat": "x", "lng": "y"},
    {"lat": "31.23", "lng": "121.47", "reason": "长" * 501},
])
def test_bad_checkin_input_is_a_clear_400_and_writes_nothing(ticket, engineer_a, client_for, data):
    response = act(client_for(engineer_a), ticket, "checkin", data)
    assert response.status_code == 400 and response.json()["error"]
    assert not SiteVisit.objects.filter(ticket=ticket).exists()
    assert not TimelineEvent.objects.filter(ticket=ticket, code="ticket.site_checkin").exists()


def test_someone_not_holding_the_ticket_is_refused(ticket, tenant_a, client_for, agent_a):
    # An agent sees every ticket of the tenant but does not hold this one.
    response = act(client_for(agent_a), ticket, "checkin", NEAR)
    assert response.status_code == 400 and response.json()["error"] == "只有此工单的处理工程师可以操作。"
    page = client_for(agent_a).get(reverse("field-visit", args=[ticket.pk]))
    assert 'data-testid="not-holder"' in page.content.decode()
    assert not SiteVisit.objects.filter(ticket=ticket).exists()


def test_another_tenant_gets_404_and_nothing_is_written(ticket, tenant_b, client_for):
    outsider = make_member(tenant_b, Role.ENGINEER, "engineer_b")
    client = client_for(outsider)
    for action in ("checkin", "checkout", "photo", "signature"):
        assert act(client, ticket, action, NEAR).status_code == 404
    assert client.get(reverse("field-visit", args=[ticket.pk])).status_code == 404
    assert not SiteVisit.objects.filter(ticket=ticket).exists()


def test_full_visit_shows_on_ticket_and_tracking_pages(ticket, engineer_a, client_for, admin_a, client):
    engineer = client_for(engineer_a)
    assert act(engineer, ticket, "checkin", NEAR).status_code == 200
    photo = act(engineer, ticket, "photo", {"phase": "after", "is_public": "1"}, {"photo": jpeg_upload("done.jpg")})
    assert photo.status_code == 200 and photo.json()["ok"]
    signed = act(engineer, ticket, "signature", {"signer_name": "王女士", "rating": "5"},
                 {"signature": signature_upload()})
    assert signed.status_code == 200, signed.content
    assert act(engineer, ticket, "checkout", NEAR).status_code == 200
    visit_page = engineer.get(reverse("field-visit", args=[ticket.pk])).content.decode()
    assert 'data-testid="visit-signature"' in visit_page and "done.jpg" in visit_page
    detail = client_for(admin_a).get(reverse("ticket-detail", args=[ticket.pk])).content.decode()
    assert 'data-testid="site-visits"' in detail and "王女士" in detail and "done.jpg" in detail
    track = client.get(reverse("ticket-track", args=[ticket.tracking_token])).content.decode()
    assert 'data-testid="track-visit"' in track and "engineer_a" in track and "done.jpg" in track
    assert "signature-" not in track  # the signature image stays internal


@pytest.mark.parametrize("files, data", [
    ({}, {"phase": "before"}),
    ({"photo": "pdf"}, {"phase": "before"}),
    ({"photo": "big"}, {"phase": "after"}),
    ({"photo": "ok"}, {"phase": ""}),
])
def test_bad_photo_uploads(ticket, engineer_a, client_for, files, data):
    from django.core.files.uploadedfile import SimpleUploadedFile

    made = {"pdf": SimpleUploadedFile("a.jpg", b"%PDF-1.4", content_type="image/jpeg"),
            "big": jpeg_upload(size=40 * 1024 * 1024), "ok": jpeg_upload()}
    response = act(client_for(engineer_a), ticket, "photo", data, {k: made[v] for k, v in files.items()})
    assert response.status_code == 400 and response.json()["error"]
    assert not ticket.attachments.exists()


def test_empty_signature_is_refused(ticket, engineer_a, client_for):
    client = client_for(engineer_a)
    act(client, ticket, "checkin", NEAR)
    response = act(client, ticket, "signature", {}, {"signature": signature_upload(ink=False)})
    assert response.status_code == 400 and response.json()["field"] == "signature"
    assert SiteVisit.objects.get(ticket=ticket).signature_id is None


def test_unknown_action_is_404_and_get_redirects(ticket, engineer_a, client_for):
    client = client_for(engineer_a)
    assert act(client, ticket, "teleport").status_code == 404
    assert client.get(reverse("field-visit-action", args=[ticket.pk, "checkin"])).status_code == 302


def test_checkins_page_is_bounded_and_managers_only(scope_a, engineer_a, manager_a, client_for,
                                                   django_assert_max_num_queries):
    from tickets.services import site_checkin

    template = visit_template(scope_a)
    client = client_for(manager_a)
    site_checkin(ticket=visit_ticket(scope_a, engineer=engineer_a, template=template), actor=engineer_a,
                 lat=NEAR["lat"], lng=NEAR["lng"])
    with django_assert_max_num_queries(12) as few:
        client.get(reverse("field-checkins"))
    for _ in range(6):
        site_checkin(ticket=visit_ticket(scope_a, engineer=engineer_a, template=template), actor=engineer_a,
                     lat=FAR["lat"], lng=FAR["lng"], reason="改约地点")
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(reverse("field-checkins"), {"day": timezone.localdate().isoformat()})
    assert len(response.context["visits"]) == 7 and response.context["pending"] == 6
    assert client.get(reverse("field-checkins"), {"day": "not-a-day"}).status_code == 200
    assert client_for(engineer_a).get(reverse("field-checkins")).status_code == 403


def test_depart_tells_the_customer_and_bad_eta_or_non_holder_write_nothing(ticket, engineer_a, agent_a, client_for):
    eta = (timezone.localtime() + datetime.timedelta(minutes=40)).strftime("%Y-%m-%dT%H:%M")
    events = TimelineEvent.objects.filter(ticket=ticket, code="ticket.on_the_way")
    for client, data in ((client_for(engineer_a), {"eta": "yesterday"}), (client_for(engineer_a), {}),
                         (client_for(engineer_a), {"eta": "2020-01-01T10:00"}), (client_for(agent_a), {"eta": eta})):
        response = act(client, ticket, "depart", data)
        assert response.status_code == 400 and response.json()["error"]
    assert not events.exists()
    response = act(client_for(engineer_a), ticket, "depart", {"eta": eta})
    assert response.status_code == 200 and response.json()["ok"]
    assert events.count() == 1 and eta[-5:] in events.get().text
    track = Client().get(reverse("ticket-track", args=[ticket.tracking_token])).content.decode()
    assert 'data-testid="track-eta"' in track and eta[-5:] in track and "engineer_a" in track


def test_today_shows_the_parts_to_bring_and_the_days_earnings(ticket, scope_a, engineer_a, client_for):
    from decimal import Decimal

    from settlement.models import Party, SettlementLine
    from settlement.services.lines import lines_store
    from spareparts import services as parts

    compressor = parts.part_create(tenant=scope_a, sku="YSJ-15", name="压缩机 1.5匹")
    store = parts.warehouse_create(tenant=scope_a, code="sh", name="上海中心仓", kind="central")
    parts.stock_receive(warehouse=store, part=compressor, quantity=3, actor=None)
    parts.stock_reserve(ticket=ticket, part=compressor, quantity=1, actor=None)
    party = Party.objects.create(tenant=scope_a, kind="engineer", name="孙师傅", code="sun", user=engineer_a)
    lines_store([(SettlementLine(tenant=scope_a, party=party, ticket=ticket, amount=Decimal("230.00"), kind="ticket",
                                 role="engineer", period_date=timezone.localdate()), [])])
    body = client_for(engineer_a).get(reverse("field-today")).content.decode()
    assert 'data-testid="parts-slot"' in body and "压缩机 1.5匹 · 上海中心仓 ×1" in body
    assert 'data-testid="earnings-slot"' in body and "230.00" in body and reverse("settlement-me") in body


def test_the_template_keeps_site_photos_internal(ticket, engineer_a, client_for):
    from tickets.models import Attachment

    ticket.template.site_photos_public = False
    ticket.template.save(update_fields=["site_photos_public"])
    client = client_for(engineer_a)
    assert 'data-testid="photos-internal"' in client.get(reverse("field-visit", args=[ticket.pk])).content.decode()
    photo = act(client, ticket, "photo", {"phase": "after", "is_public": "1"}, {"photo": jpeg_upload("done.jpg")})
    assert photo.status_code == 200
    assert Attachment.objects.get(pk=photo.json()["id"]).is_public is False
    track = Client().get(reverse("ticket-track", args=[ticket.tracking_token])).content.decode()
    assert "done.jpg" not in track
