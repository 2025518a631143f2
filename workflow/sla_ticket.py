"""A ticket's SLA clock, written from the ticket's lifecycle: started when the ticket is created
(its policy matched, its deadlines and timers set), node limits when a node is entered, the
first response when a handler first acts, paused while the ticket waits on the customer (the
clock stops; on resume every deadline moves by the working time paused), stopped when it is
resolved, closed or cancelled. Registered as hooks in workflow/apps.py; every function runs in
its caller's transaction. `sla_status` is the pure reading lists and pages show."""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass
from typing import Any

from django.db.models import Case, Q, When
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from notifications.models import ChannelName
from scrm.config_cache import tenant_config
from tickets.models import EventKind, Status
from tickets.services import timeline_event_add
from tickets.timeline import timeline_code

from . import lifecycle, sla
from .hooks import workflow_hook
from .models import BusinessCalendar, SlaState, SlaTimer, TicketSla, TimerKind, TimerOutcome
from .selectors import sla_calendar, sla_rows
from .sla_policy import policy_match

timeline_code("sla.started", _("SLA “%(policy)s”: first response by %(response)s, resolution by %(resolution)s."))
def target_label(value: Any) -> str:
    """A stored target code ("response" / "resolution") in the reader's language."""
    return str(_("first response")) if value == "response" else str(_("resolution"))


def channels_label(value: Any) -> str:
    """Stored channel codes as the reader's words (企业微信、短信 …)."""
    codes = value if isinstance(value, list) else [value]
    return "、".join(str(ChannelName(c).label) if c in ChannelName.values else str(c) for c in codes)


timeline_code("sla.breached", _("SLA breached: %(target)s was due %(due)s."), target=target_label)
timeline_code("sla.escalated", _("Escalation level %(level)d: %(names)s notified by %(channels)s."),
              channels=channels_label)
timeline_code("sla.node_timeout", _("“%(node)s” timed out; %(names)s notified."))
timeline_code("sla.rearmed", _("Reopened: the SLA counts again, resolution by %(resolution)s."))
timeline_code("sla.node_backup", _("“%(node)s” timed out: the task goes to the backup handler %(backup)s."))

_RUNNING = (Status.NEW, Status.IN_PROGRESS)


def _default_calendar_id() -> int | None:
    return tenant_config().get("sla.default_calendar_id", lambda: (
        BusinessCalendar.objects.filter(is_default=True).values_list("pk", flat=True).first()))


def calendar_for(calendar_id: int | None) -> sla.Calendar:
    """The pure calendar to count in: the given one, else 24×7 (a tenant without calendars)."""
    calendar = sla_calendar(calendar_id=calendar_id) if calendar_id is not None else None
    return calendar or sla.Calendar.always("Asia/Shanghai")


def _add(calendar: sla.Calendar, start: datetime.datetime, minutes: int, working: bool) -> datetime.datetime:
    return sla.due_at(calendar, start, minutes) if working else start + datetime.timedelta(minutes=minutes)


def _left(calendar: sla.Calendar, now: datetime.datetime, due: datetime.datetime, working: bool) -> int:
    if due <= now:
        return 0
    if working:
        return math.ceil(sla.working_time_between(calendar, now, due).total_seconds() / 60)
    return math.ceil((due - now).total_seconds() / 60)


def _timer(tsla: TicketSla, *, kind: str, calendar, start, minutes: int, working: bool = True, task=None,
           level: int = 0) -> SlaTimer:
    """A pending timer `minutes` after `start`; a paused ticket's keeps them as what is left."""
    timer = SlaTimer(tenant_id=tsla.tenant_id, ticket_id=tsla.ticket_id, kind=kind, level=level, working=working,
                     task=task, assignee_id_then=getattr(task, "assignee_id", None))
    if tsla.paused_at is not None:
        timer.left_minutes = minutes
    else:
        timer.due_at = _add(calendar, start, minutes, working)
    return timer


def _soon_minutes(minutes: int, percent: int) -> int:
    return max(0, minutes - math.ceil(minutes * percent / 100))


# --- start ---------------------------------------------------------------------------------

