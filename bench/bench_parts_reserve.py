"""Spare parts reservations per second (`spareparts.services.stock_reserve`: the ranking read, then
one conditional UPDATE … RETURNING of the stock row and the INSERT of the reserve ledger line — which is
the reservation — in one transaction),
from several worker processes (Python threads share one GIL: on 2 cores, processes are what lets
the client side keep PostgreSQL busy), each with a few threads, each thread on its own connection.

- hot: every worker reserves one unit of the same part in the same warehouse (one row lock
  serialises them all): the contention figure.
- spread: 10,000 parts stocked in 3 of 50 warehouses each, workers reserving random parts.
- first, one thread alone measures the CPU per reservation of Python and of its PostgreSQL
  backend (`--cpu-n`): the figure that says what the two cores could do if they were free.

The catalogue and opening stock are bulk-inserted (with their ledger rows, so the ledger still
verifies); every reservation goes through the service. The parent seeds, closes its connection
and forks the workers (they inherit the seeded objects), starts the clock when all are ready and
stops it when the last one is done. PostgreSQL when DATABASE_URL is set (its row locks are the
point), else SQLite (one writer at a time: expect far less, and use --procs 1).

The default, 3 processes × 2 threads, is the client count at which a 2-core machine peaks: each
process runs the service's Python and waits on its connection, PostgreSQL takes the other core's
share; more processes only add switching between them (`--procs 4`, `6`, `8` measure less, see
the README's bench table). On more cores, raise `--procs` with them."""

import argparse
import os
import random
import threading
import time

from common import ROOT, bench_database, db_backend_pid, proc_cpu_seconds, report

os.environ.setdefault("DEBUG", "false")  # as in production: no query log


def seed(parts_n, warehouses_n, per_part):
    from decimal import Decimal

    from scrm.config_cache import config_changed
    from scrm.models import Region, Store
    from scrm.services import tenant_create
    from scrm.tenancy import tenant_scope
    from spareparts.models import Movement, Part, Stock, Warehouse
    from tests.factories import published_template
    from tickets.services import ticket_intake

    tenant = tenant_create(name="备件压测", slug="parts-bench")
    rng = random.Random(7)
    with tenant_scope(tenant):
        region = Region.objects.create(tenant=tenant, name="华东", code="east")
        store = Store.objects.create(tenant=tenant, region=region, name="上海徐汇店", code="sh-xh",
                                     latitude=Decimal("31.19"), longitude=Decimal("121.43"))
        warehouses = Warehouse.objects.bulk_create([
            Warehouse(tenant=tenant, code=f"w{i:02d}", name=f"仓库{i:02d}", kind="regional", region=region,
                      latitude=Decimal(str(round(22 + rng.random() * 18, 4))),
                      longitude=Decimal(str(round(103 + rng.random() * 18, 4)))) for i in range(warehouses_n)])
        parts = Part.objects.bulk_create([Part(tenant=tenant, sku=f"P{i:05d}", name=f"配件{i}", price_fen=1000)
                                          for i in range(parts_n + 1)])
        hot = parts[-1]
        stocks, movements = [], []
        for part in parts[:-1]:
            for w in rng.sample(warehouses, per_part):
                stocks.append(Stock(tenant=tenant, warehouse=w, part=part, on_hand=100_000))
                movements.append(Movement(tenant=tenant, warehouse=w, part=part, kind="receive", quantity=100_000,
                                          on_hand_delta=100_000))
        stocks.append(Stock(tenant=tenant, warehouse=warehouses[0], part=hot, on_hand=100_000))
        movements.append(Movement(tenant=tenant, warehouse=warehouses[0], part=hot, kind="receive",
                                  quantity=100_000, on_hand_delta=100_000))
        Stock.objects.bulk_create(stocks, batch_size=2000)
        Movement.objects.bulk_create(movements, batch_size=2000)
        # bulk_create sends no signal: say the warehouses changed, as warehouse_create's save would.
        config_changed(tenant.pk)
        template = published_template(tenant, prefix="BJ")
        tickets = [ticket_intake(tenant=tenant, source="api", template=template, data={"order_no": str(i)},
                                 store=store) for i in range(20)]
    return tenant, parts[:-1], hot, tickets


