"""A monthly settlement run over N closed tickets (default 100,000; the issue's target is
1,000,000 on PostgreSQL in < 60 s and < 500 MB): wall time, lines/s and peak RSS of the run,
which settles every ticket without lines in id windows and then applies the period rules.

`--workers N` settles the windows in N processes (forked here, each with its own database
connection) calling the same window service a Celery worker's task calls (`run_window_execute`),
in the order a queue hands them out; the finish runs in the parent once every window is done.
Per process: windows, CPU seconds, peak RSS. Like a Celery worker (scrm.celery.gc_freeze_startup,
in the main process at start and in each prefork child once forked), the bench freezes what it
loaded before settling, so a full garbage collection walks only what the run made;
`--no-gc-freeze` leaves the collector walking every object the process holds. `--keep` reuses the
database `--db-name` (seeded once) so later runs skip the seeding: each run first deletes the
lines and the run.

The tickets are written with bulk_create, the first 100,000 of them; more are copies of those made
in one INSERT … SELECT over generate_series (seeding only: the run under test goes through the
services). `--keep` with a larger `--tickets` tops a kept database up the same way. Run on PostgreSQL:
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/scrm_settle \
        .venv/bin/python bench/bench_settlement_run.py --tickets 100000
"""

import argparse
import multiprocessing
import os
import random
import resource
import secrets
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

os.environ.setdefault("DEBUG", "false")  # as in production: no query log kept for a million rows

from common import bench_database, db_backend_pid, proc_cpu_seconds, report


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_s():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=1, help="processes settling windows in parallel")
    parser.add_argument("--profile", action="store_true", help="print the run's top functions (cProfile, 1 worker)")
    parser.add_argument("--keep", action="store_true", help="keep the database (--db-name) and reuse its tickets")
    parser.add_argument("--db-name", default=None, help="database name with --keep (default bench_settlement_<N>)")
    parser.add_argument("--no-gc-freeze", action="store_true",
                        help="do not freeze the startup objects as a worker does (scrm.celery.gc_freeze_startup)")
    args = parser.parse_args()
    name = (args.db_name or f"bench_settlement_{args.tickets}") if args.keep else None
    with bench_database(name, keep=args.keep) as connection:
        from scrm.models import Tenant
        from scrm.tenancy import tenant_scope
        from settlement.models import SettlementLine, SettlementRun

        tenant = Tenant.objects.filter(slug="settle-bench").first() if args.keep else None
        if tenant is None:
            tenant = seed(args, connection)
        else:
            with tenant_scope(tenant):  # a kept database: start again from tickets without lines
                SettlementLine.objects.all().delete()
                SettlementRun.objects.all().delete()
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:  # else each kept run inserts among the last one's dead rows
                    cursor.execute("VACUUM ANALYZE settlement_settlementline")
            report("seed", tickets="kept", db=name)
            top_up(args, connection, tenant)
        with tenant_scope(tenant):
            measure(args, connection, tenant)


