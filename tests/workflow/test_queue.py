"""Work queues (我的待办 / 团队待办 / 退回给我) with due times and a constant query count, and
the ticket panel's act endpoint refusing every bad input without changing anything."""

import datetime
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import include, path
from django.utils import timezone

from scrm.models import Role
from scrm.tenancy import tenant_scope
from tests.conftest import make_member
from tests.factories import CustomerFactory, OpportunityFactory, TeamFactory
from tests.workflow.conftest import edge, node, role
from tests.workflow.test_views import HTMX, act_data, open_tasks, ticket_state, url
from tickets.services import ticket_intake
from workflow.engine import task_act
from workflow.models import Task, TaskStatus
from workflow.services import workflow_create, workflow_draft_set, workflow_publish

urlpatterns = [path("", include("workflow.urls")), path("", include("tickets.urls_config")),
               path("", include("scrm.urls"))]
pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

GRAPH = {
    "nodes": [
        node("start", "start"),
        node("visit", "task", "上门处理", handler=role("engineer"), time_limit=120,
             fields={"visible": ["order_no"], "editable": ["note", "fee"], "required": ["note"]},
             actions=["submit", "return", "transfer", "cohandle", "split", "close"]),
        node("check", "approval", "主管审批", handler=role("manager"),
             fields={"visible": ["note"], "editable": [], "required": []}),
        node("end", "end"),
    ],
    "transitions": [edge("start", "visit"), edge("visit", "check"), edge("check", "end", on="approve"),
                    edge("check", "visit", on="reject")],
}


@pytest.fixture
def staff_client(client_for, settings):
    def make(user):
        client = client_for(user)
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
        return client

    return make


@pytest.fixture
def flow(scope_a, wf_template):
    workflow = workflow_create(template=wf_template, name="上门流程")
    workflow_draft_set(workflow=workflow, graph=GRAPH)
    workflow_publish(workflow=workflow)
    return workflow


def make_tickets(tenant, template, n):
    tickets = []
    with tenant_scope(tenant):
        for i in range(n):
            customer = CustomerFactory(tenant=tenant, name=f"顾客{i}")
            opportunity = OpportunityFactory(customer=customer, amount=Decimal("100.00"))
            tickets.append(ticket_intake(tenant=tenant, source="phone", template=template, data={"order_no": f"N{i}"},
                                         customer=customer, opportunity=opportunity, title=f"空调不制冷 {i}"))
    return tickets


# --- queues ---------------------------------------------------------------------------------

def test_queues_mine_team_returned_with_due_times(tenant_a, staff_client, people, wf_template, flow):
    lead = make_member(tenant_a, Role.REGIONAL_MANAGER, "wf_lead")
    with tenant_scope(tenant_a):
        team = TeamFactory(tenant=tenant_a, name="上门组", lead=lead)
        people["engineer"].staff_profiles.get().teams.add(team)
    first, second = make_tickets(tenant_a, wf_template, 2)
    engineer = staff_client(people["engineer"])
    mine = engineer.get(url("work-queue")).content.decode()
    assert first.number in mine and second.number in mine
    assert "Due " in mine and 'data-testid="overdue"' not in mine
    # Three hours later both are past their 2-hour limit: 超时, highlighted.
    with time_machine.travel(timezone.now() + datetime.timedelta(hours=3), tick=False):
        late = engineer.get(url("work-queue")).content.decode()
    assert late.count('data-testid="overdue"') == 2 and late.count("wf-overdue") == 2
    # The team lead sees the team's tasks; the engineer sees none of their own there.
    team_page = staff_client(lead).get(url("work-queue", tab="team")).content.decode()
    assert first.number in team_page and "wf_engineer" in team_page
    assert first.number not in engineer.get(url("work-queue", tab="team")).content.decode()
    # Returned to me: only after a return.
    assert first.number not in engineer.get(url("work-queue", tab="returned")).content.decode()
    with tenant_scope(tenant_a):
        [visit] = open_tasks(tenant_a, first)
        task_act(task=visit, action="submit", user=people["engineer"], data={"note": "ok"})
        [check] = open_tasks(tenant_a, first)
        task_act(task=check, action="return", user=check.assignee, target="visit", comment="请补拍照片")
    returned = engineer.get(url("work-queue", tab="returned")).content.decode()
    assert first.number in returned and second.number not in returned and "Returned" in returned
    assert engineer.get(url("work-queue", tab="bogus")).status_code == 200  # falls back to "mine"


