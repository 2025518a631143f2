"""notifications.subjects: event_emit reads the thing an event is about only through the kind its
app registered — tickets registers one; an object whose app registered none is a clear error."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from notifications.models import Notification
from notifications.services import event_emit
from notifications.subjects import SubjectKind, subject_kind, subject_kind_register
from tests.factories import StoreFactory
from tickets.models import Ticket, TimelineEvent
from tickets.notify import TicketSubject


@pytest.mark.django_db
def test_tickets_registers_how_notifications_reads_a_ticket(scope_a, ticket_template_a):
    from tickets.services import ticket_intake

    ticket = ticket_intake(tenant=scope_a, source="phone", template=ticket_template_a, data={"order_no": "WD-1"},
                           title="冷柜不制冷")
    kind = subject_kind(ticket)
    assert isinstance(kind, TicketSubject)
    variables = kind.variables(ticket)
    assert (variables["ticket_number"], variables["ticket_title"]) == (ticket.number, "冷柜不制冷")
    assert variables["tracking_url"].endswith(f"/track/{ticket.tracking_token}/")
    latest = TimelineEvent.objects.filter(ticket=ticket).order_by("-pk").first()
    assert kind.occurrence(ticket) == str(latest.pk)


@pytest.mark.django_db
def test_a_subject_nobody_registered_is_a_clear_error_and_writes_nothing(scope_a, engineer_a):
    store = StoreFactory(tenant=scope_a)
    with pytest.raises(ImproperlyConfigured, match=r"no SubjectKind for scrm\.store"):
        event_emit(tenant=scope_a, event="ticket_assigned", ticket=store, users=[engineer_a])
    assert not Notification.objects.exists()


def test_the_base_kind_says_nothing_and_registration_is_by_label():
    kind = SubjectKind()
    assert kind.recipients(object(), event="ticket_created", actor=None, context=None) == ([], [])
    assert (kind.variables(object()), kind.priority(object()), kind.occurrence(object())) == ({}, "normal", "")
    registered = subject_kind(Ticket())
    subject_kind_register("Tickets.Ticket", kind)
    try:
        assert subject_kind(Ticket()) is kind
    finally:
        subject_kind_register("tickets.Ticket", registered)
