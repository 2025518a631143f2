"""Celery tasks of the ticket list's export: run one job, and the periodic cleanup of expired
files (one task per tenant). Load by id, call the service, nothing else."""

from celery import shared_task

from scrm.models import Tenant
from scrm.tasks import tenant_task

from .export_services import export_job_run, exports_clean


@tenant_task(name="dashboards.export_job_run", ignore_result=True, acks_late=True)
def export_job_run_task(*, tenant_id, job_id):
    export_job_run(job_id=job_id)


@tenant_task(name="dashboards.exports_clean", ignore_result=True)
def exports_clean_task(*, tenant_id):
    return exports_clean()


@shared_task(name="dashboards.exports_clean_all", ignore_result=True)
def exports_clean_all_task():
    """Beat, hourly: the cleanup in every active tenant."""
    for tenant_id in Tenant.objects.filter(is_active=True).values_list("pk", flat=True):
        exports_clean_task.delay(tenant_id=tenant_id)
