"""The exception pool (异常工单池): tickets that found no eligible handler, bounced between people
too often, were flagged by their handler or escalated (SLA) wait here, with the reason, until a
manager of their region assigns or re-dispatches them. Every write is a service here, one
transaction, with its own timeline event; assigning goes through the lifecycle
(`lifecycle.ticket_assign`), never by writing the assignee.

Other capabilities put a ticket in the pool with `pool_enter(ticket=…, reason=PoolReason.ESCALATED,
detail=…, actor=…)`; the engine's hooks (registered in `pool_hooks_register`) put a ticket whose
node found nobody in it, and take it out when the ticket moves on or ends."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from tickets.models import EventKind, Ticket
from tickets.services import timeline_event_add
from tickets.timeline import timeline_code

from . import lifecycle
from .escalation import escalation_action
from .graph import HUMAN_KINDS
from .hooks import workflow_hook
from .models import PoolEntry, PoolOutcome, PoolReason, Task, TaskStatus
from .routing import HandlerContext, handlers_choose

DETAIL_MAX = 300
# How many returns and transfers of one ticket send it to the pool (settings can override).
BOUNCE_LIMIT_DEFAULT = 4

_REASON_WORDS = dict(PoolReason.choices)
_OUTCOME_WORDS = dict(PoolOutcome.choices)
timeline_code("pool.entered", gettext_lazy("Entered the exception pool: %(reason)s. %(detail)s"),
              reason=lambda r: str(_REASON_WORDS.get(r, r)))
timeline_code("pool.left", gettext_lazy("Left the exception pool: %(outcome)s."),
              outcome=lambda o: str(_OUTCOME_WORDS.get(o, o)))
timeline_code("dispatch.redispatched", gettext_lazy("Dispatched again to %(name)s (reason: %(reason)s). %(why)s"),
              public=None)
timeline_code("dispatch.by_hand", gettext_lazy("Handler picked by hand: %(name)s (reason: %(reason)s)."), public=None)


def pool_open_entry(ticket: Ticket) -> PoolEntry | None:
    return PoolEntry.objects.filter(ticket=ticket, left_at__isnull=True).first()


@transaction.atomic
def pool_enter(*, ticket: Ticket, reason: str, detail: str = "", task: Task | None = None,
               actor: Any = None) -> PoolEntry:
    """Put the ticket in the pool (or leave the entry it already has: a ticket is in the pool
    at most once). `reason` is a PoolReason value; `detail` says what a manager needs to know."""
    if reason not in PoolReason.values:
        raise ValidationError({"reason": _("Unknown reason for the exception pool.")})
    if ticket.tenant_id is None or not Ticket.objects.filter(pk=ticket.pk).exists():
        raise ValidationError({"ticket": _("Select a valid choice. That choice is not one of the available "
                                           "choices.")})
    existing = pool_open_entry(ticket)
    if existing is not None:
        if not _stale(existing):
            return existing
        _leave(existing, outcome=PoolOutcome.MOVED_ON, actor=None)
    entry = PoolEntry.objects.create(tenant_id=ticket.tenant_id, ticket=ticket, task=task,
                                     region_id=ticket.region_id or (ticket.store.region_id if ticket.store is not None
                                                                    else None),
                                     reason=reason, detail=(detail or "")[:DETAIL_MAX], entered_by=actor)
    timeline_event_add(ticket=ticket, kind=EventKind.WORKFLOW, actor=actor, code="pool.entered",
                       params={"reason": reason, "detail": entry.detail})
    return entry


def _stale(entry: PoolEntry) -> bool:
    """A "nobody eligible" entry whose task has since found a handler (the ticket page assigned
    it) or ended: it left the pool in fact. Noticed lazily — the pool page hides it, the next
    entry of the ticket closes it — so that entering a node costs no pool query."""
    if entry.reason != PoolReason.NO_HANDLER or entry.task_id is None:
        return False
    return not Task.objects.filter(pk=entry.task_id, status=TaskStatus.OPEN, assignee__isnull=True).exists()


def _leave(entry: PoolEntry, *, outcome: str, actor: Any) -> None:
    entry.left_at = timezone.now()
    entry.left_by = actor
    entry.outcome = outcome
    entry.save(update_fields=["left_at", "left_by", "outcome"])
    timeline_event_add(ticket=entry.ticket, kind=EventKind.WORKFLOW, actor=actor, code="pool.left",
                       params={"outcome": outcome})


def _locked_open(entry: PoolEntry) -> PoolEntry:
    locked = (PoolEntry.objects.select_for_update(of=("self",)).select_related("ticket")
              .filter(pk=entry.pk, left_at__isnull=True).first())
    if locked is None:
        raise ValidationError({"entry": _("This ticket has already left the exception pool.")})
    return locked


@transaction.atomic
def pool_assign(*, entry: PoolEntry, assignee: Any, actor: Any) -> PoolEntry:
    """A manager picks the handler by hand: the ticket (and its waiting task) goes to them
    through the lifecycle, which refuses anyone outside the tenant or without a ticket role."""
    entry = _locked_open(entry)
    if assignee is None:
        raise ValidationError({"assignee": _("Choose the person.")})
    lifecycle.ticket_assign(ticket=entry.ticket, assignee=assignee, actor=actor)
    _leave(entry, outcome=PoolOutcome.ASSIGNED, actor=actor)
    return entry


def _waiting_task(ticket: Ticket) -> Task | None:
    return (Task.objects.filter(ticket=ticket, status=TaskStatus.OPEN).select_related("run__version")
            .order_by("assignee_id", "id").first())


@transaction.atomic
def pool_redispatch(*, entry: PoolEntry, actor: Any) -> PoolEntry:
    """Run the waiting node's handler rule again (people may be back on duty or less busy now).
    Someone found: the task goes to them with the new reasons and the ticket leaves the pool.
    Still nobody: a ValidationError with the rule's answer, and nothing changes."""
    entry = _locked_open(entry)
    ticket = entry.ticket
    task = _waiting_task(ticket)
    if task is None:
        raise ValidationError({"entry": _("The ticket has no open workflow task to dispatch; assign it by hand.")})
    node = next((n for n in task.run.version.graph.get("nodes", []) if n.get("key") == task.node), None)
    if node is None or node.get("kind") not in HUMAN_KINDS:
        raise ValidationError({"entry": _("The ticket's node has no handler rule; assign it by hand.")})
    choice = handlers_choose(node.get("handler"), HandlerContext(ticket=ticket))
    if not choice.users:
        raise ValidationError({"entry": _("Still nobody: %(why)s") % {"why": choice.summary}})
    lifecycle.ticket_assign(ticket=ticket, assignee=choice.users[0], actor=actor)
    task.refresh_from_db(fields=["assignee"])
    lifecycle.task_reasons_set(task, choice.reasons)
    _leave(entry, outcome=PoolOutcome.REDISPATCHED, actor=actor)
    return entry