def _worker(tenant, tickets, parts, hot, mode, seed_, threads_n, per_thread, ready, go, done):
    from django.db import connection

    from scrm.tenancy import tenant_scope
    from spareparts.services import stock_reserve

    errors = []

    def loop(tseed):
        rng = random.Random(tseed)
        try:
            with tenant_scope(tenant):
                go.wait()
                for i in range(per_thread):
                    part = hot if mode == "hot" else rng.choice(parts)
                    stock_reserve(ticket=tickets[(tseed + i) % len(tickets)], part=part, quantity=1, actor=None)
        except Exception as exc:  # reported to the parent
            errors.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=loop, args=(seed_ * 100 + t,)) for t in range(threads_n)]
    for t in threads:
        t.start()
    ready.release()
    for t in threads:
        t.join()
    done.put(errors)


def cpu_per_reservation(tenant, tickets, parts, n):
    """One thread, `n` spread reservations: CPU milliseconds per reservation of this Python process
    and of its PostgreSQL backend (on a shared machine steadier than the rates, which wait for
    other work). The first 50 warm the caches and are not counted."""
    from django.db import connection

    from scrm.tenancy import tenant_scope
    from spareparts.services import stock_reserve

    rng = random.Random(11)
    with tenant_scope(tenant):
        for i in range(50):
            stock_reserve(ticket=tickets[i % len(tickets)], part=rng.choice(parts), quantity=1, actor=None)
        pid = db_backend_pid(connection)
        cpu, pg = time.process_time(), proc_cpu_seconds(pid) if pid else 0.0
        for i in range(n):
            stock_reserve(ticket=tickets[i % len(tickets)], part=rng.choice(parts), quantity=1, actor=None)
        cpu, pg = time.process_time() - cpu, (proc_cpu_seconds(pid) - pg) if pid else 0.0
    return round(1000 * cpu / n, 2), round(1000 * pg / n, 2)


def run(tenant, tickets, parts, hot, mode, procs, threads_n, per_thread):
    import multiprocessing

    from django.db import connections

    connections.close_all()  # the children open their own
    ctx = multiprocessing.get_context("fork")
    ready, go, done = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(tenant, tickets, parts, hot, mode, p, threads_n, per_thread,
                                                 ready, go, done)) for p in range(procs)]
    for w in workers:
        w.start()
    for _ in workers:
        ready.acquire()
    time.sleep(0.2)  # the threads are at go.wait()
    start = time.perf_counter()
    go.set()
    errors = [e for _ in workers for e in done.get()]
    elapsed = time.perf_counter() - start
    for w in workers:
        w.join()
    if errors:
        raise RuntimeError(errors[0])
    return procs * threads_n * per_thread / elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", type=int, default=10_000)
    parser.add_argument("--warehouses", type=int, default=50)
    parser.add_argument("--procs", type=int, default=3, help="worker processes")
    parser.add_argument("--threads", type=int, default=2, help="threads per worker process")
    parser.add_argument("--per-thread", type=int, default=500)
    parser.add_argument("--cpu-n", type=int, default=1000,
                        help="reservations in one thread to measure CPU per reservation (0: skip)")
    parser.add_argument("--db-name", default=None,
                        help="name of the throw-away PostgreSQL database (default bench_<pid>)")
    args = parser.parse_args()

    import logging

    logging.disable(logging.WARNING)
    with bench_database(args.db_name) as connection:
        from scrm.tenancy import tenant_scope

        tenant, parts, hot, tickets = seed(args.parts, args.warehouses, 3)
        with tenant_scope(tenant):
            for t in tickets:  # what the page would have joined
                t.store  # noqa: B018
        figures = {}
        if args.cpu_n:
            figures["python_ms"], figures["pg_ms"] = cpu_per_reservation(tenant, tickets, parts, args.cpu_n)
        for mode in ("hot", "spread"):
            figures[f"{mode}_per_s"] = round(run(tenant, tickets, parts, hot, mode, args.procs, args.threads,
                                                 args.per_thread))
        from django.core.management import CommandError, call_command

        try:  # the command an operator runs: every level equals its ledger sums
            with open(os.devnull, "w") as quiet:
                call_command("parts_ledger_verify", "--tenant", tenant.slug, stdout=quiet)
            bad = False
        except CommandError:
            bad = True
        report("parts_reserve", db=connection.vendor, procs=args.procs, threads=args.threads,
               reservations=args.procs * args.threads * args.per_thread, **figures, parts=args.parts,
               warehouses=args.warehouses, ledger_ok=not bad, cpus=os.cpu_count(),
               load="/".join(f"{x:.1f}" for x in os.getloadavg()))


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
