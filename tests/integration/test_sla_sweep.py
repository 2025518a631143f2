"""The SLA sweep on PostgreSQL with real transactions: 1,000 tickets come due with two escalation
levels each; two sweeps racing over them fire every level exactly once; and a real Celery worker
on Redis killed (SIGKILL) in the middle of a sweep and started again leaves no level fired twice
and none lost. "Fired" is counted in the timeline (append-only, not de-duplicated), so a double
firing could not hide behind the outbox's idempotency keys."""

import datetime
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.utils import timezone
from django_scopes import scopes_disabled
from kombu import pools

from scrm import celery_app
from scrm.tenancy import tenant_scope
from tests.factories import published_template
from tickets.models import Ticket, TimelineEvent
from tickets.services import ticket_intake
from workflow.models import SlaTimer, TicketSla, TimerKind
from workflow.sla_policy import sla_policy_create
from workflow.sla_sweep import sla_sweep

ROOT = Path(settings.BASE_DIR)
LEVELS = [{"after": 60, "to": "role", "role": "manager", "channels": ["inapp"]},
          {"after": 120, "to": "role", "role": "manager", "channels": ["inapp"], "actions": ["raise_priority"]}]


def due_tickets(tenant, n):
    """n open tickets whose two escalation levels are both due (built in bulk: the set-up is not
    what is measured; the sweep is)."""
    with tenant_scope(tenant):
        template = published_template(tenant)
        policy = sla_policy_create(tenant=tenant, name="批量", response_minutes=30, escalations=LEVELS)
        base = ticket_intake(tenant=tenant, source="phone", template=template, data={"order_no": "B0"}, title="基准")
        started = timezone.now() - datetime.timedelta(hours=3)
        tickets = Ticket.objects.bulk_create([
            Ticket(tenant=tenant, number=f"SLA-{i:06d}", template_id=base.template_id,
                   template_version_id=base.template_version_id, category_id=base.category_id,
                   title=f"超时工单{i}", source="phone", tracking_token=f"sla-{i}-{os.getpid()}")
            for i in range(n)], batch_size=1000)
        TicketSla.objects.bulk_create([
            TicketSla(tenant=tenant, ticket=t, policy=policy, started_at=started,
                      response_due_at=started + datetime.timedelta(minutes=30)) for t in tickets], batch_size=1000)
        SlaTimer.objects.bulk_create([
            SlaTimer(tenant=tenant, ticket=t, kind=TimerKind.ESCALATION, level=level,
                     due_at=started + datetime.timedelta(minutes=after))
            for t in tickets for level, after in ((1, 60), (2, 120))], batch_size=2000)
        SlaTimer.objects.filter(ticket=base).delete()  # only the bulk tickets take part
        return [t.pk for t in tickets]


def fired_per_level(tenant, ids):
    with tenant_scope(tenant):
        rows = (TimelineEvent.objects.filter(ticket_id__in=ids, code="sla.escalated")
                .values("ticket_id", "params__level").annotate(n=Count("id")))
        return [(r["ticket_id"], r["params__level"], r["n"]) for r in rows]


def assert_exactly_once(tenant, ids):
    rows = fired_per_level(tenant, ids)
    assert len(rows) == 2 * len(ids)
    assert {n for _t, _l, n in rows} == {1}
    with tenant_scope(tenant):
        assert not SlaTimer.objects.filter(ticket_id__in=ids, fired_at__isnull=True).exists()
        assert set(Ticket.objects.filter(pk__in=ids).values_list("priority", flat=True)) == {"high"}


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_sweeps_fire_each_level_exactly_once(tenant_a, manager_a):
    ids = due_tickets(tenant_a, 1000)
    barrier = threading.Barrier(2)
    results, errors = [], []

    def sweep():
        try:
            barrier.wait(timeout=30)
            with scopes_disabled():
                results.append(sla_sweep(batch=250))
        except Exception as exc:  # surfaced below, with the thread's own error
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert errors == []
    fired = sum(r["fired"] for r in results)
    assert fired == 2000, results  # every level once between the two; the rest were "lost" claims
    assert_exactly_once(tenant_a, ids)


def start_worker(db_name):
    env = dict(os.environ, DATABASE_URL=f"postgres://{connection.settings_dict['USER']}@"
                                        f"{connection.settings_dict['HOST']}:{connection.settings_dict['PORT']}/{db_name}",
               CELERY_TASK_ALWAYS_EAGER="false")
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "scrm", "worker", "--pool=solo", "--loglevel=WARNING",
         "--without-gossip", "--without-mingle", "--hostname", f"sla-{time.monotonic_ns()}@localhost"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def unfired(tenant, ids):
    with tenant_scope(tenant):
        return SlaTimer.objects.filter(ticket_id__in=ids, fired_at__isnull=True).count()


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_sweep_and_restarted_fires_each_level_exactly_once(tenant_a, manager_a):
    ids = due_tickets(tenant_a, 1000)
    # An earlier test's in-process worker (conftest) closed kombu's connection pools on shutdown:
    # start from fresh ones so purge and send_task get a live connection.
    pools.reset()
    celery_app.close()
    celery_app.control.purge()
    worker = start_worker(connection.settings_dict["NAME"])
    try:
        celery_app.send_task("workflow.sla_sweep")
        deadline = time.monotonic() + 300
        while unfired(tenant_a, ids) > 1500 and time.monotonic() < deadline:
            time.sleep(0.2)
        left = unfired(tenant_a, ids)
        worker.send_signal(signal.SIGKILL)  # mid-sweep: no chance to finish its transaction
        worker.wait(timeout=30)
        assert 0 < left < 2000, f"the sweep was not caught mid-way ({left} left)"
        time.sleep(1)
        assert unfired(tenant_a, ids) > 0
        worker = start_worker(connection.settings_dict["NAME"])
        celery_app.send_task("workflow.sla_sweep")
        deadline = time.monotonic() + 600
        while unfired(tenant_a, ids) and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
        celery_app.control.purge()
    assert_exactly_once(tenant_a, ids)
