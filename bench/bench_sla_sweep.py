"""The SLA sweep against a large open backlog (PostgreSQL; DATABASE_URL): N open tickets, each
with its SLA row and a resolution timer far in the future, of which D come due. Figures per
(open, due):

- find_ms: the read of due work alone (`timers_due`, the partial index of unfired timers by due
  time) for all D rows — what must not grow with the open count;
- sweep_ms: the beat task `workflow.sla_sweep` firing all D of them: batches claimed with
  SELECT … FOR UPDATE SKIP LOCKED, their tickets locked the same way with their SLA rows read
  in that statement, the breaches written in bulk (one INSERT of timeline events, one UPDATE of flags, one
  of timer outcomes) — `queries` is how many statements the whole sweep took; python_cpu_ms and
  db_cpu_ms are the CPU the bench process and its PostgreSQL backend spent on it (steadier than
  wall time on a shared machine);
- plan: whether the claim used the partial index `slatimer_due_unfired` (EXPLAIN);
- gc_ms / full_gc: the CPU the garbage collector took during the sweep and its full collections.
  Like a Celery worker (scrm.celery.gc_freeze_startup at start), the bench freezes what it loaded
  before sweeping, so a full collection walks only what sweeps made; --no-gc-freeze leaves the
  collector walking every object the process holds (~80 ms each time one lands in a sweep).

With --escalate the due timers are escalation levels instead of breaches: each loads its ticket,
finds its recipients (the tenant's managers), raises the priority and writes the outbox rows
(in-app + WeCom per manager) — the path of escalations and reminders.

The open backlog is built with INSERT … SELECT generate_series (set-up, not measured: building a
million rows through the ORM would take most of an hour on a shared machine); what is measured
runs through Django, in a warm process (a first sweep of 20 due timers is not reported), as
in a beat worker that has swept before. Usage: DATABASE_URL=postgres://… python bench/bench_sla_sweep.py
--open 1000000 --due 1000 10000 [--db-name scrm_mine] (the database is made afresh and dropped;
with --keep it is built once, left in place and reused: each run fires timers not fired before)."""

import argparse
import gc
import time

from common import bench_database, db_backend_pid, proc_cpu_seconds, report


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


def claim_plan(connection, now, batch):
    """EXPLAIN of the sweep's claim (the statement batch_fire sends, unscoped): the index it scans."""
    with connection.cursor() as cursor:
        cursor.execute("""EXPLAIN SELECT * FROM workflow_slatimer WHERE fired_at IS NULL AND due_at <= %s
                          ORDER BY due_at, id LIMIT %s FOR UPDATE OF workflow_slatimer SKIP LOCKED""", [now, batch])
        plan = " | ".join(row[0] for row in cursor.fetchall())
    return "slatimer_due_unfired" if "slatimer_due_unfired" in plan else plan


WARM_UP = 20


