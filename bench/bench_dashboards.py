"""The 工作台 (first page), the progress board and the manager dashboard with 1,000,000 tickets in
one tenant (PostgreSQL): server time p50/p95 per page under 8 concurrent clients (threads, each
its own Django test client and database connection) and the queries per page. Target: p95 ≤ 200 ms.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/scrm_dash .venv/bin/python bench/bench_dashboards.py --keep
    … bench_dashboards.py --keep --db-name bench_dash --requests 40

The tickets are bench_ticket_pages' (generated in SQL, one every 29 seconds back from now, so
30 days hold about 89,000 of them and 30 % are open; statuses spread, resolved after a day), each
open one with a running SLA clock (TicketSla, generated in SQL: first response due after 2 hours,
resolution after 3 days), signed in as a manager (tenant-wide). The dashboard reads the daily
roll-ups: the bench backfills them once (timed) and times one refresh of today and yesterday —
what the beat task does every 5 minutes. Each page runs with the dashboards cache (dashboards.cache:
what production serves between two changes) and without it (every request computing its
figures: what the first request after a change pays); `cpu ms` is the Python CPU of the client
process per request (the server's work plus the test client's small share), `pg ms` its
PostgreSQL backend's, both steadier than wall time on a shared machine. Without DATABASE_URL it
runs on SQLite with --tickets 20000 (a smoke test only). The machine is shared: quote figures with that caveat."""

import argparse
import multiprocessing
import os
import statistics
import sys
import threading
import time

os.environ.setdefault("DEBUG", "false")

from bench_ticket_pages import generate, vacuum
from common import bench_database, db_backend_pid, percentile, proc_cpu_seconds

PAGES = {
    "workbench": "/",
    "board": "/board/",
    "board_by_handler": "/board/?group=handler",
    "dashboard_30d": "/dashboard/",
    "dashboard_7d": "/dashboard/?days=7",
    "dashboard_90d": "/dashboard/?days=90",
}


def sla_clocks(connection, tenant):
    """A running SLA clock for every open ticket that has none (PostgreSQL: one INSERT … SELECT)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("""
            INSERT INTO workflow_ticketsla (tenant_id, ticket_id, due_soon_percent, started_at, response_due_at,
                responded_at, response_breached, resolution_due_at, resolved_at, resolution_breached, paused_at,
                paused_minutes, is_open, escalation_level)
            SELECT t.tenant_id, t.id, 20, t.created_at, t.created_at + interval '2 hours',
                   CASE WHEN t.status <> 'new' THEN t.created_at + interval '30 minutes' END,
                   t.status = 'new' AND t.created_at < now() - interval '2 hours',
                   t.created_at + interval '3 days', NULL, t.created_at < now() - interval '3 days',
                   NULL, 0, true, 0
            FROM tickets_ticket t
            WHERE t.tenant_id = %s AND t.status IN ('new', 'in_progress', 'waiting')
              AND NOT EXISTS (SELECT 1 FROM workflow_ticketsla s WHERE s.ticket_id = t.id)
        """, [tenant.pk])
        cursor.execute("VACUUM (ANALYZE) workflow_ticketsla")


def rollups(connection, tenant):
    """Backfill the roll-ups when there are none (timed), then time one beat refresh."""
    from dashboards.models import DailyTicketStats
    from dashboards.services import rollup_refresh
    from scrm.tenancy import tenant_scope

    with tenant_scope(tenant):
        if not DailyTicketStats.objects.exists():
            started = time.perf_counter()
            rollup_refresh(tenant=tenant)  # the first run backfills the whole history
            print(f"  roll-up backfill: {time.perf_counter() - started:.0f}s, "
                  f"{DailyTicketStats.objects.count():,} rows", flush=True)
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("VACUUM (ANALYZE) dashboards_dailyticketstats")
        started = time.perf_counter()
        rollup_refresh(tenant=tenant)
        print(f"  roll-up refresh of today and yesterday (the beat task): "
              f"{(time.perf_counter() - started) * 1000:.0f} ms", flush=True)


def run_concurrent(user, url, *, clients, requests, processes=True):
    """`clients` concurrent clients, each `requests` requests in a row; the server time of each.
    With processes (the default on PostgreSQL) every client is a forked process with its own
    connection — like the workers of a WSGI server; threads share one interpreter lock, so
    they measure Python's queue as much as the server."""
    if processes:
        return _run_processes(user.pk, url, clients=clients, requests=requests)
    from django.db import connections
    from django.test import Client

    times, errors = [], []
    lock = threading.Lock()

    def worker():
        client = Client()
        client.force_login(user)
        for _ in range(requests):
            started = time.perf_counter()
            response = client.get(url)
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                (times if response.status_code == 200 else errors).append(elapsed)
        connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"{url}: {len(errors)} failed requests")
    return times


