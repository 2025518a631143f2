"""Escalation: the registry of what a fired level may do besides notifying (hand the task to
the backup, raise the priority — and, as a plug-in, whatever an upper app or the dispatch work
registers, e.g. "put the ticket in the exception pool"), and who a level notifies (the
handler's supervisor, the region's managers, everyone with a role, a named person).

    from workflow.escalation import escalation_action

    @escalation_action("exception_pool", _("Put in the exception pool"))
    def pool(*, ticket, task, level, actor):
        ...               # write through your own service, in the sweep's transaction
        return {"field": "pool", "old": "", "new": "…"}   # a timeline change row, or None
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from scrm.models import Membership, Region, RegionUserObjectPermission, Role, Team
from tickets.models import PRIORITY_RANK, Priority

from . import lifecycle
from .models import Task, TaskStatus


@dataclass(frozen=True)
class EscalationAction:
    name: str
    label: Any
    func: Callable[..., dict | None]


ESCALATION_ACTIONS: dict[str, EscalationAction] = {}


def escalation_action(name: str, label: Any):
    """Register `func(*, ticket, task, level, actor) -> change row | None` as a level's action."""

    def register(func):
        ESCALATION_ACTIONS[name] = EscalationAction(name=name, label=label, func=func)
        return func

    return register


def escalation_action_choices() -> list[tuple[str, Any]]:
    return [(a.name, a.label) for a in ESCALATION_ACTIONS.values()]


@escalation_action("transfer_backup", _("Hand the task to its backup handler"))
def _transfer_backup(*, ticket, task, level, actor):
    task = task or Task.objects.filter(ticket=ticket, status=TaskStatus.OPEN).order_by("id").first()
    if task is None or task.status != TaskStatus.OPEN or task.backup_id is None:
        return None
    backup = task.backup
    change = lifecycle.task_transfer(task, backup)
    lifecycle.assignee_set(ticket, backup)
    return change


@escalation_action("raise_priority", _("Raise the priority one step"))
def _raise_priority(*, ticket, task, level, actor):
    order = sorted(PRIORITY_RANK, key=PRIORITY_RANK.__getitem__)
    rank = PRIORITY_RANK.get(ticket.priority, 1)
    if rank >= len(order) - 1:
        return None
    old, ticket.priority = ticket.priority, order[rank + 1]
    ticket.save(update_fields=["priority", "updated_at"])
    return {"field": "priority", "old": str(Priority(old).label), "new": str(Priority(ticket.priority).label)}


# --- recipients -------------------------------------------------------------------------

RECIPIENT_KINDS = ("supervisor", "regional_manager", "role", "user")


def _active(user_ids) -> list:
    ids = Membership.objects.filter(user_id__in=list(user_ids), is_active=True).values_list("user_id", flat=True)
    return list(get_user_model().objects.filter(pk__in=list(ids)).order_by("pk"))


def region_managers(region_id) -> list:
    """The active regional managers granted the region (or its parent), else none."""
    if region_id is None:
        return []
    region = Region.objects.filter(pk=region_id).only("id", "parent_id").first()
    ids = [region_id] + ([region.parent_id] if region is not None and region.parent_id else [])
    users = set(RegionUserObjectPermission.objects.filter(content_object_id__in=ids)
                .values_list("user_id", flat=True))
    managers = Membership.objects.filter(user_id__in=users, role=Role.REGIONAL_MANAGER, is_active=True)
    return _active(managers.values_list("user_id", flat=True))


def level_recipients(level: dict, *, ticket, task) -> list:
    """The people a level notifies. A supervisor is the lead of a team the handler belongs to,
    else the region's managers; an empty answer falls back to the tenant's managers, so an
    escalation is never silently lost."""
    kind = level.get("to")
    users: list = []
    if kind == "user" and level.get("user"):
        users = _active([level["user"]])
    elif kind == "role" and level.get("role"):
        users = _active(Membership.objects.filter(role=level["role"], is_active=True)
                        .values_list("user_id", flat=True))
    elif kind == "supervisor":
        handler_id = (task.assignee_id if task is not None else None) or ticket.assignee_id
        if handler_id is not None:
            leads = (Team.objects.filter(members__user_id=handler_id, lead__isnull=False)
                     .exclude(lead_id=handler_id).values_list("lead_id", flat=True))
            users = _active(leads)
        if not users:
            users = region_managers(ticket.region_id)
    elif kind == "regional_manager":
        users = region_managers(ticket.region_id)
    if not users:
        users = _active(Membership.objects.filter(role=Role.MANAGER, is_active=True)
                        .values_list("user_id", flat=True))
    return users
