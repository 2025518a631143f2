"""Reads for smart dispatch's pages: the exception pool a person may see, the people a ticket
can be assigned to from it, and the simulation of a dispatch rule over recent tickets or a
generated day (which writes nothing)."""

from __future__ import annotations

import datetime
import random
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.utils import timezone

from scrm.models import Customer, Membership, Role, Store
from scrm.selectors import membership_current, visible_regions
from tickets.models import Category, Ticket

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
GENERATED_MAX_TICKETS = 200  # a generated day's size limit (each ticket is one decision)
GENERATED_CUSTOMERS = 500  # customers a generated day draws from
WORK_HOURS = (9, 18)  # the generated day's working hours, local time


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
    ticket: Ticket | None  # None: a generated ticket (nothing stored)
    would: str  # the name of who would get it ("" nobody)
    step: str
    overflowed: bool
    why: str
    actual: str  # who did get it at that node ("" nobody / not reached)
    label: str = ""  # a generated ticket's time and store
    at: datetime.datetime | None = None


@dataclass
class Simulation:
    node: str = ""
    rows: list = field(default_factory=list)
    load: list = field(default_factory=list)  # (name, simulated tickets), most first
    nobody: list = field(default_factory=list)  # rows that would find nobody
    error: str = ""
    generated: bool = False


@dataclass(frozen=True)
class GeneratedTicket:
    """A ticket of the generated day: when, where, for whom, of which category — never stored."""

    at: datetime.datetime
    facts: dict  # as workflow.dispatch_loader.ticket_facts gives them
    label: str


def dispatch_nodes(graph: dict) -> list[dict]:
    """Human nodes of a graph whose handler is a dispatch rule."""
    return [n for n in (graph or {}).get("nodes", []) if isinstance(n, dict) and n.get("kind") in HUMAN_KINDS
            and isinstance(n.get("handler"), dict) and n["handler"].get("rule") == "dispatch"]


def day_generate(*, workflow: Workflow, count: int, seed: int, stores: list | None = None,
                 day: datetime.date | None = None) -> list[GeneratedTicket]:
    """`count` tickets spread over a working day (WORK_HOURS, local time) across the tenant's
    stores (or `stores`), customers and categories, drawn from `seed`: the same seed and data
    give the same day. Three reads (stores, customers, categories), nothing written."""
    rng = random.Random(seed)
    day = day or timezone.localdate()
    tz = timezone.get_current_timezone()
    start = datetime.datetime.combine(day, datetime.time(WORK_HOURS[0]), tzinfo=tz)
    seconds = (WORK_HOURS[1] - WORK_HOURS[0]) * 3600
    store_qs = Store.objects.select_related("region").order_by("pk")
    if stores:
        store_qs = store_qs.filter(pk__in=[s.pk for s in stores])
    store_rows = list(store_qs)
    # A sample of customers (the newest GENERATED_CUSTOMERS) and their tiers; None: walk-ins.
    customers: list[tuple[int, str] | None] = list(
        Customer.objects.order_by("-pk").values_list("pk", "tier")[:GENERATED_CUSTOMERS]) or [None]
    categories: list[str | None] = list(
        Category.objects.order_by("order", "name", "pk").values_list("name", flat=True)) or [None]
    slug = workflow.template.slug
    times = sorted(rng.randrange(seconds) for _ in range(count))
    out = []
    for n, offset in enumerate(times, start=1):
        store = rng.choice(store_rows) if store_rows else None
        customer = rng.choice(customers)
        category = rng.choice(categories)
        at = start + datetime.timedelta(seconds=offset)
        facts: dict[str, Any] = {
                 "store_id": store.pk if store else None, "region_id": store.region_id if store else None,
                 "store__name": store.name if store else None, "store__latitude": store.latitude if store else None,
                 "store__longitude": store.longitude if store else None,
                 "store__region_id": store.region_id if store else None,
                 "store__region__name": store.region.name if store and store.region_id else None,
                 "region__name": store.region.name if store and store.region_id else None,
                 "customer__tier": customer[1] if customer else None, "category__name": category,
                 "template__slug": slug, "data": {}}
        label = f"#{n} {timezone.localtime(at):%H:%M} {store.name if store else '—'}"
        if customer and customer[1] != "normal":
            label += f" {customer[1].upper()}"
        out.append(GeneratedTicket(at=at, facts=facts, label=label))
    return out


