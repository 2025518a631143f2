"""Approval and countersign nodes ask for a verdict — 同意 / 驳回, a reason required for 驳回 —
instead of submit/return (issue 14 item 4): the policy that says so, the engine that refuses a
驳回 without a reason (nothing written), the ticket panel's buttons, and the designer's signer
labels."""

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from tests.workflow.conftest import edge, node, role
from tests.workflow.test_engine import new_ticket, open_tasks, publish
from tests.workflow.test_views import act_data, url
from tickets.models import Ticket, TimelineEvent
from workflow.engine import task_act, task_allowed_actions
from workflow.models import TaskStatus, Workflow
from workflow.policy import task_policy

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.workflow.test_views")]

# 受理 → 会签 (two managers) → 总经理审批 → end; 审批's 驳回 follows its reject way back to 受理.
GRAPH = {
    "nodes": [
        node("start", "start"),
        node("accept", "task", "受理", handler=role("agent"),
             fields={"visible": [], "editable": ["note"], "required": []}),
        node("review", "countersign", "经理会签", handlers=[role("manager")], mode="all",
             actions=["submit", "return"], fields={"visible": [], "editable": ["note"], "required": []}),
        node("gm", "approval", "总经理审批", handler=role("admin")),
        node("end", "end"),
    ],
    "transitions": [edge("start", "accept"), edge("accept", "review"), edge("review", "gm"),
                    edge("gm", "end", on="approve"), edge("gm", "accept", on="reject")],
}


def at_review(scope, template, people):
    publish(template, GRAPH)
    ticket = new_ticket(scope, template, "100.00")
    task_act(task=open_tasks(ticket)[0], action="submit", user=people["agent"], data={"note": "已受理"})
    return ticket, open_tasks(ticket)


def test_policy_offers_the_verdict_at_signoff_nodes():
    sign = {"kind": "countersign", "actions": ["submit", "return"]}
    policy = task_policy(node=sign, is_open=True, user_id=1, holders=[1], return_targets=["accept"])
    assert policy.actions == ("approve", "reject")
    assert policy.canonical("submit") == "approve" and policy.canonical("return") == "reject"
    assert policy.needs_reason("reject") and policy.needs_reason("return") and not policy.needs_reason("approve")
    approval = {"kind": "approval", "actions": ["approve", "reject", "return", "transfer"]}
    assert task_policy(node=approval, is_open=True, user_id=1, holders=[1],
                       return_targets=["accept"]).actions == ("approve", "reject", "transfer")
    # Nowhere to go back to and no reject way out: no 驳回.
    assert task_policy(node=sign, is_open=True, user_id=1, holders=[1], return_targets=[]).actions == ("approve",)
    # A task node keeps submit/return and has no verdict.
    task = {"kind": "task", "actions": ["submit", "return", "approve"]}
    policy = task_policy(node=task, is_open=True, user_id=1, holders=[1], return_targets=["a"])
    assert policy.actions == ("submit", "return") and policy.canonical("return") == "return"


def test_countersign_signers_agree_and_the_ticket_moves_on(scope_a, wf_template, people):
    ticket, (first, second) = at_review(scope_a, wf_template, people)
    assert task_allowed_actions(first, first.assignee) == ["approve", "reject"]
    task_act(task=first, action="approve", user=first.assignee)
    assert {t.node for t in open_tasks(ticket)} == {"review"}
    task_act(task=second, action="submit", user=second.assignee)  # the old spelling still signs
    [gm] = open_tasks(ticket)
    assert gm.node == "gm"
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.action, second.action) == ("approve", "approve")


@pytest.mark.parametrize("comment", ["", "   "])
def test_reject_without_a_reason_is_refused_and_writes_nothing(scope_a, wf_template, people, comment):
    ticket, (first, second) = at_review(scope_a, wf_template, people)
    events = TimelineEvent.objects.filter(ticket=ticket).count()
    data_before = Ticket.objects.get(pk=ticket.pk).data
    for action in ("reject", "return"):  # return is 驳回 here too
        with translation.override("zh-hans"), pytest.raises(ValidationError) as excinfo:
            task_act(task=first, action=action, user=first.assignee, comment=comment, data={"note": "改了"})
        assert "驳回原因" in str(excinfo.value.message_dict["comment"])
    assert TimelineEvent.objects.filter(ticket=ticket).count() == events
    assert Ticket.objects.get(pk=ticket.pk).data == data_before
    assert {t.pk for t in open_tasks(ticket)} == {first.pk, second.pk}


def test_one_countersign_reject_sends_the_ticket_back_with_its_reason(scope_a, wf_template, people):
    ticket, (first, second) = at_review(scope_a, wf_template, people)
    task_act(task=first, action="reject", user=first.assignee, comment="报价缺少明细")
    [back] = open_tasks(ticket)
    assert (back.node, back.assignee, back.is_returned) == ("accept", people["agent"], True)
    second.refresh_from_db()
    assert second.status == TaskStatus.CANCELLED  # 一票否决: the other signer's task ends
    assert TimelineEvent.objects.filter(ticket=ticket, message="报价缺少明细").exists()


def test_approval_reject_follows_its_reject_way(scope_a, wf_template, people):
    ticket, (first, second) = at_review(scope_a, wf_template, people)
    task_act(task=first, action="approve", user=first.assignee)
    task_act(task=second, action="approve", user=second.assignee)
    [gm] = open_tasks(ticket)
    with pytest.raises(ValidationError):
        task_act(task=gm, action="reject", user=people["gm"])
    assert open_tasks(ticket) == [gm]
    task_act(task=gm, action="reject", user=people["gm"], comment="金额超预算")
    [back] = open_tasks(ticket)
    assert back.node == "accept"


def test_panel_shows_agree_and_reject_and_refuses_reject_without_reason(tenant_a, scope_a, wf_template, people,
                                                                         client_for):
    ticket, (first, _second) = at_review(scope_a, wf_template, people)
    client = client_for(first.assignee)  # Chinese, as the people using it read it
    page = client.get(url("workflow-ticket-panel", ticket.pk)).content.decode()
    assert 'value="approve"' in page and 'value="reject"' in page
    assert 'value="submit"' not in page and 'value="return"' not in page
    assert "同意" in page and "驳回" in page and "驳回时必填" in page
    events = TimelineEvent.objects.filter(ticket=ticket).count()
    response = client.post(url("workflow-task-act", first.pk), act_data("reject", note="x"))
    assert response.status_code == 400
    assert "请填写驳回原因" in response.content.decode()
    first.refresh_from_db()
    assert first.status == TaskStatus.OPEN
    assert TimelineEvent.objects.filter(ticket=ticket).count() == events
    response = client.post(url("workflow-task-act", first.pk), act_data("reject", _comment="现场照片不清楚"))
    assert response.status_code == 302
    assert [t.node for t in open_tasks(ticket)] == ["accept"]


def test_designer_labels_countersign_slots_as_signers(tenant_a, scope_a, wf_template, people, client_for):
    publish(wf_template, GRAPH)
    workflow = Workflow.objects.get(template=wf_template)
    client = client_for(people["manager"])
    page = client.get(url("workflow-node", workflow.pk, key="review")).content.decode()
    assert "会签人 1" in page and "会签人 2" in page
    listing = client.get(url("workflow-designer", workflow.pk)).content.decode()
    assert "会签人 1：" in listing
