"""Where the quality score and the CSAT follow-up plug in (registered in DashboardsConfig.ready):
a rating (`ticket.rated`, inside the rating's transaction) rescores the ticket and, at 1–2★, opens
the follow-up; a public staff reply (tickets' comment_added seam) and the ticket resolved or
closed (the workflow's status_changed hook) rescore it."""

from __future__ import annotations

from typing import Any

from tickets.models import SatisfactionRating, Status, Ticket
from workflow.hooks import workflow_hook

from .csat import LOW_SCORE, csat_followup_open
from .quality import quality_score_refresh


def on_ticket_rated(*, subject: Ticket, score: int, **_: Any) -> None:
    quality_score_refresh(ticket=subject)
    if score <= LOW_SCORE:
        csat_followup_open(rating=SatisfactionRating.objects.get(ticket_id=subject.pk))


def on_comment_added(*, ticket: Ticket, event: Any, **_: Any) -> None:
    # Only what staff write to the customer is judged: an internal note or the customer's own
    # reply changes no part of the score.
    if event.is_public and event.actor_id is not None:
        quality_score_refresh(ticket=ticket, reply=event)


@workflow_hook("status_changed")
def quality_on_status(*, ticket: Ticket, new: str, **_: Any) -> None:
    if new in (Status.RESOLVED, Status.CLOSED):
        quality_score_refresh(ticket=ticket)
