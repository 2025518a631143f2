"""The engine: start, tasks per node, branches on structured conditions, countersign, parallel
split/join, return with data intact, transfer, field-level permissions, and bad actions."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from tests.factories import CustomerFactory, OpportunityFactory
from tests.workflow.conftest import edge, node, role
from tickets.models import Status, Ticket, TimelineEvent
from tickets.services import ticket_intake
from workflow.engine import task_act, task_allowed_actions
from workflow.lifecycle import ticket_status_change
from workflow.models import Task, TaskStatus, Token, TokenState
from workflow.services import workflow_create, workflow_draft_set, workflow_publish

pytestmark = pytest.mark.django_db

GRAPH = {
    "nodes": [
        node("start", "start"),
        node("accept", "task", "受理", handler=role("agent"), time_limit=30,
             fields={"visible": ["order_no"], "editable": ["note"], "required": ["note"]}),
        node("amount", "condition", "金额判断"),
        node("gm", "approval", "总经理审批", handler=role("admin"), unlock=["fee"],
             fields={"visible": ["fee"], "editable": ["fee"], "required": ["fee"]}),
        node("review", "countersign", "会签", handlers=[role("manager")], mode="all"),
        node("fix", "task", "处理", handler=role("engineer")),
        node("end", "end"),
    ],
    "transitions": [
        edge("start", "accept"), edge("accept", "amount"),
        edge("amount", "gm", condition={"all": [{"field": "opportunity.amount", "op": ">", "value": 500000}]}),
        edge("amount", "review", default=True),
        edge("gm", "fix", on="approve"), edge("gm", "accept", on="reject"),
        edge("review", "fix"), edge("fix", "end"),
    ],
}


def publish(template, graph=GRAPH):
    workflow = workflow_create(template=template, name="维修流程")
    workflow_draft_set(workflow=workflow, graph=graph)
    workflow_publish(workflow=workflow)
    return workflow


def open_tasks(ticket):
    return list(Task.objects.filter(ticket=ticket, status=TaskStatus.OPEN).order_by("id"))


def new_ticket(scope, template, amount):
    customer = CustomerFactory(tenant=scope)
    opportunity = OpportunityFactory(customer=customer, amount=Decimal(amount))
    return ticket_intake(tenant=scope, source="phone", template=template, data={"order_no": "A1"},
                         customer=customer, opportunity=opportunity)


def test_two_tickets_take_the_two_branches(scope_a, wf_template, people):
    publish(wf_template)
    big = new_ticket(scope_a, wf_template, "880000.00")
    small = new_ticket(scope_a, wf_template, "12800.00")
    for ticket in (big, small):
        [task] = open_tasks(ticket)
        assert (task.node, task.assignee) == ("accept", people["agent"])
        assert task.due_at is not None
        ticket = Ticket.objects.get(pk=ticket.pk)
        assert ticket.status == Status.IN_PROGRESS
        task_act(task=task, action="submit", user=people["agent"], data={"note": "已受理"})
    [gm_task] = open_tasks(big)
    assert gm_task.node == "gm" and gm_task.assignee == people["gm"]
    review = open_tasks(small)
    assert {t.node for t in review} == {"review"}
    assert {t.assignee for t in review} == {people["manager"], people["manager2"]}


def test_countersign_all_waits_for_everyone(scope_a, wf_template, people):
    publish(wf_template)
    ticket = new_ticket(scope_a, wf_template, "100.00")
    task_act(task=open_tasks(ticket)[0], action="submit", user=people["agent"], data={"note": "好"})
    first, second = open_tasks(ticket)
    task_act(task=first, action="submit", user=first.assignee)
    assert [t.node for t in open_tasks(ticket)] == ["review"]
    task_act(task=second, action="submit", user=second.assignee)
    [fix] = open_tasks(ticket)
    assert fix.node == "fix"
    task_act(task=fix, action="submit", user=people["engineer"])
    ticket = Ticket.objects.get(pk=ticket.pk)
    assert ticket.status == Status.CLOSED
    assert open_tasks(ticket) == []
    assert not Token.objects.filter(run__ticket=ticket, state__in=[TokenState.ACTIVE, TokenState.WAITING]).exists()


def test_return_goes_back_with_data_intact(scope_a, wf_template, people):
    publish(wf_template)
    ticket = new_ticket(scope_a, wf_template, "900000.00")
    task_act(task=open_tasks(ticket)[0], action="submit", user=people["agent"], data={"note": "客户急"})
    [gm] = open_tasks(ticket)
    task_act(task=gm, action="reject", user=people["gm"], comment="金额不对，请核实", target="accept")
    [back] = open_tasks(ticket)
    assert (back.node, back.assignee, back.is_returned) == ("accept", people["agent"], True)
    ticket = Ticket.objects.get(pk=ticket.pk)
    assert ticket.data["note"] == "客户急"
    assert "金额不对" in TimelineEvent.objects.filter(ticket=ticket).order_by("-id")[1].text


def test_financial_field_only_at_its_node_and_required(scope_a, wf_template, people):
    publish(wf_template)
    ticket = new_ticket(scope_a, wf_template, "900000.00")
    accept = open_tasks(ticket)[0]
    with pytest.raises(ValidationError) as excinfo:
        task_act(task=accept, action="submit", user=people["agent"], data={"note": "x", "fee": "10.00"})
    assert "fee" in str(excinfo.value)
    with pytest.raises(ValidationError):
        task_act(task=accept, action="submit", user=people["agent"], data={})  # note is required here
    accept.refresh_from_db()
    assert accept.status == TaskStatus.OPEN
    task_act(task=accept, action="submit", user=people["agent"], data={"note": "ok"})
    [gm] = open_tasks(ticket)
    with pytest.raises(ValidationError):
        task_act(task=gm, action="approve", user=people["gm"], data={})
    task_act(task=gm, action="approve", user=people["gm"], data={"fee": "1280.50"})
    ticket = Ticket.objects.get(pk=ticket.pk)
    assert ticket.data["fee"] == "1280.50"


@pytest.mark.parametrize("case", ["not_holder", "twice", "not_allowed"])
def test_bad_actions_change_nothing(scope_a, wf_template, people, case):
    publish(wf_template)
    ticket = new_ticket(scope_a, wf_template, "100.00")
    task = open_tasks(ticket)[0]
    events = TimelineEvent.objects.filter(ticket=ticket).count()
    if case == "twice":
        task_act(task=task, action="submit", user=people["agent"], data={"note": "ok"})
        events = TimelineEvent.objects.filter(ticket=ticket).count()
    user = people["engineer"] if case == "not_holder" else people["agent"]
    action = "approve" if case == "not_allowed" else "submit"
    with pytest.raises(ValidationError):
        task_act(task=task, action=action, user=user, data={"note": "x"})
    assert TimelineEvent.objects.filter(ticket=ticket).count() == events


def test_transfer_and_allowed_actions(scope_a, wf_template, people):
    publish(wf_template)
    ticket = new_ticket(scope_a, wf_template, "100.00")
    task = open_tasks(ticket)[0]
    assert task_allowed_actions(task, people["agent"]) == ["submit", "transfer", "cohandle"]
    assert task_allowed_actions(task, people["engineer"]) == []
    task_act(task=task, action="transfer", user=people["agent"], transfer_to=people["manager"])
    task.refresh_from_db()
    assert task.assignee == people["manager"]
    ticket = Ticket.objects.get(pk=ticket.pk)
    assert ticket.assignee == people["manager"]


def test_plain_status_change_refused_while_workflow_runs(scope_a, wf_template, people):
    publish(wf_template)
    ticket = new_ticket(scope_a, wf_template, "100.00")
    with pytest.raises(ValidationError):
        ticket_status_change(ticket=ticket, action="resolve", actor=people["agent"])
    ticket_status_change(ticket=ticket, action="cancel", actor=people["agent"])
    assert open_tasks(ticket) == []


def test_parallel_split_and_join(scope_a, wf_template, people):
    graph = {
        "nodes": [node("start", "start"), node("split", "split"),
                  node("design", "task", handler=role("engineer")), node("copy", "task", handler=role("agent")),
                  node("ops", "task", handler=role("finance")), node("join", "join"),
                  node("pm", "task", handler=role("manager")), node("end", "end")],
        "transitions": [edge("start", "split"), edge("split", "design"), edge("split", "copy"), edge("split", "ops"),
                        edge("design", "join"), edge("copy", "join"), edge("ops", "join"), edge("join", "pm"),
                        edge("pm", "end")],
    }
    publish(wf_template, graph)
    ticket = new_ticket(scope_a, wf_template, "1.00")
    tasks = open_tasks(ticket)
    assert {t.node for t in tasks} == {"design", "copy", "ops"}
    for t in tasks[:2]:
        task_act(task=t, action="submit", user=t.assignee)
        assert "pm" not in {x.node for x in open_tasks(ticket)}
    task_act(task=tasks[2], action="submit", user=tasks[2].assignee)
    assert [t.node for t in open_tasks(ticket)] == ["pm"]
