"""The workflow pages as people use them — the issue's "Checked by": a manager builds a 6-node
workflow in the designer (a branch on opportunity.amount > 500000 and a countersign node) and
publishes it; two tickets take the two branches; a returned ticket goes back with its data
intact; the panel's diagram marks where each ticket stands; an engineer sees only the fields
their node allows and cannot post the others. Then the work queues and their query counts."""

import re
from decimal import Decimal

import pytest
from django.urls import include, path, reverse

from scrm.tenancy import tenant_scope
from tests.factories import CustomerFactory, OpportunityFactory
from tests.workflow.conftest import FIELDS
from tickets.models import Status, Ticket, TimelineEvent
from tickets.services import ticket_intake
from workflow.models import Task, TaskStatus, Workflow, WorkflowVersion

# Until the site's root URLconf includes workflow.urls (and tickets.urls_config, which the
# sidebar links to), these tests bring their own.
urlpatterns = [path("", include("workflow.urls")), path("", include("tickets.urls_config")),
               path("", include("scrm.urls"))]
pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

HTMX = {"HTTP_HX_REQUEST": "true"}


def node_data(**values):
    """A POST of the node editor: what the browser sends for an untouched form, plus `values`."""
    data = {"original_key": "", "key": "", "kind": "task", "name_zh": "", "name_en": "", "time_limit": "",
            "mode": "all", "n": "", "params": "", "auto_action": ""}
    for prefix in ("handler", "backup", "extra1", "extra2", "extra3"):
        data.update({f"{prefix}_rule": "", f"{prefix}-user-user_id": "", f"{prefix}-role-role": "",
                     f"{prefix}-role-scope": "tenant"})
    data.update(values)
    return data


def params(prefix, kind, **values):
    """The inputs of a rule kind's parameter form in one slot of the node editor."""
    return {f"{prefix}-{kind}-{name}": value for name, value in values.items()}


def transition_data(source, target, **values):
    data = {"index": "", "original_from": "", "original_to": "", "source": source, "target": target, "on": "",
            "cond_field": "", "cond_op": "=", "cond_value": ""}
    data.update(values)
    return data


def url(name, *args, **query):
    target = reverse(name, args=args)
    return target + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def fresh_workflow(tenant, pk):
    with tenant_scope(tenant):
        return Workflow.objects.select_related("current_version").get(pk=pk)


def act_data(action, **values):
    data = {"_action": action, "_comment": "", "_target": "", "_transfer_to": "", "_co_handler": ""}
    data.update(values)
    return data


def active_nodes(body):
    return re.findall(r'<g data-node="([a-z0-9_]+)" data-active="1">', body)


@pytest.fixture
def staff_client(client_for, settings):
    """client_for in English: the assertions read English messages."""

    def make(user):
        client = client_for(user)
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
        return client

    return make


