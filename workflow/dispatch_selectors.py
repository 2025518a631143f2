"""Reads for smart dispatch's pages: the exception pool a person may see, the people a ticket
can be assigned to from it, and the simulation of a dispatch rule over recent tickets (which
writes nothing)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.utils import timezone

from scrm.models import Membership, Role
from scrm.selectors import membership_current, visible_regions
from tickets.models import Ticket

from .dispatch_loader import dispatch_evaluate
from .dispatch_rule import DispatchRule
from .graph import HUMAN_KINDS, node_label
from .lifecycle import ASSIGNABLE_ROLES
from .models import PoolEntry, PoolReason, Task, TaskStatus, Workflow
from .pool import DETAIL_MAX
from .routing import RULES

POOL_ROLES = frozenset({Role.ADMIN, Role.MANAGER, Role.REGIONAL_MANAGER, Role.AGENT})
POOL_TENANT_WIDE = frozenset({Role.ADMIN, Role.MANAGER, Role.AGENT})
SIMULATION_MAX_TICKETS = 100
SIMULATION_MAX_DAYS = 30


def pool_allowed(*, user: Any) -> bool:
    membership = membership_current(user=user)
    return user.is_superuser or (membership is not None and membership.role in POOL_ROLES)


def pool_entries(*, user: Any) -> QuerySet:
    """Open entries of the exception pool the user may handle: everything for tenant-wide roles,
    their regions' for a regional manager, oldest first."""
    qs = (PoolEntry.objects.filter(left_at__isnull=True)
          # A "nobody eligible" entry whose task found a handler or ended has left in fact.
          .exclude(Q(reason=PoolReason.NO_HANDLER, task__isnull=False)
                   & (~Q(task__status=TaskStatus.OPEN) | Q(task__assignee__isnull=False)))
          .select_related("ticket", "ticket__store", "ticket__customer", "region", "task")
          .order_by("entered_at", "id"))
    membership = membership_current(user=user)
    if user.is_superuser or (membership is not None and membership.role in POOL_TENANT_WIDE):
        return qs
    if membership is None or membership.role not in POOL_ROLES:
        return qs.none()
    return qs.filter(region__in=visible_regions(user=user))


def pool_entry_get(*, user: Any, pk: int) -> PoolEntry | None:
    return pool_entries(user=user).filter(pk=pk).first()


def assignable_people() -> QuerySet:
    """Active staff who may hold a ticket (the pool's assign list)."""
    members = Membership.objects.filter(is_active=True, role__in=ASSIGNABLE_ROLES).values("user_id")
    return get_user_model().objects.filter(pk__in=members, is_active=True).order_by("first_name", "username")


def dispatch_tools(*, user: Any, ticket: Ticket, tasks: list, can_act: bool) -> dict:
    """What the ticket panel's dispatch card offers: a manager (a pool role) re-dispatches or
    picks the handler by hand (the people to pick from load when that form opens), the handler
    of an open task flags it into the pool. `tasks` carry their `holders` (the panel read them)."""
    if not can_act or not ticket.is_open:
        return {"manage": False, "flag": False}
    manage = pool_allowed(user=user)
    flag = any(t.status == TaskStatus.OPEN and any(u.pk == user.pk for u in getattr(t, "holders", []))
               for t in tasks)
    return {"manage": manage, "flag": flag, "reason_max": DETAIL_MAX}


# --- simulation ------------------------------------------------------------------------------

@dataclass
class SimRow:
    ticket: Ticket
    would: str  # the name of who would get it ("" nobody)
    step: str
    overflowed: bool
    why: str
    actual: str  # who did get it at that node ("" nobody / not reached)


@dataclass
class Simulation:
    node: str = ""
    rows: list = field(default_factory=list)
    load: list = field(default_factory=list)  # (name, simulated tickets), most first
    nobody: list = field(default_factory=list)  # rows that would find nobody
    error: str = ""


def dispatch_nodes(graph: dict) -> list[dict]:
    """Human nodes of a graph whose handler is a dispatch rule."""
    return [n for n in (graph or {}).get("nodes", []) if isinstance(n, dict) and n.get("kind") in HUMAN_KINDS
            and isinstance(n.get("handler"), dict) and n["handler"].get("rule") == "dispatch"]


def dispatch_simulate(*, workflow: Workflow, graph: dict, days: int = 7,
                      now: datetime.datetime | None = None) -> Simulation:
    """Run the graph's first dispatch node over the template's tickets of the last `days` days
    (at most SIMULATION_MAX_TICKETS, oldest first), each decision adding to a running load as if
    it had been assigned — without writing anything — next to who actually got each ticket."""
    nodes = dispatch_nodes(graph)
    if not nodes:
        return Simulation(error="no_dispatch_node")
    node = nodes[0]
    rule = node["handler"]
    kind = RULES["dispatch"]
    assert isinstance(kind, DispatchRule)
    if kind.problems(rule):
        return Simulation(node=node_label(node), error="invalid_rule")
    since = (now or timezone.now()) - datetime.timedelta(days=max(1, min(days, SIMULATION_MAX_DAYS)))
    tickets = list(Ticket.objects.filter(template_id=workflow.template_id, created_at__gte=since)
                   .order_by("created_at", "id")[:SIMULATION_MAX_TICKETS])
    actual = {}
    for ticket_id, first, username in (Task.objects.filter(ticket__in=tickets, node=node.get("key"))
                                       .order_by("-id").values_list("ticket_id", "assignee__first_name",
                                                                    "assignee__username")):
        actual[ticket_id] = first or username or ""
    extra: dict[int, int] = {}
    names: dict[int, str] = {}
    rotation = None
    sim = Simulation(node=node_label(node))
    for ticket in tickets:
        decision, context = dispatch_evaluate(rule, ticket, rotation_after=rotation, extra_load=extra)
        reasons = kind.reasons_for(decision, context, rule)
        picked = decision.picked
        if picked is not None:
            uid = picked.candidate.user_id
            extra[uid] = extra.get(uid, 0) + 1
            names[uid] = picked.candidate.name
            if any(s.tie for s in decision.ranked):
                rotation = uid
        row = SimRow(ticket=ticket, would=picked.candidate.name if picked else "", step=decision.step or "",
                     overflowed=decision.overflowed, why=reasons[0]["why"] if reasons else "",
                     actual=actual.get(ticket.pk, ""))
        sim.rows.append(row)
        if picked is None:
            sim.nobody.append(row)
    sim.load = sorted(((names[u], n) for u, n in extra.items()), key=lambda x: (-x[1], x[0]))
    return sim
