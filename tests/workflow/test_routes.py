"""Every workflow route, walked as another tenant's admin (404 for every object, nothing of
tenant A in the lists), as anonymous (sent to login), and as a role without the permission."""

import pytest
from django.urls import include, path, reverse

from scrm.models import Role
from tests.conftest import make_member
from tests.workflow.conftest import edge, node, role
from tests.workflow.test_views import new_ticket, open_tasks
from workflow import urls as workflow_urls
from workflow.services import workflow_create, workflow_draft_set, workflow_publish

urlpatterns = [path("", include("workflow.urls")), path("", include("scrm.urls"))]
pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

GRAPH = {"nodes": [node("start", "start"), node("work", "task", "甲节点", handler=role("engineer")),
                   node("end", "end")],
         "transitions": [edge("start", "work"), edge("work", "end")]}


@pytest.fixture
def world(tenant_a, scope_a, wf_template, people):
    workflow = workflow_create(template=wf_template, name="甲流程")
    workflow_draft_set(workflow=workflow, graph=GRAPH)
    workflow_publish(workflow=workflow)
    ticket = new_ticket(tenant_a, wf_template, "1.00")
    [task] = open_tasks(tenant_a, ticket)
    return {"workflow": workflow, "ticket": ticket, "task": task, "profile": people["engineer"].staff_profiles.get()}


def routes():
    return [(p.name, str(p.pattern)) for p in workflow_urls.urlpatterns]


def object_url(name, pattern, world):
    if "<int:pk>" not in pattern:
        return reverse(name)
    kind = ("ticket" if "ticket/" in pattern else "task" if "task/" in pattern
            else "profile" if "roster/" in pattern else "workflow")
    return reverse(name, args=[world[kind].pk])


def test_every_route_is_404_for_another_tenant(world, client_for, admin_b, tenant_a):
    client = client_for(admin_b)
    for name, pattern in routes():
        target = object_url(name, pattern, world)
        if "<int:pk>" in pattern:
            assert client.get(target).status_code == 404, name
            assert client.post(target, {"key": "x", "_action": "submit"}).status_code == 404, name
        else:
            response = client.get(target)
            assert response.status_code in (200, 405), name
            for marker in ("甲流程", "甲节点", world["ticket"].number):
                assert marker not in response.content.decode(), (name, marker)
    world["workflow"].refresh_from_db()
    assert world["workflow"].draft == GRAPH


def test_every_route_sends_anonymous_to_login(world, client):
    for name, pattern in routes():
        response = client.get(object_url(name, pattern, world))
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), name


def test_designer_needs_the_permission_and_tasks_need_theirs(world, client_for, tenant_a, people):
    agent = client_for(people["agent"])
    for name, pattern in routes():
        if pattern.startswith("config/"):
            assert agent.get(object_url(name, pattern, world)).status_code == 403, name
    # Every role that works tickets has the task pages.
    for user in [*people.values(), make_member(tenant_a, Role.REGIONAL_MANAGER, "wf_rm")]:
        assert client_for(user).get(reverse("work-queue")).status_code == 200, user
