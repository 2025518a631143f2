"""Celery tasks of the outbox: deliver one row, or a chunk of one tenant's rows (in that
tenant's scope), and the sweep that re-sends what is owed — run by beat, and by every worker
when it starts, so rows written while the broker was down go out once it is back."""

from celery import shared_task
from celery.signals import worker_ready
from django_scopes import scopes_disabled

from scrm.tasks import tenant_task

from . import services


# The outbox row records the outcome; a result in Redis would only cost every publish a subscribe.
@tenant_task(name="notifications.deliver", acks_late=True, ignore_result=True)
def notification_deliver_task(*, notification_id, tenant_id):
    return services.notification_deliver(notification_id=notification_id)


# Several rows of one tenant in one message: a publish costs far more than its few ids, and an
# SLA sweep or a bulk intake hands over hundreds of rows at once. Each row is still claimed and
# recorded on its own (a row that fails does not stop the others).
@tenant_task(name="notifications.deliver_many", acks_late=True, ignore_result=True)
def notifications_deliver_task(*, notification_ids, tenant_id):
    services.notifications_deliver(notification_ids=notification_ids)


@shared_task(name="notifications.sweep")
def notifications_sweep_task():
    # System sweep across tenants (DESIGN.md rule 1 allows the escape hatch here); each row is
    # then delivered by a task that opens its own tenant's scope.
    with scopes_disabled():
        return services.notifications_sweep()


@worker_ready.connect
def _sweep_on_worker_start(sender=None, **kwargs):
    notifications_sweep_task.delay()
