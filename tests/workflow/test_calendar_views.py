"""The business calendar pages as a manager uses them: list, create (typed hours, bad hours
refused with the error on the field and nothing written), edit, import the China holiday file
(a bad file changes nothing), another tenant's calendar 404, and the list's query count."""

from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from scrm.tenancy import tenant_scope
from tests.factories import BusinessCalendarFactory
from workflow.models import BusinessCalendar, CalendarDay
from workflow.services import calendar_create, calendar_days_import

CN_FILE = Path(settings.BASE_DIR) / "workflow" / "data" / "cn_holidays_2026_2027.yaml"
DAYS = {"mon": "09:00-12:00, 13:30-18:00", "tue": "09:00-12:00，13:30-18:00", "wed": "09:00–18:00",
        "thu": "09:00-18:00", "fri": "09:00 - 17:00", "sat": "", "sun": ""}


def form_data(**values):
    return {"name": "总部", "time_zone": "Asia/Shanghai", **DAYS, **values}


@pytest.fixture
def manager(manager_a, client_for):
    return client_for(manager_a)


def test_create_then_edit_a_calendar(tenant_a, manager):
    response = manager.post(reverse("workflow-calendar-create"), form_data(is_default="on"))
    assert response.status_code == 302
    with tenant_scope(tenant_a):
        calendar = BusinessCalendar.objects.get()
    assert response["Location"] == reverse("workflow-calendar", args=[calendar.pk])
    assert calendar.weekly_hours["tue"] == [["09:00", "12:00"], ["13:30", "18:00"]]
    assert calendar.weekly_hours["fri"] == [["09:00", "17:00"]]
    assert calendar.weekly_hours["sat"] == []
    page = manager.get(response["Location"]).content.decode()
    assert 'value="09:00-12:00, 13:30-18:00"' in page
    response = manager.post(reverse("workflow-calendar", args=[calendar.pk]),
                            form_data(name="总部日历", sat="10:00-16:00", time_zone="Europe/Berlin"))
    assert response.status_code == 302
    calendar.refresh_from_db()
    assert (calendar.name, calendar.time_zone, calendar.version) == ("总部日历", "Europe/Berlin", 2)
    assert calendar.weekly_hours["sat"] == [["10:00", "16:00"]]


