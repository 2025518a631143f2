"""Writes of the dashboards app: quality rules (质检) and the scan that flags tickets, and the
daily roll-ups (DailyTicketStats, DailyNodeStats) the dashboard reads instead of the tickets.

Phrases are matched literally through one RE2 alternation per rule (tickets.fields.patterns), so
the scan's time is linear in the text whatever a tenant types."""

from __future__ import annotations

import datetime
from typing import Any

import re2
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import DateTimeField, Exists, ExpressionWrapper, Min, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from tickets.fields.patterns import pattern_compile
from tickets.models import EventKind, Status, Ticket, TimelineEvent
from workflow.models import Task, TaskStatus, TicketSla

from .cache import ROLLUP, stamp_bump
from .models import (
    DURATION_EDGES,
    HOUR_FIELDS,
    NODE_EDGES,
    NODE_FIELDS,
    REPEAT_WINDOW_DAYS,
    RESOLUTION_FIELDS,
    RESPONSE_FIELDS,
    DailyNodeStats,
    DailyTicketStats,
    QualityFlag,
    QualityRule,
    QualityRuleKind,
    RepeatRequest,
)

MAX_PHRASES = 30
MAX_PHRASE = 50
SCAN_MAX_EVENTS = 20000  # comments read per scan; a larger backlog is read by the next run


def phrases_clean(raw: Any) -> list[str]:
    """A list of phrases from a list or a comma / newline separated text; refused when empty,
    too many or too long."""
    if isinstance(raw, str):
        raw = raw.replace("，", ",").replace("\n", ",").split(",")
    if not isinstance(raw, list):
        raise ValidationError({"phrases": _("Enter the phrases separated by commas.")})
    phrases = []
    for item in raw:
        text = str(item).strip()
        if text and text not in phrases:
            phrases.append(text)
    if not phrases:
        raise ValidationError({"phrases": _("Enter at least one phrase.")})
    if len(phrases) > MAX_PHRASES:
        raise ValidationError({"phrases": _("At most %(n)d phrases per rule.") % {"n": MAX_PHRASES}})
    if any(len(p) > MAX_PHRASE for p in phrases):
        raise ValidationError({"phrases": _("Each phrase has at most %(n)d characters.") % {"n": MAX_PHRASE}})
    return phrases


@transaction.atomic
def quality_rule_save(*, tenant: Any, name: str, kind: str, phrases: Any, rule: QualityRule | None = None,
                      is_active: bool = True) -> QualityRule:
    name = (name or "").strip()
    if not name or len(name) > 60:
        raise ValidationError({"name": _("Give the rule a name of at most 60 characters.")})
    if kind not in QualityRuleKind.values:
        raise ValidationError({"kind": _("Choose a kind of rule.")})
    cleaned = phrases_clean(phrases)
    clash = QualityRule.objects.filter(name=name)
    if rule is not None:
        clash = clash.exclude(pk=rule.pk)
    if clash.exists():
        raise ValidationError({"name": _("A rule with this name exists already.")})
    rule = rule or QualityRule(tenant=tenant)
    rule.name, rule.kind, rule.phrases, rule.is_active = name, kind, cleaned, is_active
    rule.save()
    return rule


def _matcher(rule: QualityRule):
    return pattern_compile("|".join(re2.escape(p) for p in rule.phrases))


def quality_scan(*, since: datetime.datetime, now: datetime.datetime | None = None) -> int:
    """Flag what the active rules find in public staff comments written since `since`, and
    finished tickets of that period missing a required phrase. Idempotent (one flag per rule and
    comment or ticket); returns the number of new flags."""
    now = now or timezone.now()
    rules = list(QualityRule.objects.filter(is_active=True))
    if not rules:
        return 0
    comments = list(TimelineEvent.objects.filter(kind=EventKind.COMMENT, is_public=True, actor__isnull=False,
                                                 created_at__gte=since, created_at__lte=now)
                    .order_by("created_at", "id").values_list("id", "ticket_id", "message")[:SCAN_MAX_EVENTS])
    found: list[QualityFlag] = []
    for rule in rules:
        matcher = _matcher(rule)
        if rule.kind == QualityRuleKind.REQUIRED:
            said = {ticket_id for _pk, ticket_id, message in comments if matcher.search(message or "")}
            finished = (Ticket.objects.filter(Q(resolved_at__gte=since) | Q(status=Status.CLOSED, closed_at__gte=since))
                        .exclude(pk__in=said).values_list("pk", flat=True)[:SCAN_MAX_EVENTS])
            found += [QualityFlag(tenant_id=rule.tenant_id, rule=rule, ticket_id=pk,
                                  excerpt="、".join(rule.phrases)[:190])
                      for pk in finished]
            continue
        for pk, ticket_id, message in comments:
            hit = matcher.search(message or "")
            if hit is not None:
                start = max(hit.start() - 30, 0)
                found.append(QualityFlag(tenant_id=rule.tenant_id, rule=rule, ticket_id=ticket_id, event_id=pk,
                                         excerpt=(message or "")[start:start + 120]))
    before = QualityFlag.objects.count()
    # An existing flag (rule + comment, or rule + ticket) is skipped by the unique constraints.
    QualityFlag.objects.bulk_create(found, ignore_conflicts=True)
    return QualityFlag.objects.count() - before


