"""Celery tasks of automation: run one firing (retried with backoff while it fails), and the beat
sweeps — failed firings whose next attempt is due, and schedules whose next run is due."""

from celery import shared_task
from django.core.cache import cache
from django.utils import timezone
from django_scopes import scopes_disabled

from scrm.tasks import tenant_task
from scrm.tenancy import tenant_scope

from . import services

SCHEDULE_BATCH = 200


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


def lead_grade_tenants():
    """The tenants whose customers the daily pass regrades (those with an active tier rule)."""
    # System sweep across tenants (DESIGN.md rule 1): only the ids of tenants with rules.
    with scopes_disabled():
        return services.lead_rule_tenant_ids()


@shared_task(name="automation.sweep")
def automation_sweep_task():
    """Beat: retry due firings and carry out due schedule occurrences, each in its tenant's scope."""
    firings, schedules = due_work()
    for tenant_id, firing_id in firings:
        with tenant_scope(tenant_id):
            services.firing_run(firing_id=firing_id)
    created = 0
    by_tenant: dict[int, list] = {}
    for tenant_id, schedule_id, planned_at in schedules:
        by_tenant.setdefault(tenant_id, []).append((schedule_id, planned_at))
    for tenant_id, items in by_tenant.items():
        tick_cache = services.TickCache()  # per tenant: templates are the tenant's own
        with tenant_scope(tenant_id):
            # A batch is one transaction: small enough that a failure or restart redoes little.
            for start in range(0, len(items), SCHEDULE_BATCH):
                created += len(services.schedule_occurrences_run(items[start:start + SCHEDULE_BATCH], cache=tick_cache))
    graded = None
    # Once a day (the first tick of the local day): time alone moves customers across the lead
    # tier rules' "last contact" days. The cache key makes it once across workers.
    if cache.add(f"automation:lead-grades:{timezone.localdate().isoformat()}", 1, timeout=2 * 86400):
        graded = sum(services.lead_grades_daily(tenant_ids=lead_grade_tenants()).values())
    return {"firings": len(firings), "schedule_runs": created, **({"graded": graded} if graded else {})}
