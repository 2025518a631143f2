"""Bad input to the workflow, tested: each gets a clear error and changes nothing — acting on
another tenant's task, acting twice, on a task one does not hold, with an action the node does
not allow, without the node's required fields, with fields the node does not let one edit, and
publishing every kind of invalid graph (no version written, the published one stays)."""

import copy

import pytest
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.utils import translation

from notifications.models import Notification
from scrm.tenancy import tenant_scope
from tests.workflow.conftest import edge, node, role
from tests.workflow.test_engine import GRAPH, new_ticket, open_tasks, publish
from tickets.models import Ticket, TimelineEvent
from workflow.engine import task_act
from workflow.models import Run, Task, TaskStatus, Token, Workflow, WorkflowVersion
from workflow.services import workflow_create, workflow_draft_set, workflow_publish

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def state_of(ticket):
    """Everything an act may touch on this ticket, to compare before and after."""
    fresh = Ticket.objects.get(pk=ticket.pk)
    return {
        "ticket": (fresh.status, fresh.data, fresh.assignee_id, fresh.updated_at),
        "tasks": sorted(Task.objects.filter(ticket=ticket).values_list(
            "id", "node", "status", "assignee_id", "action", "completed_by_id", "completed_at")),
        "co_handlers": sorted(Task.co_handlers.through.objects.filter(task__ticket=ticket)
                              .values_list("task_id", "user_id")),
        "tokens": sorted(Token.objects.filter(run__ticket=ticket).values_list("id", "node", "state")),
        "run": Run.objects.filter(ticket=ticket).values_list("is_finished", flat=True).get(),
        "timeline": TimelineEvent.objects.filter(ticket=ticket).count(),
        "outbox": Notification.objects.filter(ticket=ticket).count(),
    }


def message_of(excinfo):
    return " ".join(excinfo.value.messages)


def assert_messages(excinfo, expected):
    """Each expected message is there, word for word (the validator may say more: it reports
    every problem at once, and a follow-on problem may be listed too)."""
    got = excinfo.value.messages
    missing = [m for m in expected if m not in got]
    assert not missing, f"missing {missing}; got {got}"


@pytest.fixture
def started(scope_a, wf_template, people):
    publish(wf_template)
    ticket = new_ticket(scope_a, wf_template, "100.00")
    return ticket, open_tasks(ticket)[0]


# --- acting -----------------------------------------------------------------------------

def test_task_of_another_tenant_is_not_found(started, tenant_b, admin_b, people):
    ticket, task = started
    before = state_of(ticket)
    with tenant_scope(tenant_b):
        assert Task.objects.filter(pk=task.pk).first() is None  # lookups by id see nothing
        for user in (admin_b, people["agent"]):
            with pytest.raises(ObjectDoesNotExist):
                task_act(task=task, action="submit", user=user, data={"note": "跨租户"})
    assert state_of(ticket) == before


def test_holder_of_another_tenant_cannot_act(started, admin_b):
    ticket, task = started
    before = state_of(ticket)
    with pytest.raises(ValidationError) as excinfo:
        task_act(task=task, action="submit", user=admin_b, data={"note": "x"})
    assert message_of(excinfo) == "You do not hold this task."
    assert state_of(ticket) == before


def test_acting_twice_changes_nothing(started, people):
    ticket, task = started
    task_act(task=task, action="submit", user=people["agent"], data={"note": "受理"})
    before = state_of(ticket)
    for action, extra in (("submit", {"data": {"note": "again"}}), ("return", {}),
                          ("transfer", {"transfer_to": people["manager"]})):
        with pytest.raises(ValidationError) as excinfo:
            task_act(task=task, action=action, user=people["agent"], **extra)
        assert message_of(excinfo) == "This task is already finished."
    # A stale copy of the task object (as a second browser tab holds) is refused the same way.
    stale = Task.objects.get(pk=task.pk)
    stale.status = TaskStatus.OPEN
    with pytest.raises(ValidationError):
        task_act(task=stale, action="submit", user=people["agent"], data={"note": "stale"})
    assert state_of(ticket) == before


@pytest.mark.parametrize("action", ["approve", "reject", "close", "split", "return", "frobnicate", ""])
def test_action_the_node_does_not_allow(started, people, action):
    ticket, task = started
    before = state_of(ticket)
    with pytest.raises(ValidationError) as excinfo:
        task_act(task=task, action=action, user=people["agent"], data={"note": "x"})
    assert message_of(excinfo) == f"“{action}” is not allowed at “受理”."
    assert state_of(ticket) == before


