"""The SLA sweep (Celery beat, every minute): fire every timer that has come due, exactly once.

Each due timer is claimed by a conditional UPDATE (`fired_at` still empty and still due) in its
own transaction together with what firing does — notifications, a timeline event, a transfer to
the backup — so a second worker's claim of the same row finds it taken (PostgreSQL re-checks
the WHERE after the first commit), and a worker killed mid-sweep leaves its row unclaimed for
the next sweep. Under the claim the sweep checks again that the timer still means something
(the ticket still open, not paused, the task still held by the same person, the target not yet
met); if not, the timer is marked skipped and nothing is sent. The one read is the partial
index of due, unfired timers, so the cost follows the due work, not the open tickets."""

from __future__ import annotations

import datetime
import logging
from collections import Counter
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django_scopes import scope

from notifications.services import event_emit
from tickets.models import EventKind, Status, Ticket
from tickets.services import timeline_event_add

from . import lifecycle
from .escalation import ESCALATION_ACTIONS, level_recipients
from .lifecycle import actor_name
from .models import SlaTimer, TaskStatus, TicketSla, TimerKind, TimerOutcome

logger = logging.getLogger(__name__)

BATCH = 500
_TARGET: dict[str, str] = {TimerKind.RESPONSE_SOON: "response", TimerKind.RESPONSE_DUE: "response",
           TimerKind.RESOLUTION_SOON: "resolution", TimerKind.RESOLUTION_DUE: "resolution"}


def timers_due(*, now: datetime.datetime, limit: int = BATCH) -> list[tuple[int, int]]:
    """(timer id, tenant id) of unfired timers due by `now`, oldest first (across tenants: the
    caller runs inside scopes_disabled)."""
    return list(SlaTimer.objects.filter(fired_at__isnull=True, due_at__lte=now).order_by("due_at", "pk")
                .values_list("pk", "tenant_id")[:limit])


def sla_sweep(*, now: datetime.datetime | None = None, batch: int = BATCH, max_batches: int = 100) -> Counter:
    """Fire what is due; a count per outcome ("fired", "skipped", "lost" = claimed by another
    worker first). Runs until no due timer is left (or `max_batches`)."""
    now = now or timezone.now()
    counts: Counter = Counter()
    for _batch in range(max_batches):
        due = timers_due(now=now, limit=batch)
        for timer_id, tenant_id in due:
            counts[timer_fire(timer_id=timer_id, tenant_id=tenant_id, now=now)] += 1
        if len(due) < batch:
            break
    return counts


def timer_fire(*, timer_id: int, tenant_id: int, now: datetime.datetime) -> str:
    """Claim one timer and act on it, in one transaction: "fired", "skipped" or "lost"."""
    with scope(tenant=tenant_id), transaction.atomic():
        claimed = SlaTimer.objects.filter(pk=timer_id, fired_at__isnull=True, due_at__lte=now).update(
            fired_at=now, outcome=TimerOutcome.FIRED)
        if not claimed:
            return "lost"
        timer = SlaTimer.objects.select_related("task__backup", "task__assignee").get(pk=timer_id)
        ticket = (Ticket.objects.select_for_update(of=("self",)).select_related("tenant", "assignee")
                  .get(pk=timer.ticket_id))
        tsla = TicketSla.objects.select_related("policy").filter(ticket_id=ticket.pk).first()
        reason = _skip_reason(timer, ticket, tsla)
        if reason:
            SlaTimer.objects.filter(pk=timer_id).update(outcome=TimerOutcome.SKIPPED)
            return "skipped"
        FIRE[timer.kind](timer=timer, ticket=ticket, tsla=tsla, now=now)
        return "fired"


def _skip_reason(timer: SlaTimer, ticket: Ticket, tsla: TicketSla | None) -> str:
    if ticket.status not in (Status.NEW, Status.IN_PROGRESS):
        return "not running"  # resolved, closed, cancelled — or waiting on the customer
    if tsla is not None and tsla.paused_at is not None:
        return "paused"
    task = timer.task
    if task is not None and (task.status != TaskStatus.OPEN or task.assignee_id != timer.assignee_id_then):
        return "task moved on"  # done, withdrawn, or reassigned since the timer was set
    target = _TARGET.get(timer.kind)
    if target == "response" and (tsla is None or tsla.responded_at is not None):
        return "responded"
    if target == "resolution" and (tsla is None or tsla.resolved_at is not None):
        return "resolved"
    if timer.kind == TimerKind.ESCALATION:
        level = _level(tsla, timer.level)
        if level is None:
            return "level gone"
        if level["until"] == "response" and tsla is not None and tsla.responded_at is not None:
            return "responded"
    return ""


