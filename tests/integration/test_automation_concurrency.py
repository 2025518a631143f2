"""On PostgreSQL, where two workers' transactions are real: two sweeps claiming the same due
schedule create its occurrence once, and an opportunity won by two requests at once fires its
trigger once."""

import datetime
import threading

import pytest
from django.db import connection
from django.utils import timezone

from automation.models import Firing, Schedule, ScheduleRun
from automation.services import schedule_create, schedule_occurrence_run, trigger_create
from scrm import celery_app
from scrm.services import customer_create, opportunity_create, opportunity_update
from scrm.tenancy import tenant_scope
from tests.factories import RegionFactory, StoreFactory, published_template
from tickets.models import Ticket


@pytest.fixture
def no_queued_tasks():
    yield
    celery_app.control.purge()


def _race(tenant, func, n=2):
    barrier = threading.Barrier(n)
    outcomes, errors = [], []

    def worker():
        try:
            with tenant_scope(tenant):
                barrier.wait(timeout=10)
                outcomes.append(func())
        except Exception as exc:  # a refused second writer is an outcome too
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return outcomes, errors


@pytest.mark.django_db(transaction=True)
def test_two_workers_claiming_one_due_schedule_create_it_once(tenant_a, no_queued_tasks):
    with tenant_scope(tenant_a):
        template = published_template(tenant_a, name="设备巡检", slug="xunjian", prefix="XJ")
        region = RegionFactory(tenant=tenant_a)
        stores = [StoreFactory(tenant=tenant_a, region=region) for _ in range(3)]
        schedule = schedule_create(tenant=tenant_a, name="月度巡检", template=template, recurrence="monthly",
                                   month_day=1, at_time=datetime.time(9), starts_on=timezone.localdate(),
                                   stores=stores)
        planned = timezone.now() - datetime.timedelta(minutes=1)
        Schedule.objects.filter(pk=schedule.pk).update(next_run_at=planned)
    outcomes, errors = _race(tenant_a, lambda: schedule_occurrence_run(schedule_id=schedule.pk, planned_at=planned))
    assert not errors
    assert sorted(o is None for o in outcomes) == [False, True]
    with tenant_scope(tenant_a):
        assert ScheduleRun.objects.count() == 1
        assert Ticket.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_two_workers_with_the_same_batch_of_asset_plans_make_each_ticket_once(tenant_a, no_queued_tasks):
    """The batched tick: both workers read the same due pairs; the claim rows (unique per schedule,
    time and target) let exactly one of them make each ticket."""
    from automation.models import ScheduleOccurrence
    from automation.services import schedule_occurrences_run

    with tenant_scope(tenant_a):
        template = published_template(tenant_a, name="设备巡检", slug="xunjian", prefix="XJ")
        region = RegionFactory(tenant=tenant_a)
        store = StoreFactory(tenant=tenant_a, region=region)
        plans = [schedule_create(tenant=tenant_a, name=f"巡检{i}", template=template, recurrence="cron",
                                 cron="0 9 1 * *", starts_on=timezone.localdate(), target_kind="assets",
                                 assets=[{"code": f"BX-{j}", "name": "冷库", "store": store} for j in range(3)])
                 for i in range(4)]
        planned = timezone.now() - datetime.timedelta(minutes=1)
        Schedule.objects.filter(pk__in=[p.pk for p in plans]).update(next_run_at=planned)
    items = [(p.pk, planned) for p in plans]
    outcomes, errors = _race(tenant_a, lambda: schedule_occurrences_run(items))
    assert not errors
    assert sorted(len(o) for o in outcomes) == [0, 4]
    with tenant_scope(tenant_a):
        assert ScheduleOccurrence.objects.count() == 12 and Ticket.objects.count() == 12
        assert ScheduleRun.objects.count() == 4


@pytest.mark.django_db(transaction=True)
def test_an_opportunity_won_twice_at_once_fires_once(tenant_a, no_queued_tasks):
    with tenant_scope(tenant_a):
        published_template(tenant_a, name="安装工单", slug="anzhuang", prefix="AZ")
        trigger_create(tenant=tenant_a, name="签约", event="opportunity.stage_entered", action="add_tag",
                       condition={"all": [{"field": "opportunity.stage", "op": "=", "value": "won"}]},
                       params={"tag": "已签约"})
        customer = customer_create(tenant=tenant_a, name="苏州万象信息技术有限公司", phone="13812345670")
        opp = opportunity_create(tenant=tenant_a, customer=customer, title="空调 20 套", amount="96000")

    def win():
        from scrm.models import Opportunity

        return opportunity_update(opportunity=Opportunity.objects.get(pk=opp.pk), stage="won",
                                  signed_date=timezone.localdate())

    _race(tenant_a, win)
    with tenant_scope(tenant_a):
        assert Firing.objects.count() == 1
