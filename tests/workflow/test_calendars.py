"""Business calendars as tenant configuration: the models' constraints, the services that create,
update and import holidays (every refusal writes nothing), the shipped China holiday file, the
cached selector that builds the pure workflow.sla.Calendar, and `manage.py calendar_import`."""

from datetime import date, datetime
from io import StringIO
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.utils import translation

from scrm.tenancy import tenant_scope
from tests.factories import OFFICE_HOURS, BusinessCalendarFactory
from workflow import sla
from workflow.models import BusinessCalendar, CalendarDay, CalendarDayKind
from workflow.selectors import business_calendars, sla_calendar
from workflow.services import (
    MAX_IMPORT_BYTES,
    calendar_create,
    calendar_days_import,
    calendar_days_parse,
    calendar_export,
    calendar_file_load,
    calendar_import,
    calendar_update,
)

SH = ZoneInfo("Asia/Shanghai")
CN_FILE = Path(settings.BASE_DIR) / "workflow" / "data" / "cn_holidays_2026_2027.yaml"


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


def errors(exc_info):
    return " ".join(exc_info.value.messages)


@pytest.fixture
def office(scope_a):
    return calendar_create(tenant=scope_a, name="总部", weekly_hours=OFFICE_HOURS)


# --- create and update ----------------------------------------------------------------------

def test_create_stores_hours_in_normal_form_and_first_is_default(scope_a):
    calendar = calendar_create(tenant=scope_a, name=" 门店 ", weekly_hours={
        "sat": [["13:00", "18:00"], ["09:00", "12:00"], ["12:00", "13:00"]]})
    assert calendar.name == "门店"
    assert calendar.is_default is True
    assert calendar.version == 1
    assert calendar.weekly_hours == {"mon": [], "tue": [], "wed": [], "thu": [], "fri": [],
                                     "sat": [["09:00", "18:00"]], "sun": []}
    second = calendar_create(tenant=scope_a, name="全天", is_24x7=True)
    assert second.is_default is False
    assert second.weekly_hours["mon"] == []


@pytest.mark.parametrize(("kwargs", "field", "text"), [
    ({"weekly_hours": {}}, "weekly_hours", "no working hours at all"),
    ({"weekly_hours": {"mon": [], "sun": []}}, "weekly_hours", "no working hours at all"),
    ({"weekly_hours": {"mon": [["09:00", "13:00"], ["12:00", "18:00"]]}}, "weekly_hours",
     "09:00–13:00 and 12:00–18:00 overlap"),
    ({"weekly_hours": {"mon": [["18:00", "09:00"]]}}, "weekly_hours", "18:00–09:00 must end after it starts"),
    ({"weekly_hours": {"mon": [["9点", "18:00"]]}}, "weekly_hours", "“9点” is not a time"),
    ({"weekly_hours": {"monday": [["09:00", "18:00"]]}}, "weekly_hours", "“monday” is not a weekday"),
    ({"weekly_hours": [["09:00", "18:00"]]}, "weekly_hours", "mapping of weekday"),
    ({"weekly_hours": {"mon": ["09:00-18:00"]}}, "weekly_hours", "list of intervals"),
    ({"weekly_hours": OFFICE_HOURS, "time_zone": "Asia/Beijing"}, "time_zone", "not a known time zone"),
    ({"weekly_hours": OFFICE_HOURS, "name": ""}, "name", ""),
    ({"weekly_hours": OFFICE_HOURS, "name": "长" * 61}, "name", ""),
])
def test_create_refuses_bad_calendars_and_writes_nothing(scope_a, kwargs, field, text):
    kwargs = {"name": "总部", **kwargs}
    with pytest.raises(ValidationError) as info:
        calendar_create(tenant=scope_a, **kwargs)
    assert field in info.value.message_dict
    assert text in " ".join(info.value.message_dict[field])
    assert BusinessCalendar.objects.count() == 0


def test_weekday_errors_name_the_day(scope_a):
    with pytest.raises(ValidationError) as info:
        calendar_create(tenant=scope_a, name="总部", weekly_hours={"wed": [["10:00", "09:00"]]})
    assert info.value.message_dict["weekly_hours"] == ["Wednesday: The interval 10:00–09:00 must end after it starts."]


