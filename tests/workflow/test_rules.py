"""Handler rule kinds as plug-ins: each kind's choice comes with its reasons (who was weighed and
why), publishing checks every rule's parameters with a message naming the node and the problem
(and publishes nothing), a kind registered elsewhere appears in the designer without editing it,
and the ticket panel shows the stored reasons ("为什么派给他")."""

import copy
import html
import json

import pytest
from django import forms
from django.core.exceptions import ValidationError
from django.urls import include, path
from django.utils import translation
from django.utils.translation import gettext_lazy

from scrm.models import Role
from scrm.services import store_grant
from scrm.tenancy import tenant_scope
from tests.conftest import make_member
from tests.factories import CustomerFactory, RegionFactory, StoreFactory
from tests.workflow.conftest import edge, node, role
from tests.workflow.test_views import HTMX, draft_of, node_data, params, url
from tickets.services import ticket_intake
from workflow.graph import graph_validate
from workflow.models import Task, Workflow, WorkflowVersion
from workflow.presets import workflow_preset_get
from workflow.routing import (
    RULES,
    HandlerChoice,
    HandlerContext,
    HandlerRuleKind,
    handler_rule_register,
    handlers_choose,
    handlers_resolve,
    reasons_display,
)
from workflow.services import workflow_create, workflow_draft_set, workflow_publish

urlpatterns = [path("", include("workflow.urls")), path("", include("tickets.urls_config")),
               path("", include("scrm.urls"))]
pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def flow_graph(handler):
    return {"nodes": [node("start", "start"), node("a", "task", "处理", handler=handler), node("end", "end")],
            "transitions": [edge("start", "a"), edge("a", "end")]}


@pytest.fixture
def crew(scope_a, place):
    """Engineers around `place`: one working there, one with a grant for it, one elsewhere."""
    elsewhere = StoreFactory(tenant=scope_a, region=RegionFactory(tenant=scope_a))
    crew = {"home": make_member(scope_a, Role.ENGINEER, "eng_home"),
            "granted": make_member(scope_a, Role.ENGINEER, "eng_granted"),
            "away": make_member(scope_a, Role.ENGINEER, "eng_away")}
    for who, store in (("home", place), ("granted", elsewhere), ("away", elsewhere)):
        profile = crew[who].staff_profiles.get()
        profile.home_store = store
        profile.save()
    store_grant(user=crew["granted"], store=place)
    return crew


def load_up(scope, template, user, n):
    """Give `user` n open tasks (tickets through a workflow that names them)."""
    workflow = workflow_create(template=template, name="指派")
    workflow_draft_set(workflow=workflow, graph=flow_graph({"rule": "user", "user_id": user.pk}))
    workflow_publish(workflow=workflow)
    for _ in range(n):
        ticket_intake(tenant=scope, source="phone", template=template, data={})
    assert Task.objects.filter(assignee=user, status="open").count() == n


def ticket_at(scope, template, *, store=None, region=None, **extra):
    return ticket_intake(tenant=scope, source="phone", template=template, data={}, store=store, region=region,
                         **extra)


# --- choosing, with reasons -----------------------------------------------------------------

def test_role_rule_picks_the_least_loaded_in_the_store_and_says_why(scope_a, wf_template, place, crew):
    ticket = ticket_at(scope_a, wf_template, store=place, region=place.region)  # before the workflow: no task
    load_up(scope_a, wf_template, crew["home"], 2)
    choice = handlers_choose(role("engineer", "store"), HandlerContext(ticket=ticket))
    assert isinstance(choice, HandlerChoice)
    assert choice.users == [crew["granted"]]
    by_name = {r["name"]: r for r in choice.reasons}
    assert set(by_name) == {"eng_home", "eng_granted", "eng_away"}
    assert by_name["eng_granted"]["picked"] is True
    assert by_name["eng_granted"]["why"] == f"Works in the ticket's store {place.name}; 0 open tasks, the fewest."
    assert by_name["eng_home"]["picked"] is False
    assert by_name["eng_home"]["why"] == f"Works in the ticket's store {place.name}; 2 open tasks, more than the " \
                                         "one picked."
    assert by_name["eng_away"]["picked"] is False
    assert by_name["eng_away"]["why"] == f"Has the role, but works neither in the ticket's store {place.name} nor " \
                                         "has a grant for it."
    assert by_name["eng_granted"]["user_id"] == crew["granted"].pk
    assert choice.summary == "Engineer · in the ticket's store: 2 candidates."
    json.dumps(choice.reasons)  # stored on the task as JSON
    # The engine's interface is unchanged: the users, best first.
    assert handlers_resolve(role("engineer", "store"), HandlerContext(ticket=ticket)) == [crew["granted"]]


