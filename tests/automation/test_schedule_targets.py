"""Schedules by a cron-like rule and per customer or per asset list: one ticket per target per
occurrence with its fields mapped from the target, exactly once (the claim rows are unique per
schedule × time × target, however many workers tick); bad rules, mappings to missing fields and
another tenant's targets are refused with nothing written."""

import datetime

import pytest
from django.core.exceptions import ValidationError

from automation.models import Schedule, ScheduleAsset, ScheduleOccurrence, ScheduleRun
from automation.services import schedule_create, schedule_occurrence_run, schedule_occurrences_run, schedule_update
from automation.tasks import automation_sweep_task
from scrm.tenancy import tenant_scope
from tests.factories import CustomerFactory, RegionFactory, StoreFactory, published_template
from tickets.models import Ticket

pytestmark = pytest.mark.django_db

SH = datetime.timezone(datetime.timedelta(hours=8))
FIELDS = [
    {"key": "store", "type": "store", "label": {"zh-hans": "门店"}, "required": False},
    {"key": "inspect_date", "type": "date", "label": {"zh-hans": "巡检日期"}, "required": False},
    {"key": "equipment", "type": "text", "label": {"zh-hans": "设备"}, "required": False},
    {"key": "contact_phone", "type": "text", "label": {"zh-hans": "联系电话"}, "required": False},
]


@pytest.fixture
def xunjian(scope_a, time_machine):
    time_machine.move_to(datetime.datetime(2026, 12, 7, 10, 0, tzinfo=SH), tick=False)
    return published_template(scope_a, name="设备巡检", slug="xunjian", prefix="XJ", fields=FIELDS,
                              category_code="inspection", category_name="巡检")


@pytest.fixture
def stores(scope_a):
    region = RegionFactory(tenant=scope_a)
    return [StoreFactory(tenant=scope_a, region=region, name=name, code=code)
            for name, code in (("徐家汇店", "xjh"), ("静安寺店", "jas"))]


def base(xunjian, **extra):
    return {"name": "巡检", "template": xunjian, "recurrence": "cron", "cron": "0 9 15 * *",
            "starts_on": datetime.date(2026, 12, 7), **extra}


def test_a_cron_plan_runs_on_its_rule(scope_a, xunjian, time_machine):
    schedule = schedule_create(tenant=scope_a, **base(xunjian, cron="30 8 * * 1-5"))
    assert schedule.next_run_at == datetime.datetime(2026, 12, 8, 8, 30, tzinfo=SH)
    time_machine.move_to(datetime.datetime(2026, 12, 8, 8, 31, tzinfo=SH), tick=False)
    assert automation_sweep_task.apply().get()["schedule_runs"] == 1
    schedule.refresh_from_db()
    assert schedule.next_run_at == datetime.datetime(2026, 12, 9, 8, 30, tzinfo=SH)
    assert Ticket.objects.get().data["inspect_date"] == "2026-12-08"


def test_per_customer_plan_maps_fields_from_each_customer(scope_a, xunjian, stores, time_machine):
    customers = [CustomerFactory(tenant=scope_a, name="王先生", store=stores[0], phone="13800000001"),
                 CustomerFactory(tenant=scope_a, name="李女士", store=stores[1], phone="13800000002")]
    schedule = schedule_create(tenant=scope_a, **base(xunjian), target_kind="customers", customers=customers,
                               mapping={"contact_phone": "customer.phone", "equipment": "store.name"})
    time_machine.move_to(datetime.datetime(2026, 12, 15, 9, 0, 5, tzinfo=SH), tick=False)
    run = schedule_occurrence_run(schedule_id=schedule.pk, planned_at=schedule.next_run_at)
    tickets = {t.customer_id: t for t in run.tickets.all()}
    assert set(tickets) == {c.pk for c in customers}
    first = tickets[customers[0].pk]
    assert first.data["contact_phone"] == "13800000001" and first.data["equipment"] == "徐家汇店"
    assert first.store_id == stores[0].pk and "王先生" in first.title
    assert ScheduleOccurrence.objects.filter(schedule=schedule).count() == 2


def test_per_asset_plan_makes_one_ticket_per_asset_once(scope_a, xunjian, stores, time_machine):
    assets = [{"code": "BX-01", "name": "冷库", "store": stores[0]},
              {"code": "YY-01", "name": "油烟机", "store": stores[0]},
              {"code": "BX-02", "name": "冷库", "store": stores[1]}]
    schedule = schedule_create(tenant=scope_a, **base(xunjian), target_kind="assets", assets=assets,
                               mapping={"equipment": "asset.name"})
    planned = schedule.next_run_at
    time_machine.move_to(planned + datetime.timedelta(seconds=30), tick=False)
    assert automation_sweep_task.apply().get()["schedule_runs"] == 1
    assert Ticket.objects.count() == 3
    assert sorted(t.data["equipment"] for t in Ticket.objects.all()) == ["冷库", "冷库", "油烟机"]
    assert {t.store_id for t in Ticket.objects.all()} == {stores[0].pk, stores[1].pk}
    # A restored backup puts the plan back on the same occurrence: no second ticket for any asset.
    Schedule.objects.filter(pk=schedule.pk).update(next_run_at=planned)
    assert schedule_occurrences_run([(schedule.pk, planned)]) == []
    assert Ticket.objects.count() == 3 and ScheduleOccurrence.objects.count() == 3
    # An asset added later gets its ticket at that occurrence; the others keep theirs.
    schedule_update(schedule=schedule, assets=[*assets, {"code": "RQ-01", "name": "燃气灶", "store": stores[1]}])
    Schedule.objects.filter(pk=schedule.pk).update(next_run_at=planned)
    schedule_occurrences_run([(schedule.pk, planned)])
    assert Ticket.objects.count() == 4 and ScheduleRun.objects.count() == 1


