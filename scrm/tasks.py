"""Celery plumbing shared by every app: the task base class that opens the tenant scope from
the tenant id each task carries, and the core app's periodic jobs."""

from celery import shared_task
from celery.contrib.django.task import DjangoTask
from django.core.management import call_command

from .tenancy import tenant_scope


class TenantTask(DjangoTask):
    """A task that runs inside its tenant's scope. Call it with `tenant_id=` as a keyword;
    enqueue it with `delay_on_commit` so it never runs before the caller's transaction commits."""

    def __call__(self, *args, **kwargs):
        tenant_id = kwargs.get("tenant_id")
        if tenant_id is None:
            raise TypeError(f"{self.name} needs tenant_id= (tenant tasks always carry their tenant)")
        with tenant_scope(tenant_id):
            return super().__call__(*args, **kwargs)


def tenant_task(*args, **options):
    """`@tenant_task(...)`: shared_task with TenantTask as its base."""
    options.setdefault("base", TenantTask)
    return shared_task(*args, **options)


@shared_task
def sessions_clear_expired():
    """System sweep: drop expired sessions (not tenant data, so no scope)."""
    call_command("clearsessions")
