"""The SLA sweep (Celery beat, every minute): fire every timer that has come due, exactly once.

The sweep works in batches. One transaction claims a batch of due, unfired timers with
`SELECT … FOR UPDATE SKIP LOCKED` on the partial index of due, unfired timers (so a second
worker takes the next rows instead of waiting, and a row another worker committed as fired is
re-checked and dropped), locks their tickets the same way (a ticket being changed right now
keeps its timers for the next sweep rather than racing that change) and reads their SLA rows in
that statement, loads what the levels need for the whole batch in a few queries (the policies,
the open tasks, every recipient), and writes the outcome in bulk: the timeline events in one INSERT, the breach flags
and the timers' outcomes in one UPDATE each. A worker killed mid-batch rolls its whole batch
back, so the next sweep claims it again. Under the claim the sweep checks that each timer
still means something (the ticket still open, not paused, the task still held by the same
person, the target not yet met); if not, the timer is marked skipped and nothing is sent.
The escalations' and reminders' outbox rows go through `notifications.event_emit_many` (one
read of profiles, of preferences, one INSERT for the batch), and the built-in actions (hand over
to the backup, raise the priority) hold their writes in a `lifecycle.HeldWrites` flushed once per
batch; only an action registered without `batched` (a plug-in) writes ticket by ticket. A batch
that raises is retried one timer per transaction, so one bad row cannot hold up the rest."""

from __future__ import annotations

import datetime
import logging
from collections import Counter, defaultdict
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django_scopes import scope

from notifications.services import event_emit_many
from tickets.models import EventKind, Status, Ticket, TimelineEvent

from . import lifecycle
from .escalation import ESCALATION_ACTIONS, RecipientBook
from .lifecycle import actor_name
from .models import SlaPolicy, SlaTimer, Task, TaskStatus, TicketSla, TimerKind, TimerOutcome

logger = logging.getLogger(__name__)

BATCH = 1000
_RUNNING = (Status.NEW, Status.IN_PROGRESS)
_BREACHES = (TimerKind.RESPONSE_DUE, TimerKind.RESOLUTION_DUE)
_TARGET: dict[str, str] = {TimerKind.RESPONSE_SOON: "response", TimerKind.RESPONSE_DUE: "response",
           TimerKind.RESOLUTION_SOON: "resolution", TimerKind.RESOLUTION_DUE: "resolution"}


def timers_due(*, now: datetime.datetime, limit: int = BATCH) -> list[tuple[int, int]]:
    """(timer id, tenant id) of unfired timers due by `now`, oldest first (across tenants: the
    caller runs inside scopes_disabled)."""
    return list(SlaTimer.objects.filter(fired_at__isnull=True, due_at__lte=now).order_by("due_at", "pk")
                .values_list("pk", "tenant_id")[:limit])


def sla_sweep(*, now: datetime.datetime | None = None, batch: int = BATCH, max_batches: int = 100) -> Counter:
    """Fire what is due (inside scopes_disabled: a system sweep across tenants); a count per
    outcome ("fired", "skipped", "deferred" = its ticket was locked by a change in flight, left
    for the next sweep). Runs until no due timer is left that
    this worker can claim (or `max_batches`)."""
    now = now or timezone.now()
    counts: Counter = Counter()
    for _batch in range(max_batches):
        done = counts["fired"] + counts["skipped"]
        try:
            claimed = batch_fire(now=now, limit=batch, counts=counts)
        except Exception:  # one bad row must not hold the others up: retry them one by one
            logger.exception("SLA sweep batch failed; retrying its timers one at a time")
            claimed = _fire_singly(now=now, limit=batch, counts=counts)
        # A full batch of deferred or failing rows would come back at once: leave them to the next sweep.
        if claimed < batch or counts["fired"] + counts["skipped"] == done:
            break
    return counts


def _fire_singly(*, now, limit, counts) -> int:
    ids = [pk for pk, _tenant in timers_due(now=now, limit=limit)]
    for pk in ids:
        try:
            batch_fire(now=now, limit=1, counts=counts, only=pk)
        except Exception:
            logger.exception("SLA timer %s failed; it stays due for the next sweep", pk)
            counts["failed"] += 1
    return len(ids)


