"""Celery tasks of settlement: a period run fanned out — plan its id windows, settle each window
(any worker, in any order), finish when the last is done. Each loads by id and calls a service."""

import logging

from scrm.tasks import tenant_task

from .models import SettlementRun

logger = logging.getLogger(__name__)


@tenant_task(name="settlement.run_plan")
def run_plan_task(*, tenant_id, run_id):
    from .services.runs import run_plan

    run = SettlementRun.objects.get(pk=run_id)
    try:
        return len(run_plan(run=run, fan_out=True))
    except Exception as exc:
        SettlementRun.objects.filter(pk=run_id).update(is_running=False, error=str(exc)[:300])
        raise


# acks_late + reject_on_worker_lost: a worker killed mid-window gives the message back to the
# queue; its transaction rolled back, so the window is still pending for the next worker.
@tenant_task(name="settlement.run_window", acks_late=True, reject_on_worker_lost=True)
def run_window_task(*, tenant_id, window_id):
    from .services.runs import run_window_execute, run_window_fail

    try:
        return run_window_execute(window_id=window_id, fan_out=True)
    except Exception as exc:
        logger.exception("settlement window %s failed", window_id)
        run_window_fail(window_id=window_id, error=str(exc) or exc.__class__.__name__)
        return False


@tenant_task(name="settlement.run_finish")
def run_finish_task(*, tenant_id, run_id):
    from .services.runs import run_finish

    return run_finish(run=SettlementRun.objects.get(pk=run_id)).pk
