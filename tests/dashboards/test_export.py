"""The ticket list's export (django-import-export) answered in the request: the current filter,
CSV and Excel, only what the user may see, formulas neutralised; a bad format or a malformed
filter is a 400 with the reason; more rows than the request exports is an offer to run it in
the background (tests/dashboards/test_export_jobs.py)."""

import csv
import io

import openpyxl
import pytest
from django.urls import reverse

from dashboards.models import ExportJob
from scrm.services import store_grant
from tests.conftest import make_member

pytestmark = pytest.mark.django_db


def rows(response):
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_csv_export_follows_the_list_filter(scope_a, staff, file_ticket, places, client_for):
    file_ticket(places["xuhui"], title="=HYPERLINK(\"http://evil\")", priority="urgent")
    file_ticket(places["chaoyang"], title="上菜太慢")
    client = client_for(staff["manager"])
    listing = client.get(reverse("ticket-list"))
    assert 'data-testid="ticket-export"' in listing.content.decode()
    response = client.get(reverse("ticket-export") + "?format=csv")
    assert response.content.startswith("\ufeff".encode())  # the BOM: Excel reads the Chinese
    everything = rows(response)
    assert len(everything) == 3 and everything[0][:3] == ["工单号", "标题", "状态"]
    urgent = rows(client.get(reverse("ticket-export") + "?format=csv&priority=urgent"))
    assert len(urgent) == 2 and urgent[1][1].startswith("'=")  # a formula is text, not a formula


def test_excel_export(scope_a, staff, file_ticket, places, client_for):
    file_ticket(places["xuhui"], title="冷柜不制冷")
    response = client_for(staff["manager"]).get(reverse("ticket-export") + "?format=xlsx&open=1")
    assert response.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    assert sheet.max_row == 2 and sheet.cell(row=2, column=2).value == "冷柜不制冷"


def test_export_shows_only_visible_tickets(scope_a, staff, file_ticket, places, client_for):
    file_ticket(places["xuhui"], title="徐汇的单")
    file_ticket(places["chaoyang"], title="朝阳的单")
    regional = make_member(scope_a, "regional_manager", "ex_regional")
    store_grant(user=regional, store=places["xuhui"])
    titles = [row[1] for row in rows(client_for(regional).get(reverse("ticket-export") + "?format=csv"))[1:]]
    assert titles == ["徐汇的单"]


@pytest.mark.parametrize(("query", "reason"), [
    ("format=pdf", "CSV"),
    ("format=csv&store=abc", "abc"),
    ("format=csv&status=bogus", "bogus"),
    ("format=csv&created=yesterday", "yesterday"),
    ("format=csv&open=yes", "open"),
    ("format=csv&q=" + "长" * 61, "60"),
])
def test_bad_export_requests_say_why(scope_a, staff, file_ticket, places, client_for, query, reason):
    file_ticket(places["xuhui"])
    response = client_for(staff["manager"]).get(reverse("ticket-export") + "?" + query)
    assert response.status_code == 400 and reason in response.content.decode()


def test_another_tenants_ids_are_refused_and_b_sees_none_of_a(scope_a, staff, file_ticket, places, client_for,
                                                               admin_b, tenant_b):
    from scrm.tenancy import tenant_scope
    from tests.factories import StoreFactory

    file_ticket(places["xuhui"])
    with tenant_scope(tenant_b):
        b_store = StoreFactory(region__tenant=tenant_b)
    response = client_for(staff["manager"]).get(reverse("ticket-export") + f"?format=csv&store={b_store.pk}")
    assert response.status_code == 400 and str(b_store.pk) in response.content.decode()
    assert len(rows(client_for(admin_b).get(reverse("ticket-export") + "?format=csv"))) == 1  # B sees none of A's


def test_more_rows_than_the_request_exports_offers_a_background_export(scope_a, staff, file_ticket, places,
                                                                       client_for, settings):
    file_ticket(places["xuhui"])
    file_ticket(places["xuhui"])
    settings.EXPORT_SYNC_MAX_ROWS = 1
    response = client_for(staff["manager"]).get(reverse("ticket-export") + "?format=xlsx&priority=normal&page=2")
    page = response.content.decode()
    assert response.status_code == 200 and 'data-testid="export-start"' in page
    assert 'name="priority" value="normal"' in page and 'name="format" value="xlsx"' in page
    assert 'name="page"' not in page  # not a filter
    assert not ExportJob.objects.exists()  # asking is not starting