def seed(args, connection):
    from scrm.models import Role
    from scrm.services import membership_set
    from scrm.tenancy import tenant_scope
    from settlement.services import field_map_save, party_create, price_set, rule_save, service_item_create
    from tests.factories import RegionFactory, StoreFactory, TenantFactory, UserFactory, published_template
    from tests.settlement.conftest import MAPPING, REPAIR_FIELDS
    from tickets.models import Status, Ticket

    rng = random.Random(18)
    tenant = TenantFactory(name="结算压测", slug="settle-bench")
    with tenant_scope(tenant):
        regions = [RegionFactory(tenant=tenant, code=f"r{c}", name=f"区{c}", settlement_class=c) for c in "ABC"]
        stores = [StoreFactory(tenant=tenant, region=regions[i % 3], code=f"s{i}", name=f"门店{i}")
                  for i in range(60)]
        template = published_template(tenant, name="设备维修", slug="repair", fields=REPAIR_FIELDS, prefix="WX")
        field_map_save(tenant=tenant, template=template, mapping=MAPPING)
        engineers = []
        for i in range(200):
            user = UserFactory(username=f"eng{i}")
            membership_set(tenant=tenant, user=user, role=Role.ENGINEER)
            party_create(tenant=tenant, kind="engineer", name=f"工程师{i}", code=f"e{i}", user=user)
            engineers.append(user)
        for i, store in enumerate(stores[:10]):
            party_create(tenant=tenant, kind="distributor", name=f"经销商{i}", code=f"d{i}", store=store)
        for code, price in (("repair", "200.00"), ("install", "300.00")):
            item = service_item_create(tenant=tenant, code=code, name=code)
            price_set(tenant=tenant, item=item, price=Decimal(price), effective_from=date(2026, 1, 1))
        rule_save(tenant=tenant, name="大区系数", kind="region_class", priority=10,
                  params={"coefficients": {"A": "1.15", "B": "1.05", "C": "1.00"}})
        rule_save(tenant=tenant, name="加急", kind="surcharge", params={"flag": "urgent", "percent": 30})
        rule_save(tenant=tenant, name="夜间", kind="surcharge", params={"flag": "night", "percent": 20})
        rule_save(tenant=tenant, name="海拔", kind="altitude", params={"above_m": 3000, "multiplier": 2})
        rule_save(tenant=tenant, name="路程", kind="distance", params={"base_km": 500, "per_km": "1.5"})
        rule_save(tenant=tenant, name="返利", kind="rebate", params={
            "mode": "marginal", "party_kind": "distributor",
            "tiers": [{"from": 0, "percent": 0}, {"from": 100000, "percent": 2}]})
        version = template.current_version
        zone = ZoneInfo("Asia/Shanghai")
        start = time.perf_counter()
        chunk = 5000
        made = min(args.tickets, PYTHON_SEEDED)
        for offset in range(0, made, chunk):
            rows = []
            for n in range(offset, min(made, offset + chunk)):
                store = stores[n % len(stores)]
                rows.append(Ticket(
                    tenant=tenant, number=f"WX-B-{n:08d}", template=template, template_version=version,
                    category_id=template.category_id, title="维修", status=Status.CLOSED, source="api",
                    priority=rng.choice(["normal", "normal", "urgent"]), region_id=store.region_id, store=store,
                    assignee=None if n % 10 == 0 else engineers[n % len(engineers)],
                    data={"item": rng.choice(["repair", "install"]), "night": rng.random() < 0.2,
                          "altitude": rng.choice([None, 500, 4200]), "km": str(rng.choice([0, 120, 650]))},
                    tracking_token=f"{tenant.pk:x}-{secrets.token_urlsafe(12)}",
                    closed_at=datetime(2026, 11, 1, 8, tzinfo=zone) + timedelta(minutes=n % 40000)))
            Ticket.objects.bulk_create(rows)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:  # the statistics autovacuum would gather by itself
                cursor.execute("ANALYZE tickets_ticket")
        report("seed", tickets=made, seconds=round(time.perf_counter() - start, 1), rss_mb=round(rss_mb()))
    top_up(args, connection, tenant)
    return tenant


# The first 100,000 tickets are made one by one from a seeded random stream (the 100,000 bench's
# figures and total stay comparable); beyond that they are copies of those, made in one INSERT …
# SELECT over generate_series (PostgreSQL), with their own number, tracking token and closing time.
PYTHON_SEEDED = 100_000


