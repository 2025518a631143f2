"""The 实时进度看板: columns by status / node / handler with exact counts, filters (unknown or
another tenant's ids are clear errors), visibility, and a drag that transfers through the lifecycle."""

import pytest
from django.urls import reverse

from scrm.services import store_grant
from scrm.tenancy import tenant_scope
from tests.conftest import make_member
from tests.factories import RegionFactory, StoreFactory
from tickets.models import Ticket, TimelineEvent
from workflow.models import Task, TaskStatus

pytestmark = pytest.mark.django_db


def cards(response):
    return {card.pk for column in response.context["board"]["columns"] for card in column.cards}


def test_board_by_status_node_and_handler(scope_a, staff, file_ticket, places, client_for,
                                          django_assert_max_num_queries):
    tickets = [file_ticket(places["xuhui"]) for _ in range(3)]
    client = client_for(staff["manager"])
    with django_assert_max_num_queries(16):
        by_status = client.get(reverse("board"))
    assert by_status.status_code == 200
    counts = {c.key: c.count for c in by_status.context["board"]["columns"]}
    assert sum(counts.values()) == 3 and cards(by_status) == {t.pk for t in tickets}
    by_node = client.get(reverse("board") + "?group=node")
    assert [(c.label, c.count) for c in by_node.context["board"]["columns"]] == [("受理", 3)]
    by_handler = client.get(reverse("board") + "?group=handler")
    agent_column = next(c for c in by_handler.context["board"]["columns"] if c.key == staff["agent"].pk)
    assert agent_column.count == 3 and by_handler.context["can_transfer"]
    assert 'data-transfer-url="/board/transfer/"' in by_handler.content.decode()


def test_board_query_count_is_flat(scope_a, staff, file_ticket, places, client_for, django_assert_max_num_queries):
    client = client_for(staff["manager"])
    file_ticket(places["xuhui"])
    with django_assert_max_num_queries(16) as few:
        client.get(reverse("board") + "?group=handler")
    for _ in range(5):
        file_ticket(places["chaoyang"])
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(reverse("board") + "?group=handler", HTTP_HX_REQUEST="true")


def test_board_filters_narrow_and_bad_filters_are_errors(scope_a, staff, file_ticket, places, client_for, tenant_b):
    east = file_ticket(places["xuhui"], priority="urgent")
    file_ticket(places["chaoyang"])
    client = client_for(staff["manager"])
    assert cards(client.get(reverse("board") + f"?region={places['east'].pk}")) == {east.pk}
    assert cards(client.get(reverse("board") + "?priority=urgent")) == {east.pk}
    with tenant_scope(tenant_b):
        foreign = StoreFactory(tenant=tenant_b, region=RegionFactory(tenant=tenant_b))
    for bad in (f"?store={foreign.pk}", "?store=abc", "?priority=sky-high", "?handler=999999", "?group=x",
                "?days=3650"):
        response = client.get(reverse("board") + bad)
        assert response.status_code == 400, bad
        assert 'data-testid="filter-errors"' in response.content.decode(), bad


def test_regional_manager_sees_only_their_stores(scope_a, staff, file_ticket, places, client_for):
    east = file_ticket(places["xuhui"])
    file_ticket(places["chaoyang"])
    regional = make_member(scope_a, "regional_manager", "db_regional")
    store_grant(user=regional, store=places["xuhui"])
    response = client_for(regional).get(reverse("board"))
    assert cards(response) == {east.pk}


def test_drag_to_another_handler_transfers_ticket_and_task(scope_a, staff, file_ticket, places, client_for):
    ticket = file_ticket(places["xuhui"])
    other = make_member(scope_a, "agent", "db_agent2")
    response = client_for(staff["manager"]).post(reverse("board-transfer"),
                                                 {"ticket": ticket.pk, "handler": other.pk}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200, response.content
    assert Ticket.objects.get(pk=ticket.pk).assignee == other
    assert Task.objects.get(ticket=ticket, status=TaskStatus.OPEN).assignee == other
    event = TimelineEvent.objects.filter(ticket=ticket).order_by("-id").first()
    assert event.kind == "assigned" and "受理" in event.text


@pytest.mark.parametrize("case", ["missing", "malformed", "unknown_handler", "foreign_ticket", "finance"])
def test_bad_transfers_change_nothing(scope_a, staff, file_ticket, places, client_for, tenant_b, admin_b, case):
    ticket = file_ticket(places["xuhui"])
    data = {"ticket": ticket.pk, "handler": staff["engineer"].pk}
    user = staff["manager"]
    expected = 400
    if case == "missing":
        data = {}
    elif case == "malformed":
        data = {"ticket": "1; drop", "handler": "x" * 5000}
    elif case == "unknown_handler":
        data["handler"] = admin_b.pk  # a person of another tenant
    elif case == "foreign_ticket":
        user, data, expected = admin_b, {"ticket": ticket.pk, "handler": admin_b.pk}, 404
    elif case == "finance":
        user, expected = make_member(scope_a, "finance", "db_finance"), 403
    before = TimelineEvent.objects.filter(ticket=ticket).count()
    response = client_for(user).post(reverse("board-transfer"), data, HTTP_HX_REQUEST="true")
    assert response.status_code == expected
    assert Ticket.objects.get(pk=ticket.pk).assignee == staff["agent"]
    assert TimelineEvent.objects.filter(ticket=ticket).count() == before


def test_columns_show_the_newest_cards_a_total_and_a_link_to_the_rest(scope_a, staff, file_ticket, places,
                                                                       client_for, monkeypatch):
    from dashboards import selectors

    monkeypatch.setattr(selectors, "BOARD_COLUMN_LIMIT", 2)
    monkeypatch.setattr(selectors, "BOARD_COUNT_CAP", 3)
    tickets = [file_ticket(places["xuhui"]) for _ in range(5)]
    response = client_for(staff["manager"]).get(reverse("board") + f"?store={places['xuhui'].pk}")
    column = next(c for c in response.context["board"]["columns"] if c.count)
    newest = sorted(tickets, key=lambda t: (t.created_at, t.pk), reverse=True)[:2]
    assert [card.pk for card in column.cards] == [t.pk for t in newest]
    assert column.count == 3 and column.capped  # counted up to the cap: "3+"
    body = response.content.decode()
    assert 'data-testid="column-more"' in body and f"store={places['xuhui'].pk}" in body and "3+" in body


def test_cards_are_coloured_by_sla_state_in_one_query(scope_a, staff, file_ticket, places, client_for,
                                                      django_assert_max_num_queries):
    import datetime

    import time_machine
    from django.utils import timezone

    from tests.factories import SlaPolicyFactory

    SlaPolicyFactory(tenant=scope_a)  # respond within 2 hours (24×7)
    with time_machine.travel(timezone.now() - datetime.timedelta(hours=3), tick=False):
        late = file_ticket(places["xuhui"])
    fresh = file_ticket(places["xuhui"])
    client = client_for(staff["manager"])
    with django_assert_max_num_queries(16) as few:
        response = client.get(reverse("board"))
    states = {card.pk: card.sla_state for column in response.context["board"]["columns"] for card in column.cards}
    assert states == {late.pk: "breached", fresh.pk: "on_track"}
    body = response.content.decode()
    assert 'data-sla="breached"' in body and "sla-breached" in body and 'data-testid="card-sla"' in body
    for _ in range(4):
        file_ticket(places["chaoyang"])
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(reverse("board"))
