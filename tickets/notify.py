"""How notifications reads a ticket (notifications.subjects): who hears of its events by default,
what its messages may say, its priority, and which occurrence of an event a change is.
Registered in TicketsConfig.ready(), so notifications never imports tickets."""

from django.conf import settings
from django.urls import reverse

from notifications.models import Event
from notifications.subjects import SubjectKind

from .models import Priority, Status, TimelineEvent

# Labels by value, made once: get_FOO_display() hashes every choice's lazy label on each call
# (a translation lookup per choice), a cost paid twice per ticket when a sweep notifies 1,000.
_STATUS_LABELS = dict(Status.choices)
_PRIORITY_LABELS = dict(Priority.choices)


def _name(user):
    return (user.first_name or user.username) if user is not None else ""


class TicketSubject(SubjectKind):
    def recipients(self, ticket, *, event, actor, context):
        users, customers = [], []
        if event in (Event.TICKET_CREATED, Event.TICKET_RESOLVED, Event.ENGINEER_ON_THE_WAY,
                     Event.SATISFACTION_REQUEST) and ticket.customer_id:
            customers.append(ticket.customer)
        if event in (Event.TICKET_CREATED, Event.TICKET_ASSIGNED) and ticket.assignee_id:
            users.append(ticket.assignee)
        if event == Event.TICKET_COMMENTED:
            if actor is not None and (context or {}).get("public") and ticket.customer_id:
                customers.append(ticket.customer)
            if ticket.assignee_id and ticket.assignee_id != getattr(actor, "pk", None):
                users.append(ticket.assignee)
        users = [u for u in users if u.pk != getattr(actor, "pk", None) or event == Event.TICKET_ASSIGNED]
        return users, customers

    def variables(self, ticket):
        site = getattr(settings, "SITE_URL", "").rstrip("/")
        return {
            "ticket_number": ticket.number,
            "ticket_title": ticket.title,
            "ticket_status": str(_STATUS_LABELS.get(ticket.status, ticket.status)),
            "ticket_priority": str(_PRIORITY_LABELS.get(ticket.priority, ticket.priority)),
            "customer_name": ticket.customer.name if ticket.customer_id else "",
            "store_name": ticket.store.name if ticket.store_id else "",
            "assignee_name": _name(ticket.assignee) if ticket.assignee_id else "",
            "tracking_url": site + reverse("ticket-track", args=[ticket.tracking_token]),
            "ticket_url": site + reverse("ticket-detail", args=[ticket.pk]),
        }

    def priority(self, ticket):
        return ticket.priority

    def occurrence(self, ticket):
        # The ticket's latest timeline event: the services write it just before they emit, so a
        # second comment or a re-assignment is a new occurrence.
        latest = TimelineEvent.objects.filter(ticket=ticket).order_by("-pk").values_list("pk", flat=True).first()
        return str(latest or "")