def sla_start(*, ticket, actor=None, now=None) -> TicketSla | None:
    """Match the ticket to a policy and set its deadlines and timers (None: no policy applies)."""
    policy = policy_match(ticket)
    if policy is None:
        return None
    now = now or timezone.now()
    calendar_id = policy.calendar_id or _default_calendar_id()
    calendar = calendar_for(calendar_id)
    tsla = TicketSla(tenant_id=ticket.tenant_id, ticket=ticket, policy=policy, calendar_id=calendar_id,
                     due_soon_percent=policy.due_soon_percent, started_at=now)
    timers = []
    for minutes, due_field, soon, due in (
            (policy.response_minutes, "response_due_at", TimerKind.RESPONSE_SOON, TimerKind.RESPONSE_DUE),
            (policy.resolution_minutes, "resolution_due_at", TimerKind.RESOLUTION_SOON, TimerKind.RESOLUTION_DUE)):
        if not minutes:
            continue
        setattr(tsla, due_field, sla.due_at(calendar, now, minutes))
        timers.append(_timer(tsla, kind=soon, calendar=calendar, start=now,
                             minutes=_soon_minutes(minutes, policy.due_soon_percent)))
        timers.append(_timer(tsla, kind=due, calendar=calendar, start=now, minutes=minutes))
    for number, level in enumerate(policy.escalations, start=1):
        if level["basis"] == "created":
            timers.append(_timer(tsla, kind=TimerKind.ESCALATION, calendar=calendar, start=now, minutes=level["after"],
                                 working=level["clock"] == "working", level=number))
    tsla.save()
    SlaTimer.objects.bulk_create(timers)
    fmt = "%m-%d %H:%M"
    timeline_event_add(
        ticket=ticket, kind=EventKind.WORKFLOW, actor=None, code="sla.started", params={
            "policy": policy.name,
            "response": timezone.localtime(tsla.response_due_at).strftime(fmt) if tsla.response_due_at else "—",
            "resolution": timezone.localtime(tsla.resolution_due_at).strftime(fmt) if tsla.resolution_due_at
            else "—"})
    return tsla


def sla_start_on_created(*, ticket, actor):
    """The `tickets.extensions.on_ticket_created` hook (registered before the workflow's). The
    answer stays on the instance, so entering the first node reads no row for it."""
    ticket.sla_known = sla_start(ticket=ticket, actor=actor)


def ticket_sla_loaded(ticket) -> TicketSla | None:
    """The ticket's SLA row as select_related loaded it (no query), or None."""
    try:
        return ticket.sla
    except TicketSla.DoesNotExist:
        return None


def _tsla(ticket) -> TicketSla | None:
    if hasattr(ticket, "sla_known"):
        return ticket.sla_known
    try:
        return ticket.sla
    except TicketSla.DoesNotExist:
        return None


# --- hooks -------------------------------------------------------------------------------------

@workflow_hook("node_entered")
def sla_node_entered(*, ticket, node, tasks, **_):
    """Count the node's limit in working time (the policy's override, else the node's own) and
    set its due-soon and timeout timers; node-based escalation levels start here too."""
    tsla = _tsla(ticket)
    policy = tsla.policy if tsla is not None else None
    now = timezone.now()
    limit = (policy.node_limits or {}).get(node["key"]) if policy is not None else None
    limit = limit or node.get("time_limit")
    open_tasks = [t for t in tasks if t.assignee_id is not None]
    timers: list[SlaTimer] = []
    if tsla is not None:
        calendar = calendar_for(tsla.calendar_id)
        if limit:
            lifecycle.task_due_set(tasks, sla.due_at(calendar, now, limit))
            percent = tsla.due_soon_percent
            for task in open_tasks:
                timers.append(_timer(tsla, kind=TimerKind.NODE_SOON, calendar=calendar, start=now,
                                     minutes=_soon_minutes(limit, percent), task=task))
                timers.append(_timer(tsla, kind=TimerKind.NODE_DUE, calendar=calendar, start=now, minutes=limit,
                                     task=task))
        if policy is not None and tasks:
            for number, level in enumerate(policy.escalations, start=1):
                if level["basis"] == "node":
                    timers.append(_timer(tsla, kind=TimerKind.ESCALATION, calendar=calendar, start=now,
                                         minutes=level["after"], working=level["clock"] == "working",
                                         level=number, task=tasks[0]))
    elif limit:  # no SLA policy: the node's own limit in wall-clock time, as the engine set it
        for task in open_tasks:
            timers.append(SlaTimer(tenant_id=ticket.tenant_id, ticket_id=ticket.pk, task=task, working=False,
                                   kind=TimerKind.NODE_SOON, assignee_id_then=task.assignee_id,
                                   due_at=now + datetime.timedelta(minutes=_soon_minutes(limit, 20))))
            timers.append(SlaTimer(tenant_id=ticket.tenant_id, ticket_id=ticket.pk, task=task, working=False,
                                   kind=TimerKind.NODE_DUE, assignee_id_then=task.assignee_id, due_at=task.due_at))
    if timers:
        SlaTimer.objects.bulk_create(timers)


