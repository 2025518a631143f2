"""Writes of the quality score (质检分) and the weekly quality report: `quality_score_refresh`
gathers one ticket's facts (its public staff replies run through the tenant's keyword rules —
the findings are recorded as QualityFlag rows, as the scan does —, its handling time against its
SLA, its rating), scores them with the pure `quality_score.score_compute` and stores the result;
`quality_report_notify` sends each team's week to its lead and managers through the outbox."""

from __future__ import annotations

import datetime
from typing import Any

import re2
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Avg, Count, Sum
from django.urls import reverse
from django.utils import timezone

from notifications.services import event_emit
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


def _findings(*, ticket: Ticket, finished: bool) -> tuple[dict[str, int], list[QualityFlag]]:
    """The active rules over the ticket's public staff replies: counts per kind of rule, and the
    flags to record (one per rule and reply, or per rule and ticket for a missing required
    phrase — the same rows, and the same uniqueness, as services.quality_scan)."""
    counts = dict.fromkeys(QualityRuleKind.values, 0)
    # The tenant named explicitly: a sweep may change a status outside any one tenant's scope.
    rules = list(QualityRule.objects.filter(tenant_id=ticket.tenant_id, is_active=True))
    if not rules:
        return counts, []
    replies = list(TimelineEvent.objects.filter(ticket_id=ticket.pk, kind=EventKind.COMMENT, is_public=True,
                                                actor__isnull=False).order_by("id").values_list("id", "message"))
    flags: list[QualityFlag] = []
    for rule in rules:
        matcher = pattern_compile("|".join(re2.escape(p) for p in rule.phrases))
        if rule.kind == QualityRuleKind.REQUIRED:
            if finished and not any(matcher.search(message or "") for _pk, message in replies):
                counts[rule.kind] += 1
                flags.append(QualityFlag(tenant_id=ticket.tenant_id, rule=rule, ticket_id=ticket.pk,
                                         excerpt="、".join(rule.phrases)[:190]))
            continue
        for pk, message in replies:
            hit = matcher.search(message or "")
            if hit is not None:
                counts[rule.kind] += 1
                start = max(hit.start() - 30, 0)
                flags.append(QualityFlag(tenant_id=ticket.tenant_id, rule=rule, ticket_id=ticket.pk, event_id=pk,
                                         excerpt=(message or "")[start:start + 120]))
    return counts, flags


def _team_of(ticket: Ticket) -> int | None:
    """The ticket's team: its handler's first team (by name); when the handler belongs to none
    (a call-centre agent closing the 回访 node), the team of the latest workflow task holder who
    belongs to one. Two small reads."""
    holders = [ticket.assignee_id] if ticket.assignee_id is not None else []
    holders += [pk for pk in Task.objects.filter(ticket_id=ticket.pk, assignee__isnull=False).order_by("-id")
                .values_list("assignee_id", flat=True)[:20] if pk not in holders]
    if not holders:
        return None
    teams: dict[int, int] = {}
    for user_id, team_id in (Team.objects.filter(tenant_id=ticket.tenant_id, members__user_id__in=holders)
                             .order_by("-name", "-pk").values_list("members__user_id", "pk")):
        teams[user_id] = team_id  # the last written is the first by name
    return next((teams[pk] for pk in holders if pk in teams), None)


def quality_facts(*, ticket: Ticket, now: datetime.datetime | None = None) -> tuple[ScoreFacts, list[QualityFlag]]:
    """What the score is computed from, read for one ticket (a few indexed reads)."""
    finished_at = _finished_at(ticket)
    finished = finished_at is not None
    counts, flags = _findings(ticket=ticket, finished=finished)
    handling = target = None
    late = False
    if finished_at is not None:
        handling = _minutes(finished_at - ticket.created_at)
        sla = (TicketSla.objects.filter(ticket_id=ticket.pk)
               .values_list("started_at", "resolution_due_at", "resolution_breached").first())
        if sla is not None and sla[1] is not None:
            target = _minutes(sla[1] - sla[0])
            late = bool(sla[2]) or finished_at > sla[1]
        else:
            target = DEFAULT_TARGET_HOURS * 60
            late = handling > target
    rating = SatisfactionRating.objects.filter(ticket_id=ticket.pk).values_list("score", flat=True).first()
    facts = ScoreFacts(flagged=counts[QualityRuleKind.FLAG], forbidden=counts[QualityRuleKind.FORBIDDEN],
                       required_missing=counts[QualityRuleKind.REQUIRED], finished=finished,
                       handling_minutes=handling, target_minutes=target, late=late, rating=rating)
    return facts, flags


@transaction.atomic
def quality_score_refresh(*, ticket: Ticket, now: datetime.datetime | None = None) -> TicketQualityScore:
    """Compute and store the ticket's quality score (one row per ticket, replaced), recording the
    keyword findings as flags. Called in the transaction of what changed it: a public staff
    reply (tickets.extensions.comment_added), the ticket resolved or closed (the workflow's
    status_changed hook), a rating (the `ticket.rated` business event)."""
    now = now or timezone.now()
    facts, flags = quality_facts(ticket=ticket, now=now)
    if flags:  # an existing flag (rule + reply, or rule + ticket) is skipped by the unique constraints
        QualityFlag.objects.bulk_create(flags, ignore_conflicts=True)
    score, parts = score_compute(facts)
    row, _created = TicketQualityScore.objects.update_or_create(ticket_id=ticket.pk, defaults={
        "tenant_id": ticket.tenant_id, "score": score, "parts": [p.as_dict() for p in parts],
        "findings": min(facts.flagged + facts.forbidden + facts.required_missing, 32767),
        "team_id": _team_of(ticket), "region_id": ticket.region_id, "store_id": ticket.store_id,
        "assignee_id": ticket.assignee_id, "finished_at": _finished_at(ticket), "computed_at": now,
    })
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
