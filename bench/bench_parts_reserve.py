"""Spare parts reservations per second (`spareparts.services.stock_reserve`: nearest warehouse,
row lock, level + ledger + reservation rows), from worker threads each on its own connection.

- hot: every thread reserves one unit of the same part in the same warehouse (one row lock
  serialises them all): the contention figure.
- spread: 10,000 parts stocked in 3 of 50 warehouses each, threads reserving random parts.

The catalogue and opening stock are bulk-inserted (with their ledger rows, so the ledger still
verifies); every reservation goes through the service. PostgreSQL when DATABASE_URL is set (its
row locks are the point), else SQLite (one writer at a time: expect far less)."""

import argparse
import os
import random
import threading
import time

from common import ROOT, bench_database, report


def seed(parts_n, warehouses_n, per_part):
    from decimal import Decimal

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
        template = published_template(tenant, prefix="BJ")
        tickets = [ticket_intake(tenant=tenant, source="api", template=template, data={"order_no": str(i)},
                                 store=store) for i in range(20)]
    return tenant, parts[:-1], hot, tickets


def run(tenant, tickets, pick, threads_n, per_thread):
    from django.db import connection

    from scrm.tenancy import tenant_scope
    from spareparts.services import stock_reserve

    barrier = threading.Barrier(threads_n + 1)
    errors = []

    def worker(seed_):
        rng = random.Random(seed_)
        try:
            with tenant_scope(tenant):
                barrier.wait()
                for i in range(per_thread):
                    stock_reserve(ticket=tickets[(seed_ + i) % len(tickets)], part=pick(rng), quantity=1, actor=None)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return threads_n * per_thread / elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", type=int, default=10_000)
    parser.add_argument("--warehouses", type=int, default=50)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--per-thread", type=int, default=200)
    args = parser.parse_args()

    import logging

    logging.disable(logging.WARNING)
    with bench_database() as connection:
        from scrm.tenancy import tenant_scope
        from spareparts.selectors import ledger_mismatches

        tenant, parts, hot, tickets = seed(args.parts, args.warehouses, 3)
        with tenant_scope(tenant):
            for t in tickets:  # what the page would have joined
                t.store  # noqa: B018
        hot_rate = run(tenant, tickets, lambda rng: hot, args.threads, args.per_thread)
        spread_rate = run(tenant, tickets, lambda rng: rng.choice(parts), args.threads, args.per_thread)
        with tenant_scope(tenant):
            bad = ledger_mismatches()
        report("parts_reserve", db=connection.vendor, threads=args.threads,
               reservations=args.threads * args.per_thread, hot_per_s=round(hot_rate),
               spread_per_s=round(spread_rate), parts=args.parts, warehouses=args.warehouses,
               ledger_ok=not bad)


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
