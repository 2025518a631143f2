"""The workflow's create_child action: the child ticket starts its own template's workflow, the
same path split children take (tickets.extensions.on_ticket_created → workflow_start)."""

import pytest

from tests.factories import CustomerFactory, published_template
from tests.workflow.conftest import edge, node, role
from tickets.models import Ticket
from tickets.services import ticket_intake
from workflow.models import Run, Task, TaskStatus
from workflow.services import workflow_create, workflow_draft_set, workflow_publish

pytestmark = pytest.mark.django_db


def _publish(template, graph):
    workflow = workflow_create(template=template, name=f"{template.name}流程")
    workflow_draft_set(workflow=workflow, graph=graph)
    workflow_publish(workflow=workflow)


@pytest.mark.parametrize("child_slug", ["install", ""])
def test_create_child_starts_the_childs_workflow(scope_a, engineer_a, child_slug):
    parent_t = published_template(scope_a, name="报修", slug="repair", prefix="WX")
    child_t = published_template(scope_a, name="安装", slug="install", prefix="AZ", category_code="install",
                                 category_name="安装")
    _publish(parent_t, {"nodes": [
        node("start", "start"), node("child", "auto", "派生安装单", action="create_child",
                                     params={"template": child_slug, "title": "上门安装"}),
        node("fix", "task", "处理", handler=role("engineer")), node("end", "end")],
        "transitions": [edge("start", "child"), edge("child", "fix"), edge("fix", "end")]})
    _publish(child_t, {"nodes": [
        node("start", "start"), node("go", "task", "安装", handler=role("engineer")), node("end", "end")],
        "transitions": [edge("start", "go"), edge("go", "end")]})
    if not child_slug:  # the child shares the parent's template (and workflow)
        child_t = parent_t
    parent = ticket_intake(tenant=scope_a, source="phone", template=parent_t, data={"order_no": "WD20261201"},
                           customer=CustomerFactory(tenant=scope_a))
    child = Ticket.objects.get(parent=parent)
    assert child.template_id == child_t.pk
    assert Run.objects.filter(ticket=child).count() == 1
    tasks = Task.objects.filter(ticket=child, status=TaskStatus.OPEN)
    assert [t.node for t in tasks] == (["go"] if child_slug else ["fix"])
    assert child.title == "上门安装"


def test_create_child_with_an_unknown_template_is_refused_at_publish(scope_a):
    from django.core.exceptions import ValidationError

    parent_t = published_template(scope_a, name="报修", slug="repair", prefix="WX")
    workflow = workflow_create(template=parent_t, name="报修流程")
    workflow_draft_set(workflow=workflow, graph={"nodes": [
        node("start", "start"), node("child", "auto", "派生", action="create_child", params={"template": "nope"}),
        node("end", "end")], "transitions": [edge("start", "child"), edge("child", "end")]})
    with pytest.raises(ValidationError) as exc:
        workflow_publish(workflow=workflow)
    assert "nope" in str(exc.value)
    workflow.refresh_from_db()
    assert workflow.current_version_id is None
