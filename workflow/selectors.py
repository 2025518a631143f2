"""Workflow reads: work queues (mine, my team's, returned to me), a ticket's tasks and diagram
state, and the workflows managers configure."""

from django.db.models import Q

from scrm.models import StaffProfile, Team

from .models import Task, TaskStatus, TokenState, Workflow


def _queue_base():
    return (Task.objects.filter(status=TaskStatus.OPEN)
            .select_related("ticket", "ticket__customer", "ticket__store", "assignee")
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