def test_queue_query_count_does_not_grow(tenant_a, staff_client, people, wf_template, flow,
                                         django_assert_max_num_queries):
    engineer = staff_client(people["engineer"])
    make_tickets(tenant_a, wf_template, 3)
    engineer.get(url("work-queue"))  # warm caches (content types, sessions)

    def count(tab):
        with CaptureQueriesContext(connection) as ctx:
            assert engineer.get(url("work-queue", tab=tab)).status_code == 200
        return len(ctx.captured_queries)

    few = {tab: count(tab) for tab in ("mine", "team", "returned")}
    make_tickets(tenant_a, wf_template, 17)
    assert engineer.get(url("work-queue")).content.decode().count("data-task=") == 20
    many = {tab: count(tab) for tab in ("mine", "team", "returned")}
    assert few == many
    with django_assert_max_num_queries(max(many.values())):
        engineer.get(url("work-queue"))


def test_queue_shows_nothing_of_another_tenant(tenant_a, staff_client, people, wf_template, flow, admin_b):
    [ticket] = make_tickets(tenant_a, wf_template, 1)
    page = staff_client(admin_b).get(url("work-queue")).content.decode()
    assert ticket.number not in page and "空调不制冷" not in page


def test_queue_and_panel_need_a_seat(client, tenant_a, people, wf_template, flow):
    [ticket] = make_tickets(tenant_a, wf_template, 1)
    for target in (url("work-queue"), url("workflow-ticket-panel", ticket.pk)):
        response = client.get(target)
        assert response.status_code == 302 and response["Location"].startswith("/login/")
    [task] = open_tasks(tenant_a, ticket)
    assert client.post(url("workflow-task-act", task.pk), act_data("submit", note="x")).status_code == 302


# --- the panel: acting, and every bad input -------------------------------------------------

@pytest.fixture
def ticket(tenant_a, wf_template, flow):
    return make_tickets(tenant_a, wf_template, 1)[0]


def test_transfer_cohandle_split_and_close_from_the_panel(tenant_a, staff_client, people, ticket):
    engineer = staff_client(people["engineer"])
    panel = engineer.get(url("workflow-ticket-panel", ticket.pk), **HTMX).content.decode()
    assert f'<option value="{people["agent"].pk}">wf_agent</option>' in panel
    assert f'<option value="{people["engineer"].pk}">' not in panel  # not to oneself
    [task] = open_tasks(tenant_a, ticket)
    response = engineer.post(url("workflow-task-act", task.pk),
                             act_data("cohandle", note="", _co_handler=str(people["agent"].pk)), **HTMX)
    assert response.status_code == 204
    with tenant_scope(tenant_a):
        assert list(Task.objects.get(pk=task.pk).co_handlers.all()) == [people["agent"]]
    # The co-handler can act now; they split the ticket into two children.
    agent = staff_client(people["agent"])
    response = agent.post(url("workflow-task-act", task.pk),
                          act_data("split", note="", _parts="拆机\n\n安装新机\n"), **HTMX)
    assert response.status_code == 204
    with tenant_scope(tenant_a):
        from tickets.models import Ticket

        assert list(Ticket.objects.filter(parent=ticket).values_list("title", flat=True).order_by("id")) == [
            "拆机", "安装新机"]
    response = engineer.post(url("workflow-task-act", task.pk),
                             act_data("transfer", note="", _transfer_to=str(people["manager"].pk)), **HTMX)
    assert response.status_code == 204
    with tenant_scope(tenant_a):
        assert Task.objects.get(pk=task.pk).assignee == people["manager"]
    manager = staff_client(people["manager"])
    response = manager.post(url("workflow-task-act", task.pk), act_data("close", note=""), **HTMX)
    assert response.status_code == 204
    status, _data, _events, tasks = ticket_state(tenant_a, ticket)
    assert status == "closed" and [s for _id, s, _a in tasks] == [TaskStatus.CANCELLED]