def test_two_workers_reading_the_same_due_batch_make_each_ticket_once(scope_a, xunjian, stores, time_machine):
    plans = [schedule_create(tenant=scope_a, **base(xunjian, name=f"巡检{i}"), target_kind="stores", stores=stores)
             for i in range(3)]
    time_machine.move_to(datetime.datetime(2026, 12, 15, 9, 1, tzinfo=SH), tick=False)
    items = [(p.pk, p.next_run_at) for p in plans]
    first = schedule_occurrences_run(items)
    second = schedule_occurrences_run(items)  # read the same due rows before the first committed
    assert len(first) == 3 and second == []
    assert Ticket.objects.count() == 6


@pytest.mark.parametrize("fields, key", [
    ({"cron": "0 0 31 2 *"}, "cron"),
    ({"cron": "0 9 * * * *"}, "cron"),
    ({"cron": "0 25 * * *"}, "cron"),
    ({"cron": "*/1 * * * *"}, "cron"),
    ({"cron": ""}, "cron"),
    ({"starts_on": datetime.date(2026, 12, 1)}, "starts_on"),
    ({"cron": "0 9 15 * *", "ends_on": datetime.date(2026, 12, 10)}, "ends_on"),
    ({"mapping": {"nonexistent": "customer.phone"}, "target_kind": "customers"}, "mapping"),
    ({"mapping": {"equipment": "asset.name"}, "target_kind": "none"}, "mapping"),
    ({"target_kind": "customers"}, "customers"),
    ({"target_kind": "assets", "assets": [{"code": "", "name": "冷库"}]}, "assets"),
    ({"target_kind": "assets", "assets": [{"code": "A", "name": "x"}, {"code": "A", "name": "y"}]}, "assets"),
    ({"target_kind": "galaxy"}, "target_kind"),
])
def test_bad_plans_are_refused_with_nothing_written(scope_a, xunjian, fields, key):
    values = base(xunjian)
    values.update(fields)
    if values.get("target_kind") == "customers" and "mapping" in fields:
        values["customers"] = [CustomerFactory(tenant=scope_a)]
    with pytest.raises(ValidationError) as exc:
        schedule_create(tenant=scope_a, **values)
    assert key in exc.value.message_dict, exc.value.message_dict
    assert not Schedule.objects.exists() and not ScheduleAsset.objects.exists()


def test_cron_messages_name_the_field_and_part(scope_a, xunjian):
    with pytest.raises(ValidationError) as exc:
        schedule_create(tenant=scope_a, **base(xunjian, cron="0 25 * * *"))
    assert "25" in exc.value.message_dict["cron"][0]
    with pytest.raises(ValidationError) as exc:
        schedule_create(tenant=scope_a, **base(xunjian, cron="0 9 1 * * 2026"))
    assert "6" in exc.value.message_dict["cron"][0]


def test_another_tenants_customers_and_asset_stores_are_refused(scope_a, xunjian, tenant_b):
    with tenant_scope(tenant_b):
        customer = CustomerFactory(tenant=tenant_b)
        store = StoreFactory(tenant=tenant_b, region=RegionFactory(tenant=tenant_b))
    with pytest.raises(ValidationError) as exc:
        schedule_create(tenant=scope_a, **base(xunjian), target_kind="customers", customers=[customer])
    assert "customers" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        schedule_create(tenant=scope_a, **base(xunjian), target_kind="assets",
                        assets=[{"code": "BX-01", "name": "冷库", "store": store}])
    assert "assets" in exc.value.message_dict
    assert not Schedule.objects.exists() and not ScheduleAsset.objects.exists()


def test_a_plan_whose_tickets_fail_is_recorded_and_the_rest_of_the_batch_is_made(
        scope_a, xunjian, stores, time_machine, monkeypatch):
    from automation.services import schedules as module

    plans = [schedule_create(tenant=scope_a, **base(xunjian, name=name)) for name in ("甲", "乙坏", "丙")]
    real = module.ticket_intake

    def intake(**kwargs):
        if "坏" in kwargs["title"]:
            raise ValidationError({"store": "门店已关闭"})
        return real(**kwargs)

    monkeypatch.setattr(module, "ticket_intake", intake)
    time_machine.move_to(datetime.datetime(2026, 12, 15, 9, 1, tzinfo=SH), tick=False)
    runs = schedule_occurrences_run([(p.pk, p.next_run_at) for p in plans])
    assert len(runs) == 3 and Ticket.objects.count() == 2
    failed = ScheduleRun.objects.get(schedule=plans[1])
    assert "门店已关闭" in failed.error and not failed.tickets.exists()
    # Its claim is kept (not retried every tick) and every plan moved on.
    assert ScheduleOccurrence.objects.filter(schedule=plans[1], ticket__isnull=True).count() == 1
    assert not Schedule.objects.filter(next_run_at__lte=datetime.datetime(2026, 12, 15, 9, 1, tzinfo=SH)).exists()
