"""What a low rating sets off (满意度 1–2★): the store's manager is alerted (notifications'
`low_rating` event through the outbox) and a revisit ticket (回访工单) is filed through tickets'
intake — so its workflow starts and dispatches it like any other ticket — linked to the rated
ticket by a RatingFollowUp row and recorded on both timelines. Runs inside the rating's
transaction (the `ticket.rated` business event), once per rating."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from notifications.services import event_emit
from scrm.models import Membership, Role, StoreUserObjectPermission
from tickets.models import EventKind, Priority, SatisfactionRating, Source, Ticket
from tickets.services import ticket_intake, timeline_event_add
from tickets.timeline import timeline_code
from workflow.escalation import region_managers

from .models import RatingFollowUp

logger = logging.getLogger(__name__)

LOW_SCORE = 2  # 1 or 2 stars open a follow-up (as tickets.services.csat lists them)
ALERT_EVENT = "low_rating"

timeline_code("csat.followup_opened",
              gettext_lazy("Rated %(score)s/5: revisit ticket %(number)s opened and the store manager alerted."),
              public=None)
timeline_code("csat.followup_failed",
              gettext_lazy("Rated %(score)s/5: the store manager was alerted; no revisit ticket could be filed "
                           "(the ticket's template is no longer published)."), public=None)
timeline_code("csat.followup_of",
              gettext_lazy("Revisit of %(number)s, which the customer rated %(score)s/5."), public=None)


def store_managers(ticket: Ticket) -> list[Any]:
    """Who answers for the ticket's store: the active staff granted to manage the store, else the
    regional managers of its region, else the tenant's managers — so an alert is never lost."""
    users = get_user_model().objects
    active = Membership.objects.filter(tenant_id=ticket.tenant_id, is_active=True)
    if ticket.store_id is not None:
        granted = StoreUserObjectPermission.objects.filter(
            content_object_id=ticket.store_id, permission__codename="manage_store").values("user_id")
        found = list(users.filter(pk__in=active.filter(user_id__in=granted).values("user_id")).order_by("pk"))
        if found:
            return found
    if ticket.region_id is not None:
        found = region_managers(ticket.region_id)
        if found:
            return found
    return list(users.filter(pk__in=active.filter(role=Role.MANAGER).values("user_id")).order_by("pk"))


@transaction.atomic
def csat_followup_open(*, rating: SatisfactionRating) -> RatingFollowUp | None:
    """For a rating of LOW_SCORE or less: file the revisit ticket, link it, write both timeline
    lines and alert the store's manager. Once per rating (None for a higher score; the existing
    follow-up when it was opened already)."""
    if rating.score > LOW_SCORE:
        return None
    existing = RatingFollowUp.objects.filter(ticket_id=rating.ticket_id).select_related("followup").first()
    if existing is not None:
        return existing
    rated = Ticket.objects.select_related("template", "customer", "store", "region").get(pk=rating.ticket_id)
    comment = rating.comment or _("(no comment)")
    try:
        followup = _revisit_file(rated=rated, rating=rating, comment=comment)
    except ValidationError as exc:
        # The rated ticket's template was unpublished or deactivated since: the customer's rating
        # still counts and the manager is still alerted, told that no revisit ticket was filed.
        logger.warning("revisit ticket for %s not filed: %s", rated.number, exc.messages)
        timeline_event_add(ticket=rated, kind=EventKind.RATING, code="csat.followup_failed",
                           params={"score": rating.score})
        event_emit(tenant=rated.tenant, event=ALERT_EVENT, ticket=rated, users=store_managers(rated),
                   occurrence=f"r{rating.pk}", urgent=rating.score == 1,
                   context={"score": str(rating.score), "comment": rating.comment, "followup_number": "—"})
        return None
    link = RatingFollowUp.objects.create(tenant_id=rated.tenant_id, rating=rating, ticket=rated, followup=followup)
    timeline_event_add(ticket=rated, kind=EventKind.RATING, code="csat.followup_opened",
                       params={"score": rating.score, "number": followup.number})
    timeline_event_add(ticket=followup, kind=EventKind.RATING, code="csat.followup_of",
                       params={"score": rating.score, "number": rated.number})
    event_emit(tenant=rated.tenant, event=ALERT_EVENT, ticket=rated, users=store_managers(rated),
               occurrence=f"r{rating.pk}", urgent=rating.score == 1,
               context={"score": str(rating.score), "comment": rating.comment,
                        "followup_number": followup.number})
    return link


def _revisit_file(*, rated: Ticket, rating: SatisfactionRating, comment: str) -> Ticket:
    """The revisit ticket, filed like any staff ticket (its workflow starts and dispatches it)."""
    return ticket_intake(
        tenant=rated.tenant, source=Source.STAFF, template=rated.template, data={}, audience="staff", partial=True,
        title=(_("Revisit: %(title)s") % {"title": rated.title})[:200],
        description=_("The customer rated %(number)s %(score)s/5: %(comment)s") % {
            "number": rated.number, "score": rating.score, "comment": comment},
        customer=rated.customer, store=rated.store, region=rated.region, priority=Priority.HIGH, actor=None)