def test_name_is_unique_in_the_tenant_only(office, tenant_b):
    with pytest.raises(ValidationError) as info:
        calendar_create(tenant=office.tenant, name="总部", weekly_hours=OFFICE_HOURS)
    assert "already exists" in " ".join(info.value.message_dict["name"])
    assert BusinessCalendar.objects.count() == 1
    with tenant_scope(tenant_b):
        assert calendar_create(tenant=tenant_b, name="总部", weekly_hours=OFFICE_HOURS).is_default


def test_update_bumps_the_version_and_moves_the_default(office):
    other = calendar_create(tenant=office.tenant, name="全天", is_24x7=True)
    updated = calendar_update(calendar=other, is_default=True, name="7×24")
    office.refresh_from_db()
    assert (updated.name, updated.is_default, updated.version) == ("7×24", True, 2)
    assert office.is_default is False
    assert BusinessCalendar.objects.filter(is_default=True).count() == 1


@pytest.mark.parametrize("changes", [
    {"weekly_hours": {"sat": []}},
    {"weekly_hours": {"mon": [["09:00", "12:00"], ["11:00", "13:00"]]}},
    {"time_zone": "Nowhere/City"},
    {"is_24x7": False, "weekly_hours": {}},
])
def test_update_refusals_change_nothing(office, changes):
    with pytest.raises(ValidationError):
        calendar_update(calendar=office, **changes)
    office.refresh_from_db()
    assert office.version == 1
    assert office.time_zone == "Asia/Shanghai"
    assert office.weekly_hours["mon"] == [["09:00", "12:00"], ["13:30", "18:00"]]


def test_another_tenants_calendar_is_refused(office, tenant_b):
    with tenant_scope(tenant_b):
        foreign = BusinessCalendarFactory(tenant=tenant_b, name="别家")
    payload = {"days": [{"date": "2026-10-01", "name": "国庆节"}]}
    with pytest.raises(ValidationError) as info:
        calendar_update(calendar=foreign, name="改名")
    assert "calendar" in info.value.message_dict
    with pytest.raises(ValidationError) as info:
        calendar_days_import(calendar=foreign, payload=payload)
    assert "calendar" in info.value.message_dict
    with tenant_scope(tenant_b):
        foreign.refresh_from_db()
        assert (foreign.name, foreign.version) == ("别家", 1)
        assert CalendarDay.objects.count() == 0


# --- database constraints -------------------------------------------------------------------

@pytest.mark.parametrize("values", [
    {"kind": CalendarDayKind.HOLIDAY, "hours_like": 0},
    {"kind": CalendarDayKind.HOLIDAY, "hours": [["09:00", "12:00"]]},
    {"kind": CalendarDayKind.WORKDAY},
    {"kind": CalendarDayKind.WORKDAY, "hours_like": 0, "hours": [["09:00", "12:00"]]},
    {"kind": CalendarDayKind.WORKDAY, "hours_like": 7},
    {"kind": "festival"},
])
def test_day_constraints_hold_in_the_database(office, values):
    with pytest.raises(IntegrityError), transaction.atomic():
        CalendarDay.objects.create(tenant=office.tenant, calendar=office, date=date(2026, 10, 1), **values)


def test_one_row_per_date_and_one_default_per_tenant(office):
    CalendarDay.objects.create(tenant=office.tenant, calendar=office, date=date(2026, 10, 1), kind="holiday")
    with pytest.raises(IntegrityError), transaction.atomic():
        CalendarDay.objects.create(tenant=office.tenant, calendar=office, date=date(2026, 10, 1), kind="holiday")
    with pytest.raises(IntegrityError), transaction.atomic():
        BusinessCalendarFactory(tenant=office.tenant, is_default=True)


# --- importing holidays -----------------------------------------------------------------------

