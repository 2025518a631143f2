"""The SLA policy pages as a manager uses them: create a policy with an escalation chain, bad
input refused on its field with nothing written (missing, malformed, oversized, another
tenant's calendar or person, a level after a longer one), export and import, who may open
them; and the SLA in colour on the ticket list and the panel with bounded query counts."""

import datetime
import json

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from scrm.models import Role
from scrm.tenancy import tenant_scope
from tests.conftest import make_member
from tests.factories import BusinessCalendarFactory, published_template
from tickets.services import ticket_intake
from workflow.models import SlaPolicy, TicketSla
from workflow.sla_policy import sla_policy_create

pytestmark = pytest.mark.django_db


def level(n, **values):
    base = {"after": "120", "clock": "working", "basis": "created", "until": "resolution", "to": "supervisor",
            "role": "", "user": "", "channels": ["wecom"]}
    base.update(values)
    return {f"level-{n}-{k}": v for k, v in base.items()}


def form_data(levels=(), **values):
    data = {"name": "投诉", "is_active": "on", "position": "10", "response_minutes": "120",
            "resolution_minutes": "480", "due_soon_percent": "20", "node_limits": "",
            "level-TOTAL_FORMS": str(max(len(levels), 2)), "level-INITIAL_FORMS": "0",
            "level-MIN_NUM_FORMS": "0", "level-MAX_NUM_FORMS": "8"}
    for item in levels:
        data.update(item)
    for n in range(len(levels), 2):  # the empty rows as the browser posts them: defaults, no time
        data.update(level(n, after=""))
    data.update(values)
    return data


@pytest.fixture
def manager(manager_a, client_for):
    return client_for(manager_a)


def policies(tenant):
    with tenant_scope(tenant):
        return list(SlaPolicy.objects.all())


def test_create_a_policy_with_its_chain(tenant_a, manager, manager_a):
    response = manager.post(reverse("workflow-sla-create"), form_data(
        levels=[level(0), level(1, after="240", to="user", user=str(manager_a.pk), channels=["sms"],
                               actions=["raise_priority"])],
        priorities=["high", "urgent"], node_limits="accept=30\nfix：240"))
    assert response.status_code == 302, response.content.decode()[:3000]
    [policy] = policies(tenant_a)
    assert policy.condition == {"all": [{"field": "priority", "op": "in", "value": ["high", "urgent"]}]}
    assert policy.node_limits == {"accept": 30, "fix": 240}
    assert [lv["after"] for lv in policy.escalations] == [120, 240]
    assert policy.escalations[1]["user"] == manager_a.pk and policy.escalations[1]["actions"] == ["raise_priority"]
    page = manager.get(reverse("workflow-sla", args=[policy.pk])).content.decode()
    assert 'value="240"' in page and "accept=30" in page
    assert "投诉" in manager.get(reverse("workflow-sla-list")).content.decode()


@pytest.mark.parametrize("values, field, message", [
    ({"name": ""}, "name", "This field is required"),
    ({"name": "长" * 61}, "name", "at most 60"),
    ({"response_minutes": "", "resolution_minutes": ""}, "response_minutes", "Set a first-response target"),
    ({"response_minutes": "两小时"}, "response_minutes", "Enter a whole number"),
    ({"due_soon_percent": "95"}, "due_soon_percent", "less than or equal to 90"),
    ({"node_limits": "accept thirty"}, "node_limits", "Line 1"),
])
def test_bad_policy_input_is_refused_on_its_field(tenant_a, manager, values, field, message):
    response = manager.post(reverse("workflow-sla-create"), form_data(**values))
    assert response.status_code == 400
    body = response.content.decode()
    assert f'data-field-error="{field}"' in body, message
    assert policies(tenant_a) == []


def test_a_level_after_a_longer_one_is_refused(tenant_a, manager):
    response = manager.post(reverse("workflow-sla-create"),
                            form_data(levels=[level(0, after="240"), level(1, after="120")]))
    assert response.status_code == 400
    assert 'data-testid="form-error"' in response.content.decode()
    assert policies(tenant_a) == []


