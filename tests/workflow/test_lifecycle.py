"""The one owner of the lifecycle (workflow/lifecycle.py) and the engine hooks: merge, reassign,
cancel and close by any path end or move the run's tasks; hooks are called inside the engine's
transaction and a failing hook rolls the whole action back with a clear error."""

import pytest
from django.core.exceptions import ValidationError

from scrm.models import Role
from tests.conftest import make_member
from tests.workflow.conftest import edge, node, role
from tests.workflow.test_engine import GRAPH, new_ticket, open_tasks, publish
from tickets.models import Status, Ticket, TimelineEvent
from tickets.services import ticket_intake, ticket_split
from workflow import hooks
from workflow.engine import task_act
from workflow.lifecycle import ticket_assign, ticket_merge, ticket_status_actions, ticket_status_change
from workflow.models import Run, Task, TaskStatus, TokenState
from workflow.selectors import tasks_mine

pytestmark = pytest.mark.django_db


@pytest.fixture
def calls():
    """Record every call of the journey's hooks as (name, kwargs) for the duration of a test
    (not the fine-grained status_changed / handler_acted, which tests/workflow/test_sla.py covers)."""
    seen = []
    registered = []
    for name in hooks.HOOK_NAMES[:5]:
        def record(_name=name, **kwargs):
            seen.append((_name, kwargs))
        hooks.workflow_hook(name)(record)
        registered.append((name, record))
    yield seen
    for name, func in registered:
        hooks.hook_unregister(name, func)


@pytest.fixture
def failing_hook():
    """Register a hook that raises a plain error; yields the name to register it under."""
    registered = []

    def install(name):
        def boom(**_):
            raise RuntimeError("parts service down")
        hooks.workflow_hook(name)(boom)
        registered.append((name, boom))

    yield install
    for name, func in registered:
        hooks.hook_unregister(name, func)


def names(calls):
    return [name for name, _kwargs in calls]


# --- merge --------------------------------------------------------------------------------

def test_merge_stops_the_source_workflow_and_its_tasks_leave_every_queue(scope_a, wf_template, people, calls):
    publish(wf_template)
    source = new_ticket(scope_a, wf_template, "100.00")
    target = new_ticket(scope_a, wf_template, "100.00")
    [task] = open_tasks(source)
    assert list(tasks_mine(user=people["agent"]).filter(ticket=source)) == [task]
    calls.clear()

    ticket_merge(source=source, target=target, actor=people["agent"])

    source = Ticket.objects.get(pk=source.pk)
    assert (source.status, source.merged_into_id) == (Status.CLOSED, target.pk)
    assert open_tasks(source) == []
    assert Task.objects.get(pk=task.pk).status == TaskStatus.CANCELLED
    run = Run.objects.get(ticket=source)
    assert run.is_finished and run.finished_at is not None
    assert not run.tokens.filter(state__in=[TokenState.ACTIVE, TokenState.WAITING]).exists()
    assert not tasks_mine(user=people["agent"]).filter(ticket=source).exists()
    assert names(calls) == ["run_cancelled", "ticket_closed"]
    assert calls[0][1]["reason"] == "merge"
    # The target's own workflow is untouched.
    assert len(open_tasks(target)) == 1


def test_merge_into_itself_or_a_cancelled_ticket_changes_nothing(scope_a, wf_template, people):
    publish(wf_template)
    source = new_ticket(scope_a, wf_template, "100.00")
    cancelled = new_ticket(scope_a, wf_template, "100.00")
    ticket_status_change(ticket=cancelled, action="cancel", actor=people["agent"])
    events = TimelineEvent.objects.filter(ticket=source).count()
    for target in (source, cancelled):
        with pytest.raises(ValidationError):
            ticket_merge(source=source, target=target, actor=people["agent"])
    source = Ticket.objects.get(pk=source.pk)
    assert source.status == Status.IN_PROGRESS and source.merged_into_id is None
    assert len(open_tasks(source)) == 1
    assert TimelineEvent.objects.filter(ticket=source).count() == events


# --- reassign -----------------------------------------------------------------------------

def test_reassigning_a_ticket_transfers_its_live_task(scope_a, wf_template, people):
    publish(wf_template)
    ticket = new_ticket(scope_a, wf_template, "100.00")
    [task] = open_tasks(ticket)
    other_agent = make_member(scope_a, Role.AGENT, "wf_agent2")

    ticket_assign(ticket=ticket, assignee=other_agent, actor=people["manager"])

    task.refresh_from_db()
    assert task.assignee == other_agent and task.status == TaskStatus.OPEN
    assert Ticket.objects.get(pk=ticket.pk).assignee == other_agent
    assert list(tasks_mine(user=other_agent)) == [task]
    assert not tasks_mine(user=people["agent"]).exists()
    event = TimelineEvent.objects.filter(ticket=ticket).order_by("-id").first()
    assert event.kind == "assigned"
    assert {c["field"] for c in event.changes} == {"assignee", "handler"}
    assert "受理" in event.text
    # The new holder can act on it; the old one no longer can.
    with pytest.raises(ValidationError):
        task_act(task=task, action="submit", user=people["agent"], data={"note": "x"})
    task_act(task=task, action="submit", user=other_agent, data={"note": "已受理"})


