"""Dashboard reads: the 工作台 figures by role, the progress board's cards and columns, the manager
dashboard's series. Everything starts from `tickets.selectors.visible_tickets`, so a regional
manager counts only their regions and an engineer only their own work; each figure is one
grouped query (Count/Avg with filters, TruncDate, values().annotate()) over indexed columns —
never a query per row or per day."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.db.models import (
    Avg,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce, ExtractHour, ExtractWeekDay, TruncDate
from django.utils import timezone

from scrm.models import Membership, Region, Store
from tickets.models import (
    OPEN_STATUSES,
    EventKind,
    SatisfactionRating,
    Status,
    Ticket,
    TicketTemplate,
    TimelineEvent,
)
from tickets.selectors import finished_since_q, visible_tickets
from workflow.lifecycle import ASSIGNABLE_ROLES
from workflow.models import Task, TaskStatus, TicketSla
from workflow.selectors import tasks_mine

from .models import QualityFlag, QualityRule

BOARD_CARD_LIMIT = 300  # cards drawn on the board; the column counts are exact
DURATION_BUCKETS = (  # (upper bound in minutes, label) for the node × duration heatmap
    (30, "<30m"), (120, "30m–2h"), (480, "2–8h"), (1440, "8–24h"), (4320, "1–3d"), (None, ">3d"),
)


def day_start(now: datetime.datetime | None = None) -> datetime.datetime:
    """Midnight today in the active time zone."""
    return timezone.localtime(now or timezone.now()).replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class TicketFilters:
    """What the board, the dashboard and the exports filter by: plain ids, already checked to be
    the tenant's by dashboards.forms.FilterForm."""

    region_id: int | None = None
    store_id: int | None = None
    template_id: int | None = None
    priority: str = ""
    handler_id: int | None = None
    days: int = 30

    def apply(self, qs: QuerySet) -> QuerySet:
        for name, value in (("region_id", self.region_id), ("store_id", self.store_id),
                            ("template_id", self.template_id), ("priority", self.priority),
                            ("assignee_id", self.handler_id)):
            if value:
                qs = qs.filter(**{name: value})
        return qs


def _duration(later: str, earlier: str) -> ExpressionWrapper:
    return ExpressionWrapper(F(later) - F(earlier), output_field=DurationField())


def _resolution() -> ExpressionWrapper:
    """Created → resolved (or closed, for a ticket its workflow closed without resolving)."""
    return ExpressionWrapper(Coalesce("resolved_at", "closed_at") - F("created_at"), output_field=DurationField())


# --- SLA seam ------------------------------------------------------------------------------

def sla_figures(*, tickets: QuerySet, now: datetime.datetime) -> dict[str, int] | None:
    """{"overdue": n, "due_soon": n} of these open tickets from their SLA clocks (workflow's
    TicketSla: running, not paused): overdue when a first response or resolution is past due,
    due soon when one falls within the next hour. One aggregate query over the partial indexes."""
    horizon = now + datetime.timedelta(hours=1)
    running = TicketSla.objects.filter(ticket__in=tickets.values("pk"), is_open=True, paused_at__isnull=True)
    late = (Q(responded_at__isnull=True, response_due_at__lt=now)
            | Q(resolved_at__isnull=True, resolution_due_at__lt=now))
    soon = (Q(responded_at__isnull=True, response_due_at__gte=now, response_due_at__lte=horizon)
            | Q(resolved_at__isnull=True, resolution_due_at__gte=now, resolution_due_at__lte=horizon))
    counts = running.aggregate(overdue=Count("pk", filter=late), due_soon=Count("pk", filter=soon & ~late))
    return {"overdue": counts["overdue"] or 0, "due_soon": counts["due_soon"] or 0}


# --- 工作台 --------------------------------------------------------------------------------