def test_approval_node_does_not_take_submit(scope_a, wf_template, people):
    publish(wf_template)
    ticket = new_ticket(scope_a, wf_template, "900000.00")
    task_act(task=open_tasks(ticket)[0], action="submit", user=people["agent"], data={"note": "ok"})
    [gm] = open_tasks(ticket)
    before = state_of(ticket)
    with pytest.raises(ValidationError) as excinfo:
        task_act(task=gm, action="submit", user=people["gm"], data={"fee": "1.00"})
    assert message_of(excinfo) == "“submit” is not allowed at “总经理审批”."
    assert state_of(ticket) == before


@pytest.mark.parametrize("data", [{}, {"note": ""}, {"note": "   "}])
def test_missing_required_node_field(started, people, data):
    ticket, task = started
    before = state_of(ticket)
    with pytest.raises(ValidationError) as excinfo:
        task_act(task=task, action="submit", user=people["agent"], data=data)
    assert excinfo.value.message_dict == {"data": ["Fill in before submitting: 处理说明."]}
    assert state_of(ticket) == before


def test_required_field_missing_does_not_stop_a_transfer(started, people):
    """Required fields guard submit/approve only; a transfer with an empty note is fine."""
    _ticket, task = started
    task_act(task=task, action="transfer", user=people["agent"], transfer_to=people["agent"])
    assert Task.objects.get(pk=task.pk).status == TaskStatus.OPEN


@pytest.mark.parametrize("data, key, message", [
    ({"note": "ok", "fee": "10.00"}, "data", "These fields cannot be edited at this node: fee."),
    ({"note": "ok", "order_no": "B2"}, "data", "These fields cannot be edited at this node: order_no."),
    ({"note": "ok", "nope": 1}, "data", "These fields cannot be edited at this node: nope."),
])
def test_fields_the_node_does_not_let_one_edit(started, people, data, key, message):
    ticket, task = started
    before = state_of(ticket)
    with pytest.raises(ValidationError) as excinfo:
        task_act(task=task, action="submit", user=people["agent"], data=data)
    assert excinfo.value.message_dict == {key: [message]}
    assert state_of(ticket) == before


def test_bad_field_value_at_the_approval_changes_nothing(scope_a, wf_template, people):
    publish(wf_template)
    ticket = new_ticket(scope_a, wf_template, "900000.00")
    task_act(task=open_tasks(ticket)[0], action="submit", user=people["agent"], data={"note": "ok"})
    [gm] = open_tasks(ticket)
    before = state_of(ticket)
    with pytest.raises(ValidationError) as excinfo:
        task_act(task=gm, action="approve", user=people["gm"], data={"fee": "一千"})
    assert "fee" in excinfo.value.message_dict
    assert state_of(ticket) == before


def test_transfer_to_someone_outside_the_tenant(started, people, admin_b):
    ticket, task = started
    before = state_of(ticket)
    for target in (admin_b, None):
        with pytest.raises(ValidationError) as excinfo:
            task_act(task=task, action="transfer", user=people["agent"], transfer_to=target)
        assert excinfo.value.message_dict == {"transfer_to": ["Select a member of staff of this tenant."]}
    assert state_of(ticket) == before


def test_return_to_a_node_not_passed(scope_a, wf_template, people):
    publish(wf_template)
    ticket = new_ticket(scope_a, wf_template, "900000.00")
    task_act(task=open_tasks(ticket)[0], action="submit", user=people["agent"], data={"note": "ok"})
    [gm] = open_tasks(ticket)
    before = state_of(ticket)
    for target in ("fix", "review", "nowhere", "gm"):
        with pytest.raises(ValidationError) as excinfo:
            task_act(task=gm, action="return", user=people["gm"], target=target, comment="金额不对")
        assert excinfo.value.message_dict == {"target": ["Return to a node this ticket has already passed."]}
    assert state_of(ticket) == before


def test_act_on_a_ticket_closed_meanwhile(started, people):
    """Cancelling the ticket cancels its tasks: acting on one afterwards is refused."""
    from workflow.lifecycle import ticket_status_change

    ticket, task = started
    ticket_status_change(ticket=ticket, action="cancel", actor=people["agent"])
    before = state_of(ticket)
    with pytest.raises(ValidationError) as excinfo:
        task_act(task=task, action="submit", user=people["agent"], data={"note": "late"})
    assert message_of(excinfo) == "This task is already finished."
    assert state_of(ticket) == before


# --- publishing invalid graphs ----------------------------------------------------------

def _graph(nodes, transitions):
    return {"nodes": nodes, "transitions": transitions}


START, END = node("start", "start"), node("end", "end")
A = node("a", "task", handler=role("agent"))
B = node("b", "task", handler=role("engineer"))

