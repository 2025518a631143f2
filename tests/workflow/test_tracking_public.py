"""What the customer sees on the tracking page of a workflow ticket (issue 14, item 2): where the
request is, never the workflow's name or version, the handlers' names, their comments at a step or
the classification rule that filed it; a link to keep and its QR code."""

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

from tests.factories import CustomerFactory
from tests.workflow.conftest import edge, node, role
from tickets.models import TimelineEvent
from tickets.services import ticket_intake
from tickets.timeline import event_public_text
from workflow.engine import task_act
from workflow.models import Task
from workflow.services import workflow_create, workflow_draft_set, workflow_publish

pytestmark = pytest.mark.django_db

GRAPH = {
    "nodes": [node("start", "start"),
              node("check", "task", "经理审核", handler=role("manager"), public=False),
              node("fix", "task", "上门维修", handler=role("engineer")),
              node("end", "end")],
    "transitions": [edge("start", "check"), edge("check", "fix"), edge("fix", "end")],
}


@pytest.fixture
def ticket(scope_a, wf_template, people):
    workflow = workflow_create(template=wf_template, name="内部维修流程")
    workflow_draft_set(workflow=workflow, graph=GRAPH)
    workflow_publish(workflow=workflow)
    people["manager"].first_name = "钱审批"
    people["manager"].save()
    people["engineer"].first_name = "孙师傅"
    people["engineer"].save()
    ticket = ticket_intake(tenant=scope_a, source="phone", template=wf_template, data={"order_no": "A-1"},
                           customer=CustomerFactory(tenant=scope_a))
    check = Task.objects.get(ticket=ticket, node="check")
    task_act(task=check, action="submit", user=check.assignee, comment="内部意见：此客户难缠")
    return ticket


def _track(ticket):
    return Client().get(reverse("ticket-track", args=[ticket.tracking_token]), HTTP_ACCEPT_LANGUAGE="zh-hans")


def test_tracking_shows_the_step_but_no_internal_names(ticket):
    response = _track(ticket)
    body = response.content.decode()
    assert response.status_code == 200
    assert "上门维修" in body  # where the request is now
    # The workflow's name and version: the staff wording of its start ("… v1 …") is nowhere (a bare
    # "v1" could sit in the random tracking token).
    started = TimelineEvent.objects.get(ticket=ticket, code="workflow.started")
    with translation.override("zh-hans"):
        assert started.text not in body
    for internal in ("内部维修流程", "钱审批", "孙师傅", "内部意见", "wf_manager", "wf_engineer", "经理审核"):
        assert internal not in body, internal


def test_finished_ticket_reads_resolved_then_closed(ticket):
    fix = Task.objects.get(ticket=ticket, node="fix")
    task_act(task=fix, action="submit", user=fix.assignee, comment="更换了压缩机")
    body = _track(ticket).content.decode()
    assert "更换了压缩机" not in body and "孙师傅" not in body
    with translation.override("zh-hans"):
        assert str(translation.gettext("Your request has been resolved.")) in body
    steps = body[body.index('data-testid="track-steps"'):]
    assert steps.index("已解决") < steps.index("已关闭")


def test_tracking_page_offers_a_copyable_link_and_a_qr_code(ticket):
    body = _track(ticket).content.decode()
    link = "http://testserver" + reverse("ticket-track", args=[ticket.tracking_token])
    assert f'value="{link}"' in body and "data-copy" in body
    assert "<svg" in body and 'class="track-qr"' in body
    assert "js/copy_link.js" in body and "<script>" not in body  # no inline script (CSP)


def test_approval_steps_are_internal_by_default(scope_a, wf_template, people):
    graph = {"nodes": [node("start", "start"), node("ok", "approval", "总监审批", handler=role("manager")),
                       node("end", "end")],
             "transitions": [edge("start", "ok"), edge("ok", "end", on="approve"), edge("ok", "end", on="reject")]}
    workflow = workflow_create(template=wf_template, name="审批")
    workflow_draft_set(workflow=workflow, graph=graph)
    workflow_publish(workflow=workflow)
    ticket = ticket_intake(tenant=scope_a, source="phone", template=wf_template, data={},
                           customer=CustomerFactory(tenant=scope_a))
    assert "总监审批" not in _track(ticket).content.decode()


def test_public_setting_must_be_a_boolean(scope_a, wf_template):
    from django.core.exceptions import ValidationError

    graph = {**GRAPH, "nodes": [dict(n, public="yes") if n["key"] == "fix" else n for n in GRAPH["nodes"]]}
    workflow = workflow_create(template=wf_template, name="坏")
    workflow_draft_set(workflow=workflow, graph=graph)
    with pytest.raises(ValidationError, match="fix"):
        workflow_publish(workflow=workflow)


def test_rule_name_stays_with_staff():
    params = {"source": "web", "rule": "差评关键词", "words": "难吃"}
    public = event_public_text(code="ticket.created_by_rule", params=params, message="")
    assert public and "差评关键词" not in public and "难吃" not in public


def test_staff_only_codes_have_no_public_text():
    for code in ("workflow.started", "workflow.returned_to", "task.acted", "task.cohandled"):
        assert event_public_text(code=code, params={"node": "x", "names": ["甲"], "who": "乙"}, message="m") is None
    assert event_public_text(code="", params=None, message="客户留言") == "客户留言"
