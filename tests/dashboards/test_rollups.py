"""The daily roll-ups the dashboard reads: what a day's rows count (filed per hour, finished
with their bucketed durations and SLA breaches, first responses, node times), that a refresh
rewrites a day instead of adding to it, that a regional manager sums only their regions, the
percentiles read from buckets, and the backfill command's bad input."""

import datetime
from io import StringIO

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from dashboards.models import DURATION_EDGES, DailyNodeStats, DailyTicketStats
from dashboards.selectors import (
    TicketFilters,
    bucket_percentile,
    intake_by_day,
    node_heatmap,
    resolution_by,
    rollup_averages,
)
from dashboards.services import bucket_of, rollup_backfill, rollup_day, rollup_refresh
from dashboards.tasks import rollup_refresh_task
from scrm.services import region_grant
from scrm.tenancy import tenant_scope
from tests.conftest import make_member
from tests.factories import CustomerFactory, RegionFactory, StoreFactory, published_template
from tickets.services import ticket_intake
from workflow.engine import task_act
from workflow.models import Task, TaskStatus, TicketSla

pytestmark = pytest.mark.django_db


def close(ticket, staff, at):
    """Both workflow tasks submitted at `at` (the end node closes the ticket)."""
    with time_machine.travel(at, tick=False):
        for who in ("agent", "engineer"):
            task_act(task=Task.objects.get(ticket=ticket, status=TaskStatus.OPEN), action="submit",
                     user=staff[who], data={})


def yesterday_at(hour):
    day = timezone.localdate() - datetime.timedelta(days=1)
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time(hour)))


def test_a_day_counts_filed_finished_responded_and_node_times(scope_a, staff, file_ticket, places):
    from tests.factories import SlaPolicyFactory

    SlaPolicyFactory(tenant=scope_a)
    start = yesterday_at(9)
    with time_machine.travel(start, tick=False):
        quick, slow = file_ticket(places["xuhui"], source="web"), file_ticket(places["xuhui"], source="web")
        file_ticket(places["chaoyang"], source="phone")
    close(quick, staff, start + datetime.timedelta(minutes=40))
    close(slow, staff, start + datetime.timedelta(hours=5))
    TicketSla.objects.filter(ticket=slow).update(resolution_breached=True)
    day = start.date()
    rows = rollup_day(tenant=scope_a, day=day)
    assert rows == DailyTicketStats.objects.count() + DailyNodeStats.objects.count()
    web = DailyTicketStats.objects.get(store=places["xuhui"], source="web")
    assert (web.created, web.h09, web.resolved, web.breached, web.responded) == (2, 2, 2, 1, 2)
    assert web.resolution_seconds == (40 + 300) * 60
    assert web.r02 == 1 and web.r05 == 1  # 40 min: 30–60 min; 5 h: 4–8 h
    phone = DailyTicketStats.objects.get(store=places["chaoyang"])
    assert (phone.created, phone.resolved, phone.region_id) == (1, 0, places["north"].pk)
    accept = DailyNodeStats.objects.get(node_name="受理")
    assert accept.n == 2 and accept.b1 == 1 and accept.b2 == 1  # 40 min: 30 min–2 h; 5 h: 2–8 h

    # Recomputing the day rewrites it: nothing is counted twice.
    rollup_day(tenant=scope_a, day=day)
    assert DailyTicketStats.objects.get(store=places["xuhui"], source="web").created == 2
    assert sum(DailyTicketStats.objects.values_list("created", flat=True)) == 3


def test_dashboard_series_come_from_the_rollups(scope_a, staff, file_ticket, places):
    start = yesterday_at(14)
    with time_machine.travel(start, tick=False):
        tickets = [file_ticket(places["xuhui"]) for _ in range(4)]
    for i, ticket in enumerate(tickets):
        close(ticket, staff, start + datetime.timedelta(minutes=20 + 60 * i))
    rollup_refresh(tenant=scope_a)
    manager = staff["manager"]
    intake = intake_by_day(user=manager, filters=TicketFilters(days=7))
    assert intake["series"]["phone"][-2] == 4 and intake["as_of"] is not None
    [store] = resolution_by(user=manager, filters=TicketFilters(days=7), by="store")
    assert store["name"] == "徐汇店" and store["n"] == 4
    assert store["avg"] == datetime.timedelta(minutes=110)  # 20, 80, 140, 200 min
    assert datetime.timedelta(minutes=60) <= store["p50"] <= datetime.timedelta(minutes=120)
    assert store["breach_rate"] == 0
    nodes = node_heatmap(user=manager, filters=TicketFilters(days=7))["rows"]
    assert [row["node"] for row in nodes] == ["受理", "维修"]
    averages = rollup_averages(user=manager, since=timezone.localdate() - datetime.timedelta(days=6))
    assert averages["avg_resolution"] == datetime.timedelta(minutes=110)
    # A filter the roll-ups are keyed by narrows them.
    other = TicketFilters(days=7, store_id=places["chaoyang"].pk)
    assert intake_by_day(user=manager, filters=other)["series"] == {}


