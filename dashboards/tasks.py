"""Celery tasks of dashboards: the nightly 质检 scan, the roll-up refresh and the weekly quality
report, one task per tenant (load, call the service)."""

import datetime

from celery import shared_task
from django.utils import timezone

from scrm.models import Tenant
from scrm.tasks import tenant_task

from .services import quality_scan, rollup_refresh


@tenant_task(name="dashboards.quality_scan", ignore_result=True)
def quality_scan_task(*, tenant_id, days=2):
    """Scan the tenant's last `days` (overlapping runs add nothing: flags are unique)."""
    return quality_scan(since=timezone.now() - datetime.timedelta(days=days))


@shared_task(name="dashboards.quality_scan_all", ignore_result=True)
def quality_scan_all_task():
    for tenant_id in Tenant.objects.filter(is_active=True).values_list("pk", flat=True):
        quality_scan_task.delay(tenant_id=tenant_id)


@tenant_task(name="dashboards.rollup_refresh", ignore_result=True)
def rollup_refresh_task(*, tenant_id):
    """Today's and yesterday's roll-up rows again (the first run backfills the history)."""
    return rollup_refresh(tenant=Tenant.objects.get(pk=tenant_id))


@shared_task(name="dashboards.rollup_refresh_all", ignore_result=True)
def rollup_refresh_all_task():
    """Beat, every 5 minutes: one refresh per active tenant (a refresh rewrites whole days, so
    an overlapping or repeated run leaves the same rows)."""
    for tenant_id in Tenant.objects.filter(is_active=True).values_list("pk", flat=True):
        rollup_refresh_task.delay(tenant_id=tenant_id)

from .export_tasks import (  # noqa: E402,F401  (Celery finds tasks.py only: registers the export's tasks)
    export_job_run_task,
    exports_clean_all_task,
)


@tenant_task(name="dashboards.quality_report", ignore_result=True)
def quality_report_task(*, tenant_id, monday=None):
    """The weekly quality report of one tenant (default: the week that ended last Sunday)."""
    from .quality import quality_report_notify, week_start_of

    day = datetime.date.fromisoformat(monday) if monday else (
        week_start_of(timezone.localdate()) - datetime.timedelta(days=7))
    return quality_report_notify(tenant=Tenant.objects.get(pk=tenant_id), monday=day)


@shared_task(name="dashboards.quality_report_all", ignore_result=True)
def quality_report_all_task():
    """Beat, Monday 08:30: last week's report per team of each active tenant (sent once per team
    and week: the outbox key names both)."""
    for tenant_id in Tenant.objects.filter(is_active=True).values_list("pk", flat=True):
        quality_report_task.delay(tenant_id=tenant_id)