def test_reassigning_without_a_workflow_sets_the_assignee_only(scope_a, wf_template, people):
    ticket = ticket_intake(tenant=scope_a, source="phone", template=wf_template, data={}, partial=True)
    ticket_assign(ticket=ticket, assignee=people["engineer"], actor=people["agent"])
    assert Ticket.objects.get(pk=ticket.pk).assignee == people["engineer"]
    assert not Task.objects.filter(ticket=ticket).exists()


@pytest.mark.parametrize("who", ["other_tenant", "finance", "none_with_task"])
def test_reassigning_to_someone_who_cannot_hold_it_changes_nothing(scope_a, tenant_b, wf_template, people, who):
    publish(wf_template)
    ticket = new_ticket(scope_a, wf_template, "100.00")
    [task] = open_tasks(ticket)
    events = TimelineEvent.objects.filter(ticket=ticket).count()
    assignee = {"other_tenant": make_member(tenant_b, Role.AGENT, "b_agent"), "finance": people["finance"],
                "none_with_task": None}[who]
    with pytest.raises(ValidationError) as excinfo:
        ticket_assign(ticket=ticket, assignee=assignee, actor=people["manager"])
    assert "assignee" in excinfo.value.message_dict
    task.refresh_from_db()
    assert task.assignee == people["agent"]
    assert Ticket.objects.get(pk=ticket.pk).assignee == people["agent"]
    assert TimelineEvent.objects.filter(ticket=ticket).count() == events


# --- cancel and close by any path ---------------------------------------------------------

@pytest.mark.parametrize("action", ["cancel", "close"])
def test_cancel_or_close_by_hand_ends_the_run(scope_a, wf_template, people, calls, action):
    publish(wf_template)
    ticket = new_ticket(scope_a, wf_template, "100.00")
    assert ticket_status_actions(ticket=Ticket.objects.select_related("workflow_run").get(pk=ticket.pk)) == [
        "close", "cancel"]
    calls.clear()
    ticket_status_change(ticket=ticket, action=action, actor=people["manager"], note="客户撤销")
    ticket = Ticket.objects.get(pk=ticket.pk)
    assert ticket.status == (Status.CANCELLED if action == "cancel" else Status.CLOSED)
    assert open_tasks(ticket) == []
    assert Run.objects.get(ticket=ticket).is_finished
    expected = ["run_cancelled"] + (["ticket_closed"] if action == "close" else [])
    assert names(calls) == expected
    event = TimelineEvent.objects.filter(ticket=ticket).order_by("-id").first()
    assert "客户撤销" in event.text


def test_other_status_moves_are_refused_while_the_workflow_runs(scope_a, wf_template, people):
    publish(wf_template)
    ticket = new_ticket(scope_a, wf_template, "100.00")
    events = TimelineEvent.objects.filter(ticket=ticket).count()
    with pytest.raises(ValidationError):
        ticket_status_change(ticket=ticket, action="resolve", actor=people["manager"])
    assert Ticket.objects.get(pk=ticket.pk).status == Status.IN_PROGRESS
    assert len(open_tasks(ticket)) == 1
    assert TimelineEvent.objects.filter(ticket=ticket).count() == events


def test_close_without_a_workflow_tells_the_ticket_closed_hook(scope_a, wf_template, people, calls):
    ticket = ticket_intake(tenant=scope_a, source="phone", template=wf_template, data={}, partial=True)
    ticket_status_change(ticket=ticket, action="close", actor=people["agent"])
    assert names(calls) == ["ticket_closed"]
    assert calls[0][1]["run"] is None and calls[0][1]["ticket"].pk == ticket.pk


def test_the_close_action_on_a_task_ends_the_run_once(scope_a, wf_template, people, calls):
    graph = {**GRAPH, "nodes": [dict(n, actions=["close"]) if n["key"] == "accept" else n for n in GRAPH["nodes"]]}
    publish(wf_template, graph)
    ticket = new_ticket(scope_a, wf_template, "100.00")
    calls.clear()
    task_act(task=open_tasks(ticket)[0], action="close", user=people["agent"])
    assert Ticket.objects.get(pk=ticket.pk).status == Status.CLOSED
    assert names(calls) == ["run_cancelled", "ticket_closed"]