def test_the_shipped_china_file_imports_and_counts_right(office):
    created, updated = calendar_days_import(calendar=office, payload=calendar_file_load(CN_FILE.read_bytes()))
    assert (created, updated) == (52, 0)
    days = {day.date: day for day in CalendarDay.objects.filter(calendar=office)}
    holidays = sorted(d for d, day in days.items() if day.kind == CalendarDayKind.HOLIDAY)
    workdays = sorted(d for d, day in days.items() if day.kind == CalendarDayKind.WORKDAY)
    assert len([d for d in holidays if d.year == 2026]) == 3 + 9 + 3 + 5 + 3 + 3 + 7
    assert workdays == [date(2026, 1, 4), date(2026, 2, 14), date(2026, 2, 28), date(2026, 5, 9),
                        date(2026, 9, 20), date(2026, 10, 10)]
    assert [d for d in holidays if d.year == 2027] == [
        date(2027, 1, 1), date(2027, 2, 5), date(2027, 2, 6), date(2027, 2, 7), date(2027, 2, 8), date(2027, 4, 5),
        date(2027, 5, 1), date(2027, 5, 2), date(2027, 6, 9), date(2027, 9, 15), date(2027, 10, 1),
        date(2027, 10, 2), date(2027, 10, 3)]
    assert days[date(2026, 2, 17)].name == "春节"
    assert days[date(2026, 2, 14)].hours_like == 0
    office.refresh_from_db()
    assert office.version == 2
    # Importing the same file again changes nothing, not even the version.
    assert calendar_days_import(calendar=office, payload=calendar_file_load(CN_FILE.read_bytes())) == (0, 0)
    office.refresh_from_db()
    assert office.version == 2


def test_deadlines_count_in_the_imported_calendar(office):
    calendar_days_import(calendar=office, payload=calendar_file_load(CN_FILE.read_bytes()))
    cal = sla_calendar()
    # Friday before the Spring Festival: the make-up Saturday 14 Feb counts, the week after does not.
    assert sla.due_at(cal, datetime(2026, 2, 13, 17, 0, tzinfo=SH), 120) == datetime(2026, 2, 14, 10, 0, tzinfo=SH)
    assert sla.due_at(cal, datetime(2026, 2, 14, 17, 0, tzinfo=SH), 120) == datetime(2026, 2, 24, 10, 0, tzinfo=SH)
    assert sla.working_minutes_between(cal, datetime(2026, 9, 30, 9, 0, tzinfo=SH),
                                       datetime(2026, 10, 12, 9, 0, tzinfo=SH)) == 450 * 4


def test_reimport_replaces_a_date_and_explicit_hours_are_kept(office):
    calendar_days_import(calendar=office, payload={"days": [{"date": "2026-10-10", "name": "国庆"}]})
    created, updated = calendar_days_import(calendar=office, payload={"days": [
        {"date": "2026-10-10", "kind": "workday", "name": "国庆调休", "hours": [["10:00", "16:00"]]}]})
    assert (created, updated) == (0, 1)
    day = CalendarDay.objects.get(calendar=office, date=date(2026, 10, 10))
    assert (day.kind, day.hours, day.hours_like) == ("workday", [["10:00", "16:00"]], None)
    assert sla_calendar().hours_on(date(2026, 10, 10)) == ((600, 960),)


@pytest.mark.parametrize(("payload", "text"), [
    ({"days": [{"name": "春节", "from": "2026-02-15", "to": "2026-02-23"}, {"name": "重复", "date": "2026-02-20"}]},
     "2026-02-20 is listed twice (entry 1, entry 2)"),
    ({"days": [{"name": "国庆", "from": "2026-10-01", "to": "2026-10-07", "workdays": ["2026-10-07"]}]},
     "2026-10-07 is listed twice"),
    ({"days": [{"date": "2026-13-01"}]}, "entry 1: “2026-13-01” is not a date"),
    ({"days": [{"name": "无日期"}]}, "entry 1: “None” is not a date"),
    ({"days": [{"from": "2026-10-07", "to": "2026-10-01"}]}, "“to” must be on or after “from”"),
    ({"days": [{"from": "2026-01-01", "to": "2027-06-01"}]}, "within a year"),
    ({"days": [{"date": "2026-10-01", "hours": [["09:00", "12:00"]]}]}, "a holiday has no working hours"),
    ({"days": [{"date": "2026-10-01", "kind": "halfday"}]}, "the kind is “holiday” or “workday”"),
    ({"days": [{"date": "2026-10-10", "kind": "workday", "like": "someday"}]}, "“someday” is not a weekday"),
    ({"days": [{"date": "2026-10-10", "kind": "workday", "like": "sat"}]},
     "keep the hours of Saturday, which has none"),
    ({"days": [{"date": "2026-10-10", "kind": "workday", "hours": []}]}, "needs working hours"),
    ({"days": [{"date": "2026-10-10", "kind": "workday", "hours": [["09:00", "12:00"], ["11:00", "13:00"]]}]},
     "overlap"),
    ({"days": [{"date": "2026-10-10", "kind": "workday", "hours": [["09:00"]]}]}, "list of intervals"),
    ({"days": [{"date": "2026-10-10", "kind": "workday", "hours": [["09:00", "12:00"]], "like": "mon"}]},
     "either “like” or “hours”, not both"),
    ({"days": [{"date": "2026-10-01", "name": "名" * 41}]}, "longer than 40 characters"),
    ({"days": ["2026-10-01"]}, "each entry is a mapping"),
    ({"days": [{"date": "2026-10-01", "workdays": "2026-10-10"}]}, "“workdays” is a list of dates"),
    ({"days": [{"from": "2025-01-01", "to": "2025-12-31"}] + [
        {"from": f"{y}-01-01", "to": f"{y}-12-31"} for y in range(2026, 2032)]}, "more than 2000 days"),
    ({"holidays": []}, "needs a “days” list"),
    ({"format": "scrm.workflow/1", "days": []}, "needs a “days” list"),
])
def test_bad_holiday_files_are_refused_and_nothing_is_written(office, payload, text):
    with pytest.raises(ValidationError) as info:
        calendar_days_import(calendar=office, payload=payload)
    assert text in errors(info)
    assert CalendarDay.objects.count() == 0
    office.refresh_from_db()
    assert office.version == 1