@workflow_hook("task_completed")
def sla_task_completed(*, task, **_):
    """A finished task's node timers have nothing left to do."""
    _cancel(SlaTimer.objects.filter(task=task, fired_at__isnull=True))


@workflow_hook("handler_acted")
def sla_first_response(*, ticket, actor, **_):
    """The first act of a person on the ticket is its first response (one UPDATE; nothing more
    once it is recorded)."""
    if actor is None:
        return
    now = timezone.now()
    done = TicketSla.objects.filter(ticket_id=ticket.pk, responded_at__isnull=True).update(
        responded_at=now, response_breached=Case(When(response_due_at__lt=now, then=True), default=False))
    if done:
        tsla = TicketSla.objects.select_related("policy").get(ticket_id=ticket.pk)
        levels = [n for n, level in enumerate(tsla.policy.escalations if tsla.policy else [], start=1)
                  if level["until"] == "response"]
        _cancel(SlaTimer.objects.filter(ticket_id=ticket.pk, fired_at__isnull=True).filter(
            Q(kind__in=[TimerKind.RESPONSE_SOON, TimerKind.RESPONSE_DUE])
            | Q(kind=TimerKind.ESCALATION, level__in=levels)))


@workflow_hook("status_changed")
def sla_status_changed(*, ticket, old, new, **_):
    """Waiting on the customer pauses the clock, going back to work resumes it, resolving meets
    the resolution target, closing or cancelling stops everything."""
    if new == Status.WAITING:
        tsla = _tsla(ticket)
        if tsla is not None:
            sla_pause(tsla=tsla)
    elif old == Status.WAITING and new in _RUNNING:
        tsla = _tsla(ticket)
        if tsla is not None:
            sla_resume(tsla=tsla)
    elif new in (Status.RESOLVED, Status.CLOSED, Status.CANCELLED):
        tsla = _tsla(ticket)
        if tsla is not None and (tsla.is_open or tsla.resolved_at is None):
            sla_stop(tsla=tsla, resolved=new != Status.CANCELLED, closed=new != Status.RESOLVED)
    elif old == Status.RESOLVED and new in _RUNNING:
        tsla = _tsla(ticket)
        if tsla is not None:
            sla_rearm(tsla=tsla, ticket=ticket)


def sla_rearm(*, tsla: TicketSla, ticket, now=None) -> None:
    """A reopened ticket: the resolution clock starts again from the reopening, with the policy's
    full resolution target counted in its calendar, and its resolution timers and the escalation
    levels counted from creation are set again (those that wait only for the first response stay
    done once it was given). The earlier breach stays on the timeline; the flag now speaks of the
    new deadline. Without a policy (since deleted) or a resolution target, only the resolved mark
    is cleared."""
    now = now or timezone.now()
    policy = tsla.policy
    tsla.resolved_at = None
    if policy is None or not policy.resolution_minutes or not tsla.is_open:
        tsla.save(update_fields=["resolved_at"])
        return
    calendar = calendar_for(tsla.calendar_id)
    minutes = policy.resolution_minutes
    _cancel(SlaTimer.objects.filter(ticket_id=tsla.ticket_id, fired_at__isnull=True).exclude(
        task__isnull=False))
    tsla.started_at, tsla.paused_minutes, tsla.paused_at = now, 0, None
    tsla.resolution_due_at = sla.due_at(calendar, now, minutes)
    tsla.resolution_breached = False
    tsla.escalation_level = 0
    tsla.save(update_fields=["resolved_at", "started_at", "paused_minutes", "paused_at", "resolution_due_at",
                             "resolution_breached", "escalation_level"])
    timers = [_timer(tsla, kind=TimerKind.RESOLUTION_SOON, calendar=calendar, start=now,
                     minutes=_soon_minutes(minutes, tsla.due_soon_percent)),
              _timer(tsla, kind=TimerKind.RESOLUTION_DUE, calendar=calendar, start=now, minutes=minutes)]
    for number, level in enumerate(policy.escalations, start=1):
        if level["basis"] == "created" and not (level["until"] == "response" and tsla.responded_at is not None):
            timers.append(_timer(tsla, kind=TimerKind.ESCALATION, calendar=calendar, start=now,
                                 minutes=level["after"], working=level["clock"] == "working", level=number))
    SlaTimer.objects.bulk_create(timers)
    timeline_event_add(ticket=ticket, kind=EventKind.WORKFLOW, actor=None, code="sla.rearmed", params={
        "resolution": timezone.localtime(tsla.resolution_due_at).strftime("%m-%d %H:%M")})