class GcClock:
    """CPU seconds the garbage collector spent since reset(), and its full collections."""

    def __init__(self):
        self.seconds, self.full, self.started = 0.0, 0, 0.0

    def reset(self):
        self.seconds, self.full = 0.0, 0

    def callback(self, phase, info):
        if phase == "start":
            self.started = time.process_time()
            return
        self.seconds += time.process_time() - self.started
        self.full += info["generation"] == 2


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--open", type=int, nargs="+", default=[10_000, 100_000, 1_000_000],
                        help="open-ticket counts to measure at (ascending)")
    parser.add_argument("--due", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--db-name", default=None, help="the throw-away database's name (default bench_<pid>)")
    parser.add_argument("--verbose", action="store_true", help="print each statement of the sweep with its time")
    parser.add_argument("--profile", action="store_true", help="print where the sweep's CPU time goes (cProfile)")
    parser.add_argument("--escalate", action="store_true",
                        help="the due timers are escalation levels (recipients, priority, outbox) instead of breaches")
    parser.add_argument("--keep", action="store_true",
                        help="build in (or reuse) the database --db-name and leave it in place")
    parser.add_argument("--no-gc-freeze", action="store_true",
                        help="do not freeze the startup objects as a worker does (scrm.celery.gc_freeze_startup)")
    args = parser.parse_args()

    with bench_database(args.db_name, keep=args.keep) as connection:
        if connection.vendor != "postgresql":
            raise SystemExit("bench_sla_sweep needs PostgreSQL: set DATABASE_URL")
        import datetime

        from django.test.utils import CaptureQueriesContext
        from django.utils import timezone

        from scrm.models import Role, Tenant
        from scrm.services import staff_create, tenant_create
        from scrm.tenancy import tenant_scope
        from tests.factories import published_template
        from tickets.models import Ticket, TicketTemplate
        from workflow.models import SlaPolicy, SlaTimer, TimerKind
        from workflow.sla_policy import sla_policy_create, sla_policy_update
        from workflow.sla_sweep import BATCH, timers_due
        from workflow.tasks import sla_sweep_task

        tenant = Tenant.objects.filter(slug="bench-sla").first()
        if tenant is None:
            tenant = tenant_create(name="压测租户", slug="bench-sla")
            with tenant_scope(tenant):
                template = published_template(tenant)
                policy = sla_policy_create(tenant=tenant, name="压测", resolution_minutes=60 * 24 * 30)
        with tenant_scope(tenant):  # (--keep: what an earlier run built)
            template = TicketTemplate.objects.order_by("pk").first()
            policy = SlaPolicy.objects.get(name="压测")
            built = Ticket.objects.filter(number__startswith="B-").count()
            if args.escalate and not policy.escalations:
                for n in (1, 2):
                    staff_create(tenant=tenant, username=f"bench_manager{n}", password=None, role=Role.MANAGER,
                                 display_name=f"经理{n}", wecom_userid=f"manager{n}")
                policy = sla_policy_update(policy=policy, escalations=[
                    {"after": 60, "to": "role", "role": Role.MANAGER, "channels": ["wecom"],
                     "actions": ["raise_priority"]}])
        warmed = False
        collections = GcClock()
        gc.callbacks.append(collections.callback)
        if not args.no_gc_freeze:  # what a worker has done before its first task
            from scrm.celery import app, gc_freeze_startup

            app.loader.import_default_modules()  # every app's tasks (and what they import: URLconf, pypinyin)
            gc_freeze_startup()
        for total in sorted(args.open):
            if total > built:
                started = time.perf_counter()
                build(connection, tenant.pk, None, policy.pk, template, built + 1, total - built)
                report("sla_sweep_build", open=total, seconds=round(time.perf_counter() - started, 1))
                built = total
            # A beat worker sweeps every minute: measure it warm. One small sweep first loads what
            # a process loads once (translations, compiled queries, the task's imports).
            for due in [WARM_UP, *args.due]:
                now = timezone.now()
                with tenant_scope(tenant):
                    ids = list(SlaTimer.objects.filter(fired_at__isnull=True).order_by("ticket_id")
                               .values_list("pk", flat=True)[:due])
                    due_rows = SlaTimer.objects.filter(pk__in=ids)
                    if args.escalate:
                        due_rows.update(due_at=now - datetime.timedelta(minutes=1), kind=TimerKind.ESCALATION,
                                        level=1)
                    else:
                        due_rows.update(due_at=now - datetime.timedelta(minutes=1))
                with connection.cursor() as cursor:
                    cursor.execute("ANALYZE workflow_slatimer")
                plan = claim_plan(connection, now, BATCH)
                with tenant_scope(tenant):
                    t0 = time.perf_counter()
                    found = timers_due(now=now, limit=due)
                    find_ms = (time.perf_counter() - t0) * 1000
                # The sweep as beat runs it: the Celery task, called in-process.
                backend = db_backend_pid(connection)
                db_cpu0, cpu0 = proc_cpu_seconds(backend), time.process_time()
                collections.reset()
                with CaptureQueriesContext(connection) as queries:
                    t0 = time.perf_counter()
                    if args.profile:
                        import cProfile
                        import pstats

                        # CPU time, not wall: on a shared machine waiting for a core lands anywhere.
                        profiler = cProfile.Profile(time.process_time)
                        counts = profiler.runcall(sla_sweep_task)
                        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
                        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
                    else:
                        counts = sla_sweep_task()
                    sweep_ms = (time.perf_counter() - t0) * 1000
                python_cpu_ms = (time.process_time() - cpu0) * 1000
                if due == WARM_UP and not warmed:
                    warmed = True
                    continue
                db_cpu_ms = (proc_cpu_seconds(backend) - db_cpu0) * 1000
                kind = "escalation" if args.escalate else "breach"
                report("sla_sweep", open=max(total, built), due=due, kind=kind, find_ms=round(find_ms, 1),
                       found=len(found), fired=counts.get("fired", 0), sweep_ms=round(sweep_ms),
                       python_cpu_ms=round(python_cpu_ms), db_cpu_ms=round(db_cpu_ms), queries=len(queries),
                       per_timer_ms=round(sweep_ms / max(1, due), 3), claim_index=plan,
                       gc_ms=round(collections.seconds * 1000, 1), full_gc=collections.full)
                if args.verbose:
                    for q in queries.captured_queries:
                        print(f"  {q['time']}s {q['sql'][:150]}")


if __name__ == "__main__":
    main()
