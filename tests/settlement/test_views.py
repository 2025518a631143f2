"""Settlement pages as people use them: finance runs, approves and exports a month; an engineer
opens their earnings on a phone; a regional manager sees only their regions; managers edit rules
with a preview and the price book — bad input refused with nothing written."""

import io
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import openpyxl
import pytest
import time_machine
from django.urls import reverse

from scrm.models import Role
from scrm.services import region_grant
from settlement.models import RunState, ServicePrice, SettlementRule, SettlementRun
from tests.conftest import make_member
from tickets.models import Ticket

from .conftest import close_ticket

pytestmark = pytest.mark.django_db
NOV = datetime(2026, 11, 12, 10, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture
def month(setup, django_capture_on_commit_callbacks):
    """November with two closed tickets, settled as a draft run."""
    with time_machine.travel(NOV, tick=False):
        close_ticket(setup, data={"night": True}, priority="urgent")  # 345.00
        close_ticket(setup, data={"altitude": 4200}, region=setup.tibet)  # 400.00
    setup.finance = make_member(setup.tenant, Role.FINANCE, "caiwu")
    return setup


def test_finance_runs_approves_and_exports_the_month(month, client_for, django_capture_on_commit_callbacks):
    client = client_for(month.finance)
    december = datetime(2026, 12, 2, 9, tzinfo=ZoneInfo("Asia/Shanghai"))
    with time_machine.travel(december, tick=False), django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("settlement-runs"), {"period_kind": "month", "day": "2026-11-15"})
    run = SettlementRun.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("settlement-run", args=[run.pk])
    page = client.get(reverse("settlement-run", args=[run.pk]))
    assert "张工" in page.content.decode() and run.total == Decimal("745.00")
    progress = client.get(reverse("settlement-run-progress", args=[run.pk]))
    assert progress["HX-Refresh"] == "true" and "100%" in progress.content.decode()
    client.post(reverse("settlement-run", args=[run.pk]), {"action": "review"})
    client.post(reverse("settlement-run", args=[run.pk]), {"action": "approve"})
    assert SettlementRun.objects.get().state == RunState.APPROVED
    csv = client.get(reverse("settlement-export", args=[run.pk, "csv"]))
    text = csv.content.decode("utf-8-sig")
    assert csv.status_code == 200 and "345.00" in text and "400.00" in text and "大区系数" in text
    xlsx = client.get(reverse("settlement-export", args=[run.pk, "xlsx"]))
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet.max_row == 3 and sheet.cell(1, 1).value == "period_date"
    party = month.engineer_party.pk
    statement = client.get(reverse("settlement-statement", args=[run.pk, party]))
    assert "¥745.00" in statement.content.decode()
    assert client.get(reverse("settlement-export", args=[run.pk, "pdf"])).status_code == 404


def test_run_form_bad_input_writes_nothing(month, client_for):
    client = client_for(month.finance)
    for data in ({}, {"period_kind": "year", "day": "2026-11-01"}, {"period_kind": "month", "day": "11/2026"},
                 {"period_kind": "month" * 50, "day": "2026-11-01" * 50}):
        assert client.post(reverse("settlement-runs"), data).status_code == 400
    assert not SettlementRun.objects.exists()


def test_engineer_sees_own_earnings_on_a_phone_and_not_the_runs(month, client_for, django_assert_max_num_queries):
    client = client_for(month.engineer)
    with django_assert_max_num_queries(12):
        page = client.get(reverse("settlement-me"))
    body = page.content.decode()
    assert page.status_code == 200 and "¥745.00" in body  # pending total
    assert body.count('data-testid="earning-line"') == 2 and "夜间 +20%" in body
    assert client.get(reverse("settlement-runs")).status_code == 403
    assert client.get(reverse("settlement-rules")).status_code == 403
    assert client.get(reverse("settlement-home")).status_code == 200


def test_regional_manager_ranking_is_scoped(month, client_for):
    rm = make_member(month.tenant, Role.REGIONAL_MANAGER, "rm")
    with time_machine.travel(datetime(2026, 11, 20, tzinfo=ZoneInfo("Asia/Shanghai")), tick=False):
        assert "张工" not in client_for(rm).get(reverse("settlement-ranking")).content.decode()
        region_grant(user=rm, region=month.east)
        page = client_for(rm).get(reverse("settlement-ranking") + "?span=month")
        body = page.content.decode()
        assert "张工" in body and "¥345.00" in body  # the East-China ticket only, not Tibet's
        finance = client_for(month.finance).get(reverse("settlement-ranking") + "?span=month").content.decode()
        assert "¥745.00" in finance


