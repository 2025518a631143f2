"""Site visits (tickets/services/visits.py): check-in verified by distance, check-out with the time
on site, photos, the customer's signature — and every refused one writes nothing."""

import datetime
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Q
from django.utils import translation

from scrm.models import Role
from tests.conftest import make_member
from tests.visits_helpers import SITE, jpeg_upload, png, signature_upload, store_at, visit_ticket
from tickets.extensions import ticket_ids_q
from tickets.geo import Point, distance_m, png_has_ink, point_parse, wgs84_to_gcj02
from tickets.models import Attachment, SiteVisit, Ticket, TimelineEvent
from tickets.selectors_visits import onsite_minutes, onsite_minutes_by_ticket, ticket_site_point
from tickets.services import (
    site_checkin,
    site_checkin_review,
    site_checkout,
    site_photo_add,
    site_signature_add,
)

pytestmark = pytest.mark.django_db

NEAR = (31.230900, 121.473700)  # ~56 m north of the site
FAR = (31.680000, 121.473700)  # ~50 km north


@pytest.fixture(autouse=True)
def _wgs84_sites(settings):
    # The tests give positions in the sites' own datum; one test below covers the GCJ-02 shift.
    settings.FIELDSERVICE_DATUM = "wgs84"
    settings.FIELDSERVICE_RADIUS_M = 300


@pytest.fixture(autouse=True)
def _english():
    # The messages are matched in English; the product's default language is zh-hans.
    with translation.override("en"):
        yield


@pytest.fixture
def ticket(scope_a, engineer_a):
    return visit_ticket(scope_a, engineer=engineer_a)


def written(ticket):
    return (SiteVisit.objects.filter(ticket=ticket).count(), TimelineEvent.objects.filter(ticket=ticket).count(),
            Attachment.objects.filter(ticket=ticket).count())


def test_checkin_near_the_site_is_accepted(ticket, engineer_a):
    visit = site_checkin(ticket=ticket, actor=engineer_a, lat=NEAR[0], lng=NEAR[1], accuracy="12.5")
    assert (visit.verdict, visit.flagged, visit.in_accuracy_m) == ("within", False, 12)
    assert 50 <= visit.in_distance_m <= 60 and visit.site_source == "address" and visit.radius_m == 300
    event = TimelineEvent.objects.get(ticket=ticket, code="ticket.site_checkin")
    assert event.is_public and "engineer_a" in event.text


def test_checkin_50km_away_needs_a_reason_then_is_flagged(ticket, engineer_a):
    before = written(ticket)
    with pytest.raises(ValidationError) as refused:
        site_checkin(ticket=ticket, actor=engineer_a, lat=FAR[0], lng=FAR[1])
    assert "reason" in refused.value.message_dict and refused.value.error_dict["reason"][0].code == "needs_reason"
    assert written(ticket) == before
    visit = site_checkin(ticket=ticket, actor=engineer_a, lat=FAR[0], lng=FAR[1], reason="客户临时改到仓库安装")
    assert visit.verdict == "outside" and visit.flagged and visit.in_distance_m > 49_000
    assert visit.reason == "客户临时改到仓库安装"


@pytest.mark.parametrize("lat, lng", [
    ("91", "121"), ("-90.5", "0"), ("31", "181"), ("NaN", "121"), ("31", "inf"), ("abc", "121"), ("31", ""),
    ("", "121"), ("1" * 40, "121"), (True, "121"),
])
def test_bad_coordinates_are_refused_and_write_nothing(ticket, engineer_a, lat, lng):
    before = written(ticket)
    with pytest.raises(ValidationError) as refused:
        site_checkin(ticket=ticket, actor=engineer_a, lat=lat, lng=lng, reason="x", photo=jpeg_upload())
    assert "position" in refused.value.message_dict
    assert written(ticket) == before


def test_no_location_needs_reason_and_photo(ticket, engineer_a):
    before = written(ticket)
    for kwargs in ({}, {"reason": "定位权限被企业微信拒绝"}, {"photo": jpeg_upload()}):
        with pytest.raises(ValidationError):
            site_checkin(ticket=ticket, actor=engineer_a, **kwargs)
    assert written(ticket) == before
    visit = site_checkin(ticket=ticket, actor=engineer_a, reason="定位权限被企业微信拒绝", photo=jpeg_upload())
    assert visit.verdict == "no_location" and visit.flagged and visit.in_photo.field_key == "site_checkin"
    assert not visit.in_photo.is_public


