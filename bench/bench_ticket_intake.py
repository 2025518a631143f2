"""Tickets created through `ticket_intake` — the whole pipeline of a public-form complaint:
classification (four active rules), validation against the 餐饮投诉 template (store picker,
datetime, pattern, choices …), customer link or creation by phone, the ticket number, the
first timeline event and the outbox row for the customer, one transaction each (and the
enqueue after commit). Prints tickets/s, p50/p95 per call and the queries one call makes.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/scrm .venv/bin/python bench/bench_ticket_intake.py
    .venv/bin/python bench/bench_ticket_intake.py            # SQLite file (WAL), as `make run` uses

On PostgreSQL the tasks go to Redis db 14 (REDIS_URL, flushed afterwards); on SQLite to kombu's
filesystem queue in a temporary folder. No worker runs: the rows stay pending."""

import argparse
import os
import statistics
import sys
import tempfile
import time

REDIS_DB_URL = "redis://127.0.0.1:6379/14"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=None,
                        help="how many (default 10,000 on PostgreSQL, 2,000 on SQLite)")
    parser.add_argument("--phones", type=int, default=None, help="distinct customers (default 2/3 of the tickets)")
    parser.add_argument("--show-queries", action="store_true", help="print the SQL of one intake")
    args = parser.parse_args()

    postgres = bool(os.environ.get("DATABASE_URL"))
    os.environ.setdefault("DEBUG", "false")  # no query log: as in production
    tmp = tempfile.TemporaryDirectory(prefix="scrm-bench-")
    if postgres:
        os.environ.setdefault("REDIS_URL", REDIS_DB_URL)
    else:
        os.environ["SCRM_VAR_DIR"] = tmp.name  # the filesystem broker's queue, away from var/
    from common import Timer, bench_database, db_backend_pid, proc_cpu_seconds, report

    n = args.tickets or (10000 if postgres else 2000)
    phones = args.phones or max(1, n * 2 // 3)
    test_name = None if postgres else os.path.join(tmp.name, "bench.sqlite3")
    with bench_database(test_name=test_name) as connection:
        from django.conf import settings
        from django.db import reset_queries
        from django.test.utils import CaptureQueriesContext
        from intake_seed import form_data, seed_intake

        from notifications.models import Notification
        from scrm.models import Customer
        from scrm.services import tenant_create
        from scrm.tenancy import tenant_scope
        from tickets.models import Source, Ticket, TimelineEvent
        from tickets.services import ticket_intake

        tenant = tenant_create(name="味道江南", slug="bench")
        with tenant_scope(tenant):
            template, store_ids = seed_intake(tenant=tenant)

            def intake(i):
                data = form_data(i, store_ids=store_ids, phones=phones)
                return ticket_intake(
                    tenant=tenant, source=Source.WEB, template=template, data=data, files={}, audience="public",
                    contact={"name": data["contact_name"], "phone": data["contact_phone"]},
                    raw_payload={"form": data, "files": [], "ip": "127.0.0.1"},
                )

            # Queries of one call: a new customer, and a returning one (after the warm-up).
            reset_queries()
            with CaptureQueriesContext(connection) as first:
                intake(0)
            timer = Timer()
            backend = db_backend_pid(connection)
            db_cpu = proc_cpu_seconds(backend) if backend else 0.0
            started, cpu = time.perf_counter(), time.process_time()
            for i in range(1, n):
                with timer.measure():
                    intake(i)
                if settings.DEBUG:
                    reset_queries()
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            db_cpu = (proc_cpu_seconds(backend) - db_cpu) if backend else None
            reset_queries()
            with CaptureQueriesContext(connection) as returning:
                intake(n + phones)  # phone (n + phones) % phones: an existing customer
            made = (Ticket.objects.count(), TimelineEvent.objects.count(), Notification.objects.count(),
                    Customer.objects.count())
        expected = (n + 1, n + 1, n + 1, min(phones, n))
        if args.show_queries:
            for q in returning.captured_queries:
                print(f"  {q['time']}s  {q['sql'][:220]}")
        report(
            "ticket_intake", database=connection.vendor, tickets=n - 1,
            tickets_per_s=round((n - 1) / elapsed, 1), **timer.summary_ms(),
            mean_ms=round(statistics.fmean(timer.samples) * 1000, 2),
            python_cpu_ms=round(cpu / (n - 1) * 1000, 2),
            **({"postgres_cpu_ms": round(db_cpu / (n - 1) * 1000, 2)} if db_cpu is not None else {}),
            queries_new_customer=len(first.captured_queries), queries_returning=len(returning.captured_queries),
            rows_ok=made == expected,
        )
        if made != expected:
            print(f"rows (tickets, events, outbox, customers) = {made}, expected {expected}", file=sys.stderr)
    if postgres and os.environ.get("REDIS_URL") == REDIS_DB_URL:
        import redis

        redis.Redis.from_url(REDIS_DB_URL).flushdb()
    tmp.cleanup()
    return 0 if made == expected else 1


if __name__ == "__main__":
    sys.exit(main())