@pytest.mark.parametrize(("data", "text"), [
    (b"days: [", "neither YAML nor JSON"),
    (b"- 2026-10-01", "needs a “days” list"),
    (b"\xff\xfe\x00", "not UTF-8"),
    (b"a: &a [1, 2]\ndays: [*a, *a]\n", "aliases (*name) are not allowed"),
    (b"days: " + b"[" * 5000 + b"]" * 5000, "nested too deeply"),
    (b"#" * (MAX_IMPORT_BYTES + 1), "larger than 256 KB"),
])
def test_bad_files_are_refused(data, text):
    with pytest.raises(ValidationError) as info:
        calendar_file_load(data)
    assert text in errors(info)


def test_json_and_export_round_trip(office):
    calendar_days_import(calendar=office, payload=calendar_file_load(
        b'{"days": [{"date": "2026-10-01", "to": "2026-10-02", "name": "N"},'
        b' {"date": "2026-10-10", "kind": "workday", "hours": [["09:00", "12:00"]]}]}'))
    exported = calendar_export(calendar=office)
    assert exported["weekly_hours"] == office.weekly_hours
    assert exported["days"] == [
        {"date": "2026-10-01", "kind": "holiday", "name": "N"}, {"date": "2026-10-02", "kind": "holiday", "name": "N"},
        {"date": "2026-10-10", "kind": "workday", "name": "", "hours": [["09:00", "12:00"]]}]
    assert [(r["date"], r["kind"]) for r in calendar_days_parse(exported)] == [
        (date(2026, 10, 1), "holiday"), (date(2026, 10, 2), "holiday"), (date(2026, 10, 10), "workday")]


# --- the selector ---------------------------------------------------------------------------

def test_sla_calendar_is_cached_until_a_change(office, django_assert_num_queries):
    first, by_id = sla_calendar(), sla_calendar(calendar_id=office.pk)
    assert first.weekly[0] == ((540, 720), (810, 1080))
    with django_assert_num_queries(2):  # each call reads the tenant's config stamp, nothing else
        assert sla_calendar() is first
        assert sla_calendar(calendar_id=office.pk) is by_id
    calendar_update(calendar=office, weekly_hours={"mon": [["08:00", "17:00"]]})
    assert sla_calendar().weekly[0] == ((480, 1020),)
    assert sla_calendar(calendar_id=office.pk + 1000) is None


def test_sla_calendar_24x7_and_missing_default(scope_a, tenant_b):
    assert sla_calendar() is None
    calendar_create(tenant=scope_a, name="全天", time_zone="Europe/Berlin", is_24x7=True)
    cal = sla_calendar()
    assert cal.is_24x7 and cal.time_zone == "Europe/Berlin"
    with tenant_scope(tenant_b):
        assert sla_calendar() is None


def test_list_counts_days(office):
    calendar_days_import(calendar=office, payload=calendar_file_load(CN_FILE.read_bytes()))
    row = business_calendars().get(pk=office.pk)
    assert (row.holiday_count, row.workday_count) == (46, 6)


