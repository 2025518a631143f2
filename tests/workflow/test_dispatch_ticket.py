# ruff: noqa: F811  (the fixtures city and en are imported from the other dispatch tests)
"""The ticket page's dispatch actions: a manager dispatches again (the node's rule runs anew) or
picks the handler by hand, both with a reason in the timeline; the handler flags the ticket into
the exception pool. Everything goes through the lifecycle; bad input changes nothing."""

import pytest

from scrm.models import Role
from scrm.tenancy import tenant_scope
from tests.conftest import make_member
from tests.workflow.test_dispatch import city, intake, publish, rule  # noqa: F401 (fixture)
from tests.workflow.test_dispatch_views import en  # noqa: F401 (fixture)
from tests.workflow.test_views import HTMX, url
from tickets.models import Ticket, TimelineEvent
from workflow.models import PoolEntry, Task

pytestmark = pytest.mark.django_db


@pytest.fixture
def ticket(scope_a, wf_template, city):
    """A 徐汇店 ticket dispatched to zhang or li (both 空调维修 in the store)."""
    publish(wf_template, rule(city, overflow=["store", "region"]))
    return intake(scope_a, wf_template, city["xuhui"])


def state(tenant, ticket):
    with tenant_scope(tenant):
        task = Task.objects.get(ticket=ticket)
        return {"assignee": task.assignee_id, "reasons": task.handler_reasons,
                "ticket_assignee": Ticket.objects.get(pk=ticket.pk).assignee_id,
                "events": TimelineEvent.objects.filter(ticket=ticket).count(),
                "pool": PoolEntry.objects.filter(ticket=ticket, left_at__isnull=True).count()}


def test_the_panel_offers_the_manager_redispatch_and_pick_and_the_handler_flag(tenant_a, ticket, manager_a, en):
    panel = en(manager_a).get(url("workflow-ticket-panel", ticket.pk), **HTMX).content.decode()
    assert 'data-testid="redispatch-form"' in panel and 'data-testid="pick-form"' in panel
    assert 'data-testid="flag-form"' not in panel
    handler = Task.objects.get(ticket=ticket).assignee
    panel = en(handler).get(url("workflow-ticket-panel", ticket.pk), **HTMX).content.decode()
    assert 'data-testid="flag-form"' in panel and 'data-testid="redispatch-form"' not in panel


def test_redispatch_runs_the_rule_again_and_the_timeline_says_why(tenant_a, scope_a, ticket, city, manager_a, en):
    first = Task.objects.get(ticket=ticket).assignee
    profile = first.staff_profiles.get()
    profile.on_duty = False  # the first handler called in sick
    profile.save()
    response = en(manager_a).post(url("workflow-ticket-redispatch", ticket.pk), {"reason": "张工请假"}, follow=True)
    assert response.status_code == 200
    task = Task.objects.get(ticket=ticket)
    assert task.assignee not in (None, first) and Ticket.objects.get(pk=ticket.pk).assignee == task.assignee
    picked = next(r for r in task.handler_reasons if r["picked"])
    assert picked["user_id"] == task.assignee.pk
    assert any(r["code"] == "off_duty" and r["user_id"] == first.pk for r in task.handler_reasons)
    event = TimelineEvent.objects.get(ticket=ticket, code="dispatch.redispatched")
    assert event.params["reason"] == "张工请假" and event.actor == manager_a
    assert f"Dispatched again to {task.assignee.first_name}." in response.content.decode()


def test_redispatch_with_nobody_eligible_changes_nothing(tenant_a, scope_a, ticket, city, manager_a, en):
    for who in ("zhang", "li", "wang"):
        profile = city[who].staff_profiles.get()
        profile.on_duty = False
        profile.save()
    before = state(tenant_a, ticket)
    response = en(manager_a).post(url("workflow-ticket-redispatch", ticket.pk), {"reason": "再派一次"})
    assert response.status_code == 400 and "Still nobody: Nobody eligible" in response.content.decode()
    assert state(tenant_a, ticket) == before


def test_pick_by_hand_goes_through_the_lifecycle_with_the_reason(tenant_a, scope_a, ticket, city, manager_a, en):
    response = en(manager_a).post(url("workflow-ticket-handler", ticket.pk),
                                  {"assignee": city["zhao"].pk, "reason": "客户指定赵工"}, follow=True)
    assert response.status_code == 200
    task = Task.objects.get(ticket=ticket)
    assert task.assignee == city["zhao"] and Ticket.objects.get(pk=ticket.pk).assignee == city["zhao"]
    assert task.handler_reasons[0]["code"] == "by_hand" and "客户指定赵工" in task.handler_reasons[0]["why"]
    assert TimelineEvent.objects.get(ticket=ticket, code="dispatch.by_hand").params == {
        "name": "zhao", "reason": "客户指定赵工"}
    assert TimelineEvent.objects.filter(ticket=ticket, code="ticket.assigned_with_task").exists()


def test_pick_by_hand_takes_the_ticket_out_of_the_pool(tenant_a, scope_a, wf_template, city, manager_a, en):
    publish(wf_template, rule(city, overflow=["store"], skills=[city["senior"].pk]))
    pooled = intake(scope_a, wf_template, city["xuhui"])
    assert PoolEntry.objects.filter(ticket=pooled, left_at__isnull=True).exists()
    en(manager_a).post(url("workflow-ticket-handler", pooled.pk), {"assignee": city["wang"].pk, "reason": "资深"})
    entry = PoolEntry.objects.get(ticket=pooled)
    assert entry.left_at is not None and entry.outcome == "assigned"


