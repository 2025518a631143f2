"""The schedule tick (automation.sweep's schedule half) with many active schedules of which few
are due: the time to find the due ones (the partial index `schedule_due`) and the time of a whole
tick that carries them out (one ticket each, from a template without a workflow), for several due
counts — the cost should follow the due count, not the number of schedules. The tick claims a
batch's occurrences with one INSERT … ON CONFLICT DO NOTHING RETURNING and reads each template
once, so what is left per occurrence is the ticket itself (number, row, timeline, outbox).

    .venv/bin/python bench/bench_schedule_tick.py --schedules 100000 --due 1000 10000
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/scrm_h17 .venv/bin/python \
        bench/bench_schedule_tick.py --schedules 100000 --due 1000 10000 --db-name scrm_h17
"""

import argparse
import datetime
import time

from common import Timer, bench_database, report


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--schedules", type=int, default=100_000)
    parser.add_argument("--due", type=int, nargs="+", default=[1000])
    parser.add_argument("--db-name", default=None, help="the throw-away database's name (PostgreSQL: your own)")
    args = parser.parse_args()
    with bench_database(args.db_name) as connection:
        from django.utils import timezone

        from automation.models import Schedule
        from automation.tasks import automation_sweep_task, due_work
        from scrm.services import tenant_create
        from scrm.tenancy import tenant_scope
        from tickets.services import category_get_or_create, template_create, template_publish

        tenant = tenant_create(name="味道江南餐饮集团", slug="weidao")
        now = timezone.now()
        with tenant_scope(tenant):
            template = template_create(
                tenant=tenant, name="设备巡检", slug="xunjian", number_prefix="XJ",
                category=category_get_or_create(tenant=tenant, code="inspection", name="巡检"),
                fields=[{"key": "remark", "type": "text", "label": {"zh-hans": "备注"}, "required": False}])
            template_publish(template=template)
            template.refresh_from_db()
            started = time.perf_counter()
            rows = [Schedule(tenant=tenant, name=f"巡检计划{i:06d}", template=template, recurrence="daily", every=1,
                             at_time=datetime.time(9), starts_on=now.date(),
                             next_run_at=now + datetime.timedelta(days=1, minutes=i % 1440))
                    for i in range(args.schedules)]
            Schedule.objects.bulk_create(rows, batch_size=5000)
            report("schedule_tick.seed", schedules=args.schedules, seconds=round(time.perf_counter() - started, 1))
            ids = list(Schedule.objects.order_by("pk").values_list("pk", flat=True))

        def make_due(count, offset):
            with tenant_scope(tenant):
                Schedule.objects.filter(pk__in=ids[offset:offset + count]).update(
                    next_run_at=now - datetime.timedelta(minutes=5))

        offset = 0
        for due in sorted({0, 10, 100, *args.due}):
            make_due(due, offset)
            offset += due
            lookup = Timer()
            for _ in range(5):
                with lookup.measure():  # the sweep's own reads (due firings and schedules, all tenants)
                    found = due_work()[1]
            assert len(found) == due, (len(found), due)
            started = time.perf_counter()
            result = automation_sweep_task.apply().get()
            tick = time.perf_counter() - started
            assert result["schedule_runs"] == due, result
            report(f"schedule_tick.due_{due}", db=connection.vendor, active=args.schedules,
                   find_due=lookup.summary_ms()["p50_ms"], tick_ms=round(tick * 1000, 1),
                   per_occurrence_ms=round(tick * 1000 / due, 2) if due else "-")


if __name__ == "__main__":
    main()