def test_countersign_takes_everyone_and_a_tie_goes_to_the_earlier_account(scope_a, wf_template, place, crew):
    ticket = ticket_at(scope_a, wf_template, store=place, region=place.region)
    everyone = handlers_choose(role("engineer", "store"), HandlerContext(ticket=ticket), many=True)
    assert everyone.users == [crew["home"], crew["granted"]]
    assert [r["code"] for r in everyone.reasons if r["picked"]] == ["all", "all"]
    one = handlers_choose(role("engineer", "store"), HandlerContext(ticket=ticket))
    assert one.users == [crew["home"]]
    tie = next(r for r in one.reasons if r["name"] == "eng_granted")
    assert tie["why"] == f"Works in the ticket's store {place.name}; 0 open tasks, as few as the one picked (ties " \
                         "go to the earlier account)."


def test_role_rule_falls_back_to_the_region_and_says_so(scope_a, wf_template, place, crew):
    ticket = ticket_at(scope_a, wf_template, region=place.region)
    choice = handlers_choose(role("engineer", "store"), HandlerContext(ticket=ticket))
    # Only the engineer at `place` works in its region; a store grant does not cover the region.
    assert choice.users == [crew["home"]]
    assert "(the ticket has no store: its region counts)" in choice.summary
    assert choice.reasons[0]["why"] == f"Covers the ticket's region {place.region.name}; the only candidate."


def test_role_rule_with_nobody_in_scope(scope_a, wf_template, place, crew):
    ticket = ticket_at(scope_a, wf_template, store=place, region=place.region)
    choice = handlers_choose(role("finance", "store"), HandlerContext(ticket=ticket))
    assert choice.users == [] and choice.reasons == []
    assert choice.summary == "Finance · in the ticket's store: nobody matches; the task goes to the exception pool."


def test_the_other_kinds_say_why(scope_a, tenant_b, admin_b, wf_template, people):
    owner = people["agent"]
    customer = CustomerFactory(tenant=scope_a, name="王女士", owner=owner)
    ticket = ticket_at(scope_a, wf_template, customer=customer)
    ctx = HandlerContext(ticket=ticket, previous=people["manager"])
    named = handlers_choose({"rule": "user", "user_id": people["gm"].pk}, ctx)
    assert named.users == [people["gm"]] and named.reasons[0]["why"] == "Named in the rule."
    gone = handlers_choose({"rule": "user", "user_id": admin_b.pk}, ctx)  # another tenant's: not staff here
    assert gone.users == [] and gone.reasons[0]["picked"] is False and gone.reasons[0]["name"] == ""
    assert gone.reasons[0]["why"] == "Named in the rule, but no longer a member of staff."
    assert reasons_display(gone.reasons)[0]["name"] == f"#{admin_b.pk}"
    owner_choice = handlers_choose({"rule": "customer_owner"}, ctx)
    assert owner_choice.users == [owner] and owner_choice.reasons[0]["why"] == "Owns the customer 王女士."
    previous = handlers_choose({"rule": "previous"}, ctx)
    assert previous.users == [people["manager"]] and previous.reasons[0]["why"] == "Handled the previous node."
    assert handlers_choose({"rule": "previous"}, HandlerContext(ticket=ticket)).summary == \
        "No earlier node was handled by a person."
    assert handlers_choose({"rule": "assignee"}, ctx).summary == "The ticket has no assignee yet."
    bare = ticket_at(scope_a, wf_template)
    assert handlers_choose({"rule": "customer_owner"}, HandlerContext(ticket=bare)).users == []
    for rule in (None, {}, {"rule": "wizard"}, {"rule": ["role"]}):
        assert handlers_choose(rule, ctx).users == [] and handlers_resolve(rule, ctx) == []


