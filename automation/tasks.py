"""Celery tasks of automation: run one firing (retried with backoff while it fails), and the beat
sweeps — failed firings whose next attempt is due, and schedules whose next run is due."""

from celery import shared_task
from django_scopes import scopes_disabled

from scrm.tasks import tenant_task
from scrm.tenancy import tenant_scope

from . import services


# A failed firing is not retried by an ETA task: its row holds the next attempt's time (backoff)
# and the beat sweep below picks it up, so a retry survives a restart or a lost broker message.
@tenant_task(name="automation.firing_run", ignore_result=True)
def firing_run_task(*, tenant_id, firing_id):
    firing = services.firing_run(firing_id=firing_id)
    return firing.status if firing is not None else None


def due_work():
    """(due firings, due schedules) across every tenant: the sweep's two reads."""
    # System sweep across tenants (DESIGN.md rule 1): only the due rows are read unscoped.
    with scopes_disabled():
        return services.firings_due(), services.schedules_due()


@shared_task(name="automation.sweep")
def automation_sweep_task():
    """Beat: retry due firings and carry out due schedule occurrences, each in its tenant's scope."""
    firings, schedules = due_work()
    for tenant_id, firing_id in firings:
        with tenant_scope(tenant_id):
            services.firing_run(firing_id=firing_id)
    created = 0
    for tenant_id, schedule_id, planned_at in schedules:
        with tenant_scope(tenant_id):
            created += services.schedule_occurrence_run(schedule_id=schedule_id, planned_at=planned_at) is not None
    return {"firings": len(firings), "schedule_runs": created}