class LoadClock:
    """Each person's open tasks at a past moment, as a difference from now (what the dispatch
    loader reads from Workload): tasks opened after the moment were not open yet (−1), tasks
    completed after it were still open (+1). One read of the tasks opened or completed since
    `since`; `at(moment)` is called with non-decreasing moments. Cancelled tasks have no end
    time and are left out (they count as open until now, i.e. not at all here)."""

    def __init__(self, since: datetime.datetime, *, replaced: Q | None = None):
        # `replaced`: the tasks the simulation stands in for (the replayed tickets' own tasks
        # at the node), which would otherwise count twice.
        qs = Task.objects.exclude(replaced) if replaced is not None else Task.objects.all()
        rows = list(qs.filter(assignee__isnull=False).filter(
            Q(created_at__gte=since) | Q(completed_at__gte=since)).filter(
            status__in=[TaskStatus.OPEN, TaskStatus.DONE]).values_list(
            "assignee_id", "created_at", "completed_at", "status"))
        self.delta: dict[int, int] = {}
        self.events: list[tuple[datetime.datetime, int, int]] = []
        for user_id, created, completed, status in rows:
            if status == TaskStatus.OPEN:
                # counted now; at a moment before its creation it was not open
                if created >= since:
                    self._add(user_id, -1)
                    self.events.append((created, user_id, 1))
            elif completed is not None and completed >= since:
                if created < since:
                    self._add(user_id, 1)  # open at `since`, done before now
                else:
                    self.events.append((created, user_id, 1))
                self.events.append((completed, user_id, -1))
        self.events.sort(key=lambda e: e[0])
        self._next = 0

    def _add(self, user_id: int, n: int) -> None:
        self.delta[user_id] = self.delta.get(user_id, 0) + n

    def at(self, moment: datetime.datetime) -> dict[int, int]:
        while self._next < len(self.events) and self.events[self._next][0] <= moment:
            _when, user_id, n = self.events[self._next]
            self._add(user_id, n)
            self._next += 1
        return self.delta


def dispatch_simulate(*, workflow: Workflow, graph: dict, days: int = 7, now: datetime.datetime | None = None,
                      generated: list[GeneratedTicket] | None = None) -> Simulation:
    """Run the graph's first dispatch node over the template's tickets of the last `days` days
    (at most SIMULATION_MAX_TICKETS, oldest first) — or over a generated day's tickets — each
    decision adding to a running load as if it had been assigned, on top of each person's load
    at the ticket's time (LoadClock), without writing anything; next to who actually got each
    real ticket."""
    nodes = dispatch_nodes(graph)
    if not nodes:
        return Simulation(error="no_dispatch_node")
    node = nodes[0]
    rule = node["handler"]
    kind = RULES["dispatch"]
    assert isinstance(kind, DispatchRule)
    if kind.problems(rule):
        return Simulation(node=node_label(node), error="invalid_rule")
    now = now or timezone.now()
    items: list[tuple[datetime.datetime, Ticket | None, dict | None, str]]
    actual: dict[int, str] = {}
    replaced = None
    if generated is not None:
        items = [(g.at, None, g.facts, g.label) for g in generated]
    else:
        since = now - datetime.timedelta(days=max(1, min(days, SIMULATION_MAX_DAYS)))
        tickets = list(Ticket.objects.filter(template_id=workflow.template_id, created_at__gte=since)
                       .order_by("created_at", "id")[:SIMULATION_MAX_TICKETS])
        for ticket_id, first, username in (Task.objects.filter(ticket__in=tickets, node=node.get("key"))
                                           .order_by("-id").values_list("ticket_id", "assignee__first_name",
                                                                        "assignee__username")):
            actual[ticket_id] = first or username or ""
        items = [(t.created_at, t, None, t.number) for t in tickets]
        replaced = Q(ticket__in=[t.pk for t in tickets], node=node.get("key"))
    clock = LoadClock(min((at for at, *_ in items), default=now), replaced=replaced)
    simulated: dict[int, int] = {}
    names: dict[int, str] = {}
    rotation = None
    sim = Simulation(node=node_label(node), generated=generated is not None)
    for at, ticket, facts, label in items:
        before = clock.at(min(at, now))  # a generated moment still ahead: today's loads
        extra = {u: before.get(u, 0) + simulated.get(u, 0) for u in before.keys() | simulated.keys()}
        decision, context = dispatch_evaluate(rule, ticket, rotation_after=rotation, extra_load=extra, facts=facts)
        reasons = kind.reasons_for(decision, context, rule)
        picked = decision.picked
        if picked is not None:
            uid = picked.candidate.user_id
            simulated[uid] = simulated.get(uid, 0) + 1
            names[uid] = picked.candidate.name
            if any(s.tie for s in decision.ranked):
                rotation = uid
        row = SimRow(ticket=ticket, would=picked.candidate.name if picked else "", step=decision.step or "",
                     overflowed=decision.overflowed, why=reasons[0]["why"] if reasons else "",
                     actual=actual.get(ticket.pk, "") if ticket is not None else "", label=label, at=at)
        sim.rows.append(row)
        if picked is None:
            sim.nobody.append(row)
    sim.load = sorted(((names[u], n) for u, n in simulated.items()), key=lambda x: (-x[1], x[0]))
    return sim