# --- engine hooks -------------------------------------------------------------------------

def test_hooks_follow_the_ticket_through_the_graph(scope_a, wf_template, people, calls):
    publish(wf_template)
    ticket = new_ticket(scope_a, wf_template, "900000.00")
    assert names(calls) == ["node_entered"]
    entered = calls[0][1]
    assert entered["node"]["key"] == "accept" and [t.node for t in entered["tasks"]] == ["accept"]
    assert entered["returned"] is False
    calls.clear()
    task_act(task=open_tasks(ticket)[0], action="submit", user=people["agent"], data={"note": "好"})
    assert names(calls) == ["task_completed", "node_entered"]
    assert calls[0][1]["action"] == "submit" and calls[1][1]["node"]["key"] == "gm"
    calls.clear()
    task_act(task=open_tasks(ticket)[0], action="reject", user=people["gm"], comment="请核实", target="accept")
    assert names(calls) == ["task_returned", "node_entered"]
    assert calls[0][1]["target"] == "accept" and calls[1][1]["returned"] is True
    calls.clear()
    task_act(task=open_tasks(ticket)[0], action="submit", user=people["agent"], data={"note": "好"})
    task_act(task=open_tasks(ticket)[0], action="approve", user=people["gm"], data={"fee": "88.00"})
    calls.clear()
    task_act(task=open_tasks(ticket)[0], action="submit", user=people["engineer"])
    assert names(calls) == ["task_completed", "ticket_closed"]
    assert calls[1][1]["run"].is_finished


def test_a_failing_hook_rolls_the_whole_act_back_with_a_clear_error(scope_a, wf_template, people, failing_hook):
    publish(wf_template)
    ticket = new_ticket(scope_a, wf_template, "100.00")
    [task] = open_tasks(ticket)
    events = TimelineEvent.objects.filter(ticket=ticket).count()
    failing_hook("node_entered")
    with pytest.raises(ValidationError) as excinfo:
        task_act(task=task, action="submit", user=people["agent"], data={"note": "已受理"})
    assert "node_entered" in " ".join(excinfo.value.messages)
    task.refresh_from_db()
    assert task.status == TaskStatus.OPEN
    ticket = Ticket.objects.get(pk=ticket.pk)
    assert ticket.data.get("note") is None
    assert TimelineEvent.objects.filter(ticket=ticket).count() == events
    assert [t.node for t in open_tasks(ticket)] == ["accept"]


def test_a_failing_hook_on_intake_creates_no_ticket(scope_a, wf_template, people, failing_hook):
    publish(wf_template)
    failing_hook("node_entered")
    before = Ticket.objects.count()
    with pytest.raises(ValidationError):
        new_ticket(scope_a, wf_template, "100.00")
    assert Ticket.objects.count() == before
    assert not Task.objects.exists()


def test_a_failing_ticket_closed_hook_keeps_the_ticket_open(scope_a, wf_template, people, failing_hook):
    publish(wf_template)
    ticket = new_ticket(scope_a, wf_template, "100.00")
    failing_hook("ticket_closed")
    with pytest.raises(ValidationError):
        ticket_status_change(ticket=ticket, action="close", actor=people["manager"])
    ticket = Ticket.objects.get(pk=ticket.pk)
    assert ticket.status == Status.IN_PROGRESS
    assert len(open_tasks(ticket)) == 1
    assert not Run.objects.get(ticket=ticket).is_finished


def test_unknown_hook_name_is_refused():
    with pytest.raises(ValueError, match="unknown workflow hook"):
        hooks.workflow_hook("node_left")


# --- split --------------------------------------------------------------------------------

def test_a_split_child_starts_its_own_workflow(scope_a, wf_template, people):
    publish(wf_template)
    ticket = new_ticket(scope_a, wf_template, "100.00")
    [child] = ticket_split(ticket=ticket, actor=people["agent"], parts=[{"title": "上门安装"}])
    assert [t.node for t in open_tasks(child)] == ["accept"]
    assert Ticket.objects.get(pk=child.pk).status == Status.IN_PROGRESS


def test_a_simple_graph_without_human_nodes_closes_at_once(scope_a, wf_template, calls):
    publish(wf_template, {"nodes": [node("start", "start"), node("end", "end")],
                          "transitions": [edge("start", "end")]})
    ticket = new_ticket(scope_a, wf_template, "1.00")
    assert Ticket.objects.get(pk=ticket.pk).status == Status.CLOSED
    assert names(calls) == ["ticket_closed"]


__all__ = ["role"]


# --- through the ticket page --------------------------------------------------------------