@pytest.fixture
def built(tenant_a, staff_client, people, wf_template):
    """The manager's 6-node workflow, built and published through the designer."""
    manager = staff_client(people["manager"])
    listing = manager.get(url("workflow-list"))
    assert listing.status_code == 200
    assert "Create blank" in listing.content.decode() and "Create from preset" not in listing.content.decode()

    response = manager.post(url("workflow-create"), {"template": wf_template.pk, "source": "blank"})
    assert response.status_code == 302
    with tenant_scope(tenant_a):
        workflow = Workflow.objects.get(template=wf_template)
    assert response["Location"] == url("workflow-designer", workflow.pk)
    assert [n["key"] for n in workflow.draft["nodes"]] == ["start", "end"]

    nodes = [
        node_data(key="visit", kind="task", name_zh="上门处理", name_en="On-site work", time_limit="240",
                  handler_rule="role", **params("handler", "role", role="engineer", scope="tenant"),
                  backup_rule="role", **params("backup", "role", role="manager", scope="tenant"),
                  visible=["order_no"], editable=["note"], required=["note"]),
        node_data(key="amount", kind="condition", name_zh="金额判断"),
        node_data(key="gm", kind="approval", name_zh="总经理审批", handler_rule="role",
                  **params("handler", "role", role="admin", scope="tenant"), time_limit="1440", unlock=["fee"],
                  visible=["note"], required=["fee"],
                  actions=["approve", "reject", "return"]),
        node_data(key="review", kind="countersign", name_zh="经理会签", handler_rule="role",
                  **params("handler", "role", role="manager", scope="tenant"), mode="all",
                  visible=["note", "order_no"]),
    ]
    for data in nodes:
        response = manager.post(url("workflow-node", workflow.pk), data, **HTMX)
        body = response.content.decode()
        assert response.status_code == 200, body
        assert 'id="wf-diagram" hx-swap-oob="true"' in body  # the live diagram comes along
        assert f'data-node="{data["key"]}"' in body
    condition = {"cond_field": "opportunity.amount", "cond_op": ">", "cond_value": "500000"}
    for source, target, extra in [
        ("start", "visit", {}), ("visit", "amount", {}), ("amount", "gm", condition),
        ("amount", "review", {"is_default": "on"}), ("gm", "end", {"on": "approve"}),
        ("gm", "visit", {"on": "reject"}), ("review", "end", {}),
    ]:
        response = manager.post(url("workflow-transition", workflow.pk), transition_data(source, target, **extra),
                                **HTMX)
        assert response.status_code == 200, response.content.decode()

    checked = manager.post(url("workflow-validate", workflow.pk), **HTMX)
    assert 'data-testid="validation-ok"' in checked.content.decode()
    response = manager.post(url("workflow-publish", workflow.pk))
    assert response.status_code == 302
    workflow = fresh_workflow(tenant_a, workflow.pk)
    assert workflow.current_version.number == 1
    graph = workflow.current_version.graph
    assert len(graph["nodes"]) == 6
    by_key = {n["key"]: n for n in graph["nodes"]}
    assert by_key["visit"]["handler"] == {"rule": "role", "role": "engineer", "scope": "tenant"}
    assert by_key["visit"]["backup"] == {"rule": "role", "role": "manager", "scope": "tenant"}
    assert by_key["visit"]["name"] == {"zh-hans": "上门处理", "en": "On-site work"}
    assert by_key["visit"]["fields"] == {"visible": ["order_no"], "editable": ["note"], "required": ["note"]}
    assert by_key["gm"]["unlock"] == ["fee"] and by_key["gm"]["actions"] == ["approve", "reject", "return"]
    assert by_key["review"]["handlers"] == [{"rule": "role", "role": "manager", "scope": "tenant"}]
    big_way = next(t for t in graph["transitions"] if t["to"] == "gm")
    assert big_way["condition"] == {"all": [{"field": "opportunity.amount", "op": ">", "value": 500000}]}
    page = manager.get(url("workflow-designer", workflow.pk)).content.decode()
    assert "Published v1" in page and "Unpublished changes" not in page
    return workflow


def new_ticket(tenant, template, amount):
    with tenant_scope(tenant):
        customer = CustomerFactory(tenant=tenant)
        opportunity = OpportunityFactory(customer=customer, amount=Decimal(amount))
        return ticket_intake(tenant=tenant, source="phone", template=template, data={"order_no": "A-100"},
                             customer=customer, opportunity=opportunity)


def open_tasks(tenant, ticket):
    with tenant_scope(tenant):
        return list(Task.objects.filter(ticket=ticket, status=TaskStatus.OPEN).select_related("assignee")
                    .order_by("id"))


def ticket_state(tenant, ticket):
    with tenant_scope(tenant):
        t = Ticket.objects.get(pk=ticket.pk)
        return (t.status, dict(t.data), TimelineEvent.objects.filter(ticket=t).count(),
                list(Task.objects.filter(ticket=t).order_by("id").values_list("id", "status", "assignee_id")))


# --- the scenario ---------------------------------------------------------------------------