def test_refresh_backfills_once_then_rewrites_today_and_yesterday(scope_a, staff, file_ticket, places):
    with time_machine.travel(timezone.now() - datetime.timedelta(days=20), tick=False):
        file_ticket(places["xuhui"])
    file_ticket(places["xuhui"])
    rollup_refresh_task(tenant_id=scope_a.pk)  # the beat's per-tenant task: first run backfills
    assert sum(DailyTicketStats.objects.values_list("created", flat=True)) == 2
    file_ticket(places["xuhui"])
    rollup_refresh(tenant=scope_a)
    assert sum(DailyTicketStats.objects.values_list("created", flat=True)) == 3
    assert DailyTicketStats.objects.filter(day=timezone.localdate()).get().created == 2


def test_regional_manager_sums_only_their_regions(scope_a, staff, file_ticket, places, client_for, roll):
    for store in ("xuhui", "xuhui", "chaoyang"):
        file_ticket(places[store])
    roll()
    regional = make_member(scope_a, "regional_manager", "db_rm_east")
    region_grant(user=regional, region=places["east"])
    mine = intake_by_day(user=regional, filters=TicketFilters(days=7))
    assert sum(sum(v) for v in mine["series"].values()) == 2
    everyone = intake_by_day(user=staff["manager"], filters=TicketFilters(days=7))
    assert sum(sum(v) for v in everyone["series"].values()) == 3
    # Asking for another region's store filters to nothing rather than widening.
    north = TicketFilters(days=7, store_id=places["chaoyang"].pk)
    assert intake_by_day(user=regional, filters=north)["series"] == {}
    response = client_for(regional).get(reverse("dashboard"))
    assert response.status_code == 200 and response.context["intake_total"] == 2
    stores = next(chart for chart in response.context["charts"] if chart.key == "stores")
    assert stores.rows == []  # nothing resolved yet


def test_another_tenants_rollups_never_count(scope_a, staff, file_ticket, places, tenant_b, client_for, roll):
    file_ticket(places["xuhui"])
    roll()
    with tenant_scope(tenant_b):
        store = StoreFactory(tenant=tenant_b, region=RegionFactory(tenant=tenant_b))
        template = published_template(tenant_b, name="B", slug="b", prefix="B")
        for _ in range(5):
            ticket_intake(tenant=tenant_b, source="web", template=template, data={},
                          customer=CustomerFactory(tenant=tenant_b), title="b", partial=True, store=store)
        rollup_refresh(tenant=tenant_b)
        assert sum(DailyTicketStats.objects.values_list("created", flat=True)) == 5
    response = client_for(staff["manager"]).get(reverse("dashboard"))
    assert response.context["intake_total"] == 1


def test_percentiles_from_bucket_counts():
    counts = [0] * (len(DURATION_EDGES) + 1)
    assert bucket_percentile(counts, 0.5) is None
    counts[2] = 10  # ten tickets of 30–60 min
    assert bucket_percentile(counts, 0.5) == datetime.timedelta(minutes=45)
    assert bucket_percentile(counts, 0.9) == datetime.timedelta(minutes=57)
    counts[-1] = 90  # and ninety beyond the last edge: p90 reads as that edge
    assert bucket_percentile(counts, 0.9) == datetime.timedelta(minutes=DURATION_EDGES[-1])
    assert [bucket_of(s, DURATION_EDGES) for s in (0, 899, 900, 10 ** 7)] == [0, 0, 1, len(DURATION_EDGES)]


def test_backfill_refuses_a_backwards_or_ten_year_period(scope_a):
    today = timezone.localdate()
    with pytest.raises(ValidationError):
        rollup_backfill(tenant=scope_a, since=today + datetime.timedelta(days=1), until=today)
    with pytest.raises(ValidationError):
        rollup_backfill(tenant=scope_a, since=today - datetime.timedelta(days=3700), until=today)
    assert not DailyTicketStats.objects.exists()


@pytest.mark.parametrize("args", [["--days", "0"], ["--days", "99999"], ["--since", "2026-13-45"],
                                  ["--since", "x" * 1000], ["--tenant", "nobody"],
                                  ["--since", "1990-01-01"]])
def test_rollup_command_bad_input_is_a_clear_error(tenant_a, args):
    with pytest.raises(CommandError):
        call_command("dashboards_rollup", *args, stdout=StringIO())
    with tenant_scope(tenant_a):
        assert not DailyTicketStats.objects.exists()


def test_rollup_command_backfills(scope_a, file_ticket, places):
    with time_machine.travel(timezone.now() - datetime.timedelta(days=3), tick=False):
        file_ticket(places["xuhui"])
    out = StringIO()
    call_command("dashboards_rollup", "--tenant", scope_a.slug, "--days", "7", stdout=out)
    assert "weidao" in out.getvalue()
    assert sum(DailyTicketStats.objects.values_list("created", flat=True)) == 1


def test_first_refresh_of_a_long_history_backfills_at_most_the_limit(scope_a, file_ticket, places, monkeypatch):
    from dashboards import services

    monkeypatch.setattr(services, "ROLLUP_MAX_DAYS", 5)
    with time_machine.travel(timezone.now() - datetime.timedelta(days=30), tick=False):
        file_ticket(places["xuhui"])
    file_ticket(places["xuhui"])
    rollup_refresh(tenant=scope_a)  # no error for the 30-day-old ticket: the last 5 days only
    assert sum(DailyTicketStats.objects.values_list("created", flat=True)) == 1