def batch_fire(*, now: datetime.datetime, limit: int, counts: Counter, only: int | None = None) -> int:
    """Claim up to `limit` due timers (of any tenant: the caller runs inside scopes_disabled, as
    workflow.tasks does) and act on them, each tenant's inside its own scope, in one transaction;
    the number claimed."""
    with transaction.atomic():
        rows = SlaTimer.objects.select_for_update(of=("self",), skip_locked=True).filter(
            fired_at__isnull=True, due_at__lte=now)
        if only is not None:
            rows = rows.filter(pk=only)
        timers = [_Due(*row) for row in rows.order_by("due_at", "pk").values_list(*_Due.COLUMNS)[:limit]]
        by_tenant: dict[int, list[_Due]] = defaultdict(list)
        for timer in timers:
            by_tenant[timer.tenant_id].append(timer)
        for tenant_id, group in by_tenant.items():
            with scope(tenant=tenant_id):
                _Batch(group, now=now, counts=counts).run()
        return len(timers)


class _Due:
    """A claimed timer: the columns the sweep reads, and its task once loaded. Plain rows, not
    SlaTimer instances: a batch holds a thousand, and building (then garbage-collecting) a model
    instance each cost more than firing a breach."""

    __slots__ = ("assignee_id_then", "kind", "level", "pk", "task", "task_id", "tenant_id", "ticket_id")
    COLUMNS = ("pk", "tenant_id", "ticket_id", "task_id", "kind", "level", "assignee_id_then")

    def __init__(self, pk, tenant_id, ticket_id, task_id, kind, level, assignee_id_then):
        self.pk, self.tenant_id, self.ticket_id, self.task_id = pk, tenant_id, ticket_id, task_id
        self.kind, self.level, self.assignee_id_then = kind, level, assignee_id_then
        self.task: Task | None = None


class _Clock:
    """A ticket's SLA row as the sweep reads it (see _Due), with its policy attached."""

    __slots__ = ("paused_at", "pk", "policy", "policy_id", "resolution_due_at", "resolved_at", "responded_at",
                 "response_due_at", "tenant_id", "ticket_id")
    # Read through the ticket (its reverse one-to-one `sla`), in the statement that locks it.
    VIA_TICKET = ("sla__id", "sla__tenant_id", "pk", "sla__policy_id", "sla__response_due_at",
                  "sla__resolution_due_at", "sla__responded_at", "sla__resolved_at", "sla__paused_at")

    def __init__(self, pk, tenant_id, ticket_id, policy_id, response_due_at, resolution_due_at, responded_at,
                 resolved_at, paused_at):
        self.pk, self.tenant_id, self.ticket_id, self.policy_id = pk, tenant_id, ticket_id, policy_id
        self.response_due_at, self.resolution_due_at = response_due_at, resolution_due_at
        self.responded_at, self.resolved_at, self.paused_at = responded_at, resolved_at, paused_at
        self.policy: SlaPolicy | None = None