def top_up(args, connection, tenant):
    from scrm.tenancy import tenant_scope
    from tickets.models import Ticket

    with tenant_scope(tenant):
        have = Ticket.objects.count() if connection.vendor == "postgresql" else args.tickets
    if have >= args.tickets:
        return
    start = time.perf_counter()
    override = {
        "number": "'WX-B-' || lpad((b.n + g.k * %(base)s)::text, 8, '0')",
        "tracking_token": "b.tracking_token || '-' || g.k",
        # as the first ones: 08:00 on 1 November (Asia/Shanghai) + n mod 40,000 minutes
        "closed_at": "timestamptz '2026-11-01 08:00+08'"
                     " + make_interval(mins => ((b.n + g.k * %(base)s) %% 40000)::int)",
    }
    columns = [f.column for f in Ticket._meta.concrete_fields if f.column != "id"]
    select = ", ".join(override.get(c, f"b.{c}") for c in columns)
    sql = (f"INSERT INTO tickets_ticket ({', '.join(columns)}) SELECT {select} FROM "
           f"(SELECT t.*, row_number() OVER (ORDER BY t.id) - 1 AS n FROM tickets_ticket t "
           f"WHERE t.tenant_id = %(tenant)s) b CROSS JOIN generate_series(1, %(copies)s) AS g(k) "
           f"WHERE b.n + g.k * %(base)s < %(total)s ORDER BY g.k, b.n")
    with connection.cursor() as cursor:
        cursor.execute(sql, {"base": have, "tenant": tenant.pk, "copies": -(-args.tickets // have) - 1,
                             "total": args.tickets})
        cursor.execute("ANALYZE tickets_ticket")
    report("seed (copies, one INSERT … SELECT)", tickets=args.tickets - have,
           seconds=round(time.perf_counter() - start, 1))


# Set in the parent before forking: each worker process opens its own connection and builds its
# own WindowContext (tables and rules read once per process, as a long-lived Celery worker would).
_TENANT_ID = None
_CONTEXT = None
_GC_FREEZE = True


def _window(window_id):
    """One window in a worker process: the service a Celery window task calls."""
    global _CONTEXT
    from common import db_backend_pid
    from django.db import connection

    from scrm.tenancy import tenant_scope
    from settlement.services.runs import WindowContext, run_window_execute

    with tenant_scope(_TENANT_ID):
        if _CONTEXT is None:
            if _GC_FREEZE:  # a prefork child, once forked (worker_process_init)
                from scrm.celery import gc_freeze_startup

                gc_freeze_startup()
            _CONTEXT = WindowContext()
        run_window_execute(window_id=window_id, context=_CONTEXT)
    return os.getpid(), db_backend_pid(connection), cpu_s(), rss_mb()


def measure(args, connection, tenant):
    global _TENANT_ID, _GC_FREEZE
    from django.db import connections

    from settlement.services import run_execute, run_start
    from settlement.services.runs import run_finish, run_plan

    _GC_FREEZE = not args.no_gc_freeze
    if _GC_FREEZE:  # what a worker has done before its first task (worker_ready)
        from scrm.celery import app, gc_freeze_startup

        app.loader.import_default_modules()
        gc_freeze_startup()
    rss_before = rss_mb()
    backend = db_backend_pid(connection)
    cpu_before, db_cpu_before = cpu_s(), proc_cpu_seconds(backend) if backend else 0.0
    load_before = os.getloadavg()
    start = time.perf_counter()
    run = run_start(tenant=tenant, period_kind="month", day=date(2026, 11, 1), actor=None, background=False)
    per_process = {}
    if args.workers > 1:
        windows = run_plan(run=run, batch=args.batch)
        planned = time.perf_counter() - start
        connections.close_all()  # never share a connection across fork
        _TENANT_ID = tenant.pk
        with multiprocessing.get_context("fork").Pool(args.workers) as pool:
            for pid, backend_pid, cpu, rss in pool.imap_unordered(_window, windows, chunksize=1):
                count = per_process.get(pid, (0,))[0] + 1
                per_process[pid] = (count, backend_pid, cpu, rss, proc_cpu_seconds(backend_pid))
        run = run_finish(run=run)
        report("plan", windows=len(windows), seconds=round(planned, 1))
    elif args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        run = profiler.runcall(run_execute, run=run, batch=args.batch)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    else:
        run = run_execute(run=run, batch=args.batch)
    wall = time.perf_counter() - start
    # CPU seconds of each process and of its PostgreSQL backend: on a shared, loaded machine they
    # say more than the wall time (which waits for the other tenants of the CPU).
    backend = db_backend_pid(connection) if args.workers > 1 else backend
    cpu = cpu_s() - cpu_before
    db_cpu = (proc_cpu_seconds(backend) - db_cpu_before) if backend and args.workers == 1 else 0.0
    for pid, (count, _backend, worker_cpu, worker_rss, worker_db_cpu) in sorted(per_process.items()):
        report(f"  worker {pid}", windows=count, python_cpu_s=round(worker_cpu, 1),
               db_cpu_s=round(worker_db_cpu, 1), peak_rss_mb=round(worker_rss))
    python_cpu = cpu + sum(p[2] for p in per_process.values())
    db_cpu += sum(p[4] for p in per_process.values())
    report("settlement run", backend=connection.vendor, workers=args.workers, tickets=run.ticket_count,
           lines=run.line_count, wall_s=round(wall, 1), lines_per_s=round(run.line_count / wall),
           python_cpu_s=round(python_cpu, 1), db_cpu_s=round(db_cpu, 1), peak_rss_mb_parent=round(rss_mb()),
           rss_before_run_mb=round(rss_before), total=run.total,
           load_avg_before=" ".join(f"{x:.1f}" for x in load_before),
           load_avg_after=" ".join(f"{x:.1f}" for x in os.getloadavg()))
    start = time.perf_counter()
    run = run_start(tenant=tenant, period_kind="month", day=date(2026, 11, 1), actor=None, background=False)
    run = run_execute(run=run, batch=args.batch)
    report("re-run of the draft (nothing new to settle)", wall_s=round(time.perf_counter() - start, 1),
           lines=run.line_count, total=run.total)


if __name__ == "__main__":
    main()
