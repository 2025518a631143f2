"""On the ticket page, an engineer on a workflow ticket sees only the fields their node allows,
cannot use the generic field editor, and the plain status buttons give way to the workflow."""

import pytest
from django.urls import reverse

from tests.factories import CustomerFactory
from tests.workflow.conftest import edge, node, role
from tickets.models import Ticket
from tickets.services import ticket_intake
from workflow.services import workflow_create, workflow_draft_set, workflow_publish

pytestmark = pytest.mark.django_db

GRAPH = {
    "nodes": [node("start", "start"),
              node("fix", "task", "上门维修", handler=role("engineer"),
                   fields={"visible": ["order_no"], "editable": ["note"], "required": []}),
              node("end", "end")],
    "transitions": [edge("start", "fix"), edge("fix", "end")],
}


@pytest.fixture
def ticket(scope_a, wf_template, people):
    workflow = workflow_create(template=wf_template, name="维修")
    workflow_draft_set(workflow=workflow, graph=GRAPH)
    workflow_publish(workflow=workflow)
    return ticket_intake(tenant=scope_a, source="phone", template=wf_template,
                         data={"order_no": "A-1", "fee": "88.00", "note": ""}, customer=CustomerFactory(tenant=scope_a))


def test_engineer_sees_only_node_fields(ticket, people, client_for):
    body = client_for(people["engineer"]).get(reverse("ticket-detail", args=[ticket.pk])).content.decode()
    assert "订单号" in body and "处理说明" in body
    assert "88.00" not in body and "费用" not in body
    assert 'data-action="resolve"' not in body


def test_engineer_cannot_use_generic_editor(ticket, people, client_for, scope_a):
    response = client_for(people["engineer"]).post(reverse("ticket-action", args=[ticket.pk, "edit"]),
                                                   {"fee": "1.00"})
    assert response.status_code == 403
    assert Ticket.objects.get(pk=ticket.pk).data["fee"] == "88.00"


def test_manager_sees_all_fields_but_only_cancel(ticket, people, client_for):
    body = client_for(people["manager"]).get(reverse("ticket-detail", args=[ticket.pk])).content.decode()
    assert "费用" in body
    assert 'data-action="cancel"' in body
    assert 'data-action="resolve"' not in body
