"""Smart dispatch's pages as people use them: the exception pool (who sees it, assigning and
re-dispatching from it, bad input changing nothing), the simulation of a stricter draft, and
the designer's node editor saving a dispatch rule."""

import pytest
from django.utils import translation

from scrm.models import Role
from scrm.services import region_grant
from scrm.tenancy import tenant_scope
from tests.conftest import make_member
from tests.factories import RegionFactory
from tests.workflow.test_dispatch import city, graph, intake, publish, rule  # noqa: F401 (fixture)
from tests.workflow.test_views import HTMX, draft_of, node_data, params, url
from tickets.models import TimelineEvent
from workflow.models import PoolEntry, Task, Workflow
from workflow.services import workflow_draft_set

pytestmark = pytest.mark.django_db


@pytest.fixture
def en(client_for, settings):
    def make(user):
        client = client_for(user)
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
        return client
    return make


@pytest.fixture
def pooled(scope_a, wf_template, city):  # noqa: F811
    """Three tickets in the pool: nobody at 徐汇店 has the senior skill."""
    publish(wf_template, rule(city, overflow=["store"], skills=[city["senior"].pk]))
    tickets = [intake(scope_a, wf_template, city["xuhui"]) for _ in range(3)]
    return {"tickets": tickets, "entries": list(PoolEntry.objects.order_by("id"))}


def test_pool_lists_waiting_tickets_with_the_reason_in_constant_queries(tenant_a, manager_a, en, pooled,
                                                                        django_assert_max_num_queries):
    client = en(manager_a)
    with django_assert_max_num_queries(25):
        page = client.get(url("workflow-pool")).content.decode()
    for ticket in pooled["tickets"]:
        assert ticket.number in page
    assert page.count('data-testid="pool-detail"') == 3
    assert "Nobody eligible (looked in the ticket&#x27;s store; 3 considered, mostly: lacking the skill)" in page


def test_pool_is_for_dispatchers_and_managers_only(tenant_a, engineer_a, en, pooled):
    assert en(engineer_a).get(url("workflow-pool")).status_code == 403


def test_regional_manager_sees_only_their_regions(tenant_a, en, pooled, city):  # noqa: F811
    with tenant_scope(tenant_a):
        elsewhere = make_member(tenant_a, Role.REGIONAL_MANAGER, "rm_north")
        region_grant(user=elsewhere, region=RegionFactory(tenant=tenant_a, name="华北", code="north"))
        here = make_member(tenant_a, Role.REGIONAL_MANAGER, "rm_east")
        region_grant(user=here, region=city["xuhui"].region)
    number = pooled["tickets"][0].number
    assert number not in en(elsewhere).get(url("workflow-pool")).content.decode()
    assert number in en(here).get(url("workflow-pool")).content.decode()
    entry = pooled["entries"][0]
    assert en(elsewhere).post(url("workflow-pool-assign", entry.pk), {"assignee": here.pk}).status_code == 404


def test_assign_from_the_pool(tenant_a, manager_a, en, pooled, city):  # noqa: F811
    entry = pooled["entries"][0]
    response = en(manager_a).post(url("workflow-pool-assign", entry.pk), {"assignee": city["zhang"].pk},
                                  follow=True)
    assert f"{entry.ticket.number} assigned to zhang." in response.content.decode()
    with tenant_scope(tenant_a):
        entry.refresh_from_db()
        assert entry.outcome == "assigned"
        assert Task.objects.get(ticket=entry.ticket).assignee == city["zhang"]
        assert TimelineEvent.objects.filter(ticket=entry.ticket, code="pool.left").count() == 1


@pytest.mark.parametrize(("value", "message"), [
    ("", "Choose the person."),
    ("abc", "Choose a member of staff of this company who works on tickets."),
    ("9" * 40, "Choose a member of staff of this company who works on tickets."),
    ("finance", "Choose a member of staff of this company who works on tickets."),
    ("stranger", "Choose a member of staff of this company who works on tickets."),
])
def test_bad_assignments_are_refused_and_change_nothing(tenant_a, tenant_b, manager_a, en, pooled, value,
                                                        message):
    people = {"finance": make_member(tenant_a, Role.FINANCE, "cashier"),
              "stranger": make_member(tenant_b, Role.ENGINEER, "stranger")}
    value = str(people[value].pk) if value in people else value
    entry = pooled["entries"][0]
    response = en(manager_a).post(url("workflow-pool-assign", entry.pk), {"assignee": value}, follow=True)
    assert message in response.content.decode()
    with tenant_scope(tenant_a):
        entry.refresh_from_db()
        assert entry.left_at is None and Task.objects.get(ticket=entry.ticket).assignee is None


def test_redispatch_with_still_nobody_says_why_and_changes_nothing(tenant_a, manager_a, en, pooled):
    entry = pooled["entries"][0]
    response = en(manager_a).post(url("workflow-pool-redispatch", entry.pk), follow=True)
    assert "Still nobody: Nobody eligible" in response.content.decode()
    with tenant_scope(tenant_a):
        entry.refresh_from_db()
        assert entry.left_at is None