def test_plain_post_without_htmx_redirects_and_errors_render_a_page(tenant_a, staff_client, people, ticket):
    [task] = open_tasks(tenant_a, ticket)
    engineer = staff_client(people["engineer"])
    response = engineer.post(url("workflow-task-act", task.pk), act_data("submit", note=""))
    assert response.status_code == 400 and "<html" in response.content.decode()
    response = engineer.post(url("workflow-task-act", task.pk), act_data("submit", note="好了"))
    assert response.status_code == 302 and response["Location"] == url("work-queue")


BAD_ACTS = {
    "missing_action": ({"_action": ""}, "Choose an action."),
    "unknown_action": ({"_action": "eval"}, "Unknown action “eval”."),
    "not_allowed_here": ({"_action": "approve"}, "“approve” is not allowed at “上门处理”."),
    "hidden_field": ({"order_no": "HACK"}, "These fields cannot be edited at this node: order_no."),
    "unknown_node_field": ({"fee": "abc"}, "Enter a number."),
    "oversized_comment": ({"_comment": "长" * 2001}, "Ensure this value has at most 2000 characters"),
    "required_missing": ({"note": ""}, "Fill in before submitting: 处理说明."),
    "transfer_nobody": ({"_action": "transfer"}, "Choose whom to transfer the task to."),
    "transfer_malformed": ({"_action": "transfer", "_transfer_to": "abc"}, "Select a member of staff of this company."),
    "transfer_missing_user": ({"_action": "transfer", "_transfer_to": "999999"},
                              "Select a member of staff of this company."),
    "transfer_other_tenant": ({"_action": "transfer", "_transfer_to": "OTHER"},
                              "Select a member of staff of this company."),
    "cohandle_other_tenant": ({"_action": "cohandle", "_co_handler": "OTHER"},
                              "Select a member of staff of this company."),
    "return_nowhere": ({"_action": "return", "_target": "visit"}, "“return” is not allowed at “上门处理”."),
    "split_nothing": ({"_action": "split", "_parts": "  \n "}, "Write one child ticket title per line."),
    "split_oversized": ({"_action": "split", "_parts": "x" * 4001}, "At most 4000 characters"),
}


@pytest.mark.parametrize("case", BAD_ACTS)
def test_act_refuses_bad_input_and_changes_nothing(tenant_a, staff_client, people, admin_b, ticket, case):
    values, message = BAD_ACTS[case]
    values = {k: str(admin_b.pk) if v == "OTHER" else v for k, v in values.items()}
    [task] = open_tasks(tenant_a, ticket)
    before = ticket_state(tenant_a, ticket)
    data = act_data("submit", note="已上门", fee="")
    data.update(values)
    response = staff_client(people["engineer"]).post(url("workflow-task-act", task.pk), data, **HTMX)
    assert response.status_code == 400
    body = response.content.decode()
    assert message in body, body[:4000]
    assert 'data-testid="workflow-panel"' in body  # the panel again, with the error
    assert ticket_state(tenant_a, ticket) == before


def test_acting_twice_and_acting_on_a_task_one_does_not_hold(tenant_a, staff_client, people, ticket):
    [task] = open_tasks(tenant_a, ticket)
    engineer = staff_client(people["engineer"])
    manager = staff_client(people["manager"])
    before = ticket_state(tenant_a, ticket)
    response = manager.post(url("workflow-task-act", task.pk), act_data("submit", note="冒充"), **HTMX)
    assert response.status_code == 400 and "You do not hold this task." in response.content.decode()
    assert ticket_state(tenant_a, ticket) == before
    assert engineer.post(url("workflow-task-act", task.pk), act_data("submit", note="好"), **HTMX).status_code == 204
    after = ticket_state(tenant_a, ticket)
    response = manager.post(url("workflow-task-act", task.pk), act_data("submit", note="再来"), **HTMX)
    assert response.status_code == 400 and "This task is already finished." in response.content.decode()
    assert ticket_state(tenant_a, ticket) == after