INVALID = {
    "unreachable node": (
        _graph([START, A, B, END], [edge("start", "a"), edge("a", "end"), edge("b", "end")]),
        ["Node “b” cannot be reached from the start."]),
    "join without split": (
        _graph([START, A, B, node("j", "join"), END],
               [edge("start", "a"), edge("a", "b"), edge("a", "j"), edge("b", "j"), edge("j", "end")]),
        ["The join “j” has no split whose branches meet there."]),
    "join with one way in": (
        _graph([START, A, node("j", "join"), END], [edge("start", "a"), edge("a", "j"), edge("j", "end")]),
        ["The join “j” needs at least two incoming branches.", "The join “j” has no split whose branches meet there."]),
    "split with one branch": (
        _graph([START, node("s", "split"), A, END], [edge("start", "s"), edge("s", "a"), edge("a", "end")]),
        ["The split “s” needs at least two branches."]),
    "task without handler rule": (
        _graph([START, node("a", "task"), END], [edge("start", "a"), edge("a", "end")]),
        ["Node “a” has no handler rule."]),
    "unknown handler rule": (
        _graph([START, node("a", "task", handler={"rule": "psychic"}), END], [edge("start", "a"), edge("a", "end")]),
        ["Node “a”: unknown kind of handler rule “psychic”."]),
    "countersign without handlers": (
        _graph([START, node("cs", "countersign", handlers=[]), END], [edge("start", "cs"), edge("cs", "end")]),
        ["Node “cs” has no handler rule."]),
    "cycle with no exit": (
        _graph([START, A, B, END], [edge("start", "a"), edge("a", "b"), edge("b", "a"), edge("start", "end")]),
        ["The start node “start” needs exactly one way out and no way in.",
         "From node “a” no path reaches an end (a cycle with no exit).",
         "From node “b” no path reaches an end (a cycle with no exit)."]),
    "loop after start with no exit": (
        _graph([START, A, B, END], [edge("start", "a"), edge("a", "b"), edge("b", "a")]),
        ["Node “end” cannot be reached from the start.",
         "From node “start” no path reaches an end (a cycle with no exit).",
         "From node “a” no path reaches an end (a cycle with no exit).",
         "From node “b” no path reaches an end (a cycle with no exit)."]),
    "two starts": (
        _graph([START, node("start2", "start"), A, END],
               [edge("start", "a"), edge("start2", "a"), edge("a", "end")]),
        ["A workflow needs exactly one start node."]),
    "no end": (
        _graph([START, A], [edge("start", "a")]),
        ["A workflow needs at least one end node."]),
    "condition without default": (
        _graph([START, node("c", "condition"), A, B, END],
               [edge("start", "c"),
                edge("c", "a", condition={"field": "priority", "op": "=", "value": "high"}),
                edge("c", "b", condition={"field": "priority", "op": "=", "value": "low"}),
                edge("a", "end"), edge("b", "end")]),
        ["The branch “c” needs exactly one default way (without a condition)."]),
    "condition with two defaults": (
        _graph([START, node("c", "condition"), A, B, END],
               [edge("start", "c"), edge("c", "a"), edge("c", "b", default=True), edge("a", "end"),
                edge("b", "end")]),
        ["The branch “c” needs exactly one default way (without a condition)."]),
    "unknown field in node fields": (
        _graph([START, node("a", "task", handler=role("agent"),
                            fields={"visible": ["order_no"], "editable": ["salary"], "required": ["salary"]}), END],
               [edge("start", "a"), edge("a", "end")]),
        ["Node “a”: unknown fields ['salary'].", "Node “a”: unknown fields ['salary']."]),
    "unknown condition field": (
        _graph([START, node("c", "condition"), A, END],
               [edge("start", "c"), edge("c", "a", condition={"field": "salary", "op": ">", "value": 1}),
                edge("c", "end", default=True), edge("a", "end")]),
        ["Transition c → a: Unknown field “salary” in a condition."]),
    "unknown condition op": (
        _graph([START, node("c", "condition"), A, END],
               [edge("start", "c"), edge("c", "a", condition={"field": "priority", "op": "~=", "value": "x"}),
                edge("c", "end", default=True), edge("a", "end")]),
        ["Transition c → a: Unknown operator “~=” in a condition."]),
    "unknown auto action": (
        _graph([START, node("x", "auto", action="launch_rocket"), END], [edge("start", "x"), edge("x", "end")]),
        ["Node “x”: unknown automatic action “launch_rocket”."]),
    "unknown action at a node": (
        _graph([START, node("a", "task", handler=role("agent"), actions=["submit", "teleport"]), END],
               [edge("start", "a"), edge("a", "end")]),
        ["Node “a”: unknown actions ['teleport']."]),
    "approval without approve way": (
        _graph([START, A, node("ap", "approval", handler=role("admin")), END],
               [edge("start", "a"), edge("a", "ap"), edge("ap", "a", on="reject"), edge("a", "end")]),
        ["The approval “ap” needs a way out on approve."]),
    "transition to a missing node": (
        _graph([START, A, END], [edge("start", "a"), edge("a", "end"), edge("a", "ghost")]),
        ["A transition points at a node that does not exist: a → ghost."]),
    "node leads nowhere": (
        _graph([START, A, B, END], [edge("start", "a"), edge("a", "end"), edge("a", "b")]),
        ["Node “b” leads nowhere.", "From node “b” no path reaches an end (a cycle with no exit)."]),
    "bad key": (
        _graph([START, node("A B", "task", handler=role("agent")), END], [edge("start", "end")]),
        ["Node 2: the key must be lower-case letters, digits and _ (starting with a letter)."]),
    "duplicate key": (
        _graph([START, A, A, END], [edge("start", "a"), edge("a", "end")]),
        ["Node “a” appears twice."]),
    "bad time limit": (
        _graph([START, node("a", "task", handler=role("agent"), time_limit=0), END],
               [edge("start", "a"), edge("a", "end")]),
        ["Node “a”: the time limit is minutes between 1 and 525600."]),
    "not a graph": ({"nodes": "start → end"}, ["A workflow is {\"nodes\": […], \"transitions\": […]}."]),
}