def test_no_location_with_a_photo_that_is_not_an_image_writes_nothing(ticket, engineer_a):
    before = written(ticket)
    fake = SimpleUploadedFile("site.jpg", b"MZ\x90\x00 not an image", content_type="image/jpeg")
    with pytest.raises(ValidationError):
        site_checkin(ticket=ticket, actor=engineer_a, reason="没有信号", photo=fake)
    assert written(ticket) == before


def test_checkin_twice_is_refused(ticket, engineer_a):
    site_checkin(ticket=ticket, actor=engineer_a, lat=NEAR[0], lng=NEAR[1])
    before = written(ticket)
    with pytest.raises(ValidationError, match="already checked in"):
        site_checkin(ticket=ticket, actor=engineer_a, lat=NEAR[0], lng=NEAR[1])
    assert written(ticket) == before


def test_checkin_on_someone_elses_task_is_refused(ticket, tenant_a):
    other = make_member(tenant_a, Role.ENGINEER, "engineer_other")
    before = written(ticket)
    with pytest.raises(ValidationError, match="holding this ticket"):
        site_checkin(ticket=ticket, actor=other, lat=NEAR[0], lng=NEAR[1])
    assert written(ticket) == before


def test_checkout_before_checkin_is_refused(ticket, engineer_a):
    before = written(ticket)
    with pytest.raises(ValidationError, match="Check in before"):
        site_checkout(ticket=ticket, actor=engineer_a, lat=NEAR[0], lng=NEAR[1])
    assert written(ticket) == before


def test_checkout_records_minutes_on_site_for_settlement(ticket, engineer_a):
    start = datetime.datetime(2026, 12, 7, 10, 0, tzinfo=datetime.UTC)
    with time_machine.travel(start, tick=False):
        site_checkin(ticket=ticket, actor=engineer_a, lat=NEAR[0], lng=NEAR[1])
    with time_machine.travel(start + datetime.timedelta(minutes=47, seconds=50), tick=False):
        visit = site_checkout(ticket=ticket, actor=engineer_a, lat=SITE[0], lng=SITE[1])
    assert visit.minutes_on_site == 47 and visit.out_distance_m == 0 and not visit.out_flagged
    assert onsite_minutes(ticket=ticket) == 47
    assert onsite_minutes_by_ticket(ticket_ids=[ticket.pk]) == {ticket.pk: 47}
    assert "47" in TimelineEvent.objects.get(ticket=ticket, code="ticket.site_checkout").text
    # A second visit (a return trip) adds up.
    with time_machine.travel(start + datetime.timedelta(hours=3), tick=False):
        site_checkin(ticket=ticket, actor=engineer_a, lat=NEAR[0], lng=NEAR[1])
    with time_machine.travel(start + datetime.timedelta(hours=3, minutes=20), tick=False):
        site_checkout(ticket=ticket, actor=engineer_a)
    assert onsite_minutes(ticket=ticket) == 67
    # A run's batch of ids around it (read as a range): only the tickets asked for answer.
    assert onsite_minutes_by_ticket(ticket_ids=[*range(ticket.pk - 150, ticket.pk), ticket.pk + 1]) == {}
    assert onsite_minutes_by_ticket(ticket_ids=range(ticket.pk - 150, ticket.pk + 1)) == {ticket.pk: 67}


def test_ticket_ids_q_reads_a_dense_batch_as_a_range():
    assert ticket_ids_q(range(1000, 1200)) == Q(ticket_id__gte=1000, ticket_id__lte=1199)
    assert ticket_ids_q([9, 3]) == Q(ticket_id__in=[3, 9])
    assert ticket_ids_q(range(0, 1000, 7), field="pk") == Q(pk__in=list(range(0, 1000, 7)))  # scattered


def test_checkout_far_from_the_site_is_flagged(ticket, engineer_a):
    site_checkin(ticket=ticket, actor=engineer_a, lat=NEAR[0], lng=NEAR[1])
    visit = site_checkout(ticket=ticket, actor=engineer_a, lat=FAR[0], lng=FAR[1])
    assert visit.out_flagged and visit.out_distance_m > 49_000


