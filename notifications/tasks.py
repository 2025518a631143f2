"""Celery tasks of the outbox: deliver one row (in its tenant's scope) and the sweep that
re-sends what is owed — run by beat, and by every worker when it starts, so rows written
while the broker was down go out once it is back."""

from celery import shared_task
from celery.signals import worker_ready
from django_scopes import scopes_disabled

from scrm.tasks import tenant_task

from . import services


# The outbox row records the outcome; a result in Redis would only cost every publish a subscribe.
@tenant_task(name="notifications.deliver", acks_late=True, ignore_result=True)
def notification_deliver_task(*, notification_id, tenant_id):
    return services.notification_deliver(notification_id=notification_id)


@shared_task(name="notifications.sweep")
def notifications_sweep_task():
    # System sweep across tenants (DESIGN.md rule 1 allows the escape hatch here); each row is
    # then delivered by a task that opens its own tenant's scope.
    with scopes_disabled():
        return services.notifications_sweep()


@worker_ready.connect
def _sweep_on_worker_start(sender=None, **kwargs):
    notifications_sweep_task.delay()