def test_the_ticket_page_assigns_with_the_task_and_refuses_finance(scope_a, wf_template, people, client_for):
    from django.urls import reverse

    publish(wf_template)
    ticket = new_ticket(scope_a, wf_template, "100.00")
    [task] = open_tasks(ticket)
    manager = client_for(people["manager"])
    url = reverse("ticket-action", args=[ticket.pk, "assign"])

    refused = manager.post(url, {"assignee": people["finance"].pk})
    assert refused.status_code == 400
    assert "请选择本企业负责处理工单的员工。" in refused.content.decode()
    task.refresh_from_db()
    assert task.assignee == people["agent"]

    response = manager.post(url, {"assignee": people["engineer"].pk})
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.assignee == people["engineer"]
    page = client_for(people["engineer"]).get(reverse("ticket-detail", args=[ticket.pk]))
    assert page.status_code == 200


def test_the_ticket_page_offers_close_and_cancel_while_the_workflow_runs(scope_a, wf_template, people, client_for):
    from django.urls import reverse

    publish(wf_template)
    ticket = new_ticket(scope_a, wf_template, "100.00")
    page = client_for(people["manager"]).get(reverse("ticket-detail", args=[ticket.pk])).content.decode()
    assert 'value="cancel"' in page and 'value="close"' in page
    assert 'value="resolve"' not in page


def test_the_engine_stores_why_a_handler_was_picked_and_the_panel_shows_it(scope_a, wf_template, people,
                                                                             client_for):
    from django.urls import reverse

    publish(wf_template)
    ticket = new_ticket(scope_a, wf_template, "100.00")
    [task] = open_tasks(ticket)
    picked = [r for r in task.handler_reasons if r["picked"]]
    assert [r["user_id"] for r in picked] == [people["agent"].pk]
    assert all(r["rule"] == "role" for r in task.handler_reasons)
    page = client_for(people["manager"]).get(reverse("workflow-ticket-panel", args=[ticket.pk]),
                                             HTTP_HX_REQUEST="true").content.decode()
    assert 'data-testid="handler-reasons"' in page and "wf_agent" in page
    # A return goes back to the person who did the node: no rule chose them, so no reasons.
    task_act(task=task, action="submit", user=people["agent"], data={"note": "好"})
    for review in open_tasks(ticket):
        assert review.handler_reasons and review.node == "review"


# --- the workload roll-up -----------------------------------------------------------------

def test_the_workload_roll_up_follows_every_path(scope_a, wf_template, people):
    from workflow.lifecycle import workload_recount
    from workflow.models import Workload

    publish(wf_template)
    a = new_ticket(scope_a, wf_template, "900000.00")
    b = new_ticket(scope_a, wf_template, "100.00")
    c = new_ticket(scope_a, wf_template, "100.00")
    assert Workload.objects.get(user=people["agent"]).open_tasks == 3
    task_act(task=open_tasks(a)[0], action="submit", user=people["agent"], data={"note": "好"})  # → gm
    task_act(task=open_tasks(a)[0], action="reject", user=people["gm"], comment="退回", target="accept")
    ticket_assign(ticket=b, assignee=people["engineer"], actor=people["manager"])  # transfer
    ticket_status_change(ticket=c, action="cancel", actor=people["manager"])
    ticket_merge(source=b, target=a, actor=people["manager"])
    loads = dict(Workload.objects.values_list("user__username", "open_tasks"))
    assert loads["wf_agent"] == 1 and loads["wf_engineer"] == 0 and loads["wf_gm"] == 0
    assert workload_recount() == {}


def test_the_role_rule_picks_the_least_loaded_by_the_roll_up(scope_a, wf_template, people):
    from workflow.models import Workload

    publish(wf_template)
    for _ in range(3):  # the only agent takes all three
        new_ticket(scope_a, wf_template, "1.00")
    assert Workload.objects.get(user=people["agent"]).open_tasks == 3
    other = make_member(scope_a, Role.AGENT, "wf_agent2")
    [task] = open_tasks(new_ticket(scope_a, wf_template, "1.00"))
    assert task.assignee == other
    assert [r["params"].get("load") for r in task.handler_reasons if r["user_id"] == people["agent"].pk] == [3]


def test_a_return_tells_the_handler_the_reason_typed(scope_a, wf_template, people):
    from notifications.models import Notification

    publish(wf_template)
    ticket = new_ticket(scope_a, wf_template, "900000.00")
    task_act(task=open_tasks(ticket)[0], action="submit", user=people["agent"], data={"note": "客户急"})
    task_act(task=open_tasks(ticket)[0], action="reject", user=people["gm"], comment="金额不对，请核实",
             target="accept")
    [row] = Notification.objects.filter(ticket=ticket, event="ticket_returned", channel="inapp")
    assert row.user == people["agent"]
    assert "金额不对，请核实" in row.body and "无说明" not in row.body