def _cancel(queryset) -> int:
    return queryset.update(fired_at=timezone.now(), outcome=TimerOutcome.CANCELLED)


def sla_pause(*, tsla: TicketSla, now=None) -> None:
    if tsla.paused_at is not None or not tsla.is_open:
        return
    now = now or timezone.now()
    calendar = calendar_for(tsla.calendar_id)
    timers = list(SlaTimer.objects.filter(ticket_id=tsla.ticket_id, fired_at__isnull=True, due_at__isnull=False))
    for timer in timers:
        assert timer.due_at is not None
        timer.left_minutes = _left(calendar, now, timer.due_at, timer.working)
        timer.due_at = None
    SlaTimer.objects.bulk_update(timers, ["left_minutes", "due_at"])
    tsla.paused_at = now
    tsla.save(update_fields=["paused_at"])


def sla_resume(*, tsla: TicketSla, now=None) -> None:
    """Every deadline still ahead at the pause moves on by the working time paused."""
    if tsla.paused_at is None:
        return
    now = now or timezone.now()
    calendar = calendar_for(tsla.calendar_id)
    paused = tsla.paused_at
    for field in ("response_due_at", "resolution_due_at"):
        due = getattr(tsla, field)
        if due is not None and due > paused:
            setattr(tsla, field, sla.due_at(calendar, now, _left(calendar, paused, due, True)))
    tsla.paused_minutes += sla.working_minutes_between(calendar, paused, now) if now > paused else 0
    tsla.paused_at = None
    tsla.save(update_fields=["response_due_at", "resolution_due_at", "paused_minutes", "paused_at"])
    timers = list(SlaTimer.objects.filter(ticket_id=tsla.ticket_id, fired_at__isnull=True, due_at__isnull=True))
    for timer in timers:
        timer.due_at = _add(calendar, now, timer.left_minutes or 0, timer.working)
        timer.left_minutes = None
    SlaTimer.objects.bulk_update(timers, ["left_minutes", "due_at"])


def sla_stop(*, tsla: TicketSla, resolved: bool, closed: bool, now=None) -> None:
    now = now or timezone.now()
    fields = ["paused_at"]
    if tsla.paused_at is not None:
        sla_resume(tsla=tsla, now=now)
    tsla.paused_at = None
    if resolved and tsla.resolved_at is None:
        tsla.resolved_at = now
        tsla.resolution_breached = tsla.resolution_breached or bool(
            tsla.resolution_due_at and tsla.resolution_due_at < now)
        fields += ["resolved_at", "resolution_breached"]
    if closed:
        tsla.is_open = False
        fields.append("is_open")
    tsla.save(update_fields=fields)
    _cancel(SlaTimer.objects.filter(ticket_id=tsla.ticket_id, fired_at__isnull=True))