def test_checked_by_scenario(tenant_a, staff_client, people, wf_template, built):
    engineer, gm = staff_client(people["engineer"]), staff_client(people["gm"])
    big = new_ticket(tenant_a, wf_template, "880000.00")
    small = new_ticket(tenant_a, wf_template, "12800.00")

    # The engineer's panel: the diagram marks the visit node; only the node's fields show.
    panel = engineer.get(url("workflow-ticket-panel", big.pk), **HTMX)
    body = panel.content.decode()
    assert panel.status_code == 200
    assert active_nodes(body) == ["visit"]
    fields = body.split('data-testid="node-fields"')[1].split("</form>")[0]
    assert 'name="note"' in fields and 'name="fee"' not in fields and 'name="order_no"' not in fields
    visible = body.split('data-testid="node-visible"')[1].split("</dl>")[0]
    assert "订单号" in visible and "A-100" in visible and "费用" not in visible
    assert 'name="fee"' not in body
    assert re.findall(r'data-action="([a-z]+)"', body) == ["submit", "transfer", "cohandle"]

    # Posting a field the node does not allow: 400, nothing written.
    [visit] = open_tasks(tenant_a, big)
    before = ticket_state(tenant_a, big)
    response = engineer.post(url("workflow-task-act", visit.pk),
                             act_data("submit", note="done", fee="99999.00"), **HTMX)
    assert response.status_code == 400
    assert "These fields cannot be edited at this node: fee." in response.content.decode()
    assert ticket_state(tenant_a, big) == before
    # Missing a required node field: 400, nothing written.
    response = engineer.post(url("workflow-task-act", visit.pk), act_data("submit", note=""), **HTMX)
    assert response.status_code == 400 and "Fill in before submitting" in response.content.decode()
    assert ticket_state(tenant_a, big) == before

    # Submitting both tickets: the two branches.
    for ticket in (big, small):
        [task] = open_tasks(tenant_a, ticket)
        response = engineer.post(url("workflow-task-act", task.pk), act_data("submit", note=f"已处理 {ticket.pk}"),
                                 **HTMX)
        assert response.status_code == 204
        # The engineer no longer holds it (nor sees it): back to the work queue.
        assert response["HX-Redirect"] == url("work-queue")
    [gm_task] = open_tasks(tenant_a, big)
    assert (gm_task.node, gm_task.assignee) == ("gm", people["gm"])
    review = open_tasks(tenant_a, small)
    assert {t.node for t in review} == {"review"}
    assert {t.assignee for t in review} == {people["manager"], people["manager2"]}

    # The diagram shows where each ticket stands.
    assert active_nodes(gm.get(url("workflow-ticket-panel", big.pk), **HTMX).content.decode()) == ["gm"]
    manager = staff_client(people["manager"])
    small_panel = manager.get(url("workflow-ticket-panel", small.pk), **HTMX).content.decode()
    assert active_nodes(small_panel) == ["review"]
    assert 'data-node="visit"' in small_panel and 'stroke="#198754"' in small_panel  # done: green

    # The GM returns the big ticket to the visit node: it goes back with its data intact.
    gm_panel = gm.get(url("workflow-ticket-panel", big.pk), **HTMX).content.decode()
    assert '<option value="visit">On-site work</option>' in gm_panel
    assert re.findall(r'data-action="([a-z]+)"', gm_panel) == ["approve", "reject"]  # 同意 / 驳回
    response = gm.post(url("workflow-task-act", gm_task.pk),
                       act_data("reject", _target="visit", _comment="请补充现场照片"), **HTMX)
    assert response.status_code == 204 and response["HX-Redirect"] == url("ticket-detail", big.pk)  # GM sees all
    [back] = open_tasks(tenant_a, big)
    assert (back.node, back.assignee, back.is_returned) == ("visit", people["engineer"], True)
    with tenant_scope(tenant_a):
        data = Ticket.objects.get(pk=big.pk).data
    assert (data["order_no"], data["note"], data.get("fee")) == ("A-100", f"已处理 {big.pk}", None)
    returned = engineer.get(url("work-queue", tab="returned")).content.decode()
    assert big.number in returned and small.number not in returned
    panel = engineer.get(url("workflow-ticket-panel", big.pk), **HTMX).content.decode()
    assert active_nodes(panel) == ["visit"]
    assert f"已处理 {big.pk}</textarea>" in panel  # the note is still there to edit

    # Round two: resubmit, the GM approves with the fee (unlocked only at that node), closed.
    engineer.post(url("workflow-task-act", back.pk), act_data("submit", note="照片已补"), **HTMX)
    [gm_task] = open_tasks(tenant_a, big)
    gm_fields = gm.get(url("workflow-ticket-panel", big.pk), **HTMX).content.decode()
    assert 'name="fee"' in gm_fields and 'name="note"' not in gm_fields.split('data-testid="node-fields"')[1]
    response = gm.post(url("workflow-task-act", gm_task.pk), act_data("approve", fee="1280.50"), **HTMX)
    assert response.status_code == 204 and response["HX-Redirect"] == url("ticket-detail", big.pk)
    with tenant_scope(tenant_a):
        done = Ticket.objects.get(pk=big.pk)
    assert done.status == Status.CLOSED and done.data["fee"] == "1280.50" and done.data["note"] == "照片已补"

    # The countersign needs both managers.
    first, second = review
    staff_client(first.assignee).post(url("workflow-task-act", first.pk), act_data("submit"), **HTMX)
    assert [t.node for t in open_tasks(tenant_a, small)] == ["review"]
    staff_client(second.assignee).post(url("workflow-task-act", second.pk), act_data("submit"), **HTMX)
    with tenant_scope(tenant_a):
        assert Ticket.objects.get(pk=small.pk).status == Status.CLOSED
    finished = manager.get(url("workflow-ticket-panel", small.pk), **HTMX).content.decode()
    assert active_nodes(finished) == [] and "Finished" in finished


