"""Celery tasks of settlement: a period run (load by id, call the service)."""

from scrm.tasks import tenant_task

from .models import SettlementRun


@tenant_task(name="settlement.run_execute")
def run_execute_task(*, tenant_id, run_id):
    from .services import run_execute

    run = SettlementRun.objects.get(pk=run_id)
    try:
        return run_execute(run=run).pk
    except Exception as exc:
        SettlementRun.objects.filter(pk=run_id).update(is_running=False, error=str(exc)[:300])
        raise