def test_simulation_of_a_stricter_draft_shows_who_would_find_nobody(tenant_a, scope_a, wf_template, city,  # noqa: F811
                                                                    manager_a, en):
    publish(wf_template, rule(city, overflow=["store", "region"]))
    for store in ("xuhui", "xuhui", "pudong"):
        intake(scope_a, wf_template, city[store])
    workflow = Workflow.objects.get(template=wf_template)
    workflow_draft_set(workflow=workflow, graph=graph(rule(city, overflow=["store"], skills=[city["senior"].pk])))
    client = en(manager_a)
    published = client.get(url("workflow-dispatch-simulate", workflow=workflow.pk, version="published",
                               days=7)).content.decode()
    assert 'data-testid="sim-nobody"' not in published and "3 tickets" in published
    draft = client.get(url("workflow-dispatch-simulate", workflow=workflow.pk, version="draft", days=7))
    page = draft.content.decode()
    assert draft.status_code == 200
    assert "2 would find nobody" in page  # only 王 at 浦东店 is senior; 徐汇店 has no one
    assert "wang" in page and "Nobody (exception pool)" in page
    assert PoolEntry.objects.count() == 0 and Task.objects.count() == 3  # nothing written


@pytest.mark.parametrize("query", [{"days": 0}, {"days": "abc"}, {"days": 999}, {"workflow": "x"},
                                   {"version": "latest"}, {"workflow": 10 ** 12}])
def test_simulation_bad_input(tenant_a, scope_a, wf_template, city, manager_a, en, query):  # noqa: F811
    workflow = publish(wf_template, rule(city)).workflow
    params_ = {"workflow": workflow.pk, "version": "draft", "days": 7, **query}
    assert en(manager_a).get(url("workflow-dispatch-simulate", **params_)).status_code == 400


def test_simulation_refuses_another_tenants_workflow(tenant_a, tenant_b, admin_b, en, scope_a, wf_template,
                                                     city):  # noqa: F811
    workflow = publish(wf_template, rule(city)).workflow
    response = en(admin_b).get(url("workflow-dispatch-simulate", workflow=workflow.pk, version="draft", days=7))
    assert response.status_code == 400 and "Choose a workflow of this company." in response.content.decode()


def test_designer_node_editor_saves_a_dispatch_rule(tenant_a, client_for, settings, people, wf_template):
    from workflow.services import workflow_create

    with tenant_scope(tenant_a):
        from scrm.models import Skill

        skill = Skill.objects.create(tenant=tenant_a, name="空调维修")
        workflow = workflow_create(template=wf_template, name="空白", graph={
            "nodes": [{"key": "start", "kind": "start", "name": "开始"}, {"key": "end", "kind": "end", "name": "结束"}],
            "transitions": []})
    client = client_for(people["manager"])
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    values = dict(role="engineer", overflow="本店, 本区域, nearby", radius_km="25", skills=[str(skill.pk)],
                  skill_by="", skill_field="", skill_map="", on_duty_only="on", under_capacity="on",
                  w_distance="50", w_load="30", w_speed="20", senior_skill="", senior_for="", senior_bonus="",
                  round_robin="on")
    data = node_data(key="fix", name_zh="上门维修", handler_rule="dispatch", **params("handler", "dispatch", **values))
    assert client.post(url("workflow-node", workflow.pk), data, **HTMX).status_code == 200
    saved = next(n for n in draft_of(tenant_a, workflow)["nodes"] if n["key"] == "fix")
    assert saved["handler"] == {"rule": "dispatch", "role": "engineer", "overflow": ["store", "region", "nearby"],
                                "on_duty_only": True, "under_capacity": True, "round_robin": True, "radius_km": 25,
                                "w_distance": 50, "w_load": 30, "w_speed": 20, "skills": [skill.pk]}
    editor = client.get(url("workflow-node", workflow.pk, key="fix"), **HTMX).content.decode()
    assert 'value="store, region, nearby"' in editor
    bad = dict(values, overflow="store, region, store", w_load="-1")
    data = node_data(key="fix2", name_zh="再修", handler_rule="dispatch", **params("handler", "dispatch", **bad))
    page = client.post(url("workflow-node", workflow.pk), data, **HTMX).content.decode()
    assert "A step appears twice" in page and "A weight cannot be negative." in page
    assert all(n["key"] != "fix2" for n in draft_of(tenant_a, workflow)["nodes"])


def test_chinese_reasons_read_naturally(scope_a, wf_template, city):  # noqa: F811
    publish(wf_template, rule(city))
    with translation.override("zh-hans"):
        ticket = intake(scope_a, wf_template, city["xuhui"])
        why = next(r["why"] for r in Task.objects.get(ticket=ticket).handler_reasons if r["picked"])
    assert why.startswith("派给他：在工单所在门店 徐汇店，距离 0 km，当前 0 单（上限 ")