def test_other_tenant_and_invisible_tickets_are_404(tenant_a, staff_client, people, admin_b, ticket, wf_template):
    [task] = open_tasks(tenant_a, ticket)
    before = ticket_state(tenant_a, ticket)
    other = staff_client(admin_b)
    assert other.get(url("workflow-ticket-panel", ticket.pk), **HTMX).status_code == 404
    assert other.post(url("workflow-task-act", task.pk), act_data("submit", note="x"), **HTMX).status_code == 404
    assert other.get(url("workflow-ticket-panel", 999999)).status_code == 404
    assert other.post(url("workflow-task-act", 999999), act_data("submit")).status_code == 404
    # An engineer who neither holds the ticket nor covers its store does not see it.
    stranger = staff_client(make_member(tenant_a, Role.ENGINEER, "wf_stranger"))
    assert stranger.get(url("workflow-ticket-panel", ticket.pk), **HTMX).status_code == 404
    assert stranger.post(url("workflow-task-act", task.pk), act_data("submit", note="x"), **HTMX).status_code == 404
    assert ticket_state(tenant_a, ticket) == before
    # GET on the act URL is not a thing (for someone who may see it; the others get 404 first).
    assert staff_client(people["engineer"]).get(url("workflow-task-act", task.pk)).status_code == 405
    assert other.get(url("workflow-task-act", task.pk)).status_code == 404


def test_panel_query_count_is_bounded(tenant_a, staff_client, people, ticket, django_assert_max_num_queries):
    engineer = staff_client(people["engineer"])
    engineer.get(url("workflow-ticket-panel", ticket.pk), **HTMX)
    with django_assert_max_num_queries(30):
        response = engineer.get(url("workflow-ticket-panel", ticket.pk), **HTMX)
    assert response.status_code == 200


def test_files_uploaded_at_a_node_are_stored(tenant_a, scope_a, staff_client, people):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.factories import published_template
    from tickets.models import Attachment, Ticket

    fields = [{"key": "photos", "type": "image", "label": {"zh-hans": "完工照片"}, "required": False},
              {"key": "note", "type": "textarea", "label": {"zh-hans": "处理说明"}, "required": False}]
    template = published_template(scope_a, name="安装", slug="install", prefix="AZ", fields=fields)
    workflow = workflow_create(template=template, name="安装流程")
    workflow_draft_set(workflow=workflow, graph={
        "nodes": [node("start", "start"), node("install", "task", "上门安装", handler=role("engineer"),
                                                fields={"visible": [], "editable": ["photos"], "required": ["photos"]}),
                  node("end", "end")],
        "transitions": [edge("start", "install"), edge("install", "end")]})
    workflow_publish(workflow=workflow)
    ticket = ticket_intake(tenant=tenant_a, source="phone", template=template, data={})
    [task] = open_tasks(tenant_a, ticket)
    engineer = staff_client(people["engineer"])
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    response = engineer.post(url("workflow-task-act", task.pk),
                             {**act_data("submit"), "photos": SimpleUploadedFile("done.png", png, "image/png")}, **HTMX)
    assert response.status_code == 204, response.content.decode()[:3000]
    stored = Ticket.objects.get(pk=ticket.pk)
    attachment = Attachment.objects.get(ticket=ticket)
    assert stored.data["photos"] == [{"id": attachment.pk, "name": "done.png", "size": len(png)}]
    assert stored.status == "closed"
    # A file for a field the node does not allow is refused too.
    other = ticket_intake(tenant=tenant_a, source="phone", template=template, data={})
    [task] = open_tasks(tenant_a, other)
    response = engineer.post(url("workflow-task-act", task.pk),
                             {**act_data("submit"), "note": "x",
                              "photos": SimpleUploadedFile("a.png", png, "image/png")}, **HTMX)
    assert response.status_code == 400 and "cannot be edited at this node: note" in response.content.decode()
    assert Attachment.objects.filter(ticket=other).count() == 0
