"""The 工作台 by role: a manager's figures (each a link to the filtered list), an agent's queue
and today's intake, an engineer's tasks for today — in a bounded number of queries."""

import datetime

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from dashboards.selectors import manager_figures
from tickets.models import Ticket
from workflow.engine import task_act
from workflow.lifecycle import ticket_status_change
from workflow.models import Task, TaskStatus

pytestmark = pytest.mark.django_db


def open_task(ticket):
    return Task.objects.get(ticket=ticket, status=TaskStatus.OPEN)


def test_manager_figures_count_open_new_resolved_and_average_times(scope_a, staff, file_ticket, places, roll):
    start = timezone.now().replace(hour=10, minute=0, second=0, microsecond=0)
    with time_machine.travel(start - datetime.timedelta(days=1), tick=False):
        old = file_ticket(places["xuhui"])
    with time_machine.travel(start, tick=False):
        first = file_ticket(places["xuhui"])
        second = file_ticket(places["chaoyang"])
    with time_machine.travel(start + datetime.timedelta(minutes=20), tick=False):
        task_act(task=open_task(first), action="submit", user=staff["agent"], data={})
    with time_machine.travel(start + datetime.timedelta(hours=2), tick=False):
        task_act(task=open_task(first), action="submit", user=staff["engineer"], data={})
        ticket_status_change(ticket=second, action="cancel", actor=staff["manager"])
        roll()  # the averages are the roll-ups' (the beat task's); the counts are live
        figures = manager_figures(user=staff["manager"])

    assert Ticket.objects.get(pk=first.pk).status == "closed"
    assert figures["open"] == 1 and old.is_open  # `old` only: `first` closed, `second` cancelled
    assert figures["new_today"] == 2
    assert figures["resolved_today"] == 1  # closed by its workflow's end node; the cancelled one is not
    assert figures["avg_resolution"] == datetime.timedelta(hours=2)
    # First staff action: the agent's submit after 20 min, the manager's cancel after 2 h.
    assert figures["avg_first_response"] == datetime.timedelta(minutes=70)
    assert figures["overdue"] == 0 and figures["due_soon"] == 0  # no SLA policy: nothing runs late


def test_manager_figures_count_sla_overdue_and_due_soon(scope_a, staff, file_ticket, places):
    from tests.factories import SlaPolicyFactory

    # 24×7 (the tenant has no calendar): respond within 2 hours, resolve within 8.
    SlaPolicyFactory(tenant=scope_a)
    start = timezone.now().replace(microsecond=0)
    with time_machine.travel(start, tick=False):
        file_ticket(places["xuhui"])
    with time_machine.travel(start + datetime.timedelta(minutes=90), tick=False):
        file_ticket(places["xuhui"])
    with time_machine.travel(start + datetime.timedelta(minutes=150), tick=False):
        figures = manager_figures(user=staff["manager"])
    # The first is 30 min past its first-response due time; the second's is due in 60 min.
    assert (figures["overdue"], figures["due_soon"]) == (1, 1)


def test_manager_workbench_links_each_figure_to_the_filtered_list(scope_a, staff, file_ticket, places, client_for,
                                                                  django_assert_max_num_queries):
    for _ in range(3):
        file_ticket(places["xuhui"])
    client = client_for(staff["manager"])
    with django_assert_max_num_queries(15):
        response = client.get(reverse("workbench"))
    body = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="figures"' in body
    for link in ("?open=1", "?created=today", "?resolved=today"):
        assert f'{reverse("ticket-list")}{link}' in body
    listed = client.get(reverse("ticket-list") + "?created=today")
    assert listed.status_code == 200 and len(listed.context["page"].object_list) == 3
    assert list(client.get(reverse("ticket-list") + "?resolved=today").context["page"].object_list) == []


def test_the_workbench_query_count_does_not_grow_with_tickets(scope_a, staff, file_ticket, places, client_for,
                                                             django_assert_max_num_queries):
    client = client_for(staff["agent"])
    file_ticket(places["xuhui"])
    with django_assert_max_num_queries(15) as few:
        client.get(reverse("workbench"))
    for _ in range(6):
        file_ticket(places["chaoyang"])
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(reverse("workbench"))
    assert response.context["queue"]["task_count"] == 7
    assert response.context["queue"]["intake_total"] == 7
    assert '?created=today">7</a>' in response.content.decode()  # the intake card, drawn from the cache


def test_agent_sees_their_queue_and_todays_intake(scope_a, staff, file_ticket, places, client_for):
    ticket = file_ticket(places["xuhui"], title="包间空调漏水")
    body = client_for(staff["agent"]).get(reverse("workbench")).content.decode()
    assert 'data-testid="my-queue"' in body and 'data-testid="today-intake"' in body
    assert "包间空调漏水" in body and ticket.number in body
    assert 'data-testid="figures"' not in body


def test_engineer_sees_todays_tasks_only_their_own(scope_a, staff, file_ticket, places, client_for):
    mine = file_ticket(places["xuhui"], title="更换压缩机")
    file_ticket(places["xuhui"], title="还在受理")
    task_act(task=open_task(mine), action="submit", user=staff["agent"], data={})
    response = client_for(staff["engineer"]).get(reverse("workbench"))
    body = response.content.decode()
    assert 'data-testid="today-tasks"' in body
    assert "更换压缩机" in body and "还在受理" not in body
    assert [t.ticket_id for t in response.context["today"]["today"]] == [mine.pk]


def test_live_counts_stop_at_the_cap(scope_a, staff, file_ticket, places, client_for, monkeypatch):
    from dashboards import selectors

    monkeypatch.setattr(selectors, "FIGURE_CAP", 2)
    for _ in range(3):
        file_ticket(places["xuhui"])
    response = client_for(staff["manager"]).get(reverse("workbench"))
    figures = response.context["figures"]
    assert figures["open"] == 3 and figures["cap"] == 2  # cap + 1: "more than 2"
    assert "2+" in response.content.decode()
