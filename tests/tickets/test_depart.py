"""'On my way': the engineer tells the customer the expected arrival; bad times change nothing."""

import pytest
from django.urls import reverse
from django.utils import timezone

from notifications.models import Notification
from tests.factories import CustomerFactory, published_template
from tickets.models import TimelineEvent
from tickets.services import ticket_intake

pytestmark = pytest.mark.django_db


@pytest.fixture
def ticket(scope_a):
    customer = CustomerFactory(tenant=scope_a, phone="13912340000")
    return ticket_intake(tenant=scope_a, source="phone", template=published_template(scope_a),
                         data={"order_no": "A1"}, customer=customer)


def test_depart_notifies_the_customer_with_eta(ticket, agent_a, client_for):
    eta = timezone.localtime() + timezone.timedelta(hours=1)
    response = client_for(agent_a).post(reverse("ticket-action", args=[ticket.pk, "depart"]),
                                        {"eta": eta.strftime("%Y-%m-%dT%H:%M")})
    assert response.status_code == 302
    message = Notification.objects.get(ticket=ticket, event="engineer_on_the_way")
    assert message.customer_id == ticket.customer_id and eta.strftime("%H:%M") in message.body
    [event] = TimelineEvent.objects.filter(ticket=ticket, is_public=True, code="ticket.on_the_way")
    assert eta.strftime("%H:%M") in event.text


@pytest.mark.parametrize("eta", ["", "tomorrow", "2020-01-01T10:00", "2099-01-01T10:00"])
def test_bad_eta_changes_nothing(ticket, agent_a, client_for, eta):
    events = TimelineEvent.objects.filter(ticket=ticket).count()
    response = client_for(agent_a).post(reverse("ticket-action", args=[ticket.pk, "depart"]), {"eta": eta})
    assert response.status_code == 400
    assert TimelineEvent.objects.filter(ticket=ticket).count() == events
    assert not Notification.objects.filter(ticket=ticket, event="engineer_on_the_way").exists()
