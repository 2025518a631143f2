"""Escalation: the registry of what a fired level may do besides notifying (hand the task to
the backup, raise the priority — and, as a plug-in, whatever an upper app or the dispatch work
registers, e.g. "put the ticket in the exception pool"), and who a level notifies (the
handler's supervisor, the region's managers, everyone with a role, a named person).

    from workflow.escalation import escalation_action

    @escalation_action("exception_pool", _("Put in the exception pool"))
    def pool(*, ticket, task, level, actor):
        ...               # write through your own service, in the sweep's transaction
        return {"field": "pool", "old": "", "new": "…"}   # a timeline change row, or None

An action registered with `batched=True` also takes `writes` (a `lifecycle.HeldWrites`, or None
when called alone): it changes the ticket and task in memory, lets `writes` hold the rows, and
the sweep flushes a whole batch's writes in a few statements.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q
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
    batched: bool = False


ESCALATION_ACTIONS: dict[str, EscalationAction] = {}


def escalation_action(name: str, label: Any, *, batched: bool = False):
    """Register `func(*, ticket, task, level, actor) -> change row | None` as a level's action
    (with `batched`, func also takes `writes`: see the module's docstring)."""

    def register(func):
        ESCALATION_ACTIONS[name] = EscalationAction(name=name, label=label, func=func, batched=batched)
        return func

    return register


def escalation_action_choices() -> list[tuple[str, Any]]:
    return [(a.name, a.label) for a in ESCALATION_ACTIONS.values()]


@escalation_action("transfer_backup", _("Hand the task to its backup handler"), batched=True)
def _transfer_backup(*, ticket, task, level, actor, writes=None):
    if task is None and writes is None:  # (the sweep passes the ticket's first open task, loaded per batch)
        task = Task.objects.filter(ticket=ticket, status=TaskStatus.OPEN).order_by("id").first()
    if task is None or task.status != TaskStatus.OPEN or task.backup_id is None:
        return None
    backup = task.backup
    if writes is not None:
        change = writes.task_transfer(task, backup)
        writes.assignee_set(ticket, backup)
        return change
    change = lifecycle.task_transfer(task, backup)
    lifecycle.assignee_set(ticket, backup)
    return change


_PRIORITY_ORDER = sorted(PRIORITY_RANK, key=PRIORITY_RANK.__getitem__)


@escalation_action("raise_priority", _("Raise the priority one step"), batched=True)
def _raise_priority(*, ticket, task, level, actor, writes=None):
    rank = PRIORITY_RANK.get(ticket.priority, 1)
    if rank >= len(_PRIORITY_ORDER) - 1:
        return None
    old, ticket.priority = ticket.priority, _PRIORITY_ORDER[rank + 1]
    if writes is not None:
        writes.ticket_save(ticket, ["priority", "updated_at"])
    else:
        ticket.save(update_fields=["priority", "updated_at"])
    return {"field": "priority", "old": str(Priority(old).label), "new": str(Priority(ticket.priority).label)}


# --- recipients -------------------------------------------------------------------------

RECIPIENT_KINDS = ("supervisor", "regional_manager", "role", "user")


def region_managers(region_id) -> list:
    """The active regional managers granted the region (or its parent), else none."""
    return RecipientBook([({"to": "regional_manager"}, _Where(region_id), None)]).managers_of(region_id)


class _Where:
    """A stand-in ticket for a region-only question (region_managers)."""

    assignee_id = None

    def __init__(self, region_id):
        self.region_id = region_id


class RecipientBook:
    """Who the levels of a whole sweep batch notify, looked up in a handful of queries however
    many tickets the batch holds (team leads of every handler, the regions and their parents,
    the regional grants, the active memberships, the users): `recipients(level, ticket=…,
    task=…)` then answers from memory. The rules are `level_recipients`'."""

    def __init__(self, requests):
        requests = list(requests)
        handlers, regions, people, roles = set(), set(), set(), {Role.MANAGER}
        for level, ticket, task in requests:
            kind = level.get("to")
            if kind == "user" and level.get("user"):
                people.add(int(level["user"]))
            elif kind == "role" and level.get("role"):
                roles.add(level["role"])
            elif kind in ("supervisor", "regional_manager"):
                handler = (task.assignee_id if task is not None else None) or ticket.assignee_id
                if kind == "supervisor" and handler is not None:
                    handlers.add(handler)
                if ticket.region_id is not None:
                    regions.add(ticket.region_id)
        self.leads: dict[int, set[int]] = {}
        if handlers:
            for member, lead in (Team.objects.filter(members__user_id__in=handlers, lead__isnull=False)
                                 .values_list("members__user_id", "lead_id")):
                if member != lead:
                    self.leads.setdefault(member, set()).add(lead)
        self.parents: dict[int, int | None] = {}
        self.granted: dict[int, set[int]] = {}
        if regions:
            self.parents = dict(Region.objects.filter(pk__in=regions).values_list("id", "parent_id"))
            wanted = regions | {p for p in self.parents.values() if p}
            for region, user in (RegionUserObjectPermission.objects.filter(content_object_id__in=wanted)
                                 .values_list("content_object_id", "user_id")):
                self.granted.setdefault(int(region), set()).add(user)
        candidates = people | {u for us in self.leads.values() for u in us} | {
            u for us in self.granted.values() for u in us}
        self.role_of: dict[int, str] = dict(
            Membership.objects.filter(is_active=True).filter(Q(user_id__in=candidates) | Q(role__in=roles))
            .values_list("user_id", "role"))
        self.users = {u.pk: u for u in get_user_model().objects.filter(pk__in=list(self.role_of))}

    def _people(self, ids) -> list:
        return [self.users[i] for i in sorted(set(ids)) if i in self.users]

    def managers_of(self, region_id) -> list:
        if region_id is None:
            return []
        parent = self.parents.get(region_id)
        granted = self.granted.get(region_id, set()) | (self.granted.get(parent, set()) if parent else set())
        return self._people(u for u in granted if self.role_of.get(u) == Role.REGIONAL_MANAGER)

    def recipients(self, level: dict, *, ticket, task) -> list:
        kind = level.get("to")
        users: list = []
        if kind == "user" and level.get("user"):
            users = self._people([int(level["user"])])
        elif kind == "role" and level.get("role"):
            users = self._people(u for u, role in self.role_of.items() if role == level["role"])
        elif kind == "supervisor":
            handler = (task.assignee_id if task is not None else None) or ticket.assignee_id
            if handler is not None:
                users = self._people(self.leads.get(handler, ()))
            if not users:
                users = self.managers_of(ticket.region_id)
        elif kind == "regional_manager":
            users = self.managers_of(ticket.region_id)
        if not users:
            users = self._people(u for u, role in self.role_of.items() if role == Role.MANAGER)
        return users


def level_recipients(level: dict, *, ticket, task) -> list:
    """The people a level notifies. A supervisor is the lead of a team the handler belongs to,
    else the region's managers; an empty answer falls back to the tenant's managers, so an
    escalation is never silently lost."""
    return RecipientBook([(level, ticket, task)]).recipients(level, ticket=ticket, task=task)
