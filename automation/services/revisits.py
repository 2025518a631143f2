"""Revisit writes: recording a revisit's outcome (回访结果); an unhappy customer gets a follow-up
ticket from the revisited ticket's template, linked back to it."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from tickets.models import Source
from tickets.services import ticket_intake

from ..models import Revisit, RevisitOutcome, RevisitStatus
from .leads import customer_contact_touch

MAX_NOTE = 1000


@transaction.atomic
def revisit_record(*, revisit, outcome, note="", actor):
    """Close a planned revisit with its outcome. Unhappy → a follow-up ticket (the revisited
    ticket's template, or none when the revisit came from a lead grade)."""
    revisit = (Revisit.objects.select_for_update(of=("self",))
               .select_related("ticket__template", "customer").get(pk=revisit.pk))
    if revisit.status != RevisitStatus.PLANNED:
        raise ValidationError({"outcome": _("This revisit is already done.")})
    if outcome not in RevisitOutcome.values or outcome == RevisitOutcome.NONE:
        raise ValidationError({"outcome": _("Choose the outcome.")})
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise ValidationError({"note": _("Ensure this value has at most %(n)d characters.") % {"n": MAX_NOTE}})
    if outcome == RevisitOutcome.UNHAPPY and not note:
        raise ValidationError({"note": _("Say what the customer is unhappy about.")})
    revisit.status, revisit.outcome, revisit.note = RevisitStatus.DONE, outcome, note
    revisit.done_at, revisit.done_by = timezone.now(), actor
    source = revisit.ticket
    if outcome == RevisitOutcome.UNHAPPY and source is not None:
        revisit.followup = ticket_intake(
            tenant=revisit.tenant, source=Source.STAFF, template=source.template, data={}, audience="staff",
            partial=True, title=(_("Revisit follow-up: %(title)s") % {"title": source.title})[:120],
            description=_("Unhappy at the revisit of %(number)s: %(note)s") % {"number": source.number, "note": note},
            customer=revisit.customer, store=source.store, actor=actor, priority="high",
        )
    revisit.save(update_fields=["status", "outcome", "note", "done_at", "done_by", "followup"])
    customer_contact_touch(customer_id=revisit.customer_id, when=revisit.done_at)
    return revisit