def test_the_store_is_the_site_when_the_address_has_no_coordinates(scope_a, engineer_a):
    store = store_at(scope_a, Decimal("30.274100"), Decimal("120.155100"))
    ticket = visit_ticket(scope_a, engineer=engineer_a, site=None, store=store)
    assert ticket_site_point(ticket) == (Point(Decimal("30.274100"), Decimal("120.155100")), "store")
    visit = site_checkin(ticket=ticket, actor=engineer_a, lat="30.2742", lng="120.1551")
    assert visit.verdict == "within" and visit.site_source == "store"


def test_a_site_without_coordinates_is_accepted_unverified(scope_a, engineer_a):
    ticket = visit_ticket(scope_a, engineer=engineer_a, site=None)
    visit = site_checkin(ticket=ticket, actor=engineer_a, lat=NEAR[0], lng=NEAR[1])
    assert visit.verdict == "no_site" and not visit.flagged and visit.in_distance_m is None


def test_phone_positions_are_shifted_into_gcj02(ticket, engineer_a, settings):
    settings.FIELDSERVICE_DATUM = "gcj02"
    # A GPS position ~555 m from its GCJ-02 spelling: standing on the site, the phone reports this.
    gps = Point(Decimal("31.232400"), Decimal("121.469200"))
    shifted = wgs84_to_gcj02(gps)
    assert 400 < distance_m(gps, shifted) < 700
    site = Point(Decimal(str(SITE[0])), Decimal(str(SITE[1])))
    visit = site_checkin(ticket=ticket, actor=engineer_a, lat=gps.lat, lng=gps.lng)
    assert visit.in_distance_m == distance_m(shifted, site)


def test_photo_before_and_after_on_the_timeline(ticket, engineer_a):
    attachment = site_photo_add(ticket=ticket, actor=engineer_a, upload=jpeg_upload(), phase="before", node="上门安装")
    assert attachment.field_key == "site_before" and attachment.is_public
    event = attachment.event
    assert event.code == "ticket.site_photo" and event.params["node"] == "上门安装" and event.is_public
    internal = site_photo_add(ticket=ticket, actor=engineer_a, upload=jpeg_upload(), phase="after", is_public=False)
    assert not internal.is_public and not internal.event.is_public


@pytest.mark.parametrize("upload, phase", [
    (None, "before"),
    ("not-an-image", "before"),
    ("40mb", "after"),
    ("ok", "during"),
])
def test_bad_photos_are_refused_and_write_nothing(ticket, engineer_a, upload, phase):
    files = {
        None: None,
        "not-an-image": SimpleUploadedFile("x.jpg", b"%PDF-1.4 not a photo", content_type="image/jpeg"),
        "40mb": jpeg_upload(size=40 * 1024 * 1024),
        "ok": jpeg_upload(),
    }
    before = written(ticket)
    with pytest.raises(ValidationError):
        site_photo_add(ticket=ticket, actor=engineer_a, upload=files[upload], phase=phase)
    assert written(ticket) == before


def test_photo_by_someone_not_holding_the_ticket_is_refused(ticket, tenant_a):
    other = make_member(tenant_a, Role.ENGINEER, "engineer_other")
    before = written(ticket)
    with pytest.raises(ValidationError):
        site_photo_add(ticket=ticket, actor=other, upload=jpeg_upload(), phase="before")
    assert written(ticket) == before


def test_signature_is_kept_with_time_and_place(ticket, engineer_a):
    site_checkin(ticket=ticket, actor=engineer_a, lat=NEAR[0], lng=NEAR[1])
    visit = site_signature_add(ticket=ticket, actor=engineer_a, upload=signature_upload(), signer_name="王女士",
                               rating="5", lat=SITE[0], lng=SITE[1])
    assert visit.signature.content_type == "image/png" and visit.signature.field_key == "site_signature"
    assert not visit.signature.is_public and visit.signed_at and visit.rating == 5
    assert visit.sign_lat == Decimal("31.230400")
    assert "王女士" in TimelineEvent.objects.get(ticket=ticket, code="ticket.site_signed").text