def test_panel_without_workflow_and_full_page(tenant_a, staff_client, people, wf_template):
    ticket = new_ticket(tenant_a, wf_template, "1.00")
    client = staff_client(people["agent"])
    partial = client.get(url("workflow-ticket-panel", ticket.pk), **HTMX)
    # Nothing to show on the ticket page (no empty card), a line on the page without htmx.
    assert partial.status_code == 200 and "<svg" not in partial.content.decode()
    assert "does not run a workflow" not in partial.content.decode()
    page = client.get(url("workflow-ticket-panel", ticket.pk)).content.decode()
    assert "<html" in page and "This ticket does not run a workflow." in page


# --- the designer: editing, bad input -------------------------------------------------------

@pytest.fixture
def blank(tenant_a, staff_client, people, wf_template):
    staff_client(people["manager"]).post(url("workflow-create"), {"template": wf_template.pk, "source": "blank"})
    with tenant_scope(tenant_a):
        return Workflow.objects.get(template=wf_template)


@pytest.fixture
def manager(staff_client, people):
    return staff_client(people["manager"])


def draft_of(tenant, workflow):
    return fresh_workflow(tenant, workflow.pk).draft


@pytest.mark.parametrize(("values", "field", "message"), [
    ({"key": "", "name_zh": ""}, "name_zh", "This field is required."),
    ({"key": "Bad Key"}, "key", "Use only lower-case letters a–z, digits and the underscore _, starting with a letter"),
    ({"key": "x" * 41}, "key", "Ensure this value has at most 40 characters"),
    ({"name_zh": ""}, "name_zh", "This field is required."),
    ({"name_zh": "长" * 61}, "name_zh", "Ensure this value has at most 60 characters"),
    ({"time_limit": "0"}, "time_limit", "Ensure this value is greater than or equal to 1."),
    ({"time_limit": "abc"}, "time_limit", "Enter a whole number."),
    ({"kind": "robot"}, "kind", "Select a valid choice."),
    ({"handler_rule": ""}, "handler_rule", "Say who handles this node."),
    ({"handler_rule": "user", "handler-user-user_id": ""}, "handler-user-user_id", "Choose the person."),
    ({"handler_rule": "user", "handler-user-user_id": "abc"}, "handler-user-user_id",
     "Choose a member of staff of this company."),
    ({"handler_rule": "role", "handler-role-role": ""}, "handler-role-role", "Choose the role."),
    ({"handler_rule": "role", "handler-role-role": "wizard"}, "handler-role-role", "Unknown role “wizard”."),
    ({"handler_rule": "role", "handler-role-scope": "moon"}, "handler-role-scope", "Unknown place “moon”"),
    ({"backup_rule": "role", "backup-role-role": ""}, "backup-role-role", "Choose the role."),
    ({"handler_rule": "wizard"}, "handler_rule", "Select a valid choice."),
    ({"key": "start"}, "key", "Another node already has the key “start”."),
    ({"visible": ["nope"]}, "fields", "Select a valid choice. nope is not one of the available choices."),
    ({"required": ["fee"]}, "fields", "Required fields must be editable here: fee."),
    ({"kind": "approval", "actions": ["reject"]}, "actions", "An approval needs the “approve” action."),
    ({"kind": "auto", "auto_action": ""}, "auto_action", "Choose the action this node runs."),
    ({"kind": "auto", "auto_action": "set_fields", "params": "{nope"}, "params", "JSON object"),
    ({"kind": "auto", "auto_action": "set_fields", "params": "[1, 2]"}, "params", "JSON object"),
    ({"kind": "auto", "auto_action": "set_fields", "params": "x" * 4001}, "params", "at most 4000 characters"),
    ({"kind": "auto", "auto_action": "webhook", "params": '{"url": "ftp://x"}'}, "params", "A webhook needs"),
])
def test_node_editor_refuses_bad_input(tenant_a, manager, blank, values, field, message):
    before = draft_of(tenant_a, blank)
    data = node_data(key="visit", name_zh="上门", handler_rule="role", **params("handler", "role", role="engineer"))
    data.update(values)
    response = manager.post(url("workflow-node", blank.pk), data, **HTMX)
    assert response.status_code == 400
    body = response.content.decode()
    errors = re.findall(rf'data-field-error="{field}">([^<]*)<', body)
    assert errors and message in errors[0], (errors, body[:3000])
    assert draft_of(tenant_a, blank) == before


def test_node_editor_refuses_another_tenants_user(tenant_a, tenant_b, admin_b, manager, blank):
    before = draft_of(tenant_a, blank)
    data = node_data(key="visit", name_zh="上门", handler_rule="user",
                     **params("handler", "user", user_id=str(admin_b.pk)))
    response = manager.post(url("workflow-node", blank.pk), data, **HTMX)
    assert response.status_code == 400
    assert ('data-field-error="handler-user-user_id">Choose a member of staff of this company.'
            in response.content.decode())
    assert draft_of(tenant_a, blank) == before