# --- reading -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class SlaReading:
    """What a list or page shows: the state, which target, when due and the minutes left
    (negative once overdue)."""

    state: str
    target: str  # "response" | "resolution" | ""
    due_at: datetime.datetime | None
    minutes_left: int | None

    @property
    def css(self) -> str:
        return {SlaState.ON_TRACK: "text-bg-success", SlaState.DUE_SOON: "text-bg-warning",
                SlaState.BREACHED: "text-bg-danger", SlaState.PAUSED: "text-bg-secondary",
                SlaState.MET: "text-bg-light border"}.get(SlaState(self.state), "")

    @property
    def label(self) -> str:
        return str(SlaState(self.state).label)

    @property
    def target_label(self) -> str:
        return str(_("Response")) if self.target == "response" else str(_("Resolution"))

    @property
    def left_text(self) -> str:
        """"2h05m left" / "1d3h over" (wall-clock time to the deadline), or "" without one."""
        if self.minutes_left is None:
            return ""
        if self.minutes_left < 0:
            return str(_("%(t)s over")) % {"t": duration_text(-self.minutes_left)}
        return str(_("%(t)s left")) % {"t": duration_text(self.minutes_left)}


def duration_text(minutes: int) -> str:
    days, rest = divmod(abs(minutes), 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}{_('d')}{hours}{_('h')}"
    if hours:
        return f"{hours}{_('h')}{mins:02d}{_('m')}"
    return f"{mins}{_('m')}"


def sla_status(tsla: Any, now: datetime.datetime, calendar: sla.Calendar | None = None) -> SlaReading:
    """The state of a ticket's SLA at `now`, from the row and its business calendar (`calendar`,
    else the row's own from the per-tenant cache: no query once warm). The first response is the
    target until it is met; then resolution. Due soon: the working minutes left are below the
    policy's share of the target's working minutes (from the clock's start to the deadline, less
    the working time it was paused) — so a deadline over a weekend or a holiday is not "due
    soon" on Friday evening. `minutes_left` is wall-clock time, what a person reads."""
    if tsla is None:
        return SlaReading(SlaState.NONE, "", None, None)
    if tsla.responded_at is None and tsla.response_due_at is not None and tsla.resolved_at is None:
        target, due, breached = "response", tsla.response_due_at, tsla.response_breached
    else:
        target, due = "resolution", tsla.resolution_due_at
        breached = tsla.resolution_breached or (tsla.response_breached and due is None)
    if due is None and not breached:
        return SlaReading(SlaState.MET, target, None, None)
    if tsla.resolved_at is not None or not tsla.is_open:
        met = not (tsla.resolution_breached or (tsla.resolved_at and due and tsla.resolved_at > due))
        return SlaReading(SlaState.MET if met else SlaState.BREACHED, target, due, None)
    reference = tsla.paused_at or now
    left = math.floor((due - reference).total_seconds() / 60) if due is not None else None
    if tsla.paused_at is not None:
        return SlaReading(SlaState.PAUSED, target, due, left)
    if breached or (left is not None and left < 0):
        return SlaReading(SlaState.BREACHED, target, due, left)
    if left is not None and _due_soon(tsla, now, due, calendar or calendar_for(tsla.calendar_id)):
        return SlaReading(SlaState.DUE_SOON, target, due, left)
    return SlaReading(SlaState.ON_TRACK, target, due, left)


def _due_soon(tsla: Any, now: datetime.datetime, due: datetime.datetime, calendar: sla.Calendar) -> bool:
    total = sla.working_minutes_between(calendar, tsla.started_at, due) - (tsla.paused_minutes or 0)
    if total <= 0:
        return False
    left = sla.working_time_between(calendar, now, due).total_seconds() / 60
    return left < total * tsla.due_soon_percent / 100


def sla_list_badges(*, tickets) -> dict[int, list[dict]]:
    """The `tickets.extensions.list_badges_register` provider: each row's SLA in colour (one
    query for the page; tickets without an SLA get none)."""
    rows = sla_rows(ticket_ids=[t.pk for t in tickets]) if tickets else {}
    now = timezone.now()
    badges: dict[int, list[dict]] = {}
    calendars: dict[int | None, sla.Calendar] = {}
    for ticket_id, tsla in rows.items():
        if tsla.calendar_id not in calendars:
            calendars[tsla.calendar_id] = calendar_for(tsla.calendar_id)
        reading = sla_status(tsla, now, calendars[tsla.calendar_id])
        if reading.state in (SlaState.NONE, SlaState.MET):
            continue
        text = " · ".join(p for p in (reading.target_label, reading.left_text or reading.label) if p)
        badges[ticket_id] = [{"text": text, "css": reading.css, "state": reading.state,
                              "title": f"SLA {reading.label}"}]
    return badges