def test_reasons_render_in_the_readers_language(scope_a, wf_template, place, crew):
    ticket = ticket_at(scope_a, wf_template, store=place, region=place.region)
    reasons = handlers_choose(role("engineer", "store"), HandlerContext(ticket=ticket)).reasons
    with translation.override("zh-hans"):
        rows = reasons_display(reasons)
    assert rows[0] == {"name": "eng_home", "picked": True,
                       "why": f"在工单所属门店 {place.name} 工作；0 个待办，最少。"}


# --- publishing checks each rule's parameters -----------------------------------------------

def bad_rules(other_user_id):
    return {
        "unknown kind": ({"handler": {"rule": "wizard"}},
                         "Node “a”: unknown kind of handler rule “wizard”."),
        "missing role": ({"handler": {"rule": "role", "scope": "store"}},
                         "Node “a”, handler rule “A role”: Role: Choose the role."),
        "unknown role": ({"handler": {"rule": "role", "role": "pilot"}},
                         "Node “a”, handler rule “A role”: Role: Unknown role “pilot”."),
        "bad scope": ({"handler": {"rule": "role", "role": "engineer", "scope": "moon"}},
                      "Node “a”, handler rule “A role”: Where: Unknown place “moon”: use store, region or tenant."),
        "misspelt setting": ({"handler": {"rule": "role", "role": "engineer", "scop": "tenant"}},
                             "Node “a”, handler rule “A role”: “scop” is not a setting of this rule."),
        "missing person": ({"handler": {"rule": "user"}},
                           "Node “a”, handler rule “A named person”: Person: Choose the person."),
        "person of another tenant": (
            {"handler": {"rule": "user", "user_id": other_user_id}},
            "Node “a”, handler rule “A named person”: Person: Choose a member of staff of this company."),
        "setting a kind does not take": (
            {"handler": {"rule": "previous", "role": "engineer"}},
            "Node “a”, handler rule “The previous node's handler”: “role” is not a setting of this rule."),
        "bad backup": ({"handler": role("agent"), "backup": {"rule": "role"}},
                       "Node “a”, backup handler rule “A role”: Role: Choose the role."),
    }


@pytest.mark.parametrize("case", sorted(bad_rules(0)))
def test_publish_refuses_bad_rule_parameters(scope_a, wf_template, people, admin_b, case):
    rules, message = bad_rules(admin_b.pk)[case]
    graph = flow_graph(None)
    graph["nodes"][1] = node("a", "task", "处理", **rules)
    workflow = workflow_create(template=wf_template, name="坏规则")
    workflow_draft_set(workflow=workflow, graph=copy.deepcopy(graph))
    with pytest.raises(ValidationError) as excinfo:
        workflow_publish(workflow=workflow)
    assert message in excinfo.value.messages, excinfo.value.messages
    assert Workflow.objects.get(pk=workflow.pk).current_version_id is None
    assert not WorkflowVersion.objects.filter(workflow=workflow).exists()


def test_publish_names_the_countersigner_whose_rule_is_wrong(scope_a, wf_template, people):
    graph = flow_graph(None)
    graph["nodes"][1] = node("cs", "countersign", "会签", handlers=[role("manager"), {"rule": "user", "user_id": "x"}])
    graph["transitions"] = [edge("start", "cs"), edge("cs", "end")]
    workflow = workflow_create(template=wf_template, name="会签")
    workflow_draft_set(workflow=workflow, graph=graph)
    with pytest.raises(ValidationError) as excinfo:
        workflow_publish(workflow=workflow)
    assert excinfo.value.messages == [
        "Node “cs”, countersigner 2's rule “A named person”: Person: Choose a member of staff of this company."]
    assert not WorkflowVersion.objects.filter(workflow=workflow).exists()