def test_edit_rename_and_delete_nodes_and_transitions(tenant_a, manager, blank, people):
    add = node_data(key="visit", name_zh="上门", handler_rule="user",
                    **params("handler", "user", user_id=str(people["engineer"].pk)))
    assert manager.post(url("workflow-node", blank.pk), add, **HTMX).status_code == 200
    for source, target in (("start", "visit"), ("visit", "end")):
        manager.post(url("workflow-transition", blank.pk), transition_data(source, target), **HTMX)
    # The editor opens filled (htmx partial), then a rename follows the transitions.
    editor = manager.get(url("workflow-node", blank.pk, key="visit"), **HTMX).content.decode()
    assert 'id="wf-node-editor"' in editor and 'value="visit"' in editor and "<html" not in editor
    assert f'<option value="{people["engineer"].pk}" selected>' in editor
    assert manager.get(url("workflow-node", blank.pk, key="nope"), **HTMX).status_code == 404
    rename = dict(add, original_key="visit", key="onsite", time_limit="60")
    response = manager.post(url("workflow-node", blank.pk), rename, **HTMX)
    assert response.status_code == 200 and "Node “上门” saved." in response.content.decode()
    draft = draft_of(tenant_a, blank)
    assert [n["key"] for n in draft["nodes"]] == ["start", "end", "onsite"]
    assert draft["nodes"][2]["handler"] == {"rule": "user", "user_id": people["engineer"].pk}
    assert draft["nodes"][2]["time_limit"] == 60
    assert draft["transitions"] == [{"from": "start", "to": "onsite"}, {"from": "onsite", "to": "end"}]
    # A transition edit: the editor is filled, the condition is built from field/op/value.
    editor = manager.get(url("workflow-transition", blank.pk, index=1), **HTMX).content.decode()
    assert 'name="index" value="1"' in editor and "Edit transition" in editor
    edit = transition_data("onsite", "end", index="1", original_from="onsite", original_to="end",
                           cond_field="data.fee", cond_op="in", cond_value="1, 2、3.50, x")
    response = manager.post(url("workflow-transition", blank.pk), edit, **HTMX)
    assert response.status_code == 200, response.content.decode()
    assert draft_of(tenant_a, blank)["transitions"][1]["condition"] == {
        "all": [{"field": "data.fee", "op": "in", "value": [1, 2, "3.50", "x"]}]}
    # A stale edit (someone else changed it meanwhile) writes nothing.
    before = draft_of(tenant_a, blank)
    stale = dict(edit, original_to="start")
    response = manager.post(url("workflow-transition", blank.pk), stale, **HTMX)
    assert response.status_code == 400 and "no longer in the draft" in response.content.decode()
    assert draft_of(tenant_a, blank) == before
    # Deleting a transition, then the node (and what is left of its transitions).
    response = manager.post(url("workflow-transition-delete", blank.pk), {"index": "1", "from": "onsite", "to": "end"},
                            **HTMX)
    assert response.status_code == 200
    assert draft_of(tenant_a, blank)["transitions"] == [{"from": "start", "to": "onsite"}]
    response = manager.post(url("workflow-node-delete", blank.pk), {"key": "onsite"}, **HTMX)
    assert response.status_code == 200
    assert draft_of(tenant_a, blank) == {"nodes": [{"key": "start", "kind": "start", "name": "开始"},
                                                   {"key": "end", "kind": "end", "name": "结束"}], "transitions": []}
    for bad in ({"key": "onsite"}, {"key": ""}):
        response = manager.post(url("workflow-node-delete", blank.pk), bad, **HTMX)
        assert response.status_code == 400 and 'data-testid="panel-error"' in response.content.decode()
    response = manager.post(url("workflow-transition-delete", blank.pk), {"index": "x"}, **HTMX)
    assert response.status_code == 400


