"""Reads of the CSAT follow-up, the quality score and repeat complaints: the ticket page's panel
(score with its breakdown, rating and revisit link, the repeat banner) and the weekly quality
report per team. Visibility as elsewhere in dashboards: the panel only for a ticket the user may
see (`visible_tickets`), the report's rows through `rollup_scope` on their own region, store and
handler — a regional manager counts only their regions' teams."""

from __future__ import annotations

import datetime
from typing import Any

from django.db.models import Avg, Count, Min, Q, QuerySet, Sum
from django.utils.translation import gettext as _

from tickets.models import SatisfactionRating, Ticket
from tickets.selectors import visible_tickets

from .charts import duration_text
from .models import REPEAT_WINDOW_DAYS, QualityFlag, RatingFollowUp, TicketQualityScore
from .quality import week_bounds
from .selectors import rollup_scope

REPORT_LOWEST = 10  # lowest-scoring tickets listed per report
REPEAT_SHOWN = 5  # earlier tickets linked from the repeat banner


def part_text(part: dict) -> str:
    """One breakdown line in the reader's language."""
    code, n = part.get("code"), int(part.get("n") or 0)
    if code == "flag":
        return _("Flagged phrases in replies: %(n)d") % {"n": n}
    if code == "forbidden":
        return _("Forbidden words in replies: %(n)d") % {"n": n}
    if code == "required":
        return _("Required phrases never said: %(n)d") % {"n": n}
    if code == "handling":
        if n < 0:
            return _("Handling time: not finished yet")
        target = part.get("target")
        return _("Handling time %(time)s against a target of %(target)s") % {
            "time": duration_text(datetime.timedelta(minutes=n)),
            "target": duration_text(datetime.timedelta(minutes=target)) if target is not None else "—"}
    if code == "rating":
        return _("Customer rating %(n)d/5") % {"n": n} if n else _("Not rated yet")
    return str(code)


def score_lines(row: TicketQualityScore | None) -> list[dict[str, Any]]:
    return [{"text": part_text(p), "points": p.get("points", 0)} for p in (row.parts if row is not None else [])]


def ticket_quality_panel(*, user: Any, pk: int) -> dict[str, Any] | None:
    """What the ticket page's quality panel shows, or None when the user may not see the ticket:
    the score and its lines, the rating and the revisit ticket it opened (or, on a revisit
    ticket, the rated ticket), and the earlier tickets of the same customer and category within
    REPEAT_WINDOW_DAYS (those the user may see). A handful of indexed reads, whatever the ticket."""
    ticket = visible_tickets(user=user).filter(pk=pk).only("id", "tenant_id", "customer_id", "category_id",
                                                           "created_at", "number").first()
    if ticket is None:
        return None
    score = TicketQualityScore.objects.filter(ticket_id=ticket.pk).first()
    rating = SatisfactionRating.objects.filter(ticket_id=ticket.pk).first()
    followups = list(RatingFollowUp.objects.filter(Q(ticket_id=ticket.pk) | Q(followup_id=ticket.pk))
                     .select_related("ticket", "followup"))
    revisit_of = next((f for f in followups if f.followup_id == ticket.pk), None)
    repeats: list[Ticket] = []
    if ticket.customer_id is not None:
        window = ticket.created_at - datetime.timedelta(days=REPEAT_WINDOW_DAYS)
        repeats = list(visible_tickets(user=user).filter(
            customer_id=ticket.customer_id, category_id=ticket.category_id, created_at__lt=ticket.created_at,
            created_at__gte=window).exclude(pk=ticket.pk)
            # A revisit ticket is not the customer coming back: its rated ticket is no repeat.
            .exclude(pk=revisit_of.ticket_id if revisit_of is not None else None).select_related(None)
            .only("id", "number", "title", "status", "created_at").order_by("-created_at")[:REPEAT_SHOWN])
    return {
        "ticket": ticket, "score": score, "lines": score_lines(score), "rating": rating,
        "followup": next((f for f in followups if f.ticket_id == ticket.pk), None),
        "revisit_of": revisit_of,
        "repeats": repeats, "repeat_days": REPEAT_WINDOW_DAYS,
    }


def low_rating_followups(*, ratings: list[Any]) -> dict[int, Any]:
    """{rating id: its RatingFollowUp with the revisit ticket} for the dashboard's low-rating list
    (one query for the list)."""
    ids = [r.pk for r in ratings]
    if not ids:
        return {}
    return {f.rating_id: f for f in RatingFollowUp.objects.filter(rating_id__in=ids).select_related("followup")}


def report_rows(*, user: Any, monday: datetime.date, team_id: int | None = None) -> QuerySet:
    """The week's visible quality scores (tickets finished that week), optionally one team's."""
    start, end = week_bounds(monday)
    qs = rollup_scope(TicketQualityScore.objects.filter(finished_at__gte=start, finished_at__lt=end), user=user)
    return qs.filter(team_id=team_id) if team_id else qs


def quality_report(*, user: Any, monday: datetime.date, team_id: int | None = None) -> dict[str, Any]:
    """The weekly quality report: per team (tickets, average score, lowest, findings), the
    findings by rule and the lowest-scoring tickets of the scope (all visible teams, or one).
    Four queries whatever the week holds."""
    all_rows = report_rows(user=user, monday=monday).order_by()
    teams = list(all_rows.values("team_id", "team__name").annotate(
        n=Count("id"), avg=Avg("score"), low=Min("score"), findings=Sum("findings")).order_by("team__name"))
    rows = all_rows.filter(team_id=team_id) if team_id else all_rows
    rules = list(QualityFlag.objects.filter(ticket_id__in=rows.values("ticket_id"))
                 .values("rule_id", "rule__name", "rule__kind").annotate(n=Count("id")).order_by("-n", "rule__name"))
    lowest = list(rows.select_related("ticket", "team", "assignee").order_by("score", "finished_at", "pk")
                  [:REPORT_LOWEST])
    total = rows.aggregate(n=Count("id"), avg=Avg("score"), findings=Sum("findings"))
    return {"teams": teams, "rules": rules, "lowest": [{"row": r, "lines": score_lines(r)} for r in lowest],
            "total": total}


def report_teams(*, user: Any, monday: datetime.date) -> list[tuple[int, str]]:
    """The teams the week's visible rows belong to (the team picker's choices)."""
    return [(pk, name) for pk, name in report_rows(user=user, monday=monday).order_by()
            .filter(team__isnull=False).values_list("team_id", "team__name").distinct().order_by("team__name")]


def report_tickets(*, user: Any, monday: datetime.date, team_id: int | None = None,
                   limit: int = 5000) -> list[dict[str, Any]]:
    """The week's scored tickets for the CSV, lowest score first, at most `limit` (one query)."""
    rows = (report_rows(user=user, monday=monday, team_id=team_id).select_related("ticket", "team", "assignee")
            .order_by("score", "finished_at", "pk")[:limit])
    return [{"row": r, "lines": score_lines(r)} for r in rows]
