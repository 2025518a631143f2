"""The one owner of a ticket's lifecycle: its status, its assignee, its workflow run and the
run's tasks. Nothing else writes them — the engine (workflow/engine.py) walks the graph and calls
the primitives here; the ticket pages, the API and the demo data call the services here (through
`tickets.extensions.lifecycle()` when they live in tickets). Tickets without a workflow use the
same services: a status change, an assignment or a merge is the same write either way.

Primitives (`status_move`, `assignee_set`, `task_create`, `task_complete`, `tasks_cancel`,
`task_transfer`, `run_finish`, `run_cancel`) run inside their caller's transaction and write no
timeline event: the caller writes the one event its action deserves (`HeldWrites` holds the
writes of task_transfer / assignee_set for a whole batch of tickets and flushes them in bulk). Services
(`ticket_status_change`, `ticket_assign`, `ticket_merge`) are one transaction each and write
their own event."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_fsm import can_proceed

from notifications.services import event_emit
from scrm.models import Membership
from scrm.permissions import ROLE_PERMISSIONS
from tickets.models import EventKind, Status, Ticket
from tickets.services import invalid_choice, timeline_event_add
from tickets.timeline import names_list, person, timeline_code

from .dispatch_speed import speed_note
from .hooks import hooks_call, workflow_hook
from .models import Run, Task, TaskStatus, Token, TokenState, Workload
from .selectors import ticket_runs_workflow
from .workload import workload_upsert

# Roles that may hold a ticket: those allowed to change tickets (not finance).
ASSIGNABLE_ROLES = frozenset(role for role, perms in ROLE_PERMISSIONS.items() if "tickets.change_ticket" in perms)

# Status actions offered by the ticket page: action → (FSM transition, notification event).
STATUS_ACTIONS: dict[str, tuple[str, str | None]] = {
    "start": ("start", None),
    "wait": ("wait_for_customer", None),
    "resolve": ("resolve", "ticket_resolved"),
    "reopen": ("reopen", None),
    "close": ("close", None),
    "cancel": ("cancel", None),
}
# While a workflow runs the engine moves the status; by hand only these end it early.
_RUN_ENDING_ACTIONS = ("close", "cancel")


def actor_name(user: Any) -> str:
    return (user.first_name or user.username) if user is not None else _("System")


# Timeline codes of the lifecycle and the engine (tickets/timeline.py renders them).
_ACT_WORDS = {
    "submit": gettext_lazy("submitted"), "approve": gettext_lazy("approved"), "reject": gettext_lazy("rejected"),
    "return": gettext_lazy("returned"), "transfer": gettext_lazy("transferred"),
    "cohandle": gettext_lazy("added a co-handler"), "split": gettext_lazy("split the ticket"),
    "close": gettext_lazy("closed the ticket"),
}
# The customer sees where their request is, never the workflow's name or version, branches,
# returns, or who handles it internally (public=None hides an entry from them).
timeline_code("workflow.started", gettext_lazy("Workflow “%(name)s” v%(n)d started."), public=None)
timeline_code("workflow.branch", gettext_lazy("Branch “%(node)s” → %(to)s."), public=None)
timeline_code("workflow.parallel", gettext_lazy("Parallel work starts: %(names)s."), public=None)
timeline_code("workflow.joined", gettext_lazy("All branches joined at “%(node)s”."), public=None)
timeline_code("workflow.auto", gettext_lazy("Automatic step “%(node)s”: %(line)s"), public=None)
timeline_code("workflow.entered", gettext_lazy("Now at “%(node)s”, handler: %(names)s."), names=names_list,
              public=gettext_lazy("Your request is now at “%(node)s”."))
timeline_code("workflow.returned_to", gettext_lazy("Returned to “%(node)s”, handler: %(names)s."),
              names=names_list, public=None)
timeline_code("workflow.finished", gettext_lazy("Workflow finished; the ticket is closed."),
              public=gettext_lazy("Your request has been resolved."))
timeline_code("workflow.stopped", gettext_lazy("The workflow was stopped; its open tasks were withdrawn."),
              public=gettext_lazy("Your request was stopped."))
timeline_code("task.acted", gettext_lazy("“%(node)s”: %(who)s %(action)s."), who=person,
              action=lambda a: str(_ACT_WORDS.get(a, a)), public=None)
timeline_code("task.cohandled", gettext_lazy("“%(node)s”: %(who)s added a co-handler: %(co)s."), who=person,
              public=None)
timeline_code("ticket.assigned_with_task", gettext_lazy("Open task “%(node)s” transferred with the ticket."),
              public=None)

# --- primitives -----------------------------------------------------------------------------

def status_move(ticket: Ticket, method: str, *, dirty: list[str] | None = None) -> dict | None:
    """Run one FSM transition, stamp resolved/closed times and save those columns; the timeline
    change ("old → new" status), or None when the transition cannot run now. With `dirty` the
    columns are added to that list instead of saved: the caller saves them with others in one
    UPDATE (`ticket_save`)."""
    transition = getattr(ticket, method)
    if not can_proceed(transition):
        return None
    old = ticket.status
    transition()
    now = timezone.now()
    fields = ["status", "updated_at"]
    if ticket.status == Status.RESOLVED:
        ticket.resolved_at = now
        fields.append("resolved_at")
    if ticket.status in (Status.CLOSED, Status.CANCELLED):
        ticket.closed_at = now
        fields.append("closed_at")
    ticket_save(ticket, fields, dirty)
    hooks_call("status_changed", ticket=ticket, old=old, new=ticket.status)
    return {"field": "status", "old": old, "new": ticket.status}


def assignee_set(ticket: Ticket, user: Any, *, dirty: list[str] | None = None) -> dict | None:
    """Make `user` the ticket's assignee; the timeline change, or None when nothing changed.
    `dirty`: as for status_move."""
    if ticket.assignee_id == getattr(user, "pk", None):
        return None
    change = {"field": "assignee", "old": actor_name(ticket.assignee) if ticket.assignee_id else "—",
              "new": actor_name(user) if user is not None else "—"}
    ticket.assignee = user
    ticket_save(ticket, ["assignee", "updated_at"], dirty)
    return change


def ticket_save(ticket: Ticket, fields: list[str], dirty: list[str] | None = None) -> None:
    """Save `fields` of the ticket now, or (with `dirty`) note them for one later save."""
    if dirty is not None:
        dirty.extend(f for f in fields if f not in dirty)
    elif fields:
        ticket.save(update_fields=fields)


def task_create(*, run: Run, ticket: Ticket, token: Token, node: dict, label: str, assignee: Any, backup: Any,
                due_at: Any, returned: bool, reasons: list | None = None) -> Task:
    task = Task.objects.create(tenant_id=ticket.tenant_id, run=run, ticket=ticket, token=token, node=node["key"],
                               node_name=label[:60], assignee=assignee,
                               backup=backup if backup != assignee else None, due_at=due_at, is_returned=returned,
                               handler_reasons=reasons or [])
    if assignee is not None:
        workload_add(ticket.tenant_id, {assignee.pk: 1})
    return task


def task_complete(task: Task, action: str, user: Any) -> None:
    task.status = TaskStatus.DONE
    task.action = action
    task.completed_by = user
    task.completed_at = timezone.now()
    task.save(update_fields=["status", "action", "completed_by", "completed_at"])
    if task.assignee_id is not None:
        workload_add(task.tenant_id, {task.assignee_id: -1})


@workflow_hook("handler_acted")
def task_first_action(*, task: Task | None, actor: Any, **_: Any) -> bool:
    """Record a person's first act on a task (the moments the SLA counts as first response: any
    task action — submit, approve, return, transfer, co-handle, split…), once: a conditional
    UPDATE, then their recent speed is recomputed. A status change by hand (no task) records
    nothing: with a workflow it can only close or cancel the run. Whether it recorded."""
    if task is None or actor is None or getattr(actor, "pk", None) is None or task.first_action_at is not None:
        return False
    now = timezone.now()
    if not Task.objects.filter(pk=task.pk, first_action_at__isnull=True).update(first_action_at=now,
                                                                              first_action_by=actor):
        return False
    task.first_action_at, task.first_action_by = now, actor
    speed_note(task.tenant_id, actor.pk, now)
    return True


def tasks_cancel(run: Run, token: Token | None = None) -> int:
    qs = Task.objects.filter(run=run, status=TaskStatus.OPEN)
    if token is not None:
        qs = qs.filter(token=token)
    held = dict(qs.filter(assignee__isnull=False).values_list("assignee_id").annotate(n=Count("id")).order_by())
    cancelled = qs.update(status=TaskStatus.CANCELLED)
    workload_add(run.tenant_id, {user_id: -n for user_id, n in held.items()})
    return cancelled


def task_transfer(task: Task, to: Any) -> dict:
    """Hand an open task to another person; the timeline change."""
    change = {"field": "handler", "old": actor_name(task.assignee), "new": actor_name(to)}
    if task.status == TaskStatus.OPEN:
        moves = {to.pk: 1}
        if task.assignee_id is not None:
            moves[task.assignee_id] = moves.get(task.assignee_id, 0) - 1
        workload_add(task.tenant_id, moves)
    task.assignee = to
    if task.backup_id == to.pk:
        task.backup = None
    task.save(update_fields=["assignee", "backup"])
    return change


class HeldWrites:
    """The primitives `task_transfer`, `assignee_set` and `ticket_save` for many tickets at once
    (the SLA sweep's batch): each changes the objects in memory at once — so a later step of the
    same batch sees the hand-over — and returns the same timeline change, but the rows are written
    by `flush()`, in the caller's transaction: the tasks in one UPDATE, the tickets in one UPDATE
    per set of changed columns, the open-task counts once per person. The caller still writes the
    one timeline event each change deserves."""

    def __init__(self) -> None:
        self.tasks: dict[int, Task] = {}
        self.tickets: dict[int, tuple[Ticket, set[str]]] = {}
        self.workload: dict[int, dict[int, int]] = {}

    def task_transfer(self, task: Task, to: Any) -> dict:
        change = {"field": "handler", "old": actor_name(task.assignee), "new": actor_name(to)}
        if task.status == TaskStatus.OPEN:
            deltas = self.workload.setdefault(task.tenant_id, {})
            deltas[to.pk] = deltas.get(to.pk, 0) + 1
            if task.assignee_id is not None:
                deltas[task.assignee_id] = deltas.get(task.assignee_id, 0) - 1
        task.assignee = to
        if task.backup_id == to.pk:
            task.backup = None
        self.tasks[task.pk] = task
        return change

    def assignee_set(self, ticket: Ticket, user: Any) -> dict | None:
        dirty: list[str] = []
        change = assignee_set(ticket, user, dirty=dirty)
        self.ticket_save(ticket, dirty)
        return change

    def ticket_save(self, ticket: Ticket, fields: list[str]) -> None:
        if not fields:
            return
        _ticket, held = self.tickets.setdefault(ticket.pk, (ticket, set()))
        held.update(fields)

    def flush(self) -> None:
        _rows_update(Task, list(self.tasks.values()), ["assignee_id", "backup_id"])
        by_columns: dict[tuple[str, ...], list[Ticket]] = {}
        for ticket, held in self.tickets.values():
            by_columns.setdefault(tuple(sorted(held)), []).append(ticket)
        now = timezone.now()
        for columns, tickets in by_columns.items():
            if "updated_at" in columns:
                for ticket in tickets:
                    ticket.updated_at = now  # one stamp for the batch, so rows share their new values
            attnames = {f.name: f.attname for f in Ticket._meta.concrete_fields}
            _rows_update(Ticket, tickets, [attnames[c] for c in columns])
        for tenant_id, deltas in self.workload.items():
            workload_add(tenant_id, deltas)
        self.tasks, self.tickets, self.workload = {}, {}, {}


_FEW_VALUES = 4


def _rows_update(model: Any, rows: list, attnames: list[str]) -> None:
    """Write `attnames` of `rows`: one `UPDATE … WHERE id IN (…)` per distinct set of new values
    when there are few (a priority raised to the same level, a hand-over to the same backup) —
    cheaper to build than `bulk_update`'s CASE of one branch per row —, else one `bulk_update`."""
    if not rows:
        return
    by_values: dict[tuple, list[int]] = {}
    for row in rows:
        by_values.setdefault(tuple(getattr(row, a) for a in attnames), []).append(row.pk)
    if len(by_values) > _FEW_VALUES:
        model.objects.bulk_update(rows, attnames)
        return
    for values, pks in by_values.items():
        model.objects.filter(pk__in=pks).update(**dict(zip(attnames, values, strict=True)))


def task_reasons_set(task: Task, reasons: list) -> None:
    """Replace why the task's handler was chosen (a re-dispatch ran the rule again)."""
    task.handler_reasons = reasons
    task.save(update_fields=["handler_reasons"])
def task_due_set(tasks: list[Task], due_at: Any) -> None:
    """Give open tasks a new time limit (an SLA policy's node limit, counted in working time)."""
    for task in tasks:
        task.due_at = due_at
    Task.objects.filter(pk__in=[t.pk for t in tasks], status=TaskStatus.OPEN).update(due_at=due_at)


def workload_add(tenant_id: int, deltas: dict[int, int]) -> None:
    """Move people's open-task counts (Workload) by `deltas` ({user id: +n / -n}), in the
    caller's transaction: an atomic `F()` update of one row each, the row created on a
    person's first task (a concurrent first task loses the insert and updates instead)."""
    for user_id, delta in sorted(deltas.items()):
        if not delta:
            continue
        update = {"open_tasks": F("open_tasks") + delta}
        if delta < 0:
            # No row: nothing counted for them (a task older than the roll-up's start).
            Workload.objects.filter(user_id=user_id).update(**update)
        else:
            workload_upsert(tenant_id, user_id, update=update, create={"open_tasks": delta})


def workload_recount() -> dict[int, tuple[int, int]]:
    """People of the tenant in scope whose Workload differs from their open tasks: {user id:
    (stored, counted)}. Empty is the invariant; a non-empty answer is a bug in a writer of tasks."""
    counted = dict(Task.objects.filter(status=TaskStatus.OPEN, assignee__isnull=False)
                   .values_list("assignee_id").annotate(n=Count("id")).order_by())
    stored = dict(Workload.objects.values_list("user_id", "open_tasks"))
    return {u: (stored.get(u, 0), counted.get(u, 0)) for u in set(counted) | set(stored)
            if stored.get(u, 0) != counted.get(u, 0)}


def run_finish(run: Run) -> None:
    run.is_finished = True
    run.finished_at = timezone.now()
    run.save(update_fields=["is_finished", "finished_at"])


def run_cancel(*, run: Run, ticket: Ticket, actor: Any, reason: str) -> None:
    """End a run before its end node: its open tasks and live tokens are cancelled, the run is
    finished, and the `run_cancelled` hook is told (spare parts release what they reserved)."""
    tasks_cancel(run)
    run.tokens.filter(state__in=[TokenState.ACTIVE, TokenState.WAITING]).update(state=TokenState.CANCELLED)
    run_finish(run)
    hooks_call("run_cancelled", ticket=ticket, run=run, actor=actor, reason=reason)


def ticket_closed(*, ticket: Ticket, run: Run | None, actor: Any) -> None:
    """Call once the ticket reached Closed and its timeline event is written (any path)."""
    hooks_call("ticket_closed", ticket=ticket, run=run, actor=actor)


def live_run(ticket: Ticket) -> Run | None:
    return Run.objects.filter(ticket=ticket, is_finished=False).first()


def member_check(user: Any, field: str, *, holds_tickets: bool = True) -> None:
    """Refuse someone who is not active staff of this tenant — with a role that may hold tickets
    (an assignee), or any role (`holds_tickets=False`: a task's transfer target or co-handler)."""
    members = Membership.objects.filter(user=user, is_active=True)
    if holds_tickets:
        members = members.filter(role__in=ASSIGNABLE_ROLES)
    if user is None or not members.exists():
        raise ValidationError({field: _("Select a member of staff of this tenant who works on tickets.")
                               if holds_tickets else _("Select a member of staff of this tenant.")})


# --- services -------------------------------------------------------------------------------

def ticket_status_actions(*, ticket: Ticket) -> list[str]:
    """The status actions the ticket page offers now: all the FSM allows without a running
    workflow; with one, only those that end it (close, cancel)."""
    running = ticket.is_open and ticket_runs_workflow(ticket=ticket)
    names = _RUN_ENDING_ACTIONS if running else tuple(STATUS_ACTIONS)
    return [a for a in names if can_proceed(getattr(ticket, STATUS_ACTIONS[a][0]))]


@transaction.atomic
def ticket_status_change(*, ticket: Ticket, action: str, actor: Any, note: str = "") -> Ticket:
    """Move the lifecycle by hand (start, wait, resolve, reopen, close, cancel). A ticket whose
    workflow runs moves with its tasks; by hand it can only be closed or cancelled, which ends
    the run (its tasks disappear from everyone's queue)."""
    if action not in STATUS_ACTIONS:
        raise ValidationError({"action": _("Unknown action.")})
    ticket = Ticket.objects.select_for_update(of=("self",)).get(pk=ticket.pk)
    method, event = STATUS_ACTIONS[action]
    if not can_proceed(getattr(ticket, method)):
        raise ValidationError(
            {"action": _("A ticket that is %(status)s cannot do that.") % {"status": ticket.get_status_display()}})
    run = live_run(ticket)
    if run is not None and action not in _RUN_ENDING_ACTIONS:
        raise ValidationError({"action": _("This ticket follows its workflow: act on its tasks instead.")})
    change = status_move(ticket, method)
    hooks_call("handler_acted", ticket=ticket, task=None, action=action, actor=actor)
    timeline_event_add(ticket=ticket, kind=EventKind.STATUS, actor=actor, message=note, is_public=True,
                       code="workflow.stopped" if run is not None else "", changes=[change])
    if run is not None:
        run_cancel(run=run, ticket=ticket, actor=actor, reason=action)
    if ticket.status == Status.CLOSED:
        ticket_closed(ticket=ticket, run=run, actor=actor)
    if event:
        event_emit(tenant=ticket.tenant, event=event, ticket=ticket, actor=actor)
    return ticket


@transaction.atomic
def ticket_assign(*, ticket: Ticket, assignee: Any, actor: Any) -> Ticket:
    """Give the ticket to `assignee`. When its workflow has open tasks, the task the current
    assignee holds (or the only open one) is transferred too, so the new person finds it in
    我的待办 — an assignee beside an untouched task would be a handler in name only."""
    ticket = Ticket.objects.select_for_update(of=("self",)).get(pk=ticket.pk)
    if not ticket.is_open:
        raise ValidationError({"assignee": _("Only an open ticket can be assigned.")})
    open_tasks = list(Task.objects.filter(ticket=ticket, status=TaskStatus.OPEN).select_related("assignee")
                      .select_for_update(of=("self",)).order_by("id"))
    if assignee is None:
        if open_tasks:
            raise ValidationError({"assignee": _("This ticket has open workflow tasks: transfer them to someone "
                                                 "instead of removing the assignee.")})
    else:
        member_check(assignee, "assignee")
    held = [t for t in open_tasks if t.assignee_id is not None and t.assignee_id == ticket.assignee_id]
    if not held and len(open_tasks) == 1:
        held = open_tasks
    changes = []
    change = assignee_set(ticket, assignee)
    if change:
        changes.append(change)
    moved = [t for t in held if t.assignee_id != getattr(assignee, "pk", None)]
    for task in moved:
        changes.append(task_transfer(task, assignee))
    if not changes:
        return ticket
    timeline_event_add(ticket=ticket, kind=EventKind.ASSIGNED, actor=actor, changes=changes,
                       code="ticket.assigned_with_task" if moved else "",
                       params={"node": "、".join(t.node_name for t in moved)} if moved else None)
    if assignee is not None:
        event_emit(tenant=ticket.tenant, event="ticket_assigned", ticket=ticket, actor=actor)
    return ticket


@transaction.atomic
def ticket_merge(*, source: Ticket, target: Ticket, actor: Any) -> Ticket:
    """Merge a duplicate into another ticket: the duplicate closes with a link (its running
    workflow is stopped and its tasks leave every queue), both timelines say so, and its
    customer-visible comments stay readable from the target."""
    if source.pk == target.pk:
        raise ValidationError({"target": _("A ticket cannot be merged into itself.")})
    if source.tenant_id != target.tenant_id:
        raise ValidationError({"target": invalid_choice()})
    locked = {t.pk: t for t in Ticket.objects.select_for_update(of=("self",)).filter(pk__in=[source.pk, target.pk])
              .order_by("pk")}
    if len(locked) != 2:
        raise ValidationError({"target": invalid_choice()})
    source, target = locked[source.pk], locked[target.pk]
    if not source.is_open:
        raise ValidationError({"target": _("Only an open ticket can be merged.")})
    if target.merged_into_id is not None or target.status == Status.CANCELLED:
        raise ValidationError({"target": _("Merge into a ticket that is not itself merged or cancelled.")})
    run = live_run(source)
    source.merged_into = target
    source.save(update_fields=["merged_into", "updated_at"])
    change = status_move(source, "close")
    timeline_event_add(
        ticket=source, kind=EventKind.MERGED, actor=actor, is_public=True,
        code="ticket.merged_into", params={"number": target.number},
        changes=[change] if change else [],
    )
    timeline_event_add(
        ticket=target, kind=EventKind.MERGED, actor=actor, is_public=True,
        code="ticket.merged_from", params={"number": source.number},
    )
    if run is not None:
        run_cancel(run=run, ticket=source, actor=actor, reason="merge")
    ticket_closed(ticket=source, run=run, actor=actor)
    return target