def test_countersign_any_n_and_imported_conditions_are_kept(tenant_a, manager, blank, people):
    data = node_data(key="review", kind="countersign", name_zh="会签", handler_rule="role",
                     **params("handler", "role", role="manager"), extra1_rule="user",
                     **params("extra1", "user", user_id=str(people["gm"].pk)), mode="any", n="2")
    assert manager.post(url("workflow-node", blank.pk), data, **HTMX).status_code == 200
    node = draft_of(tenant_a, blank)["nodes"][2]
    assert node["handlers"] == [{"rule": "role", "role": "manager", "scope": "tenant"},
                                {"rule": "user", "user_id": people["gm"].pk}]
    assert (node["mode"], node["n"]) == ("any", 2)
    editor = manager.get(url("workflow-node", blank.pk, key="review"), **HTMX).content.decode()
    assert f'<option value="{people["gm"].pk}" selected>' in editor
    # A condition from an import that the one-row form cannot show is kept unless replaced.
    complex_condition = {"any": [{"field": "priority", "op": "=", "value": "urgent"},
                                 {"field": "data.fee", "op": ">", "value": 100}]}
    with tenant_scope(tenant_a):
        workflow = Workflow.objects.get(pk=blank.pk)
        workflow.draft["transitions"] = [{"from": "review", "to": "end", "condition": complex_condition}]
        workflow.save()
    editor = manager.get(url("workflow-transition", blank.pk, index=0), **HTMX).content.decode()
    assert "Keep the imported condition" in editor
    edit = transition_data("review", "end", index="0", original_from="review", original_to="end",
                           keep_condition="on")
    assert manager.post(url("workflow-transition", blank.pk), edit, **HTMX).status_code == 200
    assert draft_of(tenant_a, blank)["transitions"][0]["condition"] == complex_condition


@pytest.mark.parametrize(("values", "field", "message"), [
    ({"source": "nowhere"}, "source", "Select a valid choice."),
    ({"source": "visit", "target": "start"}, "target", "Nothing leads into the start node."),
    ({"source": "end", "target": "visit"}, "source", "Nothing leaves an end node."),
    ({"target": "visit", "source": "visit"}, "target", "A transition goes to another node."),
    ({"on": "approve"}, "on", "only applies after an approval or countersign node"),
    ({"cond_field": "opportunity.amount", "cond_op": ">", "cond_value": ""}, "cond_value", "Enter the value"),
    ({"cond_field": "data.secret"}, "cond_field", "Select a valid choice."),
    ({"cond_field": "__import__('os')"}, "cond_field", "Select a valid choice."),
    ({"cond_field": "priority", "cond_op": "~="}, "cond_op", "Select a valid choice."),
    ({"cond_field": "priority", "cond_value": "x" * 201}, "cond_value", "at most 200 characters"),
    ({"cond_field": "priority", "cond_value": "high", "is_default": "on"}, "is_default", "no condition"),
])
def test_transition_editor_refuses_bad_input(tenant_a, manager, blank, values, field, message):
    manager.post(url("workflow-node", blank.pk),
                 node_data(key="visit", name_zh="上门", handler_rule="role",
                           **params("handler", "role", role="engineer")), **HTMX)
    before = draft_of(tenant_a, blank)
    data = transition_data("start", "visit")
    data.update(values)
    response = manager.post(url("workflow-transition", blank.pk), data, **HTMX)
    assert response.status_code == 400
    errors = re.findall(rf'data-field-error="{field}">([^<]*)<', response.content.decode())
    assert errors and message in errors[0], errors
    assert draft_of(tenant_a, blank) == before


def test_duplicate_transition_is_refused(tenant_a, manager, blank):
    response = manager.post(url("workflow-transition", blank.pk), transition_data("start", "end"), **HTMX)
    assert response.status_code == 200
    before = draft_of(tenant_a, blank)
    response = manager.post(url("workflow-transition", blank.pk), transition_data("start", "end"), **HTMX)
    assert response.status_code == 400 and "There already is a transition start → end." in response.content.decode()
    assert draft_of(tenant_a, blank) == before


def test_publishing_an_invalid_graph_shows_every_message_and_creates_no_version(tenant_a, manager, blank, people):
    for data in (
        node_data(key="orphan", name_zh="孤立", handler_rule="role", **params("handler", "role", role="agent")),
        node_data(key="nobody", name_zh="无人处理"),  # no handler: refused by the form …
        node_data(key="loop_a", name_zh="循环A", handler_rule="previous"),
        node_data(key="loop_b", name_zh="循环B", handler_rule="assignee"),
        node_data(key="merge", kind="join", name_zh="汇总"),
    ):
        manager.post(url("workflow-node", blank.pk), data, **HTMX)
    with tenant_scope(tenant_a):  # … so a file import brings one in
        workflow = Workflow.objects.get(pk=blank.pk)
        workflow.draft["nodes"].append({"key": "nobody", "kind": "task", "name": "无人处理"})
        workflow.draft["transitions"] = [
            {"from": "start", "to": "loop_a"}, {"from": "loop_a", "to": "loop_b"}, {"from": "loop_b", "to": "loop_a"},
            {"from": "orphan", "to": "merge"}, {"from": "nobody", "to": "merge"}, {"from": "merge", "to": "end"}]
        workflow.save()
    expected = [
        "Node “nobody” has no handler rule.",
        "Node “end” cannot be reached from the start.",
        "Node “orphan” cannot be reached from the start.",
        "Node “nobody” cannot be reached from the start.",
        "Node “merge” cannot be reached from the start.",
        "From node “start” no path reaches an end (a cycle with no exit).",
        "From node “loop_a” no path reaches an end (a cycle with no exit).",
        "From node “loop_b” no path reaches an end (a cycle with no exit).",
        "The join “merge” has no split whose branches meet there.",
    ]
    checked = manager.post(url("workflow-validate", blank.pk), **HTMX).content.decode()
    response = manager.post(url("workflow-publish", blank.pk))
    assert response.status_code == 400
    body = response.content.decode()
    assert "Not published. Fix these first:" in body
    for message in expected:
        assert message in body and message in checked, message
    assert len(re.findall(r"<li>", body.split('data-testid="validation-problems"')[1].split("</ul>")[0])) == 9
    with tenant_scope(tenant_a):
        assert WorkflowVersion.objects.count() == 0
        assert Workflow.objects.get(pk=blank.pk).current_version is None