# --- the management command -----------------------------------------------------------------

def test_command_creates_and_imports(tenant_a):
    out = StringIO()
    call_command("calendar_import", "--tenant", tenant_a.slug, "--create", str(CN_FILE), stdout=out)
    assert "Created calendar '工作日历'" in out.getvalue()
    assert "52 days added, 0 changed (version 2)" in out.getvalue()
    with tenant_scope(tenant_a):
        calendar = BusinessCalendar.objects.get()
        assert calendar.is_default and CalendarDay.objects.count() == 52


def test_command_errors_write_nothing(tenant_a, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("days:\n  - {date: 2026-10-01}\n  - {date: 2026-10-01}\n", encoding="utf-8")
    with pytest.raises(CommandError, match="2026-10-01 is listed twice"):
        call_command("calendar_import", "--tenant", tenant_a.slug, "--create", str(bad))
    with pytest.raises(CommandError, match="no default calendar"):
        call_command("calendar_import", "--tenant", tenant_a.slug, str(CN_FILE))
    with pytest.raises(CommandError, match="no calendar '门店'"):
        call_command("calendar_import", "--tenant", tenant_a.slug, "--calendar", "门店", str(CN_FILE))
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("calendar_import", "--tenant", tenant_a.slug, str(tmp_path / "missing.yaml"))
    with tenant_scope(tenant_a):
        assert BusinessCalendar.objects.count() == 0
        assert CalendarDay.objects.count() == 0


def test_a_whole_calendar_moves_between_tenants_by_export_and_import(office, tenant_b):
    calendar_days_import(calendar=office, payload=calendar_file_load(CN_FILE.read_bytes()))
    exported = calendar_file_load(yaml.safe_dump(calendar_export(calendar=office), allow_unicode=True))
    with tenant_scope(tenant_b):
        copy = calendar_import(tenant=tenant_b, payload=exported)
        assert (copy.name, copy.weekly_hours, copy.is_default) == ("总部", office.weekly_hours, True)
        assert CalendarDay.objects.filter(calendar=copy).count() == 52
        # Again: the same calendar is updated, not duplicated.
        assert calendar_import(tenant=tenant_b, payload=exported).pk == copy.pk
        assert BusinessCalendar.objects.count() == 1


@pytest.mark.parametrize(("change", "text"), [
    ({"format": "scrm.calendar-days/1"}, "does not describe a business calendar"),
    ({"weekly_hours": {}}, "no working hours at all"),
    ({"days": [{"date": "2026-10-01"}, {"date": "2026-10-01"}]}, "listed twice"),
])
def test_a_bad_calendar_file_writes_nothing(office, tenant_b, change, text):
    payload = {**calendar_export(calendar=office), **change}
    with tenant_scope(tenant_b):
        with pytest.raises(ValidationError) as info:
            calendar_import(tenant=tenant_b, payload=payload)
        assert text in errors(info)
        assert BusinessCalendar.objects.count() == 0
        assert CalendarDay.objects.count() == 0


def test_command_imports_a_whole_exported_calendar(office, tenant_b, tmp_path):
    exported = tmp_path / "calendar.yaml"
    exported.write_text(yaml.safe_dump(calendar_export(calendar=office), allow_unicode=True), encoding="utf-8")
    out = StringIO()
    call_command("calendar_import", "--tenant", tenant_b.slug, str(exported), stdout=out)
    assert "总部: imported (version 1)." in out.getvalue()
    with tenant_scope(tenant_b):
        assert BusinessCalendar.objects.get().weekly_hours == office.weekly_hours


def test_command_workday_like_for_a_calendar_closed_on_mondays(scope_a):
    shop = calendar_create(tenant=scope_a, name="门店", weekly_hours={
        day: [["10:00", "22:00"]] for day in ("tue", "wed", "thu", "fri", "sat", "sun")})
    with pytest.raises(CommandError, match="keep the hours of Monday, which has none"):
        call_command("calendar_import", "--tenant", scope_a.slug, str(CN_FILE))
    assert CalendarDay.objects.count() == 0
    call_command("calendar_import", "--tenant", scope_a.slug, "--workday-like", "sat", str(CN_FILE), stdout=StringIO())
    assert sla_calendar(calendar_id=shop.pk).hours_on(date(2026, 2, 14)) == ((600, 1320),)