def test_list_pages_query_count_does_not_grow(month, client_for, django_assert_max_num_queries):
    client = client_for(month.finance)
    for name in ("settlement-runs", "settlement-rules", "settlement-prices", "settlement-ranking"):
        with django_assert_max_num_queries(14):
            assert client.get(reverse(name)).status_code == 200


def test_rule_preview_then_save(month, client_for):
    client = client_for(month.admin)
    ticket_number = Ticket.objects.filter(region=month.east).first().number
    data = {"name": "周末 +10%", "kind": "surcharge", "flag": "night", "percent": "10", "condition": "",
            "priority": 100, "is_active": "on", "preview_ticket": ticket_number}
    preview = client.post(reverse("settlement-rule-create"), {**data, "action": "preview"})
    assert preview.status_code == 200 and 'data-testid="rule-preview"' in preview.content.decode()
    assert "368.00" in preview.content.decode()  # 345 + 10 % of 230
    assert not SettlementRule.objects.filter(name="周末 +10%").exists()
    saved = client.post(reverse("settlement-rule-create"), {**data, "action": "save"})
    assert saved.status_code == 302 and SettlementRule.objects.filter(name="周末 +10%").exists()


@pytest.mark.parametrize("data", [
    {},
    {"name": "x", "kind": "surcharge", "flag": "night", "percent": "abc", "priority": 1},
    {"name": "x", "kind": "surcharge", "flag": "night", "percent": "-5", "priority": 1},
    {"name": "x", "kind": "surcharge", "flag": "night", "percent": "5", "priority": 1,
     "condition": '{"field": "data.ghost", "op": "=", "value": 1}'},
    {"name": "x" * 500, "kind": "surcharge", "flag": "night", "percent": "5", "priority": 1},
    {"name": "x", "kind": "surcharge", "flag": "night", "percent": "5", "priority": 1, "condition": "[" * 5000},
    {"name": "x", "kind": "teleport", "priority": 1},
])
def test_rule_form_bad_input_writes_nothing(month, client_for, data):
    before = SettlementRule.objects.count()
    response = client_for(month.admin).post(reverse("settlement-rule-create"), {**data, "action": "save"})
    assert response.status_code == 400
    assert SettlementRule.objects.count() == before


@pytest.mark.parametrize("data", [
    {}, {"item": "1", "price": "-3", "effective_from": "2026-12-01"},
    {"item": "999999", "price": "3", "effective_from": "2026-12-01"},
    {"item": "1", "price": "3" * 40, "effective_from": "2026-12-01"},
    {"item": "1", "price": "abc", "effective_from": "2026-12-01"},
])
def test_price_form_bad_input_writes_nothing(month, client_for, data):
    if data.get("item") == "1":
        data = {**data, "item": str(month.repair.pk)}
    before = ServicePrice.objects.count()
    response = client_for(month.admin).post(reverse("settlement-prices"), data)
    assert response.status_code == 400
    assert ServicePrice.objects.count() == before


def test_price_form_adds_a_version(month, client_for):
    response = client_for(month.admin).post(reverse("settlement-prices"), {
        "item": month.repair.pk, "price": "230.00", "effective_from": "2027-01-01"})
    assert response.status_code == 302
    assert ServicePrice.objects.filter(effective_from=date(2027, 1, 1), price=Decimal("230.00")).exists()


def test_cross_tenant_price_item_refused(month, client_for, tenant_b, admin_b):
    from scrm.tenancy import tenant_scope
    from settlement.services import service_item_create

    with tenant_scope(tenant_b):
        foreign = service_item_create(tenant=tenant_b, code="b-item", name="乙项目")
    response = client_for(month.admin).post(reverse("settlement-prices"), {
        "item": foreign.pk, "price": "1.00", "effective_from": "2027-01-01"})
    assert response.status_code == 400
    with tenant_scope(tenant_b):
        assert not ServicePrice.objects.exists()