class _Batch:
    """One tenant's share of a claimed batch: loaded together, written together."""

    def __init__(self, timers: list[_Due], *, now: datetime.datetime, counts: Counter):
        self.timers, self.now, self.counts = timers, now, counts
        self.events: list[TimelineEvent] = []
        self.fired: list[int] = []
        self.skipped: list[int] = []
        self.breached: dict[str, list[int]] = defaultdict(list)
        self.levels: dict[int, list[int]] = defaultdict(list)
        self.emits: list[dict] = []
        self.writes = lifecycle.HeldWrites()
        # Read once: Django's current time zone sits behind asgiref's Local, whose every read
        # costs more than the rest of a timer's work.
        self.tz = timezone.get_current_timezone()

    def when(self, due) -> str:
        return timezone.localtime(due, self.tz).strftime("%m-%d %H:%M") if due else ""

    def run(self) -> None:
        ticket_ids = sorted({t.ticket_id for t in self.timers})
        # Lock the tickets without waiting: one being resolved or reassigned right now keeps its
        # timers (unclaimed) for the next sweep, which then sees what that change did. Their SLA
        # rows come in the same statement, joined, not locked.
        statuses: dict[int, str] = {}
        tslas: dict[int, _Clock] = {}
        for status, *clock in (Ticket.objects.select_for_update(of=("self",), skip_locked=True)
                               .filter(pk__in=ticket_ids).order_by("pk").values_list("status", *_Clock.VIA_TICKET)):
            statuses[clock[2]] = status
            if clock[0] is not None:
                tslas[clock[2]] = _Clock(*clock)
        policies = SlaPolicy.objects.in_bulk({s.policy_id for s in tslas.values() if s.policy_id})
        for clock in tslas.values():
            clock.policy = policies.get(clock.policy_id) if clock.policy_id else None
        # A breach needs only the ticket's status; what notifies or acts needs the ticket itself.
        heavy = {t.ticket_id for t in self.timers if t.kind not in _BREACHES and statuses.get(t.ticket_id) in _RUNNING}
        tickets = (Ticket.objects.select_related("tenant", "assignee", "customer", "store").in_bulk(heavy)
                   if heavy else {})
        task_ids = {t.task_id for t in self.timers if t.task_id and t.ticket_id in heavy}
        need_open = {t.ticket_id for t in self.timers if t.kind == TimerKind.ESCALATION and not t.task_id} & heavy
        tasks: dict[int, Task] = {}
        first_open: dict[int, Task] = {}
        if task_ids or need_open:
            wanted = Q(pk__in=task_ids) | Q(ticket_id__in=need_open, status=TaskStatus.OPEN)
            for one in Task.objects.select_related("backup", "assignee").filter(wanted).order_by("ticket_id", "id"):
                tasks[one.pk] = one
                if one.status == TaskStatus.OPEN and one.ticket_id in need_open:
                    first_open.setdefault(one.ticket_id, one)
        live: list[tuple[_Due, str, Ticket | None, _Clock | None, Task | None]] = []
        for timer in self.timers:
            status = statuses.get(timer.ticket_id)
            if status is None:
                self.counts["deferred"] += 1
                continue
            # One Task instance per row, so a hand-over earlier in the batch is seen by later timers.
            task = tasks.get(timer.task_id) if timer.task_id else (
                first_open.get(timer.ticket_id) if timer.kind == TimerKind.ESCALATION else None)
            if timer.task_id and task is not None:
                timer.task = task
            live.append((timer, status, tickets.get(timer.ticket_id), tslas.get(timer.ticket_id), task))
        wants = []
        for timer, _status, ticket, tsla, task in live:
            level = (_level(tsla, timer.level) if timer.kind == TimerKind.ESCALATION
                     else {"to": "supervisor"} if timer.kind == TimerKind.NODE_DUE else None)
            if level and ticket is not None:
                wants.append((level, ticket, task))
        book = RecipientBook(wants) if wants else None
        for timer, status, ticket, tsla, task in live:
            if _skip_reason(timer, status, tsla):
                self.skipped.append(timer.pk)
                continue
            FIRE[timer.kind](self, timer=timer, ticket=ticket, tsla=tsla, task=task, book=book)
            self.fired.append(timer.pk)
        self.save()

    def event(self, tsla_or_ticket, code: str, params: dict, changes=None) -> None:
        """A timeline event of the ticket (given as itself or as its SLA row: a breach loads no ticket)."""
        ticket_id = getattr(tsla_or_ticket, "ticket_id", None) or tsla_or_ticket.pk
        self.events.append(_event_row(tsla_or_ticket.tenant_id, ticket_id, code, params, changes or []))

    def save(self) -> None:
        if self.fired:
            SlaTimer.objects.filter(pk__in=self.fired).update(fired_at=self.now, outcome=TimerOutcome.FIRED)
        if self.skipped:
            SlaTimer.objects.filter(pk__in=self.skipped).update(fired_at=self.now, outcome=TimerOutcome.SKIPPED)
        for field, ids in self.breached.items():
            TicketSla.objects.filter(pk__in=ids).update(**{field: True})
        for level in sorted(self.levels):
            TicketSla.objects.filter(pk__in=self.levels[level], escalation_level__lt=level).update(
                escalation_level=level)
        self.writes.flush()
        TimelineEvent.objects.bulk_create(self.events)
        if self.emits:
            event_emit_many(tenant=self.emits[0]["ticket"].tenant, emits=self.emits)
        for outcome, ids in (("fired", self.fired), ("skipped", self.skipped)):
            if ids:
                self.counts[outcome] += len(ids)


