"""Dashboard reads: the 工作台 figures by role, the progress board's cards and columns, the manager
dashboard's series. The live figures start from `tickets.selectors.visible_tickets` and are
capped counts on indexes; the dashboard's history reads only the daily roll-ups
(DailyTicketStats, DailyNodeStats) through `rollup_scope`, which keeps a regional manager to
their regions and an engineer to their own work. Never a query per row or per day."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import (
    Avg,
    Count,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.urls import reverse
from django.utils import timezone

from scrm.models import Membership, Region, Store
from scrm.selectors import membership_current, visibility_q
from tickets import extensions
from tickets.models import (
    OPEN_STATUSES,
    Priority,
    SatisfactionRating,
    Status,
    Ticket,
    TicketTemplate,
)
from tickets.selectors import finished_since_q, visible_tickets
from workflow.lifecycle import ASSIGNABLE_ROLES
from workflow.models import Task, TaskStatus, TicketSla
from workflow.selectors import tasks_mine

from .cache import BOARD_TTL, FIGURES_TTL, LIVE, RATINGS, ROLLUP, ROLLUP_TTL, cached_selector
from .models import (
    DURATION_EDGES,
    HOUR_FIELDS,
    NODE_FIELDS,
    RESOLUTION_FIELDS,
    RESPONSE_FIELDS,
    DailyNodeStats,
    DailyTicketStats,
    QualityFlag,
    QualityRule,
    RepeatRequest,
)

BOARD_COLUMN_LIMIT = 12  # cards drawn per board column (newest first); its total is counted
BOARD_COUNT_CAP = 1000  # a column's count stops here ("1,000+"): bounded work per column
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


# --- SLA seam ------------------------------------------------------------------------------

FIGURE_CAP = 10000  # the 工作台 counts stop here ("10,000+"), as the ticket list's pages do


def capped_count(qs: QuerySet, cap: int | None = None) -> int:
    """COUNT over at most cap + 1 rows (a LIMIT inside the count; FIGURE_CAP by default): bounded
    work on an index however many rows match; more than `cap` reads as cap + 1, shown "10,000+"."""
    return qs.order_by()[: (cap or FIGURE_CAP) + 1].count()


def capped_counts(querysets: list[QuerySet], cap: int) -> list[int]:
    """Several capped counts in one query: SELECT (SELECT COUNT(*) FROM (… LIMIT cap + 1)), …
    — each an index scan that stops after cap + 1 rows (PostgreSQL and SQLite alike)."""
    if not querysets:
        return []
    parts: list[str] = []
    params: list[Any] = []
    for qs in querysets:
        sql, part_params = qs.order_by().values("pk").query.sql_with_params()
        # Django's own compiled SQL, its values kept apart as parameters; the limit is an int.
        parts.append(f"(SELECT COUNT(*) FROM ({sql} LIMIT {int(cap) + 1}) AS c{len(parts)})")  # noqa: S608
        params.extend(part_params)
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(parts), params)
        return list(cursor.fetchone())


def _tenant_wide(user: Any) -> bool:
    return bool(user.is_superuser or (membership_current(user=user) is not None and visibility_q(user=user) is None))


def sla_querysets(*, user: Any, tickets: QuerySet, now: datetime.datetime) -> dict[str, QuerySet]:
    """{"overdue": qs, "due_soon": qs} over the SLA clocks of the open tickets the user may see
    (workflow's TicketSla: running, not paused): overdue when a first response or resolution is
    past due, due soon when one falls within the next hour. Both run on TicketSla's partial
    indexes; for a tenant-wide role without joining the tickets at all (an open clock belongs to
    an open ticket)."""
    horizon = now + datetime.timedelta(hours=1)
    running = TicketSla.objects.filter(is_open=True, paused_at__isnull=True)
    if not _tenant_wide(user):
        running = running.filter(ticket__in=tickets.values("pk"))
    late = (Q(responded_at__isnull=True, response_due_at__lt=now)
            | Q(resolved_at__isnull=True, resolution_due_at__lt=now))
    soon = (Q(responded_at__isnull=True, response_due_at__gte=now, response_due_at__lte=horizon)
            | Q(resolved_at__isnull=True, resolution_due_at__gte=now, resolution_due_at__lte=horizon))
    return {"overdue": running.filter(late), "due_soon": running.filter(soon).exclude(late)}


def sla_figures(*, user: Any, tickets: QuerySet, now: datetime.datetime) -> dict[str, int]:
    """{"overdue": n, "due_soon": n} of `sla_querysets`, counted up to FIGURE_CAP in one query."""
    picks = sla_querysets(user=user, tickets=tickets, now=now)
    return dict(zip(picks, capped_counts(list(picks.values()), FIGURE_CAP), strict=True))


# --- 工作台 --------------------------------------------------------------------------------

@cached_selector("figures", depends=(LIVE, ROLLUP), ttl=FIGURES_TTL)
def manager_figures(*, user: Any, now: datetime.datetime | None = None) -> dict[str, Any]:
    """The numbers a manager starts the day with, over the tickets they may see: open, new today,
    resolved today, overdue and due soon (SLA) — live, five counts capped at FIGURE_CAP in one
    query, each on an index (the partial index of open tickets, (tenant, created), (tenant,
    resolved / closed), TicketSla's partial indexes) — and the average first response and
    resolution time of the last 7 days from the roll-ups (one query). Shared through the
    dashboards cache by every user of the same scope for FIGURES_TTL seconds at most."""
    now = now or timezone.now()
    start = day_start(now)
    qs = visible_tickets(user=user).order_by()
    picks = {
        "open": qs.filter(status__in=OPEN_STATUSES),
        "new_today": qs.filter(created_at__gte=start),
        "resolved_today": qs.filter(finished_since_q(start)),
        **sla_querysets(user=user, tickets=qs.filter(status__in=OPEN_STATUSES), now=now),
    }
    figures: dict[str, Any] = dict(zip(picks, capped_counts(list(picks.values()), FIGURE_CAP), strict=True))
    figures["cap"] = FIGURE_CAP
    figures.update(rollup_averages(user=user, since=(start - datetime.timedelta(days=6)).date()))
    return figures


def agent_queue(*, user: Any, limit: int = 10) -> dict[str, Any]:
    """An agent's 工作台: their open tasks (and their count), and today's intake by status."""
    return {**agent_tasks(user=user, limit=limit), **today_intake(user=user, limit=limit)}


def agent_tasks(*, user: Any, limit: int = 10) -> dict[str, Any]:
    """The user's newest-due `limit` open tasks and their count (no count query when they fit)."""
    # Through the ids: tasks_mine's DISTINCT over every column of five joined tables cost more to
    # plan than to run; the queue shows only these columns.
    tasks = Task.objects.filter(pk__in=tasks_mine(user=user).order_by().values("pk"))
    listed = list(tasks.select_related("ticket").order_by("due_at", "id").only(
        "id", "ticket_id", "node_name", "due_at", "ticket__id", "ticket__number", "ticket__title")[:limit])
    return {"tasks": listed, "task_count": len(listed) if len(listed) < limit else tasks.count()}


@cached_selector("intake-today", depends=(LIVE,), ttl=FIGURES_TTL)
def today_intake(*, user: Any, limit: int = 10) -> dict[str, Any]:
    """Today's visible intake: its count by status and the newest `limit` tickets (two queries,
    shared by the users of a scope through the dashboards cache)."""
    today = visible_tickets(user=user).filter(created_at__gte=day_start())
    by_status = dict(today.order_by().values_list("status").annotate(n=Count("id")))
    latest = list(today.select_related("store").order_by("-created_at", "-id")
                  .only("id", "title", "created_at", "tenant_id", "store__id", "store__name")[:limit])
    return {
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
    capped: bool = False  # more than `count` (the cap) match: shown as "1,000+"


def handler_choices() -> list[Any]:
    """Staff who may hold tickets, for the handler filter and the board's handler columns."""
    return [m.user for m in Membership.objects.filter(is_active=True, role__in=ASSIGNABLE_ROLES)
            .select_related("user").order_by("user__first_name", "user__username")]


@cached_selector("board", depends=(LIVE,), ttl=BOARD_TTL)
def board(*, user: Any, filters: TicketFilters, group: str = "status") -> dict[str, Any]:
    """Open visible tickets as cards in columns — by status, by the workflow node they wait at, or
    by handler. Each column shows its newest BOARD_COLUMN_LIMIT cards and its total, counted up to
    BOARD_COUNT_CAP (all columns in one query of capped counts; by node, one GROUP BY over the
    open tasks); every card is coloured by its SLA state (tickets.extensions.list_badges: one
    query for the page). Queries: the counts, one for the newest ids of every column (a UNION
    ALL of LIMITed index scans on PostgreSQL; a query per column on SQLite), one for the cards,
    one for their SLA."""
    qs = filters.apply(visible_tickets(user=user).filter(status__in=OPEN_STATUSES)).order_by()
    columns: dict[Any, Column] = {}
    picks: dict[Any, QuerySet] = {}
    if group == "node":
        open_tasks = Task.objects.filter(status=TaskStatus.OPEN).order_by()
        counts = (open_tasks.filter(ticket__in=qs.values("pk")).values_list("node_name")
                  .annotate(n=Count("ticket_id", distinct=True)))
        for name, n in sorted(counts, key=lambda row: (-row[1], row[0])):
            columns[name] = Column(key=name, label=name, count=n)
            picks[name] = qs.filter(pk__in=open_tasks.filter(node_name=name).values("ticket_id"))
        without = qs.exclude(pk__in=open_tasks.values("ticket_id"))
        n_without = capped_count(without, BOARD_COUNT_CAP)
        if n_without:
            columns[None] = Column(key=None, label="", count=n_without)
            picks[None] = without
    elif group == "handler":
        columns[None] = Column(key=None, label="")
        picks[None] = qs.filter(assignee__isnull=True)
        for person in handler_choices():
            columns[person.pk] = Column(key=person.pk, label=person.first_name or person.username)
            picks[person.pk] = qs.filter(assignee_id=person.pk)
    else:
        for status in OPEN_STATUSES:
            columns[status] = Column(key=status, label=str(Status(status).label))
            picks[status] = qs.filter(status=status)
    if group != "node":
        for key, n in zip(picks, capped_counts(list(picks.values()), BOARD_COUNT_CAP), strict=True):
            columns[key].count = n
    for column in columns.values():
        if column.count > BOARD_COUNT_CAP:
            column.count, column.capped = BOARD_COUNT_CAP, True
    picked = _newest_ids({key: pick for key, pick in picks.items() if columns[key].count}, BOARD_COLUMN_LIMIT)
    open_node = (Task.objects.filter(ticket=OuterRef("pk"), status=TaskStatus.OPEN)
                 .order_by("id").values("node_name")[:1])
    cards = {card.pk: card for card in (
        Ticket.objects.filter(pk__in={pk for ids in picked.values() for pk in ids})
        .select_related("store", "assignee", "customer", "template")
        .annotate(node_name=Subquery(open_node))
        .only("id", "number", "title", "priority", "status", "created_at", "tenant_id", "store__id", "store__name",
              "assignee__id", "assignee__username", "assignee__first_name", "customer__id", "customer__name",
              "template__id", "template__name"))} if picked else {}
    extensions.list_badges(tickets=list(cards.values()))
    # What each card shows, worked out once here (and cached with the board) rather than per card
    # in the template, where get_FOO_display and {% url %} cost more than the rest of the card.
    statuses, priorities = dict(Status.choices), dict(Priority.choices)
    detail = reverse("ticket-detail", args=[0]).removesuffix("0/")
    for card in cards.values():
        badges: list[dict] = getattr(card, "ext_badges", [])
        card.sla_state = next((b["state"] for b in badges if b.get("state")), "")  # type: ignore[attr-defined]
        card.url = f"{detail}{card.pk}/"  # type: ignore[attr-defined]
        card.status_label = str(statuses.get(card.status, card.status))  # type: ignore[attr-defined]
        card.priority_label = str(priorities.get(card.priority, card.priority))  # type: ignore[attr-defined]
    for key, ids in picked.items():
        columns[key].cards = [cards[pk] for pk in ids if pk in cards]
    return {"columns": list(columns.values()), "shown": len(cards), "limit": BOARD_COLUMN_LIMIT,
            "cap": BOARD_COUNT_CAP}


def _newest_ids(picks: dict[Any, QuerySet], limit: int | None = None) -> dict[Any, list[int]]:
    """The ids of the newest `limit` tickets of every column, newest first. On PostgreSQL one
    UNION ALL of the columns' LIMITed queries (each an index scan that stops after `limit`
    rows); where a compound query cannot hold a LIMIT per part (SQLite), one query per column."""
    limit = limit or BOARD_COLUMN_LIMIT
    keys = list(picks)
    if not keys:
        return {}
    parts = [picks[key].annotate(col=Value(i, output_field=IntegerField())).order_by("-created_at", "-id")
             .values_list("col", "pk", "created_at")[:limit] for i, key in enumerate(keys)]
    found: dict[Any, list[int]] = {key: [] for key in keys}
    if len(parts) > 1 and connection.features.supports_slicing_ordering_in_compound:
        rows = list(parts[0].union(*parts[1:], all=True))
        rows.sort(key=lambda row: (row[2], row[1]), reverse=True)
        for col, pk, _created in rows:
            found[keys[col]].append(pk)
        return found
    for key, part in zip(keys, parts, strict=True):
        found[key] = [pk for _col, pk, _created in part]
    return found


def board_ticket(*, user: Any, pk: int) -> Ticket | None:
    """An open ticket the user may see, for a drag on the board; None otherwise."""
    return visible_tickets(user=user).filter(pk=pk, status__in=OPEN_STATUSES).first()


# --- the manager dashboard -----------------------------------------------------------------

def _period(filters: TicketFilters, now: datetime.datetime) -> datetime.datetime:
    return day_start(now) - datetime.timedelta(days=filters.days - 1)


def _since_day(filters: TicketFilters, now: datetime.datetime) -> datetime.date:
    return _period(filters, now).date()


def rollup_scope(qs: QuerySet, *, user: Any, person_field: str = "assignee") -> QuerySet:
    """Roll-up (or rating) rows the user may count: every row for tenant-wide roles; otherwise
    rows of their stores and of store-less rows of their regions (scrm.selectors.visibility_q
    on the rows' own store and region columns), and rows of their own work (`person_field`).
    The live "tickets whose open task they hold" widening has no place in history: a
    regional manager sums only their regions."""
    if user.is_superuser:
        return qs
    if membership_current(user=user) is None:
        return qs.none()
    q = visibility_q(user=user)
    return qs if q is None else qs.filter(q | Q(**{person_field: user}))


def rollups(*, user: Any, filters: TicketFilters, now: datetime.datetime | None = None,
            model: Any = DailyTicketStats) -> QuerySet:
    """The visible, filtered roll-up rows of the period (region, store, template and handler
    filter; the period counts in local days)."""
    now = now or timezone.now()
    qs = rollup_scope(model.objects.filter(day__gte=_since_day(filters, now)), user=user).order_by()
    for name, value in (("region_id", filters.region_id), ("store_id", filters.store_id),
                        ("template_id", filters.template_id), ("assignee_id", filters.handler_id)):
        if value:
            qs = qs.filter(**{name: value})
    return qs


def bucket_percentile(counts: list[int], q: float, edges: tuple[int, ...] = DURATION_EDGES
                      ) -> datetime.timedelta | None:
    """The q-quantile (0 < q < 1) of durations known only by their bucket counts (edges in
    minutes, the last bucket open): linear inside the bucket it falls in; the open bucket answers
    its lower edge (so p90 "> 7 days" reads as 7 days). None without any count."""
    total = sum(counts)
    if not total:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(counts):
        if n and seen + n >= rank:
            lower = edges[i - 1] if i else 0
            if i >= len(edges):
                return datetime.timedelta(minutes=lower)
            share = (rank - seen) / n
            return datetime.timedelta(minutes=lower + (edges[i] - lower) * share)
        seen += n
    return datetime.timedelta(minutes=edges[-1])


def _seconds_avg(seconds: int | None, n: int | None) -> datetime.timedelta | None:
    return datetime.timedelta(seconds=seconds / n) if n and seconds is not None else None


@cached_selector("intake", depends=(ROLLUP,), ttl=ROLLUP_TTL)
def intake(*, user: Any, filters: TicketFilters, now: datetime.datetime | None = None) -> dict[str, Any]:
    """Tickets filed in the period per day and channel, and per weekday × hour of day (when the
    work arrives), from the roll-ups: one GROUP BY (day, source) over a few rows per day, whatever
    the number of tickets. `as_of`: when the newest of those rows was computed (the beat task
    refreshes today's every few minutes)."""
    now = now or timezone.now()
    since = _period(filters, now)
    hours = {name: Sum(name) for name in HOUR_FIELDS}
    rows = (rollups(user=user, filters=filters, now=now).filter(created__gt=0).values("day", "source")
            .annotate(n=Sum("created"), at=Max("computed_at"), **hours))
    days = [(since + datetime.timedelta(days=i)).date() for i in range(filters.days)]
    series: dict[str, dict] = {}
    grid = [[0] * 24 for _ in range(7)]
    as_of = None
    for row in rows:
        series.setdefault(row["source"], {})[row["day"]] = row["n"]
        as_of = max(as_of, row["at"]) if as_of else row["at"]
        weekday = row["day"].weekday()  # 0 = Monday
        for hour, name in enumerate(HOUR_FIELDS):
            grid[weekday][hour] += row[name] or 0
    return {"days": days, "series": {source: [per_day.get(d, 0) for d in days] for source, per_day in series.items()},
            "as_of": as_of, "grid": grid, "peak": max(max(r) for r in grid)}


def intake_by_day(*, user: Any, filters: TicketFilters, now: datetime.datetime | None = None) -> dict[str, Any]:
    return intake(user=user, filters=filters, now=now)


def intake_hour_heatmap(*, user: Any, filters: TicketFilters, now: datetime.datetime | None = None
                        ) -> dict[str, Any]:
    return intake(user=user, filters=filters, now=now)


RANKINGS = ("store", "person", "region")


@cached_selector("rankings", depends=(ROLLUP,), ttl=ROLLUP_TTL)
def rankings(*, user: Any, filters: TicketFilters, now: datetime.datetime | None = None,
             limit: int = 10) -> dict[str, list[dict[str, Any]]]:
    """Tickets finished in the period ranked by store, person and region, busiest first: how
    many, their average, p50 and p90 resolution time (from the roll-ups' buckets) and the share
    that breached the SLA. One GROUP BY (store, region, handler) over the roll-ups, summed up
    per ranking here."""
    sums = {name: Sum(name) for name in RESOLUTION_FIELDS}
    rows = (rollups(user=user, filters=filters, now=now).filter(resolved__gt=0)
            .values("store_id", "store__name", "region_id", "region__name", "assignee_id", "assignee__first_name",
                    "assignee__username")
            .annotate(n=Sum("resolved"), secs=Sum("resolution_seconds"), late=Sum("breached"), **sums))
    groups: dict[str, dict[Any, dict[str, Any]]] = {by: {} for by in RANKINGS}
    for row in rows:
        for by, key, name in (("store", row["store_id"], row["store__name"]),
                              ("region", row["region_id"], row["region__name"]),
                              ("person", row["assignee_id"], row["assignee__first_name"] or row["assignee__username"])):
            acc = groups[by].setdefault(key, {"name": name or "—", "n": 0, "secs": 0, "late": 0,
                                              "counts": [0] * len(RESOLUTION_FIELDS)})
            acc["n"] += row["n"]
            acc["secs"] += row["secs"] or 0
            acc["late"] += row["late"] or 0
            acc["counts"] = [c + (row[f] or 0) for c, f in zip(acc["counts"], RESOLUTION_FIELDS, strict=True)]
    result = {}
    for by, accs in groups.items():
        ranked = sorted(accs.values(), key=lambda acc: (-acc["n"], acc["name"]))[:limit]
        result[by] = [{"name": acc["name"], "n": acc["n"], "avg": _seconds_avg(acc["secs"], acc["n"]),
                       "p50": bucket_percentile(acc["counts"], 0.5), "p90": bucket_percentile(acc["counts"], 0.9),
                       "breach_rate": 100 * acc["late"] / acc["n"]} for acc in ranked]
    return result


def resolution_by(*, user: Any, filters: TicketFilters, by: str, now: datetime.datetime | None = None,
                  limit: int = 10) -> list[dict[str, Any]]:
    """One ranking of `rankings` (by "store", "region" or "person")."""
    if by not in RANKINGS:
        raise ValueError(by)
    return rankings(user=user, filters=filters, now=now, limit=limit)[by]


@cached_selector("nodes", depends=(ROLLUP,), ttl=ROLLUP_TTL)
def node_heatmap(*, user: Any, filters: TicketFilters, now: datetime.datetime | None = None) -> dict[str, Any]:
    """Where tickets stall: tasks finished in the period counted per workflow node and duration
    bucket (created → completed), with each node's average, slowest first. One GROUP BY node
    over the node roll-ups."""
    sums = {name: Sum(name) for name in NODE_FIELDS}
    rows = list(rollups(user=user, filters=filters, now=now, model=DailyNodeStats).values("node_name")
                .annotate(total=Sum("n"), secs=Sum("seconds"), **sums))
    for row in rows:
        row["avg"] = _seconds_avg(row["secs"], row["total"])
    rows.sort(key=lambda row: (-(row["avg"] or datetime.timedelta(0)).total_seconds(), row["node_name"]))
    peak = max([row[name] for row in rows for name in NODE_FIELDS] or [0])
    return {"buckets": [label for _m, label in DURATION_BUCKETS], "peak": peak, "rows": [
        {"node": row["node_name"], "n": row["total"], "avg": row["avg"],
         "cells": [row[name] for name in NODE_FIELDS]} for row in rows]}


def rollup_averages(*, user: Any, since: datetime.date) -> dict[str, Any]:
    """Average first response and resolution time since a day, from the roll-ups (one query)."""
    sums = rollup_scope(DailyTicketStats.objects.filter(day__gte=since), user=user).order_by().aggregate(
        resolved=Sum("resolved"), resolution=Sum("resolution_seconds"), responded=Sum("responded"),
        response=Sum("response_seconds"))
    return {"avg_resolution": _seconds_avg(sums["resolution"], sums["resolved"]),
            "avg_first_response": _seconds_avg(sums["response"], sums["responded"])}


@cached_selector("csat", depends=(RATINGS,), ttl=ROLLUP_TTL)
def csat_summary(*, user: Any, filters: TicketFilters, now: datetime.datetime | None = None) -> dict[str, Any]:
    """Ratings of the period the user may see (by the rating's own store, region and handler,
    which the rating keeps from its ticket): count, average, share of 4–5 stars, the
    distribution, by store and person, and the latest low (1–2 star) ones to follow up."""
    now = now or timezone.now()
    qs = rollup_scope(SatisfactionRating.objects.filter(created_at__gte=_period(filters, now)), user=user,
                      person_field="handler").order_by()
    for name, value in (("region_id", filters.region_id), ("store_id", filters.store_id),
                        ("ticket__template_id", filters.template_id), ("handler_id", filters.handler_id),
                        ("ticket__priority", filters.priority)):
        if value:
            qs = qs.filter(**{name: value})
    total = qs.aggregate(n=Count("id"), avg=Avg("score"), happy=Count("id", filter=Q(score__gte=4)))
    dist = dict(qs.values_list("score").annotate(n=Count("id")))
    by_store = list(qs.values("store__name").annotate(n=Count("id"), avg=Avg("score")).order_by("-avg", "-n")[:10])
    by_person = list(qs.values("handler__first_name", "handler__username").annotate(n=Count("id"), avg=Avg("score"))
                     .order_by("-avg", "-n")[:10])
    # With each one's revisit ticket (dashboards.csat), joined in the same query.
    low = list(qs.filter(score__lte=2).select_related("ticket", "store", "handler", "followup__followup")
               .order_by("-created_at")[:10])
    return {"n": total["n"], "avg": total["avg"], "happy": (100 * total["happy"] / total["n"]) if total["n"] else None,
            "dist": [(s, dist.get(s, 0)) for s in range(5, 0, -1)], "by_store": by_store, "by_person": by_person,
            "low": low}


def _flow_by_day(*, user: Any, filters: TicketFilters, now: datetime.datetime) -> dict[datetime.date, dict[str, int]]:
    """{day: {"created", "finished", "breached"}} of the period from the roll-ups: one GROUP BY day."""
    rows = (rollups(user=user, filters=filters, now=now).values("day")
            .annotate(created=Sum("created"), finished=Sum("resolved"), breached=Sum("breached")))
    return {row["day"]: {key: row[key] or 0 for key in ("created", "finished", "breached")} for row in rows}


def open_now(*, user: Any, filters: TicketFilters) -> int:
    """Open tickets now, counted the way the roll-ups are filtered (rollup_scope on the ticket's
    own region, store and handler, and the region / store / template / handler filters), so the
    backlog trend's anchor and its daily steps agree. One COUNT on the partial index of open
    tickets."""
    qs = rollup_scope(Ticket.objects.filter(status__in=OPEN_STATUSES), user=user).order_by()
    for name, value in (("region_id", filters.region_id), ("store_id", filters.store_id),
                        ("template_id", filters.template_id), ("assignee_id", filters.handler_id)):
        if value:
            qs = qs.filter(**{name: value})
    return qs.count()


@cached_selector("backlog", depends=(ROLLUP,), ttl=ROLLUP_TTL)
def backlog_trend(*, user: Any, filters: TicketFilters, now: datetime.datetime | None = None) -> dict[str, Any]:
    """Open tickets at the end of each day of the period, with the day's filed and finished
    counts and how many finished tickets breached their SLA. Anchored at today's live open
    count and walked back through the daily roll-ups: the backlog at the end of yesterday is
    today's minus what today filed plus what today finished, and so on. Two queries whatever the
    period (the count, one GROUP BY day). What the roll-ups do not hold moves the earlier days
    (a cancelled ticket leaves the backlog without finishing; a reopened one comes back without
    being filed): such days read a little high or low, never below zero. Cached with the
    roll-ups (ROLLUP stamp, ROLLUP_TTL), so its anchor is as fresh as the rest of the dashboard."""
    now = now or timezone.now()
    since = _period(filters, now)
    days = [(since + datetime.timedelta(days=i)).date() for i in range(filters.days)]
    flow = _flow_by_day(user=user, filters=filters, now=now)
    current = open_now(user=user, filters=filters)
    rows: list[dict[str, Any]] = []
    backlog = current
    for day in reversed(days):
        step = flow.get(day, {"created": 0, "finished": 0, "breached": 0})
        rows.append({"day": day, **step, "open": max(backlog, 0)})
        backlog = backlog - step["created"] + step["finished"]
    rows.reverse()
    for row in rows:
        row["breach_rate"] = 100 * row["breached"] / row["finished"] if row["finished"] else None
    return {"days": rows, "open_now": current}


@cached_selector("service-times", depends=(ROLLUP,), ttl=ROLLUP_TTL)
def service_times(*, user: Any, filters: TicketFilters, now: datetime.datetime | None = None,
                  limit: int = 10) -> dict[str, list[dict[str, Any]]]:
    """First response and resolution time p50/p90 of the period by region, store and person
    (read from the roll-ups' duration buckets: dashboards.selectors.bucket_percentile), busiest
    first (most finished, then most first responses), at most `limit` each. One GROUP BY
    (region, store, handler) over the roll-ups, summed up per dimension here."""
    sums = {name: Sum(name) for name in RESOLUTION_FIELDS + RESPONSE_FIELDS}
    rows = (rollups(user=user, filters=filters, now=now).filter(Q(resolved__gt=0) | Q(responded__gt=0))
            .values("store_id", "store__name", "region_id", "region__name", "assignee_id", "assignee__first_name",
                    "assignee__username")
            .annotate(resolved_n=Sum("resolved"), responded_n=Sum("responded"), **sums))
    groups: dict[str, dict[Any, dict[str, Any]]] = {by: {} for by in RANKINGS}
    for row in rows:
        for by, key, name in (("store", row["store_id"], row["store__name"]),
                              ("region", row["region_id"], row["region__name"]),
                              ("person", row["assignee_id"], row["assignee__first_name"] or row["assignee__username"])):
            acc = groups[by].setdefault(key, {"name": name or "—", "resolved": 0, "responded": 0,
                                              "r": [0] * len(RESOLUTION_FIELDS), "f": [0] * len(RESPONSE_FIELDS)})
            acc["resolved"] += row["resolved_n"] or 0
            acc["responded"] += row["responded_n"] or 0
            acc["r"] = [c + (row[f] or 0) for c, f in zip(acc["r"], RESOLUTION_FIELDS, strict=True)]
            acc["f"] = [c + (row[f] or 0) for c, f in zip(acc["f"], RESPONSE_FIELDS, strict=True)]
    result = {}
    for by, accs in groups.items():
        ranked = sorted(accs.values(), key=lambda acc: (-acc["resolved"], -acc["responded"], acc["name"]))[:limit]
        result[by] = [{"name": acc["name"], "resolved": acc["resolved"], "responded": acc["responded"],
                       "response_p50": bucket_percentile(acc["f"], 0.5),
                       "response_p90": bucket_percentile(acc["f"], 0.9),
                       "resolution_p50": bucket_percentile(acc["r"], 0.5),
                       "resolution_p90": bucket_percentile(acc["r"], 0.9)} for acc in ranked]
    return result


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


@cached_selector("repeats", depends=(ROLLUP,), ttl=ROLLUP_TTL)
def repeat_requests(*, user: Any, filters: TicketFilters, now: datetime.datetime | None = None,
                    limit: int = 10) -> list[dict[str, Any]]:
    """Customers who came back with the same category (重复投诉) in the period, from the roll-ups'
    RepeatRequest rows: one GROUP BY customer and category, most first; `n` counts the tickets
    (the repeats and the one before them)."""
    rows = (rollups(user=user, filters=filters, now=now, model=RepeatRequest)
            .values("customer_id", "customer__name", "category__name").annotate(repeats=Count("id"))
            .order_by("-repeats", "customer__name")[:limit])
    return [{**row, "n": row["repeats"] + 1} for row in rows]