@transaction.atomic
def quality_flag_review(*, flag: QualityFlag, actor: Any) -> QualityFlag:
    if flag.reviewed_at is None:
        flag.reviewed_by, flag.reviewed_at = actor, timezone.now()
        flag.save(update_fields=["reviewed_by", "reviewed_at"])
    return flag


# --- daily roll-ups ----------------------------------------------------------------------------

ROLLUP_MAX_DAYS = 3660  # a backfill reaches at most ten years back


def first_response_q() -> Q:
    """What counts as the first response: the first timeline event by a person (not the system)
    that comments, changes the status, assigns or acts on a workflow task."""
    return Q(actor__isnull=False) & (Q(kind__in=[EventKind.COMMENT, EventKind.STATUS, EventKind.ASSIGNED])
                                     | Q(code="task.acted"))


def bucket_of(seconds: float, edges: tuple[int, ...]) -> int:
    """The index of the bucket (edges in minutes, the last bucket open) a duration falls in."""
    minutes = seconds / 60
    for i, edge in enumerate(edges):
        if minutes < edge:
            return i
    return len(edges)


def _local_day_bounds(day: datetime.date) -> tuple[datetime.datetime, datetime.datetime]:
    start = timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))
    return start, timezone.make_aware(datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time.min))


TICKET_DIMS = ("region_id", "store_id", "template_id", "source", "assignee_id")


def _blank_ticket_row(tenant_id: int, day: datetime.date, key: tuple, now: datetime.datetime) -> DailyTicketStats:
    row = DailyTicketStats(tenant_id=tenant_id, day=day, computed_at=now, **dict(zip(TICKET_DIMS, key, strict=True)))
    return row


@transaction.atomic
def rollup_day(*, tenant: Any, day: datetime.date, now: datetime.datetime | None = None) -> int:
    """Recompute the tenant's roll-up rows of one local day from the tickets, their timelines and
    their tasks: the rows of that day are deleted and written again (so running it twice, or
    overlapping runs of the beat task, leave the same rows). Four reads of that day's rows
    (filed, finished, first responses, finished tasks); returns the number of rows written."""
    now = now or timezone.now()
    start, end = _local_day_bounds(day)
    rows: dict[tuple, DailyTicketStats] = {}

    def row_for(key: tuple) -> DailyTicketStats:
        if key not in rows:
            rows[key] = _blank_ticket_row(tenant.pk, day, key, now)
        return rows[key]

    tickets = Ticket.objects.filter(tenant=tenant).order_by()
    for *key, created_at in tickets.filter(created_at__gte=start, created_at__lt=end).values_list(
            *TICKET_DIMS, "created_at").iterator(chunk_size=5000):
        row = row_for(tuple(key))
        row.created += 1
        hour = HOUR_FIELDS[timezone.localtime(created_at).hour]
        setattr(row, hour, getattr(row, hour) + 1)

    finished = tickets.filter(Q(resolved_at__gte=start, resolved_at__lt=end)
                              | Q(resolved_at__isnull=True, status=Status.CLOSED, closed_at__gte=start,
                                  closed_at__lt=end))
    breached = set(TicketSla.objects.filter(tenant=tenant, ticket__in=finished.values("pk"))
                   .filter(Q(resolution_breached=True) | Q(response_breached=True))
                   .values_list("ticket_id", flat=True))
    for pk, *key, created_at, resolved_at, closed_at in finished.values_list(
            "pk", *TICKET_DIMS, "created_at", "resolved_at", "closed_at").iterator(chunk_size=5000):
        ended = resolved_at or closed_at or created_at  # the filter guarantees one of them
        seconds = max((ended - created_at).total_seconds(), 0)
        row = row_for(tuple(key))
        row.resolved += 1
        row.breached += pk in breached
        row.resolution_seconds += int(seconds)
        bucket = RESOLUTION_FIELDS[bucket_of(seconds, DURATION_EDGES)]
        setattr(row, bucket, getattr(row, bucket) + 1)

    # First responses given that day: the first qualifying event of a ticket falls in the day
    # when there is one in the day and none before it.
    events = TimelineEvent.objects.filter(first_response_q(), tenant=tenant).order_by()
    earlier = events.filter(ticket=OuterRef("ticket_id"), created_at__lt=start)
    firsts = dict(events.filter(created_at__gte=start, created_at__lt=end).values("ticket_id")
                  .annotate(first=Min("created_at")).filter(~Exists(earlier)).values_list("ticket_id", "first"))
    if firsts:
        for pk, *key, created_at in tickets.filter(pk__in=list(firsts)).values_list(
                "pk", *TICKET_DIMS, "created_at").iterator(chunk_size=5000):
            seconds = max((firsts[pk] - created_at).total_seconds(), 0)
            row = row_for(tuple(key))
            row.responded += 1
            row.response_seconds += int(seconds)
            bucket = RESPONSE_FIELDS[bucket_of(seconds, DURATION_EDGES)]
            setattr(row, bucket, getattr(row, bucket) + 1)

    nodes: dict[tuple, DailyNodeStats] = {}
    for *key, node_name, created_at, completed_at in (
            Task.objects.filter(tenant=tenant, status=TaskStatus.DONE, completed_at__gte=start, completed_at__lt=end)
            .order_by().values_list("ticket__region_id", "ticket__store_id", "ticket__template_id",
                                    "ticket__assignee_id", "node_name", "created_at", "completed_at")
            .iterator(chunk_size=5000)):
        full = (*key, node_name)
        node = nodes.get(full)
        if node is None:
            node = nodes[full] = DailyNodeStats(
                tenant_id=tenant.pk, day=day, region_id=key[0], store_id=key[1], template_id=key[2],
                assignee_id=key[3], node_name=node_name)
        seconds = max(((completed_at or created_at) - created_at).total_seconds(), 0)  # done: completed_at set
        node.n += 1
        node.seconds += int(seconds)
        bucket = NODE_FIELDS[bucket_of(seconds, NODE_EDGES)]
        setattr(node, bucket, getattr(node, bucket) + 1)

    DailyTicketStats.objects.filter(tenant=tenant, day=day).delete()
    DailyNodeStats.objects.filter(tenant=tenant, day=day).delete()
    stamp_bump(tenant.pk, ROLLUP)  # the dashboards cache's entries built on the old rows go
    DailyTicketStats.objects.bulk_create(rows.values(), batch_size=1000)
    DailyNodeStats.objects.bulk_create(nodes.values(), batch_size=1000)
    return len(rows) + len(nodes) + _repeats_of_day(tenant=tenant, day=day, start=start, end=end)


