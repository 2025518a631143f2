"""Recurring tickets: a monthly inspection of three stores makes three tickets on its day, once,
however many workers tick; impossible or past rules are refused at save; the next run moves on."""

import datetime

import pytest
from django.core.exceptions import ValidationError

from automation.models import Schedule, ScheduleRun
from automation.services import schedule_create, schedule_occurrence_run, schedule_update, schedules_due
from automation.tasks import automation_sweep_task
from tests.factories import RegionFactory, StoreFactory, published_template
from tickets.models import Ticket

pytestmark = pytest.mark.django_db

SH = datetime.timezone(datetime.timedelta(hours=8))
FIELDS = [
    {"key": "store", "type": "store", "label": {"zh-hans": "门店"}, "required": True},
    {"key": "inspect_date", "type": "date", "label": {"zh-hans": "巡检日期"}, "required": True},
    {"key": "remark", "type": "text", "label": {"zh-hans": "备注"}, "required": False},
]


@pytest.fixture
def xunjian(scope_a):
    return published_template(scope_a, name="设备巡检", slug="xunjian", prefix="XJ", fields=FIELDS,
                              category_code="inspection", category_name="巡检")


@pytest.fixture
def stores(scope_a):
    region = RegionFactory(tenant=scope_a)
    return [StoreFactory(tenant=scope_a, region=region, name=name) for name in ("徐家汇店", "静安寺店", "五角场店")]


@pytest.fixture
def monthly(scope_a, xunjian, stores, time_machine):
    time_machine.move_to(datetime.datetime(2026, 12, 7, 10, 0, tzinfo=SH), tick=False)
    return schedule_create(tenant=scope_a, name="后厨设备月度巡检", template=xunjian, recurrence="monthly",
                           month_day=15, at_time=datetime.time(9, 0), starts_on=datetime.date(2026, 12, 7),
                           stores=stores, title="后厨设备巡检", data={"remark": "冷库、油烟机、燃气灶"})


def test_next_run_is_computed_and_shown(monthly):
    assert monthly.next_run_at == datetime.datetime(2026, 12, 15, 9, 0, tzinfo=SH)


def test_monthly_plan_for_three_stores_makes_three_tickets_once(scope_a, monthly, stores, time_machine):
    time_machine.move_to(datetime.datetime(2026, 12, 15, 9, 0, 30, tzinfo=SH), tick=False)
    due = schedules_due()
    assert due == [(scope_a.pk, monthly.pk, monthly.next_run_at)]
    planned = due[0][2]
    run = schedule_occurrence_run(schedule_id=monthly.pk, planned_at=planned)
    # A second worker that read the same due row before the first claimed it gets nothing.
    assert schedule_occurrence_run(schedule_id=monthly.pk, planned_at=planned) is None
    tickets = list(Ticket.objects.order_by("store__name"))
    assert len(tickets) == 3 and {t.store_id for t in tickets} == {s.pk for s in stores}
    assert all(t.data["inspect_date"] == "2026-12-15" and t.data["remark"] == "冷库、油烟机、燃气灶" for t in tickets)
    assert set(run.tickets.all()) == set(tickets)
    monthly.refresh_from_db()
    assert monthly.next_run_at == datetime.datetime(2027, 1, 15, 9, 0, tzinfo=SH)
    assert schedules_due() == []


def test_the_beat_sweep_carries_out_due_plans(scope_a, monthly, time_machine):
    time_machine.move_to(datetime.datetime(2026, 12, 15, 9, 1, tzinfo=SH), tick=False)
    assert automation_sweep_task.apply().get() == {"firings": 0, "schedule_runs": 1}
    assert automation_sweep_task.apply().get() == {"firings": 0, "schedule_runs": 0}
    assert Ticket.objects.count() == 3 and ScheduleRun.objects.count() == 1


def test_an_occurrence_already_run_is_not_run_again(scope_a, monthly, time_machine):
    planned = monthly.next_run_at
    time_machine.move_to(planned + datetime.timedelta(minutes=1), tick=False)
    schedule_occurrence_run(schedule_id=monthly.pk, planned_at=planned)
    Schedule.objects.filter(pk=monthly.pk).update(next_run_at=planned)  # e.g. a restored backup
    assert schedule_occurrence_run(schedule_id=monthly.pk, planned_at=planned) is None
    assert Ticket.objects.count() == 3


@pytest.mark.parametrize("fields, key", [
    ({"recurrence": "yearly", "month": 2, "month_day": 31}, "month_day"),
    ({"recurrence": "weekly"}, "weekday"),
    ({"recurrence": "monthly"}, "month_day"),
    ({"recurrence": "daily", "every": 0}, "every"),
    ({"recurrence": "daily", "starts_on": datetime.date(2026, 11, 1)}, "starts_on"),
    ({"recurrence": "daily", "ends_on": datetime.date(2026, 12, 1)}, "ends_on"),
    ({"recurrence": "hourly"}, "recurrence"),
    ({"recurrence": "daily", "name": ""}, "name"),
])
def test_impossible_or_past_rules_are_refused(scope_a, xunjian, time_machine, fields, key):
    time_machine.move_to(datetime.datetime(2026, 12, 7, 10, 0, tzinfo=SH), tick=False)
    values = {"name": "巡检", "template": xunjian, "at_time": datetime.time(9), "starts_on": datetime.date(2026, 12, 8)}
    values.update(fields)
    with pytest.raises(ValidationError) as exc:
        schedule_create(tenant=scope_a, **values)
    assert key in exc.value.message_dict
    assert not Schedule.objects.exists()


def test_another_tenants_store_is_refused(scope_a, xunjian, tenant_b, time_machine):
    from scrm.tenancy import tenant_scope

    with tenant_scope(tenant_b):
        other = StoreFactory(tenant=tenant_b, region=RegionFactory(tenant=tenant_b))
    time_machine.move_to(datetime.datetime(2026, 12, 7, 10, 0, tzinfo=SH), tick=False)
    with pytest.raises(ValidationError) as exc:
        schedule_create(tenant=scope_a, name="巡检", template=xunjian, recurrence="daily", at_time=datetime.time(9),
                        starts_on=datetime.date(2026, 12, 8), stores=[other])
    assert "stores" in exc.value.message_dict
    assert not Schedule.objects.exists()


def test_editing_moves_the_next_run(monthly, time_machine):
    schedule_update(schedule=monthly, recurrence="weekly", weekday=2, month_day=None)
    monthly.refresh_from_db()
    assert monthly.next_run_at == datetime.datetime(2026, 12, 9, 9, 0, tzinfo=SH)