# --- from the ticket page ---------------------------------------------------------------------

def _reason_clean(reason: Any) -> str:
    text = (reason or "").strip() if isinstance(reason, str) else ""
    if not text:
        raise ValidationError({"reason": _("Say why.")})
    if len(text) > DETAIL_MAX:
        raise ValidationError({"reason": _("At most %(n)d characters.") % {"n": DETAIL_MAX}})
    return text


def _held_task(ticket: Ticket) -> Task | None:
    """The open task a re-dispatch or a pick by hand moves: the one the ticket's handler holds,
    else the only open one (the same task `lifecycle.ticket_assign` transfers)."""
    tasks = list(Task.objects.filter(ticket=ticket, status=TaskStatus.OPEN).select_related("run__version")
                 .order_by("id"))
    held = [t for t in tasks if t.assignee_id is not None and t.assignee_id == ticket.assignee_id]
    if held:
        return held[0]
    return tasks[0] if len(tasks) == 1 else None


def _leave_if_pooled(ticket: Ticket, outcome: str, actor: Any) -> None:
    entry = PoolEntry.objects.select_for_update(of=("self",)).filter(ticket=ticket, left_at__isnull=True).first()
    if entry is not None:
        _leave(entry, outcome=outcome, actor=actor)


@transaction.atomic
def ticket_redispatch(*, ticket: Ticket, actor: Any, reason: str) -> Task:
    """A manager runs the waiting node's handler rule again from the ticket page: the task goes
    to whoever it picks now, with the new reasons; the timeline says who, why they asked and
    why the rule chose. Nobody eligible: a ValidationError and nothing changes."""
    reason = _reason_clean(reason)
    ticket = Ticket.objects.select_for_update(of=("self",)).get(pk=ticket.pk)
    if not ticket.is_open:
        raise ValidationError({"reason": _("Only an open ticket can be dispatched again.")})
    task = _held_task(ticket)
    if task is None:
        raise ValidationError({"reason": _("The ticket has no single open workflow task to dispatch; assign it by "
                                           "hand.")})
    node = next((n for n in task.run.version.graph.get("nodes", []) if n.get("key") == task.node), None)
    if node is None or node.get("kind") not in HUMAN_KINDS or not node.get("handler"):
        raise ValidationError({"reason": _("The ticket's node has no handler rule; assign it by hand.")})
    choice = handlers_choose(node.get("handler"), HandlerContext(ticket=ticket))
    if not choice.users:
        raise ValidationError({"reason": _("Still nobody: %(why)s") % {"why": choice.summary}})
    picked = choice.users[0]
    lifecycle.ticket_assign(ticket=ticket, assignee=picked, actor=actor)
    task.refresh_from_db(fields=["assignee"])
    lifecycle.task_reasons_set(task, choice.reasons)
    timeline_event_add(ticket=ticket, kind=EventKind.WORKFLOW, actor=actor, code="dispatch.redispatched",
                       params={"name": lifecycle.actor_name(picked), "reason": reason,
                               "why": str(choice.reasons[0].get("why", "")) if choice.reasons else ""})
    _leave_if_pooled(ticket, PoolOutcome.REDISPATCHED, actor)
    return task


