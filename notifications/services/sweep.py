"""The outbox queue: handing rows to Celery after the transaction that wrote them commits, the
sweep that finds rows owed an attempt (beat, worker start-up), and putting rows back in the
queue (the admin's retry, a channel or provider template configured at last).

If the broker is down, rows stay pending and the sweep sends them later: nothing is lost."""

import logging
import time

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from ..models import ChannelName, DeliveryStatus, Notification

logger = logging.getLogger(__name__)

# When a publish last failed, plus the pause: until then commits do not try the broker (each try
# costs CELERY_BROKER_CONNECTION_TIMEOUT seconds of the request) and leave their rows to the sweep.
_broker_down_until = 0.0


def _broker_pause():
    return getattr(settings, "NOTIFICATION_BROKER_PAUSE_SECONDS", 30)


def _enqueue_chunk():
    return getattr(settings, "NOTIFICATION_ENQUEUE_CHUNK", 20)


def _messages(pairs):
    """(tenant_id, ids) per message: each tenant's rows in order, in chunks. A message never
    mixes tenants (its task opens one tenant's scope); the chunk bounds how long one task runs."""
    by_tenant: dict[int, list[int]] = {}
    for notification_id, tenant_id in pairs:
        by_tenant.setdefault(tenant_id, []).append(notification_id)
    size = max(1, _enqueue_chunk())
    for tenant_id, ids in by_tenant.items():
        for start in range(0, len(ids), size):
            yield tenant_id, ids[start:start + size]


def _enqueue(pairs, *, force=False):
    """Hand rows to Celery: one message per chunk of a tenant's rows (`notifications.deliver_many`),
    a lone row as `notifications.deliver`. If the broker is down the rows simply stay pending:
    the sweep (beat, and every worker at start-up) finds them later, so nothing is lost. After a
    failed publish, commits skip the broker for a pause (so an outage costs one request the
    connect timeout, not every request); the sweep (`force`) always tries."""
    global _broker_down_until
    from ..tasks import notification_deliver_task, notifications_deliver_task

    if not force and time.monotonic() < _broker_down_until:
        logger.info("broker down a moment ago; %d notification(s) left for the sweep", len(pairs))
        return
    for tenant_id, ids in _messages(pairs):
        if len(ids) == 1:
            task, kwargs = notification_deliver_task, {"notification_id": ids[0], "tenant_id": tenant_id}
        else:
            task, kwargs = notifications_deliver_task, {"notification_ids": ids, "tenant_id": tenant_id}
        try:
            # Ints only: their repr is what Celery's size-capped saferepr walk would produce, at
            # a fraction of its cost (which was 14% of a publish).
            task.apply_async(kwargs=kwargs, retry=False, argsrepr="()", kwargsrepr=repr(kwargs))
        except (BrokerError, OSError):  # broker unreachable: the sweep retries; the caller must not fail
            _broker_down_until = time.monotonic() + _broker_pause()
            logger.warning("broker unavailable; %d notification(s) left for the sweep", len(pairs), exc_info=True)
            return
        except Exception:  # e.g. an eager task that raised: the rows keep their state, the others still go
            logger.exception("could not enqueue notification(s) %s", ids)
    _broker_down_until = 0.0


def notifications_sweep(*, limit=500):
    """Enqueue every row owed an attempt (see notifications_due); the beat task and worker
    start-up run it, across tenants. Returns how many rows it handed to the broker."""
    due = notifications_due(limit=limit)
    _enqueue(due, force=True)
    return len(due)


def notifications_due(*, now=None, limit=500):
    """(id, tenant_id) of rows owed an attempt, oldest first, and leases that ran out (a worker
    died mid-send) put back to pending. System sweep: runs across tenants (see tasks)."""
    now = now or timezone.now()
    Notification.objects.filter(status=DeliveryStatus.SENDING, next_attempt_at__lte=now).update(
        status=DeliveryStatus.PENDING
    )
    return list(
        Notification.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "id").values_list("id", "tenant_id")[:limit]
    )


@transaction.atomic
def notification_retry(*, notification):
    """Put a dead-lettered, waiting or skipped row back in the queue (the admin's retry). Rows
    that only record that nobody could be reached (channel `none`) have nothing to retry."""
    updated = Notification.objects.filter(
        pk=notification.pk, status__in=[DeliveryStatus.DEAD, DeliveryStatus.WAITING, DeliveryStatus.SKIPPED],
    ).exclude(channel__in=[ChannelName.NONE, ChannelName.INAPP]).update(
        status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=timezone.now(), last_error="",
    )
    if updated:
        transaction.on_commit(lambda: _enqueue([(notification.pk, notification.tenant_id)]), robust=True)
    return bool(updated)



@transaction.atomic
def tenant_channels_waiting_release(*, tenant, channel=None):
    """After a tenant configures a channel (or all, without `channel`), its rows waiting for it
    go back to the queue. Returns how many."""
    waiting = Notification.objects.filter(tenant=tenant, status=DeliveryStatus.WAITING)
    if channel is not None:
        waiting = waiting.filter(channel=channel)
    return _release(waiting, tenant_id=tenant.pk)


def _release(waiting, *, tenant_id):
    ids = list(waiting.values_list("pk", flat=True))
    if not ids:
        return 0
    released = Notification.objects.filter(pk__in=ids, status=DeliveryStatus.WAITING).update(
        status=DeliveryStatus.PENDING, next_attempt_at=timezone.now(), last_error="",
    )
    transaction.on_commit(lambda: _enqueue([(pk, tenant_id) for pk in ids]), robust=True)
    return released

