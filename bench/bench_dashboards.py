"""The 工作台 (first page), the progress board and the manager dashboard with 1,000,000 tickets in
one tenant (PostgreSQL): server time p50/p95 per page under 8 concurrent clients (threads, each
its own Django test client and database connection) and the queries per page. Target: p95 ≤ 200 ms.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/scrm_dash .venv/bin/python bench/bench_dashboards.py --keep
    … bench_dashboards.py --keep --db-name bench_dash --requests 40

The tickets are bench_ticket_pages' (generated in SQL, one every 29 seconds back from now, so
30 days hold about 89,000 of them; statuses spread, resolved after a day), signed in as a manager
(tenant-wide). Without DATABASE_URL it runs on SQLite with --tickets 20000 (a smoke test only).
The machine is shared: quote figures with that caveat."""

import argparse
import os
import statistics
import sys
import threading
import time

os.environ.setdefault("DEBUG", "false")

from bench_ticket_pages import generate, vacuum
from common import bench_database, percentile

PAGES = {
    "workbench": "/",
    "board": "/board/",
    "board_by_handler": "/board/?group=handler",
    "dashboard_30d": "/dashboard/",
    "dashboard_7d": "/dashboard/?days=7",
}


def run_concurrent(user, url, *, clients, requests):
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


def queries_of(user, url, connection):
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(user)
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
        from django.contrib.auth import get_user_model

        manager = get_user_model().objects.filter(username="pages_manager").first()
        if manager is None:
            with tenant_scope(tenant):
                manager = staff_create(tenant=tenant, username="pages_manager", password="bench-Pass-123",
                                       display_name="经理", role=Role.MANAGER).user
        print(f"{tickets:,} tickets · {args.clients} concurrent clients × {args.requests} requests per page "
              f"({connection.vendor}; shared machine, figures are noisy)")
        print(f"{'page':20} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'queries':>8}")
        for label, url in PAGES.items():
            run_concurrent(manager, url, clients=2, requests=2)  # warm-up
            times = run_concurrent(manager, url, clients=args.clients, requests=args.requests)
            print(f"{label:20} {statistics.median(times):8.1f} {percentile(times, 95):8.1f} {max(times):8.1f} "
                  f"{queries_of(manager, url, connection):8d}", flush=True)


if __name__ == "__main__":
    main()
