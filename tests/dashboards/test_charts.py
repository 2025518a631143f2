"""The dashboard's ECharts charts: the backlog trend against hand-built tickets, each chart's
table and CSV (same numbers, the filters, another tenant's ids refused, a regional manager's
visibility), the page's data for the script (json_script, no inline script) and its query budget,
and bad filters as clear errors."""

import csv
import datetime
import io
import json
import re

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from dashboards import charts
from dashboards.models import DailyTicketStats
from dashboards.selectors import TicketFilters, backlog_trend, service_times
from scrm.services import region_grant
from scrm.tenancy import tenant_scope
from tests.conftest import make_member
from tests.dashboards.test_dashboard import finish
from tests.factories import RegionFactory, StoreFactory, published_template

pytestmark = pytest.mark.django_db

NOON = datetime.time(12, 0)


@pytest.fixture
def noon():
    """Today at noon, local time, held still: the hand-built days never straddle midnight."""
    moment = timezone.make_aware(datetime.datetime.combine(timezone.localdate(), NOON))
    with time_machine.travel(moment, tick=False):
        yield moment


@pytest.fixture
def history(noon, staff, file_ticket, places, roll):
    """Three days ago A, B, C filed at 徐汇 (华东); two days ago D filed at 朝阳 (华北) and A
    finished; yesterday B finished; today E filed at 朝阳. Open now: C, D, E."""
    def at(days_back):
        return time_machine.travel(noon - datetime.timedelta(days=days_back), tick=False)

    with at(3):
        a, b, c = (file_ticket(places["xuhui"]) for _ in range(3))
    with at(2):
        d = file_ticket(places["chaoyang"])
    finish(a, staff, accept_minutes=10, fix_minutes=24 * 60 - 10, start=noon - datetime.timedelta(days=3))
    finish(b, staff, accept_minutes=30, fix_minutes=2 * 24 * 60 - 30, start=noon - datetime.timedelta(days=3))
    e = file_ticket(places["chaoyang"])
    roll()
    return {"a": a, "b": b, "c": c, "d": d, "e": e}


def opens(trend):
    return [row["open"] for row in trend["days"]]


def test_backlog_trend_counts_open_tickets_at_the_end_of_each_day(history, staff, places):
    trend = backlog_trend(user=staff["manager"], filters=TicketFilters(days=7))
    assert [row["day"] for row in trend["days"]][-1] == timezone.localdate()
    assert trend["open_now"] == 3
    # Days -6 … today: nothing open until A, B, C arrive; D arrives as A finishes; B finishes; E arrives.
    assert opens(trend) == [0, 0, 0, 3, 3, 2, 3]
    assert [(row["created"], row["finished"]) for row in trend["days"][-4:]] == [(3, 0), (1, 1), (0, 1), (1, 0)]
    north = backlog_trend(user=staff["manager"], filters=TicketFilters(days=7, region_id=places["north"].pk))
    assert opens(north) == [0, 0, 0, 0, 1, 1, 2]


def test_backlog_trend_of_a_regional_manager_is_their_region_only(history, scope_a, places):
    east = make_member(scope_a, "regional_manager", "ch_rm_east")
    region_grant(user=east, region=places["east"])
    trend = backlog_trend(user=east, filters=TicketFilters(days=7))
    assert trend["open_now"] == 1 and opens(trend) == [0, 0, 0, 3, 2, 1, 1]


def test_backlog_trend_reads_two_queries_whatever_the_period(history, staff, django_assert_max_num_queries):
    for days in (7, 90):
        with django_assert_max_num_queries(4):  # the open count, one GROUP BY day (+ the membership lookups)
            backlog_trend(user=staff["manager"], filters=TicketFilters(days=days))


def test_service_times_p50_p90_by_region_store_and_person(history, staff):
    times = service_times(user=staff["manager"], filters=TicketFilters(days=7))
    store = {row["name"]: row for row in times["store"]}
    assert store["徐汇店"]["resolved"] == 2
    # A took 1 day, B 2 days: both in the 1–2 day and 2–4 day buckets (edges 1440 / 2880 / 5760 min).
    assert datetime.timedelta(days=1) <= store["徐汇店"]["resolution_p50"] <= datetime.timedelta(days=2)
    assert store["徐汇店"]["resolution_p90"] >= store["徐汇店"]["resolution_p50"]
    assert store["徐汇店"]["response_p50"] is not None
    assert {row["name"] for row in times["region"]} >= {"华东"}


def csv_rows(response):
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_every_chart_has_a_table_and_the_same_numbers_as_csv(history, staff, client_for):
    client = client_for(staff["manager"])
    page = client.get(reverse("dashboard") + "?days=7")
    assert page.status_code == 200
    shown = {chart.key: chart for chart in page.context["charts"]}
    assert set(shown) == set(charts.CHART_KEYS)
    for key, chart in shown.items():
        rows = csv_rows(client.get(reverse("dashboard-export") + f"?table={key}&days=7"))
        assert rows[0] == [str(c) for c in chart.columns], key
        assert rows[1:] == [["" if c is None else str(c) for c in row] for row in chart.rows], key
    backlog = csv_rows(client.get(reverse("dashboard-export") + "?table=backlog&days=7"))
    assert backlog[0][-1] == "日终未结工单" and [r[-1] for r in backlog[1:]] == ["0", "0", "0", "3", "3", "2", "3"]
    assert backlog[-1][0] == timezone.localdate().isoformat()