def _process_worker(user_id, url, requests, queue):
    from django.contrib.auth import get_user_model
    from django.db import connection, connections
    from django.test import Client

    connections.close_all()  # never share the parent's connection
    client = Client()
    client.force_login(get_user_model().objects.get(pk=user_id))
    backend = db_backend_pid(connection)
    times, cpu, db_cpu = [], 0.0, proc_cpu_seconds(backend) if backend else 0.0
    for _ in range(requests):
        started, started_cpu = time.perf_counter(), time.process_time()
        response = client.get(url)
        elapsed = (time.perf_counter() - started) * 1000
        cpu += time.process_time() - started_cpu
        times.append(elapsed if response.status_code == 200 else -1.0)
    db_cpu = (proc_cpu_seconds(backend) - db_cpu) if backend else 0.0
    connections.close_all()
    queue.put((times, cpu, db_cpu))


CPU = {}  # url → (Python CPU ms, PostgreSQL CPU ms) per request of the last concurrent run


def _run_processes(user_id, url, *, clients, requests):
    from django.db import connections

    connections.close_all()
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [context.Process(target=_process_worker, args=(user_id, url, requests, queue)) for _ in range(clients)]
    for w in workers:
        w.start()
    results = [queue.get() for _ in workers]
    times = [t for result in results for t in result[0]]
    n = len(times)
    CPU[url] = (1000 * sum(r[1] for r in results) / n, 1000 * sum(r[2] for r in results) / n)
    for w in workers:
        w.join()
    if any(t < 0 for t in times):
        raise SystemExit(f"{url}: {sum(t < 0 for t in times)} failed requests")
    return times


def queries_of(user, url, connection):
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(user)
    client.get(url)  # with the cache on, the second request is the one most requests are
    with CaptureQueriesContext(connection) as ctx:
        client.get(url)
    return len(ctx.captured_queries)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=None, help="default 1,000,000 (PostgreSQL), 20,000 (SQLite)")
    parser.add_argument("--requests", type=int, default=25, help="requests per client and page")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--db-name", default="bench_dash")
    parser.add_argument("--threads", action="store_true", help="clients as threads of one process (GIL-bound)")
    parser.add_argument("--cache", choices=("on", "off", "both"), default="both",
                        help="the dashboards cache as in production (on), every request computing its figures "
                             "(off: what a request pays after a stamp change), or both runs (default)")
    args = parser.parse_args()
    postgres = bool(os.environ.get("DATABASE_URL"))
    tickets = args.tickets or (1_000_000 if postgres else 20_000)
    if not postgres:
        args.clients = 1  # SQLite's in-memory database locks between threads
    name = args.db_name if args.keep and postgres else None
    with bench_database(test_name=name, keep=args.keep) as connection:
        from django.db import transaction

        from scrm.models import Role, Tenant
        from scrm.services import staff_create, tenant_create
        from scrm.tenancy import tenant_scope

        tenant = Tenant.objects.filter(slug="pages").first()
        if tenant is None:
            print(f"generating {tickets} tickets (once with --keep)", flush=True)
            started = time.perf_counter()
            with transaction.atomic():
                tenant = tenant_create(name="味道江南（压测）", slug="pages")
                other = tenant_create(name="另一个租户", slug="other")
                generate(connection, tenant, other, tickets=tickets, customers=max(100, tickets // 5),
                         stdout=sys.stdout)
            vacuum(connection)
            print(f"  generated in {time.perf_counter() - started:.0f}s", flush=True)
        sla_clocks(connection, tenant)
        rollups(connection, tenant)
        from django.contrib.auth import get_user_model

        manager = get_user_model().objects.filter(username="pages_manager").first()
        if manager is None:
            with tenant_scope(tenant):
                manager = staff_create(tenant=tenant, username="pages_manager", password="bench-Pass-123",
                                       display_name="经理", role=Role.MANAGER).user
        mode = "threads" if args.threads or not postgres else "processes"
        print(f"{tickets:,} tickets · {args.clients} concurrent clients ({mode}) × {args.requests} requests per page "
              f"({connection.vendor}; {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}: "
              f"shared machine, figures are noisy)")
        from django.conf import settings

        print(f"{'page':20} {'cache':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'cpu ms':>7} {'pg ms':>6} "
              f"{'queries':>8}")
        for use_cache in {"on": (True,), "off": (False,), "both": (True, False)}[args.cache]:
            settings.DASHBOARDS_CACHE = use_cache  # read by dashboards.cache.cached; the forks inherit it
            for label, url in PAGES.items():
                processes = postgres and not args.threads
                # Counted first, in this process: it also warms what forked clients inherit (URL
                # resolvers, templates, translation catalogues), as a WSGI server's preloaded workers.
                queries = queries_of(manager, url, connection)
                run_concurrent(manager, url, clients=2, requests=2, processes=processes)  # warm-up
                times = run_concurrent(manager, url, clients=args.clients, requests=args.requests,
                                       processes=processes)
                cpu, db_cpu = CPU.get(url, (0.0, 0.0)) if processes else (0.0, 0.0)
                print(f"{label:20} {'on' if use_cache else 'off':>5} {statistics.median(times):8.1f} "
                      f"{percentile(times, 95):8.1f} {max(times):8.1f} {cpu:7.1f} {db_cpu:6.1f} {queries:8d}",
                      flush=True)
            print(f"  load average now {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