def test_publishing_twice_without_changes_is_refused(tenant_a, manager, built):
    response = manager.post(url("workflow-publish", built.pk))
    assert response.status_code == 400 and "Nothing changed since version 1." in response.content.decode()
    with tenant_scope(tenant_a):
        assert WorkflowVersion.objects.count() == 1


# --- list and create ----------------------------------------------------------------------

def test_create_from_preset_then_publish(tenant_a, manager, people):
    from tickets.services.config import template_preset_create

    with tenant_scope(tenant_a):
        template = template_preset_create(tenant=tenant_a, preset_slug="jiadian_anzhuang", actor=people["manager"])
        from tickets.services import template_publish

        template_publish(template=template)
    listing = manager.get(url("workflow-list")).content.decode()
    assert 'data-testid="preset-jiadian_anzhuang"' in listing
    response = manager.post(url("workflow-create"), {"template": template.pk, "source": "preset"})
    assert response.status_code == 302
    with tenant_scope(tenant_a):
        workflow = Workflow.objects.get(template=template)
    assert workflow.current_version is None and len(workflow.draft["nodes"]) == 8
    page = manager.get(url("workflow-designer", workflow.pk)).content.decode()
    assert "Not published yet" in page and page.count("<g data-node=") == 8
    assert manager.post(url("workflow-publish", workflow.pk)).status_code == 302
    assert fresh_workflow(tenant_a, workflow.pk).current_version.number == 1
    assert 'data-testid="open-jiadian_anzhuang"' in manager.get(url("workflow-list")).content.decode()


@pytest.mark.parametrize("case", ["missing", "malformed", "other_tenant", "has_workflow", "bad_source"])
def test_create_refuses_bad_input(tenant_a, tenant_b, manager, wf_template, built, case):
    with tenant_scope(tenant_b):
        from tests.factories import published_template

        other = published_template(tenant_b, name="别家", slug="other", prefix="OT")
    data = {"missing": {"source": "blank"}, "malformed": {"template": "x'; drop", "source": "blank"},
            "other_tenant": {"template": other.pk, "source": "blank"},
            "has_workflow": {"template": wf_template.pk, "source": "blank"},
            "bad_source": {"template": wf_template.pk, "source": "eval"}}[case]
    response = manager.post(url("workflow-create"), data)
    assert response.status_code == 400 and 'data-testid="list-error"' in response.content.decode()
    with tenant_scope(tenant_a):
        assert Workflow.objects.count() == 1
    with tenant_scope(tenant_b):
        assert Workflow.objects.count() == 0


# --- export / import ------------------------------------------------------------------------

def upload(name, content):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content if isinstance(content, bytes) else content.encode("utf-8"))


def test_export_and_import_round_trip(tenant_a, manager, built, scope_a):
    import json

    import yaml

    from tests.factories import published_template

    as_json = manager.get(url("workflow-export", built.pk, format="json"))
    assert as_json["Content-Type"].startswith("application/json")
    assert as_json["Content-Disposition"] == 'attachment; filename="workflow-repair.json"'
    payload = json.loads(as_json.content)
    assert payload["format"] == "scrm.workflow/1" and payload["graph"] == built.draft
    as_yaml = manager.get(url("workflow-export", built.pk, format="yaml"))
    assert yaml.safe_load(as_yaml.content) == payload
    assert manager.get(url("workflow-export", built.pk, format="xml")).status_code == 400

    other = published_template(scope_a, name="维修2", slug="repair2", prefix="WY", fields=FIELDS)
    manager.post(url("workflow-create"), {"template": other.pk, "source": "blank"})
    target = Workflow.objects.get(template=other)
    response = manager.post(url("workflow-import", target.pk),
                            {"file": upload("wf.yaml", as_yaml.content), "publish": "on"})
    assert response.status_code == 302
    target = Workflow.objects.select_related("current_version").get(pk=target.pk)
    assert target.draft == built.draft and target.current_version.number == 1