def test_chart_csv_respects_the_filters(history, staff, client_for, places, repair):
    client = client_for(staff["manager"])
    url = reverse("dashboard-export")
    north = csv_rows(client.get(url + f"?table=backlog&days=7&region={places['north'].pk}"))
    assert [r[-1] for r in north[1:]] == ["0", "0", "0", "0", "1", "1", "2"]
    stores = csv_rows(client.get(url + f"?table=stores&store={places['xuhui'].pk}"))
    assert [r[1:3] for r in stores[1:]] == [["徐汇店", "2"]]
    assert csv_rows(client.get(url + f"?table=stores&region={places['north'].pk}"))[1:] == []
    other = published_template(repair.tenant, name="安装", slug="install", prefix="AZ")
    intake = csv_rows(client.get(url + f"?table=intake&days=7&template={other.pk}"))
    assert intake[1:] == []  # nothing filed on that template
    assert len(csv_rows(client.get(url + "?table=intake&days=30"))) == 31  # header + 30 days


def test_regional_manager_csv_holds_only_their_regions(history, scope_a, places, client_for):
    east = make_member(scope_a, "regional_manager", "ch_rm_csv")
    region_grant(user=east, region=places["east"])
    client = client_for(east)
    url = reverse("dashboard-export")
    stores = csv_rows(client.get(url + "?table=stores&days=7"))
    assert [r[1] for r in stores[1:]] == ["徐汇店"]
    assert [r[0] for r in csv_rows(client.get(url + "?table=times-region&days=7"))[1:]] == ["华东"]
    intake = csv_rows(client.get(url + "?table=channels&days=7"))
    assert sum(int(r[1]) for r in intake[1:]) == 3  # A, B, C; not D or E
    # Another region of the tenant is not theirs to pick: a clear refusal, not an empty file.
    refused = client.get(url + f"?table=stores&region={places['north'].pk}")
    assert refused.status_code == 400 and "区域：请选择有效的选项" in refused.content.decode()
    page = client.get(reverse("dashboard") + f"?store={places['chaoyang'].pk}")
    assert page.status_code == 400 and 'data-testid="filter-errors"' in page.content.decode()


@pytest.mark.parametrize("bad", ["days=3650", "days=abc", "region=999999", "template=x", "handler=-1",
                                 "store=0", "region=FOREIGN", "template=FOREIGN"])
def test_bad_filters_are_clear_errors_and_write_nothing(history, staff, client_for, tenant_b, bad):
    if "FOREIGN" in bad:
        with tenant_scope(tenant_b):
            region = RegionFactory(tenant=tenant_b)
            StoreFactory(tenant=tenant_b, region=region)
            template = published_template(tenant_b, name="B", slug="b", prefix="B")
        bad = bad.replace("FOREIGN", str(region.pk if bad.startswith("region") else template.pk))
    before = DailyTicketStats.objects.count()
    client = client_for(staff["manager"])
    page = client.get(reverse("dashboard") + "?" + bad)
    body = page.content.decode()
    assert page.status_code == 400 and 'data-testid="filter-errors"' in body
    export = client.get(reverse("dashboard-export") + "?table=backlog&" + bad)
    assert export.status_code == 400 and export.content.decode().startswith("过滤条件无效")
    if bad == "days=3650":
        assert "7、30 或 90 天" in body and "7、30 或 90 天" in export.content.decode()
    assert DailyTicketStats.objects.count() == before


def test_unknown_chart_is_refused(staff, client_for):
    response = client_for(staff["manager"]).get(reverse("dashboard-export") + "?table=../../etc")
    assert response.status_code == 400


def test_page_hands_the_data_to_the_script_without_inline_code(history, staff, client_for):
    body = client_for(staff["manager"]).get(reverse("dashboard") + "?days=7").content.decode()
    assert "vendor/echarts/echarts.min.js" in body and "js/dashboard-charts.js" in body
    for key in charts.CHART_KEYS:
        assert f'data-testid="chart-{key}"' in body and f'data-testid="csv-{key}"' in body
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", body, flags=re.S)
    for attrs, _content in scripts:
        assert "src=" in attrs or 'type="application/json"' in attrs
    data = json.loads(re.search(r'<script id="chart-backlog-data" type="application/json">(.*?)</script>', body,
                                flags=re.S).group(1))
    assert data["series"][-1]["data"] == [0, 0, 0, 3, 3, 2, 3]
    # The tables are in the page (the fallback without script): the backlog's last row.
    assert "<caption class=\"visually-hidden\">积压趋势" in body


def test_dashboard_page_query_budget(history, staff, file_ticket, places, client_for, roll,
                                     django_assert_max_num_queries):
    client = client_for(staff["manager"])
    with django_assert_max_num_queries(30) as few:
        assert client.get(reverse("dashboard") + "?days=90").status_code == 200
    for _ in range(5):
        file_ticket(places["xuhui"])
    roll()
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(reverse("dashboard") + "?days=90")
    with django_assert_max_num_queries(12):
        client.get(reverse("dashboard-export") + "?table=backlog&days=90")


def test_charts_of_an_empty_period_say_so(staff, client_for):
    body = client_for(staff["manager"]).get(reverse("dashboard")).content.decode()
    assert "本期没有数据。" in body and "chart-backlog-data" not in body
