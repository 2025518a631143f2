"""Customers created through the service layer (validation, phone normalising, duplicate
checks, tags), one transaction each: rows/s and per-call latency."""

import argparse
import time

from common import Timer, bench_database, report


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2000)
    args = parser.parse_args()
    with bench_database() as connection:
        from scrm.services import customer_create, region_create, store_create, tag_get_or_create, tenant_create
        from scrm.tenancy import tenant_scope

        tenant = tenant_create(name="压测租户", slug="bench")
        with tenant_scope(tenant):
            region = region_create(tenant=tenant, name="华东", code="east")
            stores = [
                store_create(tenant=tenant, region=region, name=f"上海{i}号店", code=f"sh-{i}") for i in range(10)
            ]
            tags = [tag_get_or_create(tenant=tenant, name=name) for name in ("老客户", "团购客户")]
            timer = Timer()
            started = time.perf_counter()
            for i in range(args.rows):
                with timer.measure():
                    customer_create(
                        tenant=tenant, name=f"客户{i}", phone=f"139{i:08d}", store=stores[i % 10],
                        tier="vip" if i % 10 == 0 else "normal", tags=tags[: i % 3],
                    )
            elapsed = time.perf_counter() - started
        report(
            "customers_create", database=connection.vendor, rows=args.rows,
            rows_per_s=round(args.rows / elapsed, 1), **timer.summary_ms(),
        )


if __name__ == "__main__":
    main()