def manager_figures(*, user: Any, now: datetime.datetime | None = None) -> dict[str, Any]:
    """The numbers a manager starts the day with, over the tickets they may see: open, new today,
    resolved today, overdue and due soon (SLA), average first response and resolution time over the
    last 7 days. Five queries, each on an index ((tenant, status), (tenant, created), (tenant,
    resolved)), whatever the number of tickets."""
    now = now or timezone.now()
    start = day_start(now)
    week = now - datetime.timedelta(days=7)
    qs = visible_tickets(user=user).order_by()
    figures: dict[str, Any] = {
        "open": qs.filter(status__in=OPEN_STATUSES).count(),
        "new_today": qs.filter(created_at__gte=start).count(),
        "resolved_today": qs.filter(finished_since_q(start)).count(),
    }
    figures["avg_resolution"] = qs.filter(finished_since_q(week)).aggregate(v=Avg(_resolution()))["v"]
    first = (TimelineEvent.objects.filter(ticket=OuterRef("pk"), actor__isnull=False)
             .filter(Q(kind__in=[EventKind.COMMENT, EventKind.STATUS, EventKind.ASSIGNED]) | Q(code="task.acted"))
             .order_by("created_at").values("created_at")[:1])
    figures["avg_first_response"] = (
        qs.filter(created_at__gte=week).annotate(first=Subquery(first)).filter(first__isnull=False)
        .aggregate(v=Avg(_duration("first", "created_at")))["v"])
    sla = sla_figures(tickets=qs.filter(status__in=OPEN_STATUSES), now=now)
    figures["overdue"] = sla["overdue"] if sla else None
    figures["due_soon"] = sla["due_soon"] if sla else None
    return figures


def agent_queue(*, user: Any, limit: int = 10) -> dict[str, Any]:
    """An agent's 工作台: their open tasks (and their count), and today's intake by status."""
    tasks = tasks_mine(user=user)
    start = day_start()
    today = visible_tickets(user=user).filter(created_at__gte=start)
    by_status = dict(today.order_by().values_list("status").annotate(n=Count("id")))
    latest = list(today.select_related("store", "customer", "assignee").order_by("-created_at", "-id")[:limit])
    return {
        "tasks": list(tasks[:limit]), "task_count": tasks.count(),
        "intake_total": sum(by_status.values()),
        "intake_by_status": [(Status(s).label, by_status.get(s, 0), s) for s in Status.values if by_status.get(s)],
        "intake_latest": latest,
    }


def engineer_today(*, user: Any, limit: int = 30) -> dict[str, Any]:
    """An engineer's 工作台: open tasks due by the end of today (or overdue, or without a time
    limit), the later ones, and how many they finished today."""
    start = day_start()
    tomorrow = start + datetime.timedelta(days=1)
    tasks = tasks_mine(user=user)
    return {
        "today": list(tasks.filter(Q(due_at__lt=tomorrow) | Q(due_at__isnull=True))[:limit]),
        "later": list(tasks.filter(due_at__gte=tomorrow)[:limit]),
        "done_today": Task.objects.filter(completed_by=user, completed_at__gte=start).count(),
        "now": timezone.now(),
    }


# --- the progress board --------------------------------------------------------------------

@dataclass
class Column:
    key: Any
    label: str
    count: int = 0
    cards: list = field(default_factory=list)


def handler_choices() -> list[Any]:
    """Staff who may hold tickets, for the handler filter and the board's handler columns."""
    return [m.user for m in Membership.objects.filter(is_active=True, role__in=ASSIGNABLE_ROLES)
            .select_related("user").order_by("user__first_name", "user__username")]


def board(*, user: Any, filters: TicketFilters, group: str = "status") -> dict[str, Any]:
    """Open visible tickets as cards in columns — by status, by the workflow node they wait at, or
    by handler — with exact per-column counts (one grouped query) and the newest
    BOARD_CARD_LIMIT cards (one query, the node of each card as a subquery)."""
    qs = filters.apply(visible_tickets(user=user).filter(status__in=OPEN_STATUSES))
    open_node = (Task.objects.filter(ticket=OuterRef("pk"), status=TaskStatus.OPEN)
                 .order_by("id").values("node_name")[:1])
    cards = list(
        qs.select_related("store", "assignee", "customer", "template")
        .annotate(node_name=Subquery(open_node))
        .only("id", "number", "title", "priority", "status", "created_at", "tenant_id", "store__id", "store__name",
              "assignee__id", "assignee__username", "assignee__first_name", "customer__id", "customer__name",
              "template__id", "template__name")
        .order_by("-created_at", "-id")[:BOARD_CARD_LIMIT])
    columns: dict[Any, Column] = {}
    if group == "node":
        counts = (Task.objects.filter(status=TaskStatus.OPEN, ticket__in=qs.values("pk")).order_by()
                  .values_list("node_name").annotate(n=Count("ticket_id", distinct=True)))
        for name, n in sorted(counts, key=lambda row: -row[1]):
            columns[name] = Column(key=name, label=name, count=n)
        columns.setdefault(None, Column(key=None, label=""))
        key_of = _card_node
    elif group == "handler":
        counts_by = dict(qs.order_by().values_list("assignee_id").annotate(n=Count("id")))
        columns[None] = Column(key=None, label="", count=counts_by.get(None, 0))
        for person in handler_choices():
            columns[person.pk] = Column(key=person.pk, label=person.first_name or person.username,
                                        count=counts_by.get(person.pk, 0))
        key_of = _card_assignee
    else:
        counts_by = dict(qs.order_by().values_list("status").annotate(n=Count("id")))
        for status in OPEN_STATUSES:
            columns[status] = Column(key=status, label=str(Status(status).label), count=counts_by.get(status, 0))
        key_of = _card_status
    for card in cards:
        column = columns.get(key_of(card))
        if column is None:
            column = columns.setdefault(key_of(card), Column(key=key_of(card), label=str(key_of(card))))
        column.cards.append(card)
    if group == "node" and columns[None].count == 0:
        columns[None].count = len(columns[None].cards)
        if not columns[None].cards:
            del columns[None]
    return {"columns": list(columns.values()), "shown": len(cards), "limit": BOARD_CARD_LIMIT}


