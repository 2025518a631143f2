"""Workflow reads: work queues (mine, my team's, returned to me), a ticket's tasks and diagram
state, and the workflows managers configure; the business calendars and the pure
workflow.sla.Calendar built from them (cached)."""

import datetime

from django.db.models import Count, Q
from django.utils import timezone

from scrm.config_cache import tenant_config
from scrm.models import StaffProfile, Team

from . import sla
from .models import (
    BusinessCalendar,
    CalendarDay,
    CalendarDayKind,
    Run,
    SlaPolicy,
    Task,
    TaskStatus,
    TicketSla,
    TokenState,
    Workflow,
)


def _queue_base():
    return (Task.objects.filter(status=TaskStatus.OPEN)
            .select_related("ticket", "ticket__customer", "ticket__store", "ticket__sla", "assignee")
            .order_by("due_at", "id"))


def tasks_mine(*, user):
    return _queue_base().filter(Q(assignee=user) | Q(backup=user) | Q(co_handlers=user)).distinct()


def tasks_returned(*, user):
    return _queue_base().filter(assignee=user, is_returned=True)


def tasks_team(*, user):
    """Open tasks of the people in my teams (and teams I lead), plus unassigned ones (the
    exception pool) for team leads."""
    team_ids = set(StaffProfile.objects.filter(user=user).values_list("teams", flat=True))
    team_ids |= set(Team.objects.filter(lead=user).values_list("id", flat=True))
    team_ids.discard(None)
    members = StaffProfile.objects.filter(teams__in=team_ids).values("user_id")
    q = Q(assignee__in=members)
    if Team.objects.filter(lead=user).exists():
        q |= Q(assignee__isnull=True)
    return _queue_base().filter(q).exclude(assignee=user)


def task_holder_visibility_q(*, user):
    """Tickets where the user holds an open task (as handler, backup or co-handler): they see
    those whatever their regions (tickets.extensions visibility)."""
    holding = Task.objects.filter(Q(assignee=user) | Q(backup=user) | Q(co_handlers=user), status=TaskStatus.OPEN)
    return Q(pk__in=holding.values("ticket_id"))


def ticket_tasks(*, ticket):
    return list(Task.objects.filter(ticket=ticket).select_related("assignee", "completed_by", "backup")
                .prefetch_related("co_handlers").order_by("created_at", "id"))


def ticket_run_state(*, ticket):
    """(run, graph, active node keys, done node keys) for the diagram, or None."""
    run = getattr(ticket, "workflow_run", None)
    try:
        run = ticket.workflow_run
    except Exception:  # RelatedObjectDoesNotExist: the ticket has no workflow
        return None
    if run is None:
        return None
    active = set(run.tokens.filter(state__in=[TokenState.ACTIVE, TokenState.WAITING]).values_list("node", flat=True))
    done = set(Task.objects.filter(run=run, status=TaskStatus.DONE).values_list("node", flat=True))
    return run, run.version.graph, active, done - active


def workflow_list():
    return Workflow.objects.select_related("template", "current_version").order_by("name")


def workflow_get(*, pk):
    return Workflow.objects.select_related("template__current_version", "current_version").filter(pk=pk).first()


def workflow_template_rows():
    """Every ticket template with its workflow and published version (the designer's list)."""
    from tickets.models import TicketTemplate

    return (TicketTemplate.objects.select_related("category", "current_version", "workflow",
                                                  "workflow__current_version")
            .order_by("-is_active", "name", "id"))


def workflow_users(*, graph):
    """The users named by the graph's handler rules, by id (for the designer's summaries)."""
    from django.contrib.auth import get_user_model

    ids = set()
    for node in (graph or {}).get("nodes") or []:
        if not isinstance(node, dict):
            continue
        rules = [node.get("handler"), node.get("backup"), *(node.get("handlers") or [])]
        ids |= {r.get("user_id") for r in rules if isinstance(r, dict) and isinstance(r.get("user_id"), int)}
    return {u.pk: u for u in get_user_model().objects.filter(pk__in=ids)} if ids else {}


def ticket_for_panel(*, user, pk):
    """A ticket the user may see, with its template version and workflow run, or None."""
    from tickets.selectors import visible_tickets

    return (visible_tickets(user=user)
            .select_related("template", "template_version", "workflow_run__version__workflow")
            .filter(pk=pk).first())


def task_for_user(*, user, pk):
    """A task on a ticket the user may see (whoever holds it), or None."""
    from tickets.selectors import visible_tickets

    return (Task.objects.select_related("run__version", "ticket")
            .filter(pk=pk, ticket__in=visible_tickets(user=user)).first())


def queue_counts(*, user):
    return {"mine": tasks_mine(user=user).count(), "team": tasks_team(user=user).count(),
            "returned": tasks_returned(user=user).count()}