def test_another_tenants_calendar_or_person_is_not_a_choice(tenant_a, tenant_b, manager):
    calendar_b = BusinessCalendarFactory(tenant=tenant_b, name="乙日历")
    stranger = make_member(tenant_b, Role.MANAGER, "yi_manager")
    response = manager.post(reverse("workflow-sla-create"), form_data(calendar=str(calendar_b.pk)))
    assert response.status_code == 400 and 'data-field-error="calendar"' in response.content.decode()
    response = manager.post(reverse("workflow-sla-create"),
                            form_data(levels=[level(0, to="user", user=str(stranger.pk))]))
    assert response.status_code == 400 and 'data-field-error="user"' in response.content.decode()
    assert policies(tenant_a) == []


def test_export_then_import_and_a_bad_file_changes_nothing(tenant_a, manager):
    with tenant_scope(tenant_a):
        sla_policy_create(tenant=tenant_a, name="投诉", response_minutes=120)
    exported = manager.get(reverse("workflow-sla-export"))
    assert exported.status_code == 200 and exported["Content-Type"].startswith("application/json")
    payload = json.loads(exported.content)
    payload["policies"][0]["response_minutes"] = 60
    upload = SimpleUploadedFile("sla.json", json.dumps(payload).encode(), content_type="application/json")
    assert manager.post(reverse("workflow-sla-import"), {"file": upload}).status_code == 302
    assert policies(tenant_a)[0].response_minutes == 60
    for content in (b"\xff\xfe", b"[1, 2", json.dumps({"format": "scrm.sla-policies/1", "policies": [
            {"name": "坏", "response_minutes": 0}]}).encode(), b"x" * (300 * 1024)):
        upload = SimpleUploadedFile("sla.json", content, content_type="application/json")
        response = manager.post(reverse("workflow-sla-import"), {"file": upload})
        assert response.status_code == 400 and 'data-testid="import-error"' in response.content.decode()
    assert [(p.name, p.response_minutes) for p in policies(tenant_a)] == [("投诉", 60)]


def test_only_those_who_configure_may_open_the_pages(tenant_a, agent_a, client_for, manager):
    with tenant_scope(tenant_a):
        policy = sla_policy_create(tenant=tenant_a, name="投诉", response_minutes=120)
    agent = client_for(agent_a)
    assert agent.get(reverse("workflow-sla-list")).status_code == 403
    assert agent.post(reverse("workflow-sla-delete", args=[policy.pk])).status_code == 403
    assert manager.post(reverse("workflow-sla-delete", args=[policy.pk])).status_code == 302
    assert policies(tenant_a) == []


def new(template, i):
    return ticket_intake(tenant=template.tenant, source="phone", template=template, data={"order_no": f"A{i}"},
                         title=f"单{i}")


def test_the_list_and_panel_show_the_sla_in_colour_in_bounded_queries(
        tenant_a, agent_a, client_for, django_assert_max_num_queries):
    start = datetime.datetime(2026, 12, 7, 10, 0, tzinfo=datetime.UTC)
    with tenant_scope(tenant_a):
        template = published_template(tenant_a)
        sla_policy_create(tenant=tenant_a, name="全部", response_minutes=60, resolution_minutes=240)
        with time_machine.travel(start, tick=False):
            tickets = [new(template, i) for i in range(3)]
    client = client_for(agent_a)
    with time_machine.travel(start + datetime.timedelta(minutes=50), tick=False):
        client.get(reverse("ticket-list"))
        with django_assert_max_num_queries(12) as few:
            body = client.get(reverse("ticket-list")).content.decode()
        assert body.count('data-state="due_soon"') == 3
        with tenant_scope(tenant_a):
            for i in range(3, 20):
                new(template, i)
        with django_assert_max_num_queries(len(few.captured_queries)):
            body = client.get(reverse("ticket-list")).content.decode()
        assert body.count('data-state="due_soon"') == 3 and body.count('data-state="on_track"') == 17
        panel = client.get(reverse("workflow-ticket-panel", args=[tickets[0].pk]), HTTP_HX_REQUEST="true")
    assert 'data-testid="sla-strip"' in panel.content.decode() and "剩余 10分" in panel.content.decode()
    with tenant_scope(tenant_a):
        assert TicketSla.objects.count() == 20