def _card_node(card):
    return card.node_name


def _card_assignee(card):
    return card.assignee_id


def _card_status(card):
    return card.status


def board_ticket(*, user: Any, pk: int) -> Ticket | None:
    """An open ticket the user may see, for a drag on the board; None otherwise."""
    return visible_tickets(user=user).filter(pk=pk, status__in=OPEN_STATUSES).first()


# --- the manager dashboard -----------------------------------------------------------------

def _period(filters: TicketFilters, now: datetime.datetime) -> datetime.datetime:
    return day_start(now) - datetime.timedelta(days=filters.days - 1)


def intake_by_day(*, user: Any, filters: TicketFilters, now: datetime.datetime | None = None) -> dict[str, Any]:
    """Tickets created per day and channel over the period: one GROUP BY (day, source)."""
    now = now or timezone.now()
    since = _period(filters, now)
    rows = (filters.apply(visible_tickets(user=user)).filter(created_at__gte=since).order_by()
            .annotate(day=TruncDate("created_at")).values_list("day", "source").annotate(n=Count("id")))
    days = [(since + datetime.timedelta(days=i)).date() for i in range(filters.days)]
    series: dict[str, dict] = {}
    for day, source, n in rows:
        series.setdefault(source, {})[day] = n
    return {"days": days, "series": {source: [per_day.get(d, 0) for d in days] for source, per_day in series.items()}}


def resolution_by(*, user: Any, filters: TicketFilters, by: str, now: datetime.datetime | None = None,
                  limit: int = 10) -> list[dict[str, Any]]:
    """Resolved tickets of the period grouped by store, region or person (`by`): how many and
    their average resolution time, busiest first. One GROUP BY."""
    now = now or timezone.now()
    column = {"store": "store__name", "region": "region__name", "person": "assignee__first_name"}[by]
    rows = (filters.apply(visible_tickets(user=user)).filter(finished_since_q(_period(filters, now))).order_by()
            .values(column).annotate(n=Count("id"), avg=Avg(_resolution()))
            .order_by("-n")[:limit])
    return [{"name": row[column] or "—", "n": row["n"], "avg": row["avg"]} for row in rows]


def node_heatmap(*, user: Any, filters: TicketFilters, now: datetime.datetime | None = None) -> dict[str, Any]:
    """Where tickets stall: finished tasks of the period counted per workflow node and duration
    bucket (created → completed), with each node's average. One GROUP BY with a CASE per bucket."""
    now = now or timezone.now()
    tickets = filters.apply(visible_tickets(user=user)).values("pk")
    tasks = Task.objects.filter(status=TaskStatus.DONE, completed_at__gte=_period(filters, now),
                                ticket__in=tickets).order_by()
    spent = _duration("completed_at", "created_at")
    aggregates: dict[str, Any] = {"n": Count("id"), "avg": Avg(spent)}
    lower = datetime.timedelta(0)
    for i, (minutes, _label) in enumerate(DURATION_BUCKETS):
        upper = datetime.timedelta(minutes=minutes) if minutes else None
        cond = Q(completed_at__gte=F("created_at") + lower) if i else Q()
        if upper is not None:
            cond &= Q(completed_at__lt=F("created_at") + upper)
        aggregates[f"b{i}"] = Count("id", filter=cond)
        lower = upper or lower
    grouped: Any = tasks.values("node_name")  # the bucket names are built above: not typed per key
    rows = list(grouped.annotate(**aggregates).order_by("-avg"))
    peak = max([row[f"b{i}"] for row in rows for i in range(len(DURATION_BUCKETS))] or [0])
    return {"buckets": [label for _m, label in DURATION_BUCKETS], "peak": peak, "rows": [
        {"node": row["node_name"], "n": row["n"], "avg": row["avg"],
         "cells": [row[f"b{i}"] for i in range(len(DURATION_BUCKETS))]} for row in rows]}