def _repeats_of_day(*, tenant: Any, day: datetime.date, start: datetime.datetime, end: datetime.datetime) -> int:
    """The day's RepeatRequest rows again: tickets filed that day whose customer filed the same
    category in the REPEAT_WINDOW_DAYS before (one query; each probe is on (tenant, customer,
    created))."""
    earlier = Ticket.objects.filter(
        tenant=tenant, customer=OuterRef("customer_id"), category=OuterRef("category_id"),
        created_at__lt=OuterRef("created_at"),
        created_at__gte=ExpressionWrapper(OuterRef("created_at") - datetime.timedelta(days=REPEAT_WINDOW_DAYS),
                                          output_field=DateTimeField()))
    repeats = [RepeatRequest(tenant_id=tenant.pk, day=day, **dict(zip(
        ("ticket_id", "customer_id", "category_id", "region_id", "store_id", "template_id", "assignee_id"), row,
        strict=True)))
        for row in Ticket.objects.filter(tenant=tenant, created_at__gte=start, created_at__lt=end,
                                         customer__isnull=False).filter(Exists(earlier)).order_by()
        .values_list("pk", "customer_id", "category_id", "region_id", "store_id", "template_id", "assignee_id")]
    RepeatRequest.objects.filter(tenant=tenant, day=day).delete()
    RepeatRequest.objects.bulk_create(repeats, batch_size=1000)
    return len(repeats)


def rollup_refresh(*, tenant: Any, now: datetime.datetime | None = None) -> int:
    """What the beat task runs every few minutes: today's and yesterday's rows again (yesterday
    too, so what happened just before midnight is counted once the day is over). The first run
    for a tenant without any row backfills its history instead."""
    now = now or timezone.now()
    today = timezone.localtime(now).date()
    if not DailyTicketStats.objects.filter(tenant=tenant).exists():
        first = Ticket.objects.filter(tenant=tenant).order_by("created_at").values_list("created_at", flat=True)[:1]
        if first:
            oldest = today - datetime.timedelta(days=ROLLUP_MAX_DAYS - 1)
            return rollup_backfill(tenant=tenant, since=max(timezone.localtime(first[0]).date(), oldest), now=now)
    return sum(rollup_day(tenant=tenant, day=today - datetime.timedelta(days=back), now=now) for back in (1, 0))


def rollup_backfill(*, tenant: Any, since: datetime.date, until: datetime.date | None = None,
                    now: datetime.datetime | None = None) -> int:
    """Recompute every day from `until` (default today) back to `since`, one transaction per day
    — newest first, so an interrupted backfill leaves the recent periods complete (run the
    command again for the rest). Refused for a start after the end or more than
    ROLLUP_MAX_DAYS days back."""
    now = now or timezone.now()
    until = until or timezone.localtime(now).date()
    if since > until:
        raise ValidationError(_("The first day is after the last."))
    if (until - since).days >= ROLLUP_MAX_DAYS:
        raise ValidationError(_("Roll up at most %(n)d days at a time.") % {"n": ROLLUP_MAX_DAYS})
    total = 0
    day = until
    while day >= since:
        total += rollup_day(tenant=tenant, day=day, now=now)
        day -= datetime.timedelta(days=1)
    return total
