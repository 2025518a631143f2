"""Bulk actions on the ticket list (issue 14, item 10): dispatch or close the ticked tickets through
the lifecycle, each reported; bad input changes nothing; the list reads as cards on a phone."""

import pytest
from django.urls import reverse

from scrm.tenancy import tenant_scope
from tests.factories import published_template
from tickets.models import Ticket, TimelineEvent
from tickets.services import ticket_intake

pytestmark = pytest.mark.django_db
BULK = reverse("ticket-bulk")


@pytest.fixture
def tickets(scope_a):
    template = published_template(scope_a)
    return [ticket_intake(tenant=scope_a, source="phone", template=template, data={"order_no": f"B{i}"},
                          title=f"批量{i}") for i in range(3)]


def _state(tenant):
    with tenant_scope(tenant):
        return (sorted(Ticket.objects.values_list("id", "status", "assignee_id")), TimelineEvent.objects.count())


def test_agent_dispatches_ticked_tickets(tenant_a, tickets, agent_a, engineer_a, client_for):
    response = client_for(agent_a).post(BULK, {"ids": [t.pk for t in tickets], "action": "assign",
                                               "assignee": engineer_a.pk, "next": "/tickets/?status=new"})
    assert response.status_code == 302 and response["Location"] == "/tickets/?status=new"
    with tenant_scope(tenant_a):
        assert set(Ticket.objects.values_list("assignee_id", flat=True)) == {engineer_a.pk}
        assert TimelineEvent.objects.filter(ticket__in=tickets, changes__0__field="assignee").count() == 3


def test_close_reports_each_ticket(tenant_a, tickets, manager_a, client_for):
    response = client_for(manager_a).post(BULK, {"ids": [tickets[0].pk, tickets[1].pk], "action": "close"},
                                          follow=True)
    assert response.status_code == 200
    with tenant_scope(tenant_a):
        assert [Ticket.objects.get(pk=t.pk).status for t in tickets] == ["closed", "closed", "new"]
    assert any("2" in str(m) for m in response.context["messages"])


@pytest.mark.parametrize("data", [
    {"action": "close"},                                   # nothing ticked
    {"ids": ["abc"], "action": "close"},                   # malformed id
    {"ids": [str(i) for i in range(1, 102)], "action": "close"},  # too many
    {"ids": ["1"], "action": "delete"},                    # unknown action
    {"ids": ["1"]},                                        # no action
    {"ids": ["1"], "action": "assign"},                    # assign to nobody
    {"ids": ["1"], "action": "assign", "assignee": "999999"},  # not staff here
])
def test_bad_input_is_refused_and_changes_nothing(tenant_a, tickets, agent_a, client_for, data):
    data = {k: ([str(tickets[0].pk)] if v == ["1"] else v) for k, v in data.items()}
    before = _state(tenant_a)
    response = client_for(agent_a).post(BULK, data)
    assert response.status_code == 400
    assert [m.level_tag for m in response.context["messages"]] == ["error"]
    assert _state(tenant_a) == before


def test_other_tenants_tickets_are_not_found(tenant_a, tenant_b, tickets, admin_b, client_for):
    before = _state(tenant_a)
    response = client_for(admin_b).post(BULK, {"ids": [t.pk for t in tickets], "action": "close"}, follow=True)
    assert response.status_code == 200
    assert any("3" in str(m) for m in response.context["messages"])
    assert _state(tenant_a) == before


def test_engineers_and_finance_have_no_bulk(tenant_a, tickets, engineer_a, finance_a, client_for):
    before = _state(tenant_a)
    for user in (engineer_a, finance_a):
        assert client_for(user).post(BULK, {"ids": [tickets[0].pk], "action": "close"}).status_code == 403
        assert 'data-testid="bulk-bar"' not in client_for(user).get(reverse("ticket-list")).content.decode()
    assert _state(tenant_a) == before


def test_list_offers_bulk_and_phone_cards(tickets, agent_a, client_for):
    body = client_for(agent_a).get(reverse("ticket-list")).content.decode()
    assert 'data-testid="bulk-bar"' in body and body.count('form="bulk-form"') == 3
    assert "ticket-cards" in body and body.count('class="d-md-none c-meta"') == 3