def test_publish_page_shows_the_rule_problem_and_publishes_nothing(tenant_a, client_for, settings, people,
                                                                    wf_template, admin_b):
    with tenant_scope(tenant_a):
        workflow = workflow_create(template=wf_template, name="导入的流程",
                                   graph=flow_graph({"rule": "user", "user_id": admin_b.pk}))
    manager = client_for(people["manager"])
    manager.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    response = manager.post(url("workflow-publish", workflow.pk))
    assert response.status_code == 400
    assert "Node “a”, handler rule “A named person”: Person: Choose a member of staff of this company." in \
        response.content.decode()
    with tenant_scope(tenant_a):
        assert not WorkflowVersion.objects.filter(workflow=workflow).exists()


@pytest.mark.parametrize("slug", ["4s_baoyang", "canyin_tousu", "jiadian_anzhuang", "kecheng_zixun",
                                  "shebei_xunjian"])
def test_preset_graphs_stay_valid_unchanged(scope_a, slug):
    graph = workflow_preset_get(slug)["graph"]
    rules = [[n.get("handler"), n.get("backup"), n.get("handlers")] for n in graph["nodes"]]
    checked = graph_validate(copy.deepcopy(graph))
    assert [[n.get("handler"), n.get("backup"), n.get("handlers")] for n in checked["nodes"]] == rules


# --- a kind registered elsewhere appears in the designer --------------------------------------

class SkillForm(forms.Form):
    skill = forms.CharField(label=gettext_lazy("Skill"), max_length=20,
                            error_messages={"required": "Name the skill."})


@pytest.fixture
def skill_kind():
    @handler_rule_register
    class SkillRule(HandlerRuleKind):
        name = "test_skill"
        label = "By skill (test)"
        form_class = SkillForm

        def summary(self, rule, users=None):
            return f"Skill: {rule.get('skill')}"

        def choose(self, rule, ctx, *, many):
            return HandlerChoice()

    yield SkillRule
    del RULES["test_skill"]


@pytest.fixture
def blank(tenant_a, wf_template):
    with tenant_scope(tenant_a):
        return workflow_create(template=wf_template, name="空白", graph={
            "nodes": [node("start", "start", "开始"), node("end", "end", "结束")], "transitions": []})


@pytest.fixture
def manager(client_for, settings, people):
    client = client_for(people["manager"])
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def test_a_new_kind_appears_in_the_designer_without_editing_it(tenant_a, manager, blank, skill_kind):
    editor = manager.get(url("workflow-node", blank.pk), **HTMX).content.decode()
    assert '<option value="test_skill">By skill (test)</option>' in editor
    assert 'name="handler-test_skill-skill"' in editor and 'data-rule-show="test_skill"' in editor
    # Its parameters are checked by its own form …
    before = draft_of(tenant_a, blank)
    data = node_data(key="visit", name_zh="上门", handler_rule="test_skill",
                     **params("handler", "test_skill", skill=""))
    response = manager.post(url("workflow-node", blank.pk), data, **HTMX)
    assert response.status_code == 400
    assert 'data-field-error="handler-test_skill-skill">Name the skill.' in response.content.decode()
    assert draft_of(tenant_a, blank) == before
    # … and saved as the rule's data, listed with the kind's summary, and shown again in the editor.
    data.update(params("handler", "test_skill", skill="空调"))
    response = manager.post(url("workflow-node", blank.pk), data, **HTMX)
    assert response.status_code == 200
    assert "Skill: 空调" in response.content.decode()
    saved = next(n for n in draft_of(tenant_a, blank)["nodes"] if n["key"] == "visit")
    assert saved["handler"] == {"rule": "test_skill", "skill": "空调"}
    editor = manager.get(url("workflow-node", blank.pk, key="visit"), **HTMX).content.decode()
    assert 'name="handler-test_skill-skill" value="空调"' in editor


