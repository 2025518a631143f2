"""On the ticket page, an engineer on a workflow ticket sees only the fields their node allows,
cannot use the generic field editor, and the plain status buttons give way to the workflow; they
still work the ticket: comment, reply to the customer, attach photos, 我已出发."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.factories import CustomerFactory
from tests.workflow.conftest import edge, node, role
from tickets.models import Attachment, Ticket, TimelineEvent
from tickets.services import ticket_intake
from workflow.models import Task
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


# Working the ticket without moving it (issue 14, item 1): the engineer holding the task comments,
# replies to the customer, attaches a photo and says 我已出发; the moving actions stay the panel's.

def test_engineer_page_offers_comment_reply_and_departure(ticket, people, client_for):
    body = client_for(people["engineer"]).get(reverse("ticket-detail", args=[ticket.pk])).content.decode()
    assert reverse("ticket-action", args=[ticket.pk, "comment"]) in body
    assert 'name="is_public"' in body and 'data-testid="depart-form"' in body
    assert reverse("ticket-action", args=[ticket.pk, "assign"]) not in body


def test_engineer_replies_to_the_customer_with_a_photo(ticket, people, client_for):
    photo = SimpleUploadedFile("现场.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, content_type="image/png")
    response = client_for(people["engineer"]).post(
        reverse("ticket-action", args=[ticket.pk, "comment"]),
        {"body": "师傅明天上午十点再来", "is_public": "on", "files": [photo]})
    assert response.status_code == 302
    event = TimelineEvent.objects.get(ticket=ticket, message="师傅明天上午十点再来")
    assert event.is_public and event.actor_id == people["engineer"].pk
    assert Attachment.objects.filter(ticket=ticket, event=event, is_public=True).count() == 1
    # The workflow did not move: the engineer's task is still open on the same node.
    assert Task.objects.filter(ticket=ticket, node="fix", status="open").count() == 1


def test_engineer_internal_note_stays_internal(ticket, people, client_for):
    client_for(people["engineer"]).post(reverse("ticket-action", args=[ticket.pk, "comment"]), {"body": "配件待确认"})
    assert TimelineEvent.objects.get(ticket=ticket, message="配件待确认").is_public is False


@pytest.mark.parametrize("action,data", [
    ("assign", {"assignee": ""}), ("status", {"to": "cancel"}), ("merge", {"target_number": "X"}),
    ("split", {"titles": "a\nb"}),
])
def test_engineer_cannot_move_the_ticket_from_the_page(ticket, people, client_for, action, data):
    before = (TimelineEvent.objects.filter(ticket=ticket).count(), Ticket.objects.get(pk=ticket.pk).status)
    response = client_for(people["engineer"]).post(reverse("ticket-action", args=[ticket.pk, action]), data)
    assert response.status_code == 403
    assert (TimelineEvent.objects.filter(ticket=ticket).count(), Ticket.objects.get(pk=ticket.pk).status) == before


@pytest.mark.parametrize("body", ["", "x" * 100_000])
def test_engineer_bad_reply_writes_nothing(ticket, people, client_for, body):
    before = TimelineEvent.objects.filter(ticket=ticket).count()
    response = client_for(people["engineer"]).post(reverse("ticket-action", args=[ticket.pk, "comment"]),
                                                   {"body": body, "is_public": "on"})
    assert response.status_code == 400
    assert TimelineEvent.objects.filter(ticket=ticket).count() == before