@pytest.fixture
def published_workflow(wf_template, people):
    """A workflow with a valid version 1 published, and a ticket running on it."""
    workflow = publish(wf_template)
    return Workflow.objects.get(pk=workflow.pk)


@pytest.mark.parametrize("case", sorted(INVALID))
def test_publishing_an_invalid_graph(scope_a, wf_template, published_workflow, case):
    graph, messages = INVALID[case]
    ticket = new_ticket(scope_a, wf_template, "100.00")
    before_ticket = state_of(ticket)
    v1 = published_workflow.current_version
    if case == "not a graph":
        published_workflow.draft = copy.deepcopy(graph)  # the draft service refuses it itself, see below
        published_workflow.save(update_fields=["draft"])
    else:
        workflow_draft_set(workflow=published_workflow, graph=copy.deepcopy(graph))
    with pytest.raises(ValidationError) as excinfo:
        workflow_publish(workflow=published_workflow)
    assert_messages(excinfo, messages)
    workflow = Workflow.objects.get(pk=published_workflow.pk)
    assert workflow.current_version_id == v1.pk
    assert list(WorkflowVersion.objects.filter(workflow=workflow).values_list("number", flat=True)) == [1]
    assert state_of(ticket) == before_ticket
    # New tickets still start on version 1.
    assert Run.objects.get(ticket=new_ticket(scope_a, wf_template, "1.00")).version_id == v1.pk


@pytest.mark.parametrize("case", sorted(INVALID))
def test_first_publish_of_an_invalid_graph_writes_no_version(wf_template, people, case):
    graph, messages = INVALID[case]
    workflow = workflow_create(template=wf_template, name="坏流程")
    workflow.draft = copy.deepcopy(graph)
    workflow.save(update_fields=["draft"])
    with pytest.raises(ValidationError) as excinfo:
        workflow_publish(workflow=workflow)
    assert_messages(excinfo, messages)
    assert Workflow.objects.get(pk=workflow.pk).current_version_id is None
    assert not WorkflowVersion.objects.filter(workflow=workflow).exists()


@pytest.mark.parametrize("graph", [None, [], "x", {"nodes": {}}, {"nodes": [], "transitions": "x"}])
def test_draft_that_is_not_a_graph(wf_template, graph):
    workflow = workflow_create(template=wf_template, name="坏流程")
    with pytest.raises(ValidationError) as excinfo:
        workflow_draft_set(workflow=workflow, graph=graph)
    assert excinfo.value.message_dict == {"graph": ["A workflow is {\"nodes\": […], \"transitions\": […]}."]}
    assert Workflow.objects.get(pk=workflow.pk).draft == {"nodes": [], "transitions": []}


def test_republishing_the_same_graph(published_workflow):
    with pytest.raises(ValidationError) as excinfo:
        workflow_publish(workflow=published_workflow)
    assert excinfo.value.message_dict == {"graph": ["Nothing changed since version 1."]}
    assert WorkflowVersion.objects.filter(workflow=published_workflow).count() == 1


def test_ticket_in_flight_stays_on_its_version(scope_a, wf_template, published_workflow, people):
    """Not bad input, but its guard: a new version does not move tickets already running."""
    ticket = new_ticket(scope_a, wf_template, "100.00")
    graph = copy.deepcopy(GRAPH)
    graph["nodes"][1]["name"] = "受理v2"
    workflow_draft_set(workflow=published_workflow, graph=graph)
    v2 = workflow_publish(workflow=published_workflow)
    assert Run.objects.get(ticket=ticket).version.number == 1
    assert open_tasks(ticket)[0].node_name == "受理"
    assert Run.objects.get(ticket=new_ticket(scope_a, wf_template, "1.00")).version_id == v2.pk