def test_the_editor_opens_a_role_rule_with_its_parameters(tenant_a, manager, blank):
    data = node_data(key="visit", name_zh="上门", handler_rule="role",
                     **params("handler", "role", role="engineer", scope="region"))
    assert manager.post(url("workflow-node", blank.pk), data, **HTMX).status_code == 200
    saved = next(n for n in draft_of(tenant_a, blank)["nodes"] if n["key"] == "visit")
    assert saved["handler"] == {"rule": "role", "role": "engineer", "scope": "region"}
    editor = manager.get(url("workflow-node", blank.pk, key="visit"), **HTMX).content.decode()
    assert '<option value="engineer" selected>' in editor and '<option value="region" selected>' in editor


# --- the ticket page says why ------------------------------------------------------------------

def test_ticket_panel_shows_why_the_handler_was_picked(tenant_a, client_for, settings, people, wf_template, place,
                                                       crew):
    with tenant_scope(tenant_a):
        workflow = workflow_create(template=wf_template, name="派单", graph=flow_graph(role("engineer", "store")))
        workflow_publish(workflow=workflow)
        ticket = ticket_at(tenant_a, wf_template, store=place, region=place.region)
        task = Task.objects.get(ticket=ticket)
        reasons = handlers_choose(role("engineer", "store"), HandlerContext(ticket=ticket)).reasons
        reasons.append({"user_id": None, "name": "<b>x</b>", "picked": False, "rule": "gone_kind", "code": "?",
                        "why": "kept text"})
        task.handler_reasons = reasons
        task.save(update_fields=["handler_reasons"])
    manager = client_for(people["manager"])
    manager.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    body = manager.get(url("workflow-ticket-panel", ticket.pk), **HTMX).content.decode()
    text = html.unescape(body)
    assert 'data-testid="handler-reasons"' in body and "Why this handler?" in body
    # The engine gave the task to eng_home (a tie at 0, the earlier account); asked again now, the
    # rule prefers eng_granted — these are the reasons stored above, not recomputed.
    assert f"eng_granted — Works in the ticket's store {place.name}; 0 open tasks, the fewest." in text
    assert f"eng_home — Works in the ticket's store {place.name}; 1 open task, more than the one picked." in text
    assert f"eng_away — Has the role, but works neither in the ticket's store {place.name}" in text
    # eng_granted picked; eng_home, eng_away, wf_engineer (of the `people` fixture) and the kept one not.
    assert body.count('data-picked="1"') == 1 and body.count('data-picked="0"') == 4
    assert "&lt;b&gt;x&lt;/b&gt; — kept text" in body  # a kind no longer registered keeps its text, escaped
    manager.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    body = manager.get(url("workflow-ticket-panel", ticket.pk), **HTMX).content.decode()
    assert "为什么派给他" in body and f"eng_granted — 在工单所属门店 {place.name} 工作；0 个待办，最少。" in body


def test_ticket_panel_without_reasons_shows_no_list(tenant_a, client_for, people, wf_template):
    with tenant_scope(tenant_a):
        workflow = workflow_create(template=wf_template, name="派单", graph=flow_graph(role("agent")))
        workflow_publish(workflow=workflow)
        ticket = ticket_at(tenant_a, wf_template)
        # The engine stores reasons now; a task from before it did has none.
        assert Task.objects.get(ticket=ticket).handler_reasons
        Task.objects.filter(ticket=ticket).update(handler_reasons=[])
    body = client_for(people["manager"]).get(url("workflow-ticket-panel", ticket.pk), **HTMX).content.decode()
    assert 'data-testid="task-list"' in body and 'data-testid="handler-reasons"' not in body


def test_role_rule_reads_a_constant_number_of_queries(scope_a, wf_template, place, crew,
                                                      django_assert_num_queries):
    ticket = ticket_at(scope_a, wf_template, store=place, region=place.region)
    with django_assert_num_queries(2):  # candidates in scope with their Workload rows, those out of scope
        few = handlers_choose(role("engineer", "store"), HandlerContext(ticket=ticket))
    for i in range(8):
        make_member(scope_a, Role.ENGINEER, f"eng_more{i}")
    with django_assert_num_queries(2):
        many = handlers_choose(role("engineer", "store"), HandlerContext(ticket=ticket))
    assert len(many.reasons) == len(few.reasons) + 8
