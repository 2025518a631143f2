"""Satisfaction ratings (CSAT): the customer rates a resolved ticket once, 1–5 with a comment,
through the ticket's tracking link (its capability URL) within CSAT_RATING_DAYS of resolving."""

from __future__ import annotations

import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from scrm.events import event_fire

from ..models import EventKind, SatisfactionRating, Status, Ticket
from ..timeline import timeline_code
from .core import timeline_event_add

CSAT_RATING_DAYS = 30
COMMENT_MAX = 1000
LOW_SCORE = 2  # 1 or 2 stars: the dashboard lists it for a follow-up

timeline_code("csat.rated", gettext_lazy("The customer rated the service %(score)s/5."))


def csat_refusal(*, ticket: Ticket, now: datetime.datetime | None = None) -> str | None:
    """Why this ticket cannot be rated now (a translated sentence), or None when it can."""
    if ticket.status not in (Status.RESOLVED, Status.CLOSED) or ticket.merged_into_id is not None:
        return _("This request can be rated once it is resolved.")
    if SatisfactionRating.objects.filter(ticket_id=ticket.pk).exists():
        return _("Thank you, this request has been rated already.")
    finished = ticket.resolved_at or ticket.closed_at
    if finished is None or (now or timezone.now()) - finished > datetime.timedelta(days=CSAT_RATING_DAYS):
        return _("This rating link has expired.")
    return None


def _score_clean(score: Any) -> int:
    try:
        value = int(str(score))
    except (TypeError, ValueError):
        value = 0
    if not 1 <= value <= 5:
        raise ValidationError({"score": _("Choose a score from 1 to 5.")})
    return value


@transaction.atomic
def csat_rate(*, ticket: Ticket, score: Any, comment: str = "", now: datetime.datetime | None = None
              ) -> SatisfactionRating:
    """Record the customer's rating and say so on the timeline (public). Refused, with nothing
    written, for a score outside 1–5, a comment over COMMENT_MAX characters, a ticket not yet
    resolved, already rated, or resolved more than CSAT_RATING_DAYS ago."""
    value = _score_clean(score)
    comment = (comment or "").strip()
    if len(comment) > COMMENT_MAX:
        raise ValidationError({"comment": _("Keep the comment under %(n)d characters.") % {"n": COMMENT_MAX}})
    ticket = Ticket.objects.select_for_update(of=("self",)).select_related("customer").get(pk=ticket.pk)
    refusal = csat_refusal(ticket=ticket, now=now)
    if refusal:
        raise ValidationError(refusal, code="refused")
    rating = SatisfactionRating.objects.create(
        tenant_id=ticket.tenant_id, ticket=ticket, score=value, comment=comment, handler_id=ticket.assignee_id,
        store_id=ticket.store_id, region_id=ticket.region_id)
    timeline_event_add(ticket=ticket, kind=EventKind.RATING, actor=None, is_public=True,
                       actor_label=ticket.customer.name if ticket.customer is not None else _("Customer"),
                       code="csat.rated", params={"score": value}, message=comment)
    # Business event: automation's triggers on 工单被评价 (e.g. a low score opens a follow-up).
    event_fire("ticket.rated", tenant=ticket.tenant, subject=ticket, score=value, comment=comment)
    return rating