@pytest.mark.parametrize(("who", "reason", "message"), [
    ("", "x", "Choose the person."),
    ("abc", "x", "Choose a member of staff of this company who works on tickets."),
    ("9" * 40, "x", "Choose a member of staff of this company who works on tickets."),
    ("finance", "x", "Choose a member of staff of this company who works on tickets."),
    ("stranger", "x", "Choose a member of staff of this company who works on tickets."),
    ("zhao", "", "Say why."),
    ("zhao", "   ", "Say why."),
    ("zhao", "长" * 301, "At most 300 characters"),
])
def test_bad_picks_are_refused_and_change_nothing(tenant_a, tenant_b, ticket, city, manager_a, en, who, reason,
                                                  message):
    people = {"finance": make_member(tenant_a, Role.FINANCE, "cashier"),
              "stranger": make_member(tenant_b, Role.ENGINEER, "stranger"), "zhao": city["zhao"]}
    value = str(people[who].pk) if who in people else who
    before = state(tenant_a, ticket)
    response = en(manager_a).post(url("workflow-ticket-handler", ticket.pk), {"assignee": value, "reason": reason})
    assert response.status_code == 400 and message in response.content.decode()
    assert state(tenant_a, ticket) == before


def test_the_service_refuses_someone_without_a_ticket_role_or_outside_the_tenant(tenant_a, tenant_b, scope_a,
                                                                                 ticket, manager_a):
    from django.core.exceptions import ValidationError

    from workflow.pool import ticket_handler_pick

    finance = make_member(tenant_a, Role.FINANCE, "cashier2")
    stranger = make_member(tenant_b, Role.ENGINEER, "stranger2")
    before = state(tenant_a, ticket)
    for person in (finance, stranger):
        with pytest.raises(ValidationError):
            ticket_handler_pick(ticket=ticket, assignee=person, actor=manager_a, reason="试试")
    assert state(tenant_a, ticket) == before


@pytest.mark.parametrize("reason", ["", "  ", "长" * 301])
def test_bad_redispatch_reason_changes_nothing(tenant_a, ticket, manager_a, en, reason):
    before = state(tenant_a, ticket)
    response = en(manager_a).post(url("workflow-ticket-redispatch", ticket.pk), {"reason": reason})
    assert response.status_code == 400
    assert state(tenant_a, ticket) == before


def test_the_handler_flags_the_ticket_into_the_pool(tenant_a, scope_a, ticket, en):
    handler = Task.objects.get(ticket=ticket).assignee
    response = en(handler).post(url("workflow-ticket-flag", ticket.pk), {"reason": "需要高空作业证"}, follow=True)
    assert response.status_code == 200
    entry = PoolEntry.objects.get(ticket=ticket, left_at__isnull=True)
    assert entry.reason == "flagged" and entry.detail == "需要高空作业证" and entry.entered_by == handler
    event = TimelineEvent.objects.get(ticket=ticket, code="pool.entered")
    assert event.params["reason"] == "flagged" and event.actor == handler
    again = en(handler).post(url("workflow-ticket-flag", ticket.pk), {"reason": "再来"})
    assert again.status_code == 400 and "already in the exception pool" in again.content.decode()


@pytest.mark.parametrize("case", ["no_reason", "long", "not_handler"])
def test_bad_flags_change_nothing(tenant_a, scope_a, ticket, city, en, case):
    handler = Task.objects.get(ticket=ticket).assignee
    other = city["qian"]
    who, reason = {"no_reason": (handler, ""), "long": (handler, "长" * 301), "not_handler": (other, "不想做")}[case]
    before = state(tenant_a, ticket)
    response = en(who).post(url("workflow-ticket-flag", ticket.pk), {"reason": reason})
    assert response.status_code == 400
    assert state(tenant_a, ticket) == before


def test_engineers_cannot_redispatch_or_pick(tenant_a, ticket, city, en):
    client = en(city["qian"])
    assert client.post(url("workflow-ticket-redispatch", ticket.pk), {"reason": "x"}).status_code == 403
    assert client.post(url("workflow-ticket-handler", ticket.pk),
                       {"assignee": city["qian"].pk, "reason": "x"}).status_code == 403


def test_another_tenant_gets_404_and_nothing_changes(tenant_a, ticket, city, admin_b, en):
    before = state(tenant_a, ticket)
    client = en(admin_b)
    for name, data in (("workflow-ticket-redispatch", {"reason": "x"}), ("workflow-ticket-flag", {"reason": "x"}),
                       ("workflow-ticket-handler", {"assignee": city["zhao"].pk, "reason": "x"})):
        assert client.post(url(name, ticket.pk), data).status_code == 404, name
        assert client.get(url(name, ticket.pk)).status_code == 404, name
    assert state(tenant_a, ticket) == before


def test_the_people_to_pick_load_when_the_form_opens_for_managers_only(tenant_a, tenant_b, ticket, manager_a, en,
                                                                        admin_b):
    """The panel carries no list of people (one query less on every view); opening "pick by
    hand" fetches them: the tenant's staff, nobody of another tenant; others get 403 / 404."""
    panel = en(manager_a).get(url("workflow-ticket-panel", ticket.pk), **HTMX).content.decode()
    handler = Task.objects.get(ticket=ticket).assignee
    assert f'<option value="{handler.pk}">' not in panel
    options = en(manager_a).get(url("workflow-ticket-handler", ticket.pk), **HTMX)
    assert options.status_code == 200
    body = options.content.decode()
    stranger = make_member(tenant_b, Role.ENGINEER, "stranger3")
    assert f'<option value="{handler.pk}">' in body and f'<option value="{stranger.pk}">' not in body
    assert en(handler).get(url("workflow-ticket-handler", ticket.pk), **HTMX).status_code == 403
    assert en(admin_b).get(url("workflow-ticket-handler", ticket.pk), **HTMX).status_code == 404