@pytest.mark.parametrize("upload, extra, field", [
    (lambda: None, {}, "signature"),
    (lambda: signature_upload(ink=False), {}, "signature"),  # an empty pad
    (lambda: SimpleUploadedFile("s.png", b"GIF89a....", content_type="image/png"), {}, "signature"),
    (lambda: SimpleUploadedFile("s.png", png()[:40], content_type="image/png"), {}, "signature"),
    (lambda: SimpleUploadedFile("s.png", b"\x89PNG" + b"\x00" * (1024 * 1024 + 1)), {}, "signature"),
    (signature_upload, {"rating": "9"}, "rating"),
    (signature_upload, {"signer_name": "王" * 41}, "signer_name"),
    (signature_upload, {"lat": "95", "lng": "121"}, "position"),
])
def test_bad_signatures_are_refused_and_write_nothing(ticket, engineer_a, upload, extra, field):
    site_checkin(ticket=ticket, actor=engineer_a, lat=NEAR[0], lng=NEAR[1])
    before = written(ticket)
    with pytest.raises(ValidationError) as refused:
        site_signature_add(ticket=ticket, actor=engineer_a, upload=upload(), **extra)
    assert field in refused.value.message_dict
    assert written(ticket) == before
    assert SiteVisit.objects.get(ticket=ticket).signed_at is None


def test_signature_needs_a_visit_and_is_taken_once(ticket, engineer_a):
    with pytest.raises(ValidationError, match="Check in before"):
        site_signature_add(ticket=ticket, actor=engineer_a, upload=signature_upload())
    site_checkin(ticket=ticket, actor=engineer_a, lat=NEAR[0], lng=NEAR[1])
    site_signature_add(ticket=ticket, actor=engineer_a, upload=signature_upload())
    before = written(ticket)
    with pytest.raises(ValidationError, match="already signed"):
        site_signature_add(ticket=ticket, actor=engineer_a, upload=signature_upload())
    assert written(ticket) == before


def test_review_of_a_flagged_checkin(ticket, engineer_a, manager_a):
    visit = site_checkin(ticket=ticket, actor=engineer_a, lat=FAR[0], lng=FAR[1], reason="门店搬迁")
    site_checkin_review(visit=visit, actor=manager_a)
    visit.refresh_from_db()
    assert visit.reviewed_by == manager_a and visit.reviewed_at
    with pytest.raises(ValidationError):
        site_checkin_review(visit=visit, actor=manager_a)


def test_a_flag_without_reason_is_refused_by_the_database(ticket, engineer_a):
    from django.db import IntegrityError, transaction

    visit = site_checkin(ticket=ticket, actor=engineer_a, lat=NEAR[0], lng=NEAR[1])
    with pytest.raises(IntegrityError), transaction.atomic():
        SiteVisit.objects.filter(pk=visit.pk).update(flagged=True)


def test_geo_parsing_and_png_ink():
    assert point_parse("", None) is None
    assert point_parse("31.2304001", 121.4737) == Point(Decimal("31.230400"), Decimal("121.473700"))
    assert png_has_ink(png()) and not png_has_ink(png(ink=False))
    with pytest.raises(ValueError):
        png_has_ink(b"not a png")


def test_a_visit_can_end_after_the_ticket_is_resolved_but_none_starts(ticket, engineer_a):
    from workflow.lifecycle import ticket_status_change

    site_checkin(ticket=ticket, actor=engineer_a, lat=NEAR[0], lng=NEAR[1])
    ticket_status_change(ticket=ticket, action="resolve", actor=engineer_a)
    ticket = Ticket.objects.get(pk=ticket.pk)
    site_signature_add(ticket=ticket, actor=engineer_a, upload=signature_upload())
    assert site_checkout(ticket=ticket, actor=engineer_a).minutes_on_site == 0
    before = written(ticket)
    with pytest.raises(ValidationError, match="open ticket"):
        site_checkin(ticket=ticket, actor=engineer_a, lat=NEAR[0], lng=NEAR[1])
    with pytest.raises(ValidationError, match="open ticket"):
        site_photo_add(ticket=ticket, actor=engineer_a, upload=jpeg_upload(), phase="after")
    assert written(ticket) == before