def _event_row_maker():
    """A builder of the sweep's TimelineEvent rows from their field values in model order, the
    other columns' defaults resolved once: a model built from positional values skips the
    keyword matching that costs more than half of building 1,000 events."""
    fields = TimelineEvent._meta.concrete_fields
    # What Model.__init__ puts in a field not given (params and changes are given per row, so
    # their mutable defaults are never shared).
    values = [None if f.primary_key else f.get_default() for f in fields]
    slot = {f.attname: i for i, f in enumerate(fields)}
    tenant, ticket, kind, code, params, changes = (slot[n] for n in (
        "tenant_id", "ticket_id", "kind", "code", "params", "changes"))
    values[kind] = EventKind.WORKFLOW

    def row(tenant_id, ticket_id, code_value, params_value, changes_value):
        one = values.copy()
        one[tenant], one[ticket], one[code], one[params], one[changes] = (
            tenant_id, ticket_id, code_value, params_value, changes_value)
        return TimelineEvent(*one)

    return row


_event_row = _event_row_maker()


def _skip_reason(timer: _Due, status: str, tsla: _Clock | None) -> str:
    if status not in _RUNNING:
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


def _level(tsla: _Clock | None, number: int) -> dict | None:
    levels = tsla.policy.escalations if tsla is not None and tsla.policy is not None else []
    return levels[number - 1] if 0 < number <= len(levels) else None


def _target_label(target: str) -> str:
    return _("first response") if target == "response" else _("resolution")


def _fire_soon(batch: _Batch, *, timer, ticket, tsla, task, book):
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
    batch.emits.append({"event": "node_due_soon", "ticket": ticket, "users": [holder],
                        "occurrence": f"sla{timer.pk}", "context": {"node_name": node_name, "due_at": batch.when(due)}})


def _fire_breach(batch: _Batch, *, timer, ticket, tsla, task, book):
    target = _TARGET[timer.kind]
    batch.breached["response_breached" if target == "response" else "resolution_breached"].append(tsla.pk)
    due = tsla.response_due_at if target == "response" else tsla.resolution_due_at
    batch.event(tsla, "sla.breached", {"target": target, "due": batch.when(due)})


def _fire_escalation(batch: _Batch, *, timer, ticket, tsla, task, book):
    level = _level(tsla, timer.level)
    assert level is not None  # checked under the claim
    users = book.recipients(level, ticket=ticket, task=task)
    changes = []
    for name in level["actions"]:
        action = ESCALATION_ACTIONS.get(name)
        if action is None:
            continue
        change = (action.func(ticket=ticket, task=task, level=level, actor=None, writes=batch.writes)
                  if action.batched else action.func(ticket=ticket, task=task, level=level, actor=None))
        if change:
            changes.append(change)
    batch.levels[timer.level].append(tsla.pk)
    batch.event(ticket, "sla.escalated", {"level": timer.level, "names": "、".join(actor_name(u) for u in users) or "—",
                                          "channels": list(level["channels"])}, changes)
    if users:
        batch.emits.append({"event": "ticket_escalated", "ticket": ticket, "users": users,
                            "channels": level["channels"], "urgent": True, "occurrence": f"sla{timer.pk}",
                            "context": {"level": str(timer.level)}})


def _fire_node_due(batch: _Batch, *, timer, ticket, tsla, task, book):
    """A node's timeout: the backup handler (AB角) takes the task over when there is one;
    otherwise the handler's supervisor hears of it."""
    if task.backup_id is not None:
        backup = task.backup
        change = batch.writes.task_transfer(task, backup)
        ticket_change = batch.writes.assignee_set(ticket, backup)
        batch.event(ticket, "sla.node_backup", {"node": task.node_name, "backup": actor_name(backup)},
                    [c for c in (change, ticket_change) if c])
        batch.emits.append({"event": "ticket_assigned", "ticket": ticket, "users": [backup],
                            "occurrence": f"sla{timer.pk}", "context": {"node_name": task.node_name}})
        return
    users = book.recipients({"to": "supervisor"}, ticket=ticket, task=task)
    batch.event(ticket, "sla.node_timeout", {"node": task.node_name,
                                             "names": "、".join(actor_name(u) for u in users) or "—"})
    if users:
        batch.emits.append({"event": "ticket_escalated", "ticket": ticket, "users": users,
                            "urgent": True, "occurrence": f"sla{timer.pk}", "context": {"node_name": task.node_name}})


FIRE: dict[str, Any] = {
    TimerKind.RESPONSE_SOON: _fire_soon,
    TimerKind.RESOLUTION_SOON: _fire_soon,
    TimerKind.NODE_SOON: _fire_soon,
    TimerKind.RESPONSE_DUE: _fire_breach,
    TimerKind.RESOLUTION_DUE: _fire_breach,
    TimerKind.ESCALATION: _fire_escalation,
    TimerKind.NODE_DUE: _fire_node_due,
}
