"""The ticket list's export (django-import-export): the current filter, CSV and Excel, only what
the user may see, formulas neutralised, bad formats and too many rows refused."""

import csv
import io

import openpyxl
import pytest
from django.urls import reverse

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
    everything = rows(client.get(reverse("ticket-export") + "?format=csv"))
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


def test_bad_export_requests(scope_a, staff, file_ticket, places, client_for, admin_b, monkeypatch):
    file_ticket(places["xuhui"])
    file_ticket(places["xuhui"])
    client = client_for(staff["manager"])
    assert client.get(reverse("ticket-export") + "?format=pdf").status_code == 400
    assert len(rows(client.get(reverse("ticket-export") + "?format=csv&store=abc"))) == 3  # unknown value: ignored
    assert len(rows(client_for(admin_b).get(reverse("ticket-export") + "?format=csv"))) == 1  # B sees none of A's
    monkeypatch.setattr("dashboards.views.EXPORT_MAX_ROWS", 1)
    too_many = client.get(reverse("ticket-export") + "?format=csv")
    assert too_many.status_code == 400 and "1" in too_many.content.decode()