def ticket_field_scope(*, ticket, user):
    """The custom-field keys an engineer may see on a ticket that runs a workflow: those the
    nodes of their tasks make visible or editable (field-level permission). None means no
    restriction (other roles, or no workflow)."""
    from scrm.models import Role
    from scrm.selectors import membership_current

    membership = membership_current(user=user)
    if user.is_superuser or membership is None or membership.role != Role.ENGINEER:
        return None
    try:
        run = ticket.workflow_run
    except Run.DoesNotExist:
        return None
    nodes = {n["key"]: n for n in run.version.graph.get("nodes", [])}
    keys = set()
    for node_key in Task.objects.filter(run=run, assignee=user).values_list("node", flat=True).distinct():
        spec = nodes.get(node_key, {}).get("fields") or {}
        keys |= set(spec.get("visible", [])) | set(spec.get("editable", []))
    return keys


def ticket_runs_workflow(*, ticket):
    """Whether the ticket's workflow is still running (uses a select_related run if loaded)."""
    try:
        run = ticket.workflow_run
    except Run.DoesNotExist:
        return False
    return not run.is_finished


# --- business calendars ---------------------------------------------------------------------

def business_calendars():
    """The tenant's calendars for the configuration list, with their day counts."""
    return (BusinessCalendar.objects.annotate(
        holiday_count=Count("days", filter=Q(days__kind=CalendarDayKind.HOLIDAY)),
        workday_count=Count("days", filter=Q(days__kind=CalendarDayKind.WORKDAY)))
        .order_by("-is_default", "name"))


def business_calendar_get(*, pk):
    """One calendar of the tenant in scope, or None (missing, or another tenant's)."""
    return BusinessCalendar.objects.filter(pk=pk).first()


def business_calendar_days(*, calendar):
    return list(CalendarDay.objects.filter(calendar=calendar).order_by("date"))


def _sla_calendar_build(calendar):
    if calendar.is_24x7:
        return sla.Calendar.always(calendar.time_zone)
    holidays, workdays = [], {}
    for day, kind, hours_like, hours in CalendarDay.objects.filter(calendar=calendar).values_list(
            "date", "kind", "hours_like", "hours"):
        if kind == CalendarDayKind.HOLIDAY:
            holidays.append(day)
        else:
            workdays[day] = sla.WEEKDAYS[hours_like] if hours_like is not None else hours
    return sla.Calendar.build(time_zone=calendar.time_zone, weekly=calendar.weekly_hours, holidays=holidays,
                              workdays=workdays)


def sla_calendar(*, calendar_id=None):
    """The pure workflow.sla.Calendar of a calendar of the tenant in scope (by default its
    default calendar), or None when there is no such calendar. Cached per process until the
    tenant's configuration changes (scrm.config_cache; BusinessCalendar and CalendarDay are
    watched), so a sweep or an engine step pays no query for it: treat it as read-only."""

    def load():
        rows = BusinessCalendar.objects.filter(**({"pk": calendar_id} if calendar_id is not None
                                                  else {"is_default": True}))
        calendar = rows.first()
        return None if calendar is None else _sla_calendar_build(calendar)

    key = f"sla.calendar:{calendar_id if calendar_id is not None else 'default'}"
    return tenant_config().get(key, load, keep_none=False)


# --- SLA ---------------------------------------------------------------------------------------

def sla_policies():
    """The tenant's SLA policies for the configuration list, in the order they are tried."""
    return SlaPolicy.objects.select_related("calendar").order_by("position", "name")


def sla_policy_get(*, pk):
    """One policy of the tenant in scope, or None (missing, or another tenant's)."""
    return SlaPolicy.objects.filter(pk=pk).first()


def ticket_sla(*, ticket):
    """The ticket's SLA clock row, or None when no policy applied."""
    return TicketSla.objects.filter(ticket_id=ticket.pk).select_related("policy").first()


def sla_rows(*, ticket_ids):
    """{ticket id: TicketSla} for a page of tickets: one query whatever the page size."""
    return {row.ticket_id: row for row in TicketSla.objects.filter(ticket_id__in=list(ticket_ids))}


def sla_at_risk(*, within_minutes=60, now=None):
    """What dashboards read: open tickets of the tenant in scope whose running SLA deadline
    (first response not yet given, or resolution) falls within `within_minutes` or has passed,
    soonest first — served by the partial indexes on TicketSla (open, not paused)."""
    now = now or timezone.now()
    horizon = now + datetime.timedelta(minutes=within_minutes)
    return (TicketSla.objects.filter(is_open=True, paused_at__isnull=True)
            .filter(Q(responded_at__isnull=True, response_due_at__lte=horizon)
                    | Q(resolved_at__isnull=True, resolution_due_at__lte=horizon))
            .select_related("ticket", "ticket__assignee").order_by("resolution_due_at"))
