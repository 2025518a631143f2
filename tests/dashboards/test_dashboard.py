"""The manager dashboard: intake per day and channel, the node heatmap that shows where tickets
stall, rankings, CSAT results, the CSV downloads, bounded queries and bad filters."""

import csv
import datetime
import io

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from dashboards import charts
from dashboards.selectors import TicketFilters, intake_by_day, node_heatmap
from tickets.services import csat_rate
from workflow.engine import task_act
from workflow.models import Task, TaskStatus

pytestmark = pytest.mark.django_db


def finish(ticket, staff, *, accept_minutes, fix_minutes, start):
    with time_machine.travel(start + datetime.timedelta(minutes=accept_minutes), tick=False):
        task_act(task=Task.objects.get(ticket=ticket, status=TaskStatus.OPEN), action="submit", user=staff["agent"],
                 data={})
    with time_machine.travel(start + datetime.timedelta(minutes=accept_minutes + fix_minutes), tick=False):
        task_act(task=Task.objects.get(ticket=ticket, status=TaskStatus.OPEN), action="submit",
                 user=staff["engineer"], data={})


def test_the_heatmap_finds_the_slow_node(scope_a, staff, file_ticket, places, roll):
    start = timezone.now() - datetime.timedelta(days=2)
    with time_machine.travel(start, tick=False):
        tickets = [file_ticket(places["xuhui"]) for _ in range(3)]
    for ticket in tickets:
        finish(ticket, staff, accept_minutes=10, fix_minutes=26 * 60, start=start)
    roll()
    heat = node_heatmap(user=staff["manager"], filters=TicketFilters(days=7))
    assert [row["node"] for row in heat["rows"]] == ["维修", "受理"]  # slowest first
    fix, accept = heat["rows"]
    assert fix["cells"] == [0, 0, 0, 0, 3, 0] and accept["cells"] == [3, 0, 0, 0, 0, 0]
    assert fix["avg"] == datetime.timedelta(hours=26)


def test_intake_per_day_by_channel(scope_a, staff, file_ticket, places, roll):
    today = timezone.localtime()
    with time_machine.travel(today - datetime.timedelta(days=1), tick=False):
        file_ticket(places["xuhui"], source="web")
    file_ticket(places["xuhui"], source="phone")
    file_ticket(places["xuhui"], source="phone")
    roll()
    data = intake_by_day(user=staff["manager"], filters=TicketFilters(days=7))
    assert len(data["days"]) == 7 and data["days"][-1] == today.date()
    assert data["series"]["phone"][-1] == 2 and data["series"]["web"][-2] == 1 and sum(data["series"]["web"]) == 1
    chart = charts.intake_daily(data, {"phone": "电话", "web": "网页"})
    assert chart.columns[1:] == ["电话", "网页", "合计"] and chart.rows[-1][1:] == [2, 0, 2]
    assert [s["name"] for s in chart.data["series"]] == ["电话", "网页"]


def test_dashboard_page_charts_rankings_and_csat(scope_a, staff, file_ticket, places, client_for, roll,
                                                 django_assert_max_num_queries):
    start = timezone.now() - datetime.timedelta(days=1)
    with time_machine.travel(start, tick=False):
        ticket = file_ticket(places["xuhui"])
    finish(ticket, staff, accept_minutes=5, fix_minutes=90, start=start)
    csat_rate(ticket=ticket, score=1, comment="师傅迟到两小时")
    roll()
    client = client_for(staff["manager"])
    with django_assert_max_num_queries(30) as few:
        response = client.get(reverse("dashboard"))
    body = response.content.decode()
    assert response.status_code == 200
    for testid in ("chart-intake", "chart-nodes", "chart-hours", "chart-stores", "csat", "csat-low"):
        assert f'data-testid="{testid}"' in body
    assert "师傅迟到两小时" in body and 'id="chart-nodes-data"' in body
    assert response.context["csat"]["n"] == 1 and response.context["csat"]["avg"] == 1
    for _ in range(4):
        file_ticket(places["chaoyang"])
    roll()
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(reverse("dashboard"))


def test_csv_downloads_respect_filters(scope_a, staff, file_ticket, places, client_for, roll):
    start = timezone.now() - datetime.timedelta(days=1)
    with time_machine.travel(start, tick=False):
        ticket = file_ticket(places["xuhui"])
    finish(ticket, staff, accept_minutes=5, fix_minutes=30, start=start)
    roll()
    client = client_for(staff["manager"])
    for table in ("intake", "nodes", "stores", "people", "csat"):
        response = client.get(reverse("dashboard-export") + f"?table={table}&days=7")
        assert response.status_code == 200 and response["Content-Type"].startswith("text/csv"), table
    rows = list(csv.reader(io.StringIO(client.get(reverse("dashboard-export") + "?table=stores").content
                                       .decode("utf-8-sig"))))
    assert rows[1][1:3] == ["徐汇店", "1"]  # after the rank
    north = client.get(reverse("dashboard-export") + f"?table=stores&region={places['north'].pk}")
    assert len(list(csv.reader(io.StringIO(north.content.decode("utf-8-sig"))))) == 1  # header only
    assert client.get(reverse("dashboard-export") + "?table=secrets").status_code == 400
    assert client.get(reverse("dashboard-export") + "?table=intake&days=3650").status_code == 400


@pytest.mark.parametrize("bad", ["days=3650", "region=999999", "template=x", "handler=-1"])
def test_dashboard_bad_filters_are_clear_errors(scope_a, staff, client_for, bad):
    response = client_for(staff["manager"]).get(reverse("dashboard") + "?" + bad)
    assert response.status_code == 400
    assert 'data-testid="filter-errors"' in response.content.decode()


def test_engineer_dashboard_counts_only_their_own_work(scope_a, staff, file_ticket, places, client_for, roll):
    file_ticket(places["xuhui"])
    roll()
    response = client_for(staff["engineer"]).get(reverse("dashboard"))
    assert response.status_code == 200 and response.context["intake_total"] == 0


def test_duration_text_and_hours():
    assert charts.duration_text(None) == "—"
    assert charts.duration_text(datetime.timedelta(minutes=75)) == "1h 15m"
    assert charts.duration_text(datetime.timedelta(days=2, hours=3)) == "2d 3h"
    assert charts.hours(datetime.timedelta(minutes=75)) == 1.25 and charts.hours(None) is None


def test_repeat_requests_of_the_same_customer_and_category(scope_a, staff, repair, places, client_for, roll):
    from tests.factories import CustomerFactory
    from tickets.services import ticket_intake

    again = CustomerFactory(tenant=scope_a, name="回头客")
    once = CustomerFactory(tenant=scope_a, name="只来一次")
    for customer in (again, again, again, once):
        ticket_intake(tenant=scope_a, source="phone", template=repair, data={}, customer=customer, title="又坏了",
                      partial=True, store=places["xuhui"])
    roll()
    response = client_for(staff["manager"]).get(reverse("dashboard"))
    assert [(r["customer__name"], r["n"]) for r in response.context["repeats"]] == [("回头客", 3)]
    assert 'data-testid="repeats"' in response.content.decode()
