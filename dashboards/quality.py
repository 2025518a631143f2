"""Writes of the quality score (质检分) and the weekly quality report: `quality_score_refresh`
gathers one ticket's facts (its public staff replies run through the tenant's keyword rules —
the findings are recorded as QualityFlag rows, as the scan does —, its handling time against its
SLA, its rating), scores them with the pure `quality_score.score_compute` and stores the result
(a new reply to an open ticket: only its text is scanned, added to the flags recorded before);
`quality_report_notify` sends each team's week to its lead and managers through the outbox."""

from __future__ import annotations

import datetime
from typing import Any

import re2
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Avg, Count, OuterRef, Subquery, Sum
from django.urls import reverse
from django.utils import timezone

from notifications.services import event_emit
from scrm.config_cache import tenant_config
from scrm.models import Membership, Role, Team
from tickets.fields.patterns import pattern_compile
from tickets.models import EventKind, SatisfactionRating, Status, Ticket, TimelineEvent
from workflow.escalation import region_managers
from workflow.models import Task, TicketSla

from .models import QualityFlag, QualityRule, QualityRuleKind, TicketQualityScore
from .quality_score import DEFAULT_TARGET_HOURS, ScoreFacts, score_compute

REPORT_EVENT = "quality_report"


def _minutes(delta: datetime.timedelta) -> int:
    return max(int(delta.total_seconds() // 60), 0)


def _finished_at(ticket: Ticket) -> datetime.datetime | None:
    if ticket.status == Status.RESOLVED:
        return ticket.resolved_at
    if ticket.status == Status.CLOSED:
        return ticket.resolved_at or ticket.closed_at
    return None


RULES_KEY = "dashboards.quality_rules"


def _active_rules(tenant_id: int) -> tuple[tuple[int, str, tuple[str, ...], Any], ...]:
    """The tenant's active rules as (id, kind, phrases, compiled matcher), from the tenant's
    cached configuration (QualityRule is config_watch-ed, so a rule saved or deleted replaces the
    stamp): a reply pays no query for them, nor a compile per rule."""
    def load() -> tuple[tuple[int, str, tuple[str, ...], Any], ...]:
        # The tenant named explicitly: a sweep may change a status outside any one tenant's scope.
        rules = QualityRule.objects.filter(tenant_id=tenant_id, is_active=True).order_by("kind", "name", "pk")
        return tuple((rule.pk, rule.kind, tuple(rule.phrases),
                      pattern_compile("|".join(re2.escape(p) for p in rule.phrases))) for rule in rules)
    return tenant_config(tenant_id).get(RULES_KEY, load)


def _reply_hits(*, ticket: Ticket, rules: Any, replies: list[tuple[int, str]],
                counts: dict[str, int], flags: list[QualityFlag]) -> None:
    """The flag / forbidden findings of these replies (one per rule and reply), added to `counts`
    and `flags`."""
    for rule_id, kind, _phrases, matcher in rules:
        if kind == QualityRuleKind.REQUIRED:
            continue
        for pk, message in replies:
            hit = matcher.search(message or "")
            if hit is not None:
                counts[kind] += 1
                start = max(hit.start() - 30, 0)
                flags.append(QualityFlag(tenant_id=ticket.tenant_id, rule_id=rule_id, ticket_id=ticket.pk, event_id=pk,
                                         excerpt=(message or "")[start:start + 120]))


def _findings(*, ticket: Ticket, finished: bool) -> tuple[dict[str, int], list[QualityFlag]]:
    """The active rules over all the ticket's public staff replies: counts per kind of rule, and
    the flags to record (one per rule and reply, or per rule and ticket for a missing required
    phrase — the same rows, and the same uniqueness, as services.quality_scan)."""
    counts = dict.fromkeys(QualityRuleKind.values, 0)
    rules = _active_rules(ticket.tenant_id)
    if not rules:
        return counts, []
    replies = list(TimelineEvent.objects.filter(ticket_id=ticket.pk, kind=EventKind.COMMENT, is_public=True,
                                                actor__isnull=False).order_by("id").values_list("id", "message"))
    flags: list[QualityFlag] = []
    for rule_id, kind, phrases, matcher in rules:
        if kind == QualityRuleKind.REQUIRED and finished \
                and not any(matcher.search(message or "") for _pk, message in replies):
            counts[kind] += 1
            flags.append(QualityFlag(tenant_id=ticket.tenant_id, rule_id=rule_id, ticket_id=ticket.pk,
                                     excerpt="、".join(phrases)[:190]))
    _reply_hits(ticket=ticket, rules=rules, replies=replies, counts=counts, flags=flags)
    return counts, flags


def _reply_findings(*, ticket: Ticket, event: TimelineEvent) -> tuple[dict[str, int], list[QualityFlag]]:
    """The findings after one more public staff reply to an open ticket, without re-reading the
    earlier replies: the flags already recorded for the ticket's replies under the active flag /
    forbidden rules (one counting read), plus what the new reply's text adds. An open ticket
    misses no required phrase yet, so required rules need nothing here."""
    counts = dict.fromkeys(QualityRuleKind.values, 0)
    rules = [r for r in _active_rules(ticket.tenant_id) if r[1] != QualityRuleKind.REQUIRED]
    if not rules:
        return counts, []
    kinds = {rule_id: kind for rule_id, kind, _phrases, _matcher in rules}
    for rule_id, n in (QualityFlag.objects.filter(ticket_id=ticket.pk, event__isnull=False, rule_id__in=list(kinds))
                       .order_by().values("rule_id").annotate(n=Count("id"))
                       .values_list("rule_id", "n")):
        counts[kinds[rule_id]] += n
    flags: list[QualityFlag] = []
    _reply_hits(ticket=ticket, rules=rules, replies=[(event.pk, event.message)], counts=counts, flags=flags)
    return counts, flags


def _team_subquery(tenant_id: int, user: Any) -> Subquery:
    # A person's first team by name (then id): the team a ticket they handle counts for.
    return Subquery(Team.objects.filter(tenant_id=tenant_id, members__user_id=user)
                    .order_by("name", "pk").values("pk")[:1])


def _task_holders_team(ticket: Ticket) -> int | None:
    """When the handler belongs to no team (a call-centre agent closing the 回访 node): the team
    of the latest workflow task holder who belongs to one (one read)."""
    rows = (Task.objects.filter(ticket_id=ticket.pk, assignee__isnull=False).order_by("-id")
            .annotate(team_id=_team_subquery(ticket.tenant_id, OuterRef("assignee_id")))
            .values_list("assignee_id", "team_id")[:20])
    return next((team_id for user_id, team_id in rows if team_id is not None and user_id != ticket.assignee_id), None)


def _ticket_facts(ticket: Ticket) -> dict[str, Any]:
    """The SLA clock, the rating and the handler's team of the ticket, in one read (correlated
    subqueries on the ticket's row)."""
    sla = TicketSla.objects.filter(ticket_id=OuterRef("pk"))
    annotations: dict[str, Any] = {
        "sla_started": Subquery(sla.values("started_at")[:1]),
        "sla_due": Subquery(sla.values("resolution_due_at")[:1]),
        "sla_breached": Subquery(sla.values("resolution_breached")[:1]),
        "rating_score": Subquery(SatisfactionRating.objects.filter(ticket_id=OuterRef("pk")).values("score")[:1]),
    }
    if ticket.assignee_id is not None:
        annotations["handler_team"] = _team_subquery(ticket.tenant_id, OuterRef("assignee_id"))
    row = Ticket.objects.filter(pk=ticket.pk).values(**annotations).first()
    return dict(row) if row is not None else {}


def quality_facts(*, ticket: Ticket, now: datetime.datetime | None = None,
                  reply: TimelineEvent | None = None) -> tuple[ScoreFacts, list[QualityFlag], int | None]:
    """What the score is computed from, read for one ticket (a few indexed reads), and the
    ticket's team. With `reply` (a new public staff reply) on an open ticket, only that reply's
    text is scanned and added to the findings already recorded."""
    finished_at = _finished_at(ticket)
    finished = finished_at is not None
    if reply is not None and not finished:
        counts, flags = _reply_findings(ticket=ticket, event=reply)
    else:
        counts, flags = _findings(ticket=ticket, finished=finished)
    row = _ticket_facts(ticket)
    handling = target = None
    late = False
    if finished_at is not None:
        handling = _minutes(finished_at - ticket.created_at)
        if row.get("sla_due") is not None:
            target = _minutes(row["sla_due"] - row["sla_started"])
            late = bool(row["sla_breached"]) or finished_at > row["sla_due"]
        else:
            target = DEFAULT_TARGET_HOURS * 60
            late = handling > target
    team = row.get("handler_team")
    if team is None:
        team = _task_holders_team(ticket)
    facts = ScoreFacts(flagged=counts[QualityRuleKind.FLAG], forbidden=counts[QualityRuleKind.FORBIDDEN],
                       required_missing=counts[QualityRuleKind.REQUIRED], finished=finished,
                       handling_minutes=handling, target_minutes=target, late=late, rating=row.get("rating_score"))
    return facts, flags, team


SCORE_FIELDS = ["tenant", "score", "parts", "findings", "team", "region", "store", "assignee", "finished_at",
                "computed_at"]


# No savepoint: a failure here fails the caller's transaction anyway (the reply, the status
# change, the rating), so there is nothing to roll back to.
@transaction.atomic(savepoint=False)
def quality_score_refresh(*, ticket: Ticket, now: datetime.datetime | None = None,
                          reply: TimelineEvent | None = None) -> TicketQualityScore:
    """Compute and store the ticket's quality score (one row per ticket, replaced), recording the
    keyword findings as flags. Called in the transaction of what changed it: a public staff
    reply (tickets.extensions.comment_added, passing the reply), the ticket resolved or closed
    (the workflow's status_changed hook), a rating (the `ticket.rated` business event)."""
    now = now or timezone.now()
    facts, flags, team = quality_facts(ticket=ticket, now=now, reply=reply)
    if flags:  # an existing flag (rule + reply, or rule + ticket) is skipped by the unique constraints
        QualityFlag.objects.bulk_create(flags, ignore_conflicts=True)
    score, parts = score_compute(facts)
    row = TicketQualityScore(
        ticket_id=ticket.pk, tenant_id=ticket.tenant_id, score=score, parts=[p.as_dict() for p in parts],
        findings=min(facts.flagged + facts.forbidden + facts.required_missing, 32767),
        team_id=team, region_id=ticket.region_id, store_id=ticket.store_id,
        assignee_id=ticket.assignee_id, finished_at=_finished_at(ticket), computed_at=now)
    # One statement (INSERT … ON CONFLICT (ticket) DO UPDATE), not a read then a write.
    TicketQualityScore.objects.bulk_create([row], update_conflicts=True, unique_fields=["ticket"],
                                           update_fields=SCORE_FIELDS)
    return row


# --- the weekly report ---------------------------------------------------------------------------

def week_start_of(day: datetime.date) -> datetime.date:
    return day - datetime.timedelta(days=day.weekday())


def week_bounds(monday: datetime.date) -> tuple[datetime.datetime, datetime.datetime]:
    """[Monday 00:00, next Monday 00:00) in the project's time zone."""
    start = timezone.make_aware(datetime.datetime.combine(monday, datetime.time()))
    return start, timezone.make_aware(datetime.datetime.combine(monday + datetime.timedelta(days=7), datetime.time()))


def week_label(monday: datetime.date) -> str:
    """ISO week as the week picker writes it: 2026-W49."""
    year, week, _day = monday.isocalendar()
    return f"{year}-W{week:02d}"


def _report_recipients(team: Team, managers: list[Any]) -> list[Any]:
    """The team's lead, its region's regional managers and the tenant's managers."""
    people = {u.pk: u for u in managers}
    if team.lead_id is not None and team.lead is not None:
        people[team.lead_id] = team.lead
    if team.region_id is not None:
        people.update((u.pk, u) for u in region_managers(team.region_id))
    return [people[pk] for pk in sorted(people)]


def quality_report_notify(*, tenant: Any, monday: datetime.date) -> int:
    """One message per team that finished tickets in the week starting `monday` (its count,
    average score, findings and lowest-scoring ticket), to the people of `_report_recipients`.
    Sent once per team and week however often it runs: the outbox key names both. Returns the
    number of teams reported."""
    start, end = week_bounds(monday)
    week = week_label(monday)
    rows = TicketQualityScore.objects.filter(finished_at__gte=start, finished_at__lt=end, team__isnull=False)
    summary = list(rows.values("team_id").annotate(n=Count("id"), avg=Avg("score"), findings=Sum("findings"))
                   .order_by("team_id"))
    if not summary:
        return 0
    teams = {t.pk: t for t in Team.objects.filter(pk__in=[r["team_id"] for r in summary]).select_related("lead")}
    lowest: dict[int, tuple[str, int]] = {}
    for team_id, number, score in rows.order_by("team_id", "score", "finished_at").values_list(
            "team_id", "ticket__number", "score"):
        lowest.setdefault(team_id, (number, score))
    manager_ids = Membership.objects.filter(role=Role.MANAGER, is_active=True).values_list("user_id", flat=True)
    managers = list(get_user_model().objects.filter(pk__in=list(manager_ids)))
    url = settings.SITE_URL.rstrip("/") + reverse("quality-report") if getattr(settings, "SITE_URL", "") else ""
    sent = 0
    for row in summary:
        team = teams[row["team_id"]]
        number, score = lowest[team.pk]
        with transaction.atomic():
            event_emit(tenant=tenant, event=REPORT_EVENT, users=_report_recipients(team, managers),
                       occurrence=f"{week}:t{team.pk}", context={
                           "team_name": team.name, "week": week, "tickets": str(row["n"]),
                           "average": f"{row['avg']:.1f}", "findings": str(row["findings"] or 0),
                           "lowest": f"{number}（{score}）",
                           "report_url": f"{url}?week={week}&team={team.pk}" if url else ""})
        sent += 1
    return sent