BAD_FILES = {
    "malformed_json": ("wf.json", '{"graph": {"nodes": [}', "The file is not valid JSON"),
    "malformed_yaml": ("wf.yaml", "graph: [unclosed", "The file is not valid YAML"),
    "oversized": ("wf.json", '{"graph": {"nodes": []}, "pad": "' + "x" * (512 * 1024) + '"}', "larger than 512 KB"),
    "wrong_type": ("wf.txt", "{}", "Upload a .json, .yaml or .yml file."),
    "not_utf8": ("wf.json", "{}".encode("utf-16"), "not UTF-8"),
    "no_graph": ("wf.json", '{"format": "scrm.workflow/1", "nodes": []}', "does not describe a workflow"),
    "a_list": ("wf.json", "[1, 2]", "does not describe a workflow"),
    "other_format": ("wf.json", '{"format": "other/9", "graph": {"nodes": []}}', "does not describe a workflow"),
    "alias": ("wf.yaml", "a: &x [1]\ngraph: {nodes: *x}", "aliases"),
    "bad_key": ("wf.json", '{"graph": {"nodes": [{"key": ["x"], "kind": "task"}]}}', "the key must be"),
    "bad_kind": ("wf.json", '{"graph": {"nodes": [{"key": "a", "kind": "eval"}]}}', "unknown kind"),
    "dangling": ("wf.json", '{"graph": {"nodes": [{"key": "a", "kind": "start"}], "transitions": [{"from": "a", '
                            '"to": ["b"]}]}}', "points at a node that does not exist"),
    "too_many": ("wf.json", '{"graph": {"nodes": [' + ",".join(
        f'{{"key": "n{i}", "kind": "task"}}' for i in range(101)) + "]}}", "at most 100 nodes"),
    "invalid_publish": ("wf.json", '{"graph": {"nodes": [{"key": "a", "kind": "task", "name": "x"}], '
                                   '"transitions": []}}', "exactly one start node"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_import_refuses_bad_files_and_writes_nothing(tenant_a, manager, built, case):
    name, content, message = BAD_FILES[case]
    before = fresh_workflow(tenant_a, built.pk)
    response = manager.post(url("workflow-import", built.pk), {"file": upload(name, content), "publish": "on"})
    assert response.status_code == 400
    body = response.content.decode()
    assert message in body, body.split('id="import-box"')[1][:1500]
    after = fresh_workflow(tenant_a, built.pk)
    assert (after.draft, after.current_version_id, after.name) == (before.draft, before.current_version_id, before.name)
    with tenant_scope(tenant_a):
        assert WorkflowVersion.objects.count() == 1


def test_import_without_a_file(tenant_a, manager, built):
    response = manager.post(url("workflow-import", built.pk), {})
    assert response.status_code == 400
    assert 'data-field-error="file">This field is required.' in response.content.decode()


# --- who may use the designer ---------------------------------------------------------------

DESIGNER_GETS = ["workflow-designer", "workflow-node", "workflow-transition", "workflow-diagram", "workflow-export"]
DESIGNER_POSTS = ["workflow-node", "workflow-node-delete", "workflow-transition", "workflow-transition-delete",
                  "workflow-validate", "workflow-publish", "workflow-import"]


def test_designer_is_404_for_another_tenant_403_for_staff_and_login_for_anonymous(
        tenant_a, staff_client, admin_b, people, built, client):
    before = fresh_workflow(tenant_a, built.pk)
    other, agent = staff_client(admin_b), staff_client(people["agent"])
    for name in DESIGNER_GETS:
        assert other.get(url(name, built.pk)).status_code == 404, name
        assert agent.get(url(name, built.pk)).status_code == 403, name
        assert client.get(url(name, built.pk)).status_code == 302, name
    for name in DESIGNER_POSTS:
        data = node_data(key="evil", name_zh="x", handler_rule="assignee")
        assert other.post(url(name, built.pk), data).status_code == 404, name
        assert agent.post(url(name, built.pk), data).status_code == 403, name
    assert other.get(url("workflow-designer", 999999)).status_code == 404
    assert agent.get(url("workflow-list")).status_code == 403
    listing = other.get(url("workflow-list")).content.decode()
    assert "维修" not in listing
    after = fresh_workflow(tenant_a, built.pk)
    assert (after.draft, after.current_version_id) == (before.draft, before.current_version_id)