@pytest.mark.parametrize(("values", "field", "text"), [
    ({"mon": "09:00-13:00, 12:00-18:00"}, None, "overlap"),
    ({"mon": "18:00-09:00"}, None, "must end after it starts"),
    ({"mon": "9点到6点"}, "mon", "start-end"),
    ({"mon": "09:00-25:00"}, None, "is not a time"),
    ({**dict.fromkeys(DAYS, "")}, None, "no working hours at all"),
    ({"time_zone": "Beijing"}, "time_zone", "not a known time zone"),
    ({"name": ""}, "name", ""),
])
def test_bad_calendars_are_refused_and_nothing_is_written(tenant_a, manager, values, field, text):
    response = manager.post(reverse("workflow-calendar-create"), form_data(**values), HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    form = response.context["form"]
    errors = form.errors.get(field if field else "__all__")
    assert errors and text in " ".join(errors)
    with tenant_scope(tenant_a):
        assert BusinessCalendar.objects.count() == 0


def test_edit_refusal_changes_nothing(tenant_a, manager):
    with tenant_scope(tenant_a):
        calendar = BusinessCalendarFactory(tenant=tenant_a, name="总部")
    response = manager.post(reverse("workflow-calendar", args=[calendar.pk]), form_data(tue="14:00-13:00"))
    assert response.status_code == 400
    assert response.context["form"].non_field_errors()
    calendar.refresh_from_db()
    assert calendar.version == 1
    assert calendar.weekly_hours["tue"] == [["09:00", "12:00"], ["13:30", "18:00"]]


def test_import_the_china_file_and_see_the_days(tenant_a, manager):
    with tenant_scope(tenant_a):
        calendar = BusinessCalendarFactory(tenant=tenant_a, name="总部")
    upload = SimpleUploadedFile("cn.yaml", CN_FILE.read_bytes(), content_type="application/yaml")
    response = manager.post(reverse("workflow-calendar-import", args=[calendar.pk]), {"file": upload})
    assert response.status_code == 302
    with tenant_scope(tenant_a):
        assert CalendarDay.objects.filter(calendar=calendar).count() == 52
    page = manager.get(reverse("workflow-calendar", args=[calendar.pk])).content.decode()
    assert "春节" in page and "2026-02-14" in page and "中秋节（待公布）" in page


@pytest.mark.parametrize(("content", "text"), [
    (b"days:\n  - {date: 2026-10-01}\n  - {date: 2026-10-01}\n", "2026-10-01 is listed twice"),
    (b"days: [", "neither YAML nor JSON"),
    (b"<script>alert(1)</script>", "needs a “days” list"),
])
def test_a_bad_holiday_file_changes_nothing(tenant_a, manager, content, text):
    with tenant_scope(tenant_a):
        calendar = BusinessCalendarFactory(tenant=tenant_a, name="总部")
    upload = SimpleUploadedFile("bad.yaml", content, content_type="application/yaml")
    response = manager.post(reverse("workflow-calendar-import", args=[calendar.pk]), {"file": upload},
                            HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert text in " ".join(response.context["import_form"].non_field_errors())
    with tenant_scope(tenant_a):
        assert CalendarDay.objects.count() == 0
        calendar.refresh_from_db()
        assert calendar.version == 1


def test_missing_file_is_a_field_error(tenant_a, manager):
    with tenant_scope(tenant_a):
        calendar = BusinessCalendarFactory(tenant=tenant_a, name="总部")
    response = manager.post(reverse("workflow-calendar-import", args=[calendar.pk]), {})
    assert response.status_code == 400
    assert response.context["import_form"].errors["file"]


def test_another_tenants_calendar_is_404(tenant_a, tenant_b, admin_b, client_for):
    with tenant_scope(tenant_a):
        calendar = BusinessCalendarFactory(tenant=tenant_a, name="甲日历")
    client = client_for(admin_b)
    assert client.get(reverse("workflow-calendar", args=[calendar.pk])).status_code == 404
    assert client.post(reverse("workflow-calendar", args=[calendar.pk]), form_data(name="篡改")).status_code == 404
    assert client.get(reverse("workflow-calendar-list")).content.decode().count("甲日历") == 0
    calendar.refresh_from_db()
    assert calendar.name == "甲日历"


def test_engineers_may_not_configure_calendars(engineer_a, client_for):
    assert client_for(engineer_a).get(reverse("workflow-calendar-list")).status_code == 403


def test_list_query_count_does_not_grow(tenant_a, manager, django_assert_max_num_queries):
    with tenant_scope(tenant_a):
        calendar_create(tenant=tenant_a, name="总部", weekly_hours={"mon": [["09:00", "18:00"]]})
    with django_assert_max_num_queries(12) as few:
        first = manager.get(reverse("workflow-calendar-list"))
    with tenant_scope(tenant_a):
        for n in range(5):
            calendar_create(tenant=tenant_a, name=f"门店{n}", is_24x7=True)
    with django_assert_max_num_queries(len(few.captured_queries)):
        many = manager.get(reverse("workflow-calendar-list"))
    assert first.status_code == many.status_code == 200
    assert many.content.decode().count("list-group-item-action") == 6


def test_remove_a_day(tenant_a, manager):
    with tenant_scope(tenant_a):
        calendar = BusinessCalendarFactory(tenant=tenant_a, name="总部")
        calendar_days_import(calendar=calendar, payload={"days": [{"date": "2026-10-01", "name": "国庆节"}]})
    url = reverse("workflow-calendar-day-delete", args=[calendar.pk])
    assert manager.post(url, {"date": "2026-10-01"}).status_code == 302
    with tenant_scope(tenant_a):
        assert CalendarDay.objects.count() == 0
        calendar.refresh_from_db()
        assert calendar.version == 3
    # A date it does not have, or no date: a message, nothing changes.
    for data in ({"date": "2026-10-02"}, {"date": "bogus"}, {}):
        response = manager.post(url, data, follow=True)
        assert "日历中没有该日期。" in response.content.decode()
    calendar.refresh_from_db()
    assert calendar.version == 3
