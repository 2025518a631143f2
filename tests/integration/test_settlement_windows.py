"""Settlement run windows on PostgreSQL under contention: eight workers race over every window of a
run — each window is settled by exactly one of them (the row lock, skip locked), exactly one
worker sees the last window end, and the totals equal a sequential run's."""

import random
import secrets
import threading
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Count

from scrm.models import Role
from scrm.services import membership_set
from scrm.tenancy import tenant_scope
from settlement.models import SettlementLine, SettlementRun, SettlementRunWindow, WindowState
from settlement.services import (
    field_map_save,
    party_create,
    price_set,
    rule_save,
    run_execute,
    run_start,
    service_item_create,
)
from settlement.services.runs import run_finish, run_plan, run_window_execute
from tests.factories import RegionFactory, StoreFactory, TenantFactory, UserFactory, published_template
from tests.settlement.conftest import MAPPING, REPAIR_FIELDS
from tickets.models import Status, Ticket

WORKERS = 8
TICKETS = 60
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _seed():
    rng = random.Random(18)
    tenant = TenantFactory()
    with tenant_scope(tenant):
        region = RegionFactory(tenant=tenant, settlement_class="A")
        store = StoreFactory(tenant=tenant, region=region)
        template = published_template(tenant, name="设备维修", slug="repair", fields=REPAIR_FIELDS, prefix="WX")
        field_map_save(tenant=tenant, template=template, mapping=MAPPING)
        engineer = UserFactory()
        membership_set(tenant=tenant, user=engineer, role=Role.ENGINEER)
        party_create(tenant=tenant, kind="engineer", name="张工", code="zhang", user=engineer)
        item = service_item_create(tenant=tenant, code="repair", name="上门维修")
        price_set(tenant=tenant, item=item, price=Decimal("200.00"), effective_from=date(2026, 1, 1))
        rule_save(tenant=tenant, name="大区系数", kind="region_class", params={"coefficients": {"A": "1.15"}})
        rule_save(tenant=tenant, name="夜间", kind="surcharge", params={"flag": "night", "percent": 20})
        Ticket.objects.bulk_create([Ticket(
            tenant=tenant, number=f"WX-R-{n:04d}", template=template, template_version=template.current_version,
            category_id=template.category_id, title="维修", status=Status.CLOSED, source="api", priority="normal",
            region=region, store=store, assignee=engineer, data={"item": "repair", "night": rng.random() < 0.5},
            tracking_token=f"{tenant.pk:x}-{secrets.token_urlsafe(12)}",
            closed_at=datetime(2026, 11, 2, 9, tzinfo=SHANGHAI) + timedelta(hours=n)) for n in range(TICKETS)])
    return tenant


def test_racing_workers_settle_each_window_once(transactional_db):
    tenant = _seed()
    with tenant_scope(tenant):
        run = run_start(tenant=tenant, period_kind="month", day=date(2026, 11, 1), actor=None, background=False)
        windows = run_plan(run=run, batch=7)
    assert len(windows) == 9  # 60 tickets by 7

    barrier = threading.Barrier(WORKERS)
    lasts, errors = [], []

    def worker(seed):
        order = list(windows)
        random.Random(seed).shuffle(order)  # every worker tries every window, in its own order
        try:
            barrier.wait(timeout=30)
            with tenant_scope(tenant):
                for window_id in order:
                    if run_window_execute(window_id=window_id):
                        lasts.append(seed)
        except Exception as exc:  # asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert len(lasts) == 1  # exactly one worker finished the last window
    with tenant_scope(tenant):
        per_ticket = SettlementLine.objects.values("ticket_id").annotate(n=Count("id"))
        assert len(per_ticket) == TICKETS and {row["n"] for row in per_ticket} == {1}
        assert SettlementRunWindow.objects.filter(run=run, state=WindowState.DONE).count() == len(windows)
        assert sum(SettlementRunWindow.objects.filter(run=run).values_list("tickets", flat=True)) == TICKETS
        parallel = run_finish(run=run)
        assert parallel.ticket_count == TICKETS and not parallel.is_running

        # the same tickets in one process, one window: the same lines and total
        amounts = sorted(SettlementLine.objects.values_list("ticket_id", "amount"))
        SettlementLine.objects.all().delete()
        again = run_start(tenant=tenant, period_kind="month", day=date(2026, 11, 1), actor=None, background=False)
        sequential = run_execute(run=again, batch=1000)
        assert sequential.total == parallel.total and sequential.line_count == parallel.line_count
        assert sorted(SettlementLine.objects.values_list("ticket_id", "amount")) == amounts
        assert SettlementRun.objects.count() == 1