def _level(tsla: TicketSla | None, number: int) -> dict | None:
    levels = tsla.policy.escalations if tsla is not None and tsla.policy is not None else []
    return levels[number - 1] if 0 < number <= len(levels) else None


def _target_label(target: str) -> str:
    return _("first response") if target == "response" else _("resolution")


def _fire_soon(*, timer, ticket, tsla, now):
    """A reminder to whoever holds it: the task's handler, else the ticket's assignee."""
    holder = timer.task.assignee if timer.task_id else ticket.assignee
    if holder is None:
        return
    if timer.task_id:
        node_name, due = timer.task.node_name, timer.task.due_at
    else:
        target = _TARGET[timer.kind]
        node_name = _target_label(target)
        due = tsla.response_due_at if target == "response" else tsla.resolution_due_at
    event_emit(tenant=ticket.tenant, event="node_due_soon", ticket=ticket, users=[holder],
               occurrence=f"sla{timer.pk}",
               context={"node_name": node_name,
                        "due_at": timezone.localtime(due).strftime("%m-%d %H:%M") if due else ""})


def _fire_breach(*, timer, ticket, tsla, now):
    target = _TARGET[timer.kind]
    field = "response_breached" if target == "response" else "resolution_breached"
    TicketSla.objects.filter(pk=tsla.pk).update(**{field: True})
    due = tsla.response_due_at if target == "response" else tsla.resolution_due_at
    timeline_event_add(ticket=ticket, kind=EventKind.WORKFLOW, actor=None, code="sla.breached", params={
        "target": target, "due": timezone.localtime(due).strftime("%m-%d %H:%M") if due else ""})


def _fire_escalation(*, timer, ticket, tsla, now):
    level = _level(tsla, timer.level)
    assert level is not None  # checked under the claim
    task = timer.task if timer.task_id else None
    if task is None:
        task = ticket.tasks.filter(status=TaskStatus.OPEN).select_related("backup", "assignee").order_by("id").first()
    users = level_recipients(level, ticket=ticket, task=task)
    changes = []
    for name in level["actions"]:
        action = ESCALATION_ACTIONS.get(name)
        if action is None:
            continue
        change = action.func(ticket=ticket, task=task, level=level, actor=None)
        if change:
            changes.append(change)
    TicketSla.objects.filter(pk=tsla.pk, escalation_level__lt=timer.level).update(escalation_level=timer.level)
    timeline_event_add(ticket=ticket, kind=EventKind.WORKFLOW, actor=None, code="sla.escalated", changes=changes,
                       params={"level": timer.level, "names": "、".join(actor_name(u) for u in users) or "—",
                               "channels": list(level["channels"])})
    if users:
        event_emit(tenant=ticket.tenant, event="ticket_escalated", ticket=ticket, users=users,
                   channels=level["channels"], urgent=True, occurrence=f"sla{timer.pk}",
                   context={"level": str(timer.level)})


def _fire_node_due(*, timer, ticket, tsla, now):
    """A node's timeout: the backup handler (AB角) takes the task over when there is one;
    otherwise the handler's supervisor hears of it."""
    task = timer.task
    if task.backup_id is not None:
        backup = task.backup
        change = lifecycle.task_transfer(task, backup)
        ticket_change = lifecycle.assignee_set(ticket, backup)
        timeline_event_add(ticket=ticket, kind=EventKind.WORKFLOW, actor=None, code="sla.node_backup",
                           changes=[c for c in (change, ticket_change) if c],
                           params={"node": task.node_name, "backup": actor_name(backup)})
        event_emit(tenant=ticket.tenant, event="ticket_assigned", ticket=ticket, users=[backup],
                   occurrence=f"sla{timer.pk}", context={"node_name": task.node_name})
        return
    users = level_recipients({"to": "supervisor"}, ticket=ticket, task=task)
    timeline_event_add(ticket=ticket, kind=EventKind.WORKFLOW, actor=None, code="sla.node_timeout",
                       params={"node": task.node_name, "names": "、".join(actor_name(u) for u in users) or "—"})
    if users:
        event_emit(tenant=ticket.tenant, event="ticket_escalated", ticket=ticket, users=users, urgent=True,
                   occurrence=f"sla{timer.pk}", context={"node_name": task.node_name})


FIRE: dict[str, Any] = {
    TimerKind.RESPONSE_SOON: _fire_soon,
    TimerKind.RESOLUTION_SOON: _fire_soon,
    TimerKind.NODE_SOON: _fire_soon,
    TimerKind.RESPONSE_DUE: _fire_breach,
    TimerKind.RESOLUTION_DUE: _fire_breach,
    TimerKind.ESCALATION: _fire_escalation,
    TimerKind.NODE_DUE: _fire_node_due,
}