@transaction.atomic
def ticket_handler_pick(*, ticket: Ticket, assignee: Any, actor: Any, reason: str) -> Ticket:
    """A manager picks the handler by hand from the ticket page, with a reason: through
    `lifecycle.ticket_assign` (which refuses anyone outside the tenant or without a ticket
    role); the moved task's reasons say it was picked by hand, and the timeline why."""
    reason = _reason_clean(reason)
    if assignee is None:
        raise ValidationError({"assignee": _("Choose the person.")})
    task = _held_task(ticket)
    ticket = lifecycle.ticket_assign(ticket=ticket, assignee=assignee, actor=actor)
    if task is not None:
        task.refresh_from_db(fields=["assignee"])
        if task.assignee_id == assignee.pk:
            name = lifecycle.actor_name(assignee)
            lifecycle.task_reasons_set(task, [{
                "user_id": assignee.pk, "name": name, "picked": True, "rule": "manual", "code": "by_hand",
                "why": _("Picked by hand by %(actor)s: %(reason)s") % {"actor": lifecycle.actor_name(actor),
                                                                       "reason": reason}}])
    timeline_event_add(ticket=ticket, kind=EventKind.WORKFLOW, actor=actor, code="dispatch.by_hand",
                       params={"name": lifecycle.actor_name(assignee), "reason": reason})
    _leave_if_pooled(ticket, PoolOutcome.ASSIGNED, actor)
    return ticket


def ticket_flag_allowed(*, ticket: Ticket, user: Any) -> bool:
    """Whether the user handles the ticket now: holds one of its open tasks (handler, backup
    or co-handler)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    return Task.objects.filter(ticket=ticket, status=TaskStatus.OPEN).filter(
        Q(assignee=user) | Q(backup=user) | Q(co_handlers=user)).exists()


@transaction.atomic
def ticket_flag(*, ticket: Ticket, actor: Any, reason: str) -> PoolEntry:
    """The handler flags the ticket into the exception pool with a reason (a wrong skill, an
    unreachable customer…); a manager of its region then re-dispatches or assigns it."""
    reason = _reason_clean(reason)
    ticket = Ticket.objects.select_for_update(of=("self",)).get(pk=ticket.pk)
    if not ticket.is_open:
        raise ValidationError({"reason": _("Only an open ticket can go to the exception pool.")})
    if not ticket_flag_allowed(ticket=ticket, user=actor):
        raise ValidationError({"reason": _("Only the ticket's handler can flag it.")})
    existing = pool_open_entry(ticket)
    if existing is not None and not _stale(existing):
        raise ValidationError({"reason": _("The ticket is already in the exception pool.")})
    task = Task.objects.filter(ticket=ticket, status=TaskStatus.OPEN, assignee=actor).order_by("id").first()
    # pool_enter's timeline event carries the reason ("Flagged by a handler. …") and who flagged.
    return pool_enter(ticket=ticket, reason=PoolReason.FLAGGED, detail=reason, task=task, actor=actor)


# --- engine hooks ------------------------------------------------------------------------------

def _nobody_detail(task: Task) -> str:
    for reason in task.handler_reasons or []:
        if isinstance(reason, dict) and reason.get("user_id") is None and reason.get("why"):
            return str(reason["why"])
    return _("The node's handler rule found nobody.")


def pool_on_node_entered(*, ticket, run, node, tasks, actor, returned=False, **_kw):
    """A node that found nobody sends the ticket to the pool; a return that makes too many sends
    it too. Entering a node with a handler reads nothing here (intake pays no pool query): an
    entry it leaves behind is stale, which the pool page hides and the next entry closes."""
    unassigned = [t for t in tasks if t.assignee_id is None]
    if unassigned:
        pool_enter(ticket=ticket, reason=PoolReason.NO_HANDLER, detail=_nobody_detail(unassigned[0]),
                   task=unassigned[0], actor=None)
        return
    if returned:
        bounces = Task.objects.filter(run=run, action__in=["return", "reject"]).count()
        if bounces >= bounce_limit():
            pool_enter(ticket=ticket, reason=PoolReason.BOUNCED, task=tasks[0] if tasks else None, actor=None,
                       detail=_("Returned %(n)d times.") % {"n": bounces})


def pool_on_ended(*, ticket, actor=None, **_kw):
    entry = pool_open_entry(ticket)
    if entry is not None:
        _leave(entry, outcome=PoolOutcome.CLOSED, actor=actor)


def bounce_limit() -> int:
    from django.conf import settings

    return int(getattr(settings, "DISPATCH_POOL_BOUNCES", BOUNCE_LIMIT_DEFAULT))


def pool_hooks_register() -> None:
    workflow_hook("node_entered")(pool_on_node_entered)
    workflow_hook("run_cancelled")(pool_on_ended)
    workflow_hook("ticket_closed")(pool_on_ended)


# SLA escalation can put a ticket in the pool: a level's action "exception_pool".
@escalation_action("exception_pool", gettext_lazy("Put the ticket in the exception pool"))
def _escalate_to_pool(*, ticket, task, level, actor):
    entry = pool_enter(ticket=ticket, reason=PoolReason.ESCALATED, task=task, actor=actor,
                       detail=_("An SLA escalation level put it here."))
    return {"field": "pool", "old": "", "new": str(entry.get_reason_display())}
