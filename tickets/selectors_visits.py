"""Reads of site visits: where a ticket's site is, a ticket's visits, the minutes on site that
settlement bills (`onsite_minutes`, `onsite_minutes_by_ticket`), and a day's check-ins for the
manager's view."""

import datetime
from decimal import Decimal

from django.db.models import Q, Sum
from django.utils import timezone

from .extensions import ticket_ids_q
from .geo import Point
from .models import Attachment, SiteVisit


def ticket_site_point(ticket) -> tuple[Point | None, str]:
    """(the site's coordinates, "address" | "store" | ""): the first address field of the ticket
    that has coordinates, else its store's. Reads the ticket's template version and store (join
    them when looping)."""
    for field in ticket.template_version.fields:
        if field.get("type") != "address":
            continue
        value = ticket.data.get(field["key"])
        if isinstance(value, dict) and value.get("lat") is not None and value.get("lng") is not None:
            return Point(Decimal(str(value["lat"])), Decimal(str(value["lng"]))), "address"
    store = ticket.store if ticket.store_id else None
    if store is not None and store.latitude is not None and store.longitude is not None:
        return Point(store.latitude, store.longitude), "store"
    return None, ""


def ticket_address_text(ticket) -> str:
    """The visit's address as a person reads it: the first address field's text, else the store's."""
    for field in ticket.template_version.fields:
        if field.get("type") == "address":
            value = ticket.data.get(field["key"])
            if isinstance(value, dict) and value.get("text"):
                return value["text"]
            if isinstance(value, str) and value:
                return value
    if ticket.store_id:
        return " ".join(part for part in (ticket.store.city, ticket.store.address or ticket.store.name) if part)
    return ""


def site_visits(*, ticket):
    """A ticket's visits, oldest first, with the engineer and the signature file."""
    return list(SiteVisit.objects.filter(ticket=ticket).select_related("engineer", "signature", "reviewed_by")
                .order_by("checked_in_at", "id"))


def site_visit_open(*, ticket, engineer):
    return SiteVisit.objects.filter(ticket=ticket, engineer=engineer, checked_out_at__isnull=True).first()


def site_visit_latest(*, ticket, engineer):
    return SiteVisit.objects.filter(ticket=ticket, engineer=engineer).order_by("-checked_in_at", "-id").first()


def site_photos(*, ticket):
    """The visit photos of a ticket (before/after), oldest first."""
    return list(Attachment.objects.filter(ticket=ticket, field_key__in=["site_before", "site_after"])
                .order_by("created_at", "id"))


def onsite_minutes(*, ticket) -> int:
    """Minutes the ticket's engineers spent on site (closed visits only): what settlement bills."""
    return SiteVisit.objects.filter(ticket=ticket, checked_out_at__isnull=False).aggregate(
        n=Sum("minutes_on_site"))["n"] or 0


def onsite_minutes_by_ticket(*, ticket_ids) -> dict[int, int]:
    """{ticket id: minutes on site} for many tickets in one query (a settlement run)."""
    ids = set(ticket_ids)
    if not ids:
        return {}
    rows = (SiteVisit.objects.filter(ticket_ids_q(ids), checked_out_at__isnull=False)
            .values("ticket_id").annotate(n=Sum("minutes_on_site")))
    return {row["ticket_id"]: row["n"] or 0 for row in rows if row["ticket_id"] in ids}


def day_bounds(day: datetime.date):
    start = timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))
    return start, start + datetime.timedelta(days=1)


def site_checkins(*, day: datetime.date, flagged_only=False, limit=500, tickets=None):
    """A day's check-ins (local day), newest first, with ticket, engineer and store; at most
    `limit` rows. `tickets` narrows to a queryset the viewer may see."""
    start, end = day_bounds(day)
    qs = SiteVisit.objects.filter(checked_in_at__gte=start, checked_in_at__lt=end)
    if flagged_only:
        qs = qs.filter(Q(flagged=True) | Q(out_flagged=True))
    if tickets is not None:
        qs = qs.filter(ticket__in=tickets.values("pk"))
    return list(qs.select_related("ticket", "ticket__store", "ticket__customer", "engineer", "reviewed_by")
                .order_by("-checked_in_at", "-id")[:limit])


def visits_by_ticket(*, ticket_ids, engineer) -> dict[int, SiteVisit]:
    """{ticket id: the engineer's latest visit} for a list of tickets, in one query."""
    latest: dict[int, SiteVisit] = {}
    for visit in SiteVisit.objects.filter(ticket_id__in=list(ticket_ids), engineer=engineer).order_by(
            "checked_in_at", "id"):
        latest[visit.ticket_id] = visit
    return latest



def site_visit_last(*, ticket):
    """The latest visit of a ticket (any engineer), with the engineer: the tracking page's summary."""
    return (SiteVisit.objects.filter(ticket=ticket).select_related("engineer")
            .order_by("-checked_in_at", "-id").first())
