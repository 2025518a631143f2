"""The ticket list's background export (dashboards.export_services) over N tickets (default
100,000, the issue's "an export of 100,000 tickets finishes with a progress bar"): for CSV and
for XLSX, the job as a manager asks for it — the checks and count of `export_job_create`, then
the Celery task run eagerly on commit (`export_job_run`: keyset batches, the file, progress per
batch) — wall time, rows/s, CPU of this process and of its PostgreSQL backend, the file's size
and the peak RSS of the run alone (the kernel's high-water mark is reset before each format).

The tickets are written with bulk_create (seeding only: the export under test goes through the
services). Run on PostgreSQL:
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/scrm_h20export \
        .venv/bin/python bench/bench_export.py --tickets 100000 --db-name scrm_h20export_bench
"""

import argparse
import os
import random
import resource
import secrets
import shutil
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

os.environ.setdefault("DEBUG", "false")  # as in production: no query log kept for 100,000 rows

from common import bench_database, db_backend_pid, proc_cpu_seconds, report

TITLES = ("冷柜不制冷", "上菜太慢，催了三次", "空调漏水", "发票抬头开错了", "会员积分没有到账", "包间预订被取消")


def cpu_s():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_reset():
    """Reset this process's RSS high-water mark (Linux: "5" to clear_refs), so each format's
    peak is its own and not the seeding's or the previous format's."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--formats", default="csv,xlsx")
    parser.add_argument("--db-name", default=None, help="the throw-away database's name (default bench_<pid>)")
    parser.add_argument("--keep", action="store_true", help="keep the database and reuse its tickets next time")
    args = parser.parse_args()
    with bench_database(args.db_name, keep=args.keep) as connection:
        from django.conf import settings

        from dashboards.export_services import export_job_create, export_path
        from dashboards.models import ExportJob
        from scrm import celery_app
        from scrm.models import Role, Tenant
        from scrm.services import membership_set
        from scrm.tenancy import tenant_scope
        from tests.factories import (
            CustomerFactory,
            RegionFactory,
            StoreFactory,
            TenantFactory,
            UserFactory,
            published_template,
        )
        from tickets.models import Status, Ticket

        celery_app.conf.task_always_eager = True  # the task runs in this process, on commit
        var_dir = Path(tempfile.mkdtemp(prefix="bench-export-"))
        settings.VAR_DIR = var_dir
        tenant = Tenant.objects.filter(slug="export-bench").first() or TenantFactory(slug="export-bench")
        with tenant_scope(tenant):
            manager = UserFactory._meta.model.objects.filter(username="export_manager").first()
            if manager is None:
                manager = UserFactory(username="export_manager", first_name="导出经理")
                membership_set(tenant=tenant, user=manager, role=Role.MANAGER)
            have = Ticket.objects.count()
            if have < args.tickets:
                rng = random.Random(20)
                start = time.perf_counter()
                regions = [RegionFactory(tenant=tenant, name=f"区域{c}") for c in "东南西北"]
                stores = [StoreFactory(tenant=tenant, region=regions[i % 4], name=f"门店{i}") for i in range(40)]
                customers = [CustomerFactory(tenant=tenant, name=f"客户{i}") for i in range(300)]
                engineers = []
                for i in range(50):
                    user = UserFactory(username=f"export_eng{i}", first_name=f"工程师{i}")
                    membership_set(tenant=tenant, user=user, role=Role.ENGINEER)
                    engineers.append(user)
                template = published_template(tenant, name="设备维修", slug="repair", prefix="WX")
                zone = ZoneInfo("Asia/Shanghai")
                statuses = [Status.NEW, Status.IN_PROGRESS, Status.RESOLVED, Status.CLOSED]
                for offset in range(have, args.tickets, 5000):
                    rows = []
                    for n in range(offset, min(args.tickets, offset + 5000)):
                        store = stores[n % len(stores)]
                        status = statuses[n % 4]
                        created = datetime(2026, 9, 1, 8, tzinfo=zone) + timedelta(minutes=n)
                        rows.append(Ticket(
                            tenant=tenant, number=f"WX-E-{n:08d}", template=template,
                            template_version=template.current_version, category_id=template.category_id,
                            title=rng.choice(TITLES), status=status, source=rng.choice(["phone", "api", "web"]),
                            priority=rng.choice(["normal", "normal", "urgent"]), region_id=store.region_id,
                            store=store, customer=customers[n % len(customers)],
                            assignee=None if n % 10 == 0 else engineers[n % len(engineers)],
                            tracking_token=f"{tenant.pk:x}-{secrets.token_urlsafe(12)}", created_at=created,
                            resolved_at=created + timedelta(hours=5) if status == Status.RESOLVED else None,
                            closed_at=created + timedelta(hours=9) if status == Status.CLOSED else None))
                    Ticket.objects.bulk_create(rows)
                if connection.vendor == "postgresql":
                    with connection.cursor() as cursor:  # the statistics autovacuum would gather by itself
                        cursor.execute("ANALYZE tickets_ticket")
                report("seed", tickets=args.tickets, seconds=round(time.perf_counter() - start, 1))
            backend = db_backend_pid(connection)
            try:
                for fmt in args.formats.split(","):
                    ExportJob.objects.all().delete()  # the bench's own jobs: the per-person limit
                    peak_rss_reset()
                    rss_before = peak_rss_mb()
                    cpu_before, db_cpu_before = cpu_s(), proc_cpu_seconds(backend) if backend else 0.0
                    start = time.perf_counter()
                    job = export_job_create(user=manager, tenant=tenant, fmt=fmt, params={}, language="zh-hans")
                    wall = time.perf_counter() - start
                    job.refresh_from_db()
                    cpu = cpu_s() - cpu_before
                    db_cpu = (proc_cpu_seconds(backend) - db_cpu_before) if backend else 0.0
                    size = export_path(job).stat().st_size if job.file_name else 0
                    report(f"export {fmt}", backend=connection.vendor, state=job.state, rows=job.rows_done,
                           wall_s=round(wall, 1), rows_per_s=round(job.rows_done / wall), python_cpu_s=round(cpu, 1),
                           db_cpu_s=round(db_cpu, 1), file_mb=round(size / 2**20, 1),
                           peak_rss_mb=round(peak_rss_mb()), rss_before_mb=round(rss_before))
            finally:
                shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
