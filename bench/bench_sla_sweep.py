"""The SLA sweep against a large open backlog (PostgreSQL; DATABASE_URL): N open tickets, each
with its SLA row and a resolution timer far in the future, of which D come due. Figures per
(open, due):

- find_ms: the sweep's one read of due work (`timers_due`, the partial index of unfired timers
  by due time) for all D rows — this is what must not grow with the open count;
- fire_ms: `sla_sweep` firing the first F of them (`--fire`, default 200: firing all 10,000 on a
  shared machine takes many minutes) — for each, the conditional UPDATE that claims it, the
  re-check under the claim and the breach it records (the SLA row's flag, a timeline event), one
  transaction per timer; per_timer_ms = fire_ms / F. Firing cost is per due timer, so the whole
  sweep of D is about D × per_timer_ms.

The open backlog is built with INSERT … SELECT generate_series (set-up, not measured: building a
million rows through the ORM would take most of an hour on a shared machine); what is measured
runs through Django. Usage: DATABASE_URL=postgres://… python bench/bench_sla_sweep.py
--open 1000000 --due 1000 10000."""

import argparse
import time

from common import bench_database, report


def build(connection, tenant_id, ids, policy_id, template, start, count):
    """`count` more open tickets with an SLA row and a far-away resolution timer each."""
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO tickets_ticket (tenant_id, number, template_id, template_version_id, category_id, title,
                   description, priority, status, source, data, raw_payload, tracking_token, created_at, updated_at)
               SELECT %s, 'B-' || g, %s, %s, %s, '积压工单 ' || g, '', 'normal', 'in_progress', 'phone', '{}', '{}',
                      'bench-' || g, now(), now()
               FROM generate_series(%s, %s) g""",
            [tenant_id, template.pk, template.current_version_id, template.category_id, start, start + count - 1])
        cursor.execute(
            """INSERT INTO workflow_ticketsla (tenant_id, ticket_id, policy_id, due_soon_percent, started_at,
                   resolution_due_at, response_breached, resolution_breached, paused_minutes, is_open,
                   escalation_level)
               SELECT %s, t.id, %s, 20, now(), now() + interval '30 days', false, false, 0, true, 0
               FROM tickets_ticket t WHERE t.tenant_id = %s AND t.number LIKE 'B-%%'
                 AND NOT EXISTS (SELECT 1 FROM workflow_ticketsla s WHERE s.ticket_id = t.id)""",
            [tenant_id, policy_id, tenant_id])
        cursor.execute(
            """INSERT INTO workflow_slatimer (tenant_id, ticket_id, kind, level, working, due_at, outcome)
               SELECT %s, s.ticket_id, 'resolution_due', 0, true, s.resolution_due_at, ''
               FROM workflow_ticketsla s WHERE s.tenant_id = %s
                 AND NOT EXISTS (SELECT 1 FROM workflow_slatimer x WHERE x.ticket_id = s.ticket_id)""",
            [tenant_id, tenant_id])
        cursor.execute("ANALYZE tickets_ticket; ANALYZE workflow_ticketsla; ANALYZE workflow_slatimer")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--open", type=int, nargs="+", default=[10_000, 100_000, 1_000_000],
                        help="open-ticket counts to measure at (ascending)")
    parser.add_argument("--due", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--fire", type=int, default=200, help="due timers actually fired per round")
    args = parser.parse_args()

    with bench_database() as connection:
        if connection.vendor != "postgresql":
            raise SystemExit("bench_sla_sweep needs PostgreSQL: set DATABASE_URL")
        import datetime

        from django.utils import timezone

        from scrm.services import tenant_create
        from scrm.tenancy import tenant_scope
        from tests.factories import published_template
        from workflow.models import SlaTimer
        from workflow.sla_policy import sla_policy_create
        from workflow.sla_sweep import sla_sweep, timers_due

        tenant = tenant_create(name="压测租户", slug="bench-sla")
        with tenant_scope(tenant):
            template = published_template(tenant)
            policy = sla_policy_create(tenant=tenant, name="压测", resolution_minutes=60 * 24 * 30)
        built = 0
        for total in sorted(args.open):
            started = time.perf_counter()
            build(connection, tenant.pk, None, policy.pk, template, built + 1, total - built)
            report("sla_sweep_build", open=total, seconds=round(time.perf_counter() - started, 1))
            built = total
            for due in args.due:
                now = timezone.now()
                with tenant_scope(tenant):  # one tenant: its scope is the whole sweep
                    ids = list(SlaTimer.objects.filter(fired_at__isnull=True).order_by("ticket_id")
                               .values_list("pk", flat=True)[:due])
                    SlaTimer.objects.filter(pk__in=ids).update(due_at=now - datetime.timedelta(minutes=1))
                    with connection.cursor() as cursor:
                        cursor.execute("ANALYZE workflow_slatimer")
                    t0 = time.perf_counter()
                    found = timers_due(now=now, limit=due)
                    find_ms = (time.perf_counter() - t0) * 1000
                    fire = min(args.fire, due)
                    t0 = time.perf_counter()
                    counts = sla_sweep(now=now, batch=fire, max_batches=1)
                    fire_ms = (time.perf_counter() - t0) * 1000
                    # Leave no due timer behind for the next round's count.
                    SlaTimer.objects.filter(fired_at__isnull=True, due_at__lte=now).update(
                        due_at=now + datetime.timedelta(days=60))
                report("sla_sweep", open=total, due=due, find_ms=round(find_ms, 1), found=len(found),
                       fired=counts.get("fired", 0), fire_ms=round(fire_ms), per_timer_ms=round(fire_ms / fire, 1))


if __name__ == "__main__":
    main()