def intake_hour_heatmap(*, user: Any, filters: TicketFilters, now: datetime.datetime | None = None
                        ) -> dict[str, Any]:
    """Tickets created per weekday × hour of day over the period (when the work arrives)."""
    now = now or timezone.now()
    rows = (filters.apply(visible_tickets(user=user)).filter(created_at__gte=_period(filters, now)).order_by()
            .annotate(wd=ExtractWeekDay("created_at"), hour=ExtractHour("created_at"))
            .values_list("wd", "hour").annotate(n=Count("id")))
    grid = [[0] * 24 for _ in range(7)]
    for wd, hour, n in rows:
        grid[(wd + 5) % 7][hour] = n  # ExtractWeekDay: 1 = Sunday … 7 = Saturday → 0 = Monday
    return {"grid": grid, "peak": max(max(r) for r in grid)}


def csat_summary(*, user: Any, filters: TicketFilters, now: datetime.datetime | None = None) -> dict[str, Any]:
    """Ratings of the period over visible tickets: count, average, share of 4–5 stars, the
    distribution, by store and person, and the latest low (1–2 star) ones to follow up."""
    now = now or timezone.now()
    tickets = filters.apply(visible_tickets(user=user)).values("pk")
    qs = SatisfactionRating.objects.filter(created_at__gte=_period(filters, now), ticket__in=tickets).order_by()
    total = qs.aggregate(n=Count("id"), avg=Avg("score"), happy=Count("id", filter=Q(score__gte=4)))
    dist = dict(qs.values_list("score").annotate(n=Count("id")))
    by_store = list(qs.values("store__name").annotate(n=Count("id"), avg=Avg("score")).order_by("-avg", "-n")[:10])
    by_person = list(qs.values("handler__first_name", "handler__username").annotate(n=Count("id"), avg=Avg("score"))
                     .order_by("-avg", "-n")[:10])
    low = list(qs.filter(score__lte=2).select_related("ticket", "store", "handler").order_by("-created_at")[:10])
    return {"n": total["n"], "avg": total["avg"], "happy": (100 * total["happy"] / total["n"]) if total["n"] else None,
            "dist": [(s, dist.get(s, 0)) for s in range(5, 0, -1)], "by_store": by_store, "by_person": by_person,
            "low": low}


def filter_choices() -> dict[str, Any]:
    """The filters' options (the tenant's regions, stores, templates, handlers)."""
    return {
        "regions": list(Region.objects.order_by("name").values_list("pk", "name")),
        "stores": list(Store.objects.order_by("code").values_list("pk", "name")),
        "templates": list(TicketTemplate.objects.order_by("name").values_list("pk", "name")),
        "handlers": handler_choices(),
    }


# --- 质检 ------------------------------------------------------------------------------------

def quality_flags(*, user: Any, reviewed: bool = False, limit: int = 100) -> list[Any]:
    """Flags on tickets the user may see, to review (or reviewed), newest first, one query."""
    return list(QualityFlag.objects.filter(reviewed_at__isnull=not reviewed,
                                           ticket__in=visible_tickets(user=user).values("pk"))
                .select_related("ticket", "rule", "reviewed_by").order_by("-created_at", "-id")[:limit])


def quality_rules() -> list[Any]:
    return list(QualityRule.objects.annotate(n=Count("flags")).order_by("kind", "name"))


def quality_flag_get(*, user: Any, pk: int) -> Any:
    return QualityFlag.objects.filter(pk=pk, ticket__in=visible_tickets(user=user).values("pk")).first()


def repeat_requests(*, user: Any, filters: TicketFilters, now: datetime.datetime | None = None,
                    limit: int = 10) -> list[dict[str, Any]]:
    """Customers who came back with the same category in the period (重复投诉): one GROUP BY
    customer and category HAVING two or more, most first."""
    now = now or timezone.now()
    rows = (filters.apply(visible_tickets(user=user)).filter(created_at__gte=_period(filters, now),
                                                             customer__isnull=False).order_by()
            .values("customer_id", "customer__name", "category__name").annotate(n=Count("id"))
            .filter(n__gte=2).order_by("-n", "customer__name")[:limit])
    return list(rows)
