"""The parts pages as people use them: catalogue, stock, ledger, receive/adjust/transfer forms, the
ticket's parts panel and scan to consume — with bad input refused and nothing written, and list
pages in a constant number of queries."""

import pytest

from scrm.tenancy import tenant_scope
from spareparts import services
from spareparts.models import Movement, Stock, Transfer
from tickets.services import ticket_intake

pytestmark = pytest.mark.django_db


def level(tenant, warehouse, part):
    with tenant_scope(tenant):
        s = Stock.objects.filter(warehouse=warehouse, part=part).first()
        return (s.on_hand, s.reserved) if s else (0, 0)


def count(tenant):
    with tenant_scope(tenant):
        return Movement.objects.count()


@pytest.fixture
def stocked(lib, scope_a):
    for part in (lib["compressor"], lib["filter"]):
        services.stock_receive(warehouse=lib["hangzhou"], part=part, quantity=3, actor=None)
    return lib


@pytest.mark.parametrize("name", ["parts-catalogue", "parts-stock", "parts-ledger", "parts-transfers",
                                  "parts-reorder"])
def test_pages_render_for_a_manager_in_few_queries(name, tenant_a, stocked, staff, client_for,
                                                   django_assert_max_num_queries):
    from django.urls import reverse

    client = client_for(staff["manager"])
    with django_assert_max_num_queries(25):
        response = client.get(reverse(name))
    assert response.status_code == 200
    # More rows do not mean more queries.
    with tenant_scope(tenant_a):
        for i in range(5):
            part = services.part_create(tenant=tenant_a, sku=f"X-{i}", name=f"配件{i}")
            services.stock_receive(warehouse=stocked["central"], part=part, quantity=1, actor=None)
    with django_assert_max_num_queries(25):
        assert client.get(reverse(name)).status_code == 200


def test_catalogue_search_and_json_search(tenant_a, stocked, staff, client_for):
    client = client_for(staff["engineer"])
    page = client.get("/parts/?q=压缩机").content.decode()
    assert "YS-COMP-15" in page and "LW-FILTER" not in page and "¥980.00" in page
    assert client.get("/parts/search/?q=滤网").json() == {
        "results": [{"sku": "LW-FILTER", "name": "空调滤网", "unit": "片"}]}


def test_engineer_cannot_receive(tenant_a, stocked, staff, client_for):
    response = client_for(staff["engineer"]).post("/parts/receive/", {})
    assert response.status_code == 403


def test_receive_form_and_its_bad_input(tenant_a, stocked, staff, client_for, tenant_b):
    client = client_for(staff["manager"])
    wh, part = stocked["central"], stocked["filter"]
    ok = {"warehouse": wh.pk, "part": part.pk, "quantity": "4", "reason": "RK-01"}
    assert client.post("/parts/receive/", ok).status_code == 302
    assert level(tenant_a, wh, part) == (4, 0)
    with tenant_scope(tenant_b):
        other = services.part_create(tenant=tenant_b, sku="B-1", name="别家零件")
    before = count(tenant_a)
    for bad in ({}, {**ok, "quantity": "-1"}, {**ok, "quantity": "abc"}, {**ok, "quantity": "10000000"},
                {**ok, "part": other.pk}, {**ok, "reason": "长" * 300}):
        response = client.post("/parts/receive/", bad)
        assert response.status_code == 400, bad
        assert "invalid-feedback" in response.content.decode()
    assert count(tenant_a) == before and level(tenant_a, wh, part) == (4, 0)


def test_adjust_form_needs_a_reason_and_keeps_reserved(tenant_a, stocked, staff, client_for):
    client = client_for(staff["manager"])
    wh, part = stocked["hangzhou"], stocked["compressor"]
    before = count(tenant_a)
    assert client.post("/parts/adjust/", {"warehouse": wh.pk, "part": part.pk, "delta": "-1"}).status_code == 400
    assert client.post("/parts/adjust/", {"warehouse": wh.pk, "part": part.pk, "delta": "-9",
                                          "reason": "盘亏"}).status_code == 400
    assert count(tenant_a) == before
    assert client.post("/parts/adjust/", {"warehouse": wh.pk, "part": part.pk, "delta": "-1",
                                          "reason": "外包装破损"}).status_code == 302
    assert level(tenant_a, wh, part) == (2, 0)


def test_transfer_form_and_receive(tenant_a, stocked, staff, client_for):
    client = client_for(staff["manager"])
    data = {"part": stocked["compressor"].pk, "source": stocked["hangzhou"].pk,
            "destination": stocked["central"].pk, "quantity": "2"}
    before = count(tenant_a)
    assert client.post("/parts/transfers/", {**data, "quantity": "9"}).status_code == 400
    assert client.post("/parts/transfers/", {**data, "destination": stocked["hangzhou"].pk}).status_code == 400
    assert count(tenant_a) == before
    assert client.post("/parts/transfers/", data).status_code == 302
    with tenant_scope(tenant_a):
        transfer = Transfer.objects.get()
    assert transfer.status == "in_transit"
    assert client.post(f"/parts/transfers/{transfer.pk}/receive/").status_code == 302
    assert level(tenant_a, stocked["central"], stocked["compressor"]) == (2, 0)
    assert client.post(f"/parts/transfers/{transfer.pk}/receive/").status_code == 302  # told, not repeated
    assert level(tenant_a, stocked["central"], stocked["compressor"]) == (2, 0)


def test_ticket_panel_shows_where_to_take_the_part_and_scan_consumes(tenant_a, stocked, staff, client_for,
                                                                    repair_template):
    with tenant_scope(tenant_a):
        ticket = ticket_intake(tenant=tenant_a, source="phone", template=repair_template, data={},
                               store=stocked["store"])
        services.stock_reserve(ticket=ticket, part=stocked["compressor"], quantity=1, actor=None)
    client = client_for(staff["manager"])
    response = client.get(f"/parts/ticket/{ticket.pk}/")
    assert response.status_code == 200, response
    panel = response.content.decode()
    assert "压缩机 1.5匹" in panel and "杭州区域仓" in panel and "km" in panel
    detail = client.get(f"/tickets/{ticket.pk}/").content.decode()
    assert f"/parts/ticket/{ticket.pk}/" in detail
    before = count(tenant_a)
    for code in ("", "UNKNOWN", "LW-FILTER", "x" * 100):
        response = client.post(f"/parts/ticket/{ticket.pk}/scan/", {"code": code, "quantity": "1"})
        assert response.status_code == 400
    assert client.post(f"/parts/ticket/{ticket.pk}/scan/", {"code": "6901234567001",
                                                             "quantity": "-1"}).status_code == 400
    assert count(tenant_a) == before
    response = client.post(f"/parts/ticket/{ticket.pk}/scan/", {"code": "6901234567001", "quantity": "1"},
                           headers={"HX-Request": "true"})
    assert response.status_code == 200 and "scan-error" not in response.content.decode()
    assert level(tenant_a, stocked["hangzhou"], stocked["compressor"]) == (2, 0)


def test_finance_sees_an_empty_parts_panel(tenant_a, lib, staff, client_for, repair_template):
    from scrm.models import Role
    from tests.conftest import make_member

    finance = make_member(tenant_a, Role.FINANCE, "sp_finance")
    with tenant_scope(tenant_a):
        ticket = ticket_intake(tenant=tenant_a, source="phone", template=repair_template, data={}, store=lib["store"])
    response = client_for(finance).get(f"/parts/ticket/{ticket.pk}/")
    assert response.status_code == 200 and response.content == b""
    assert client_for(finance).post(f"/parts/ticket/{ticket.pk}/scan/", {"code": "LW-FILTER"}).status_code == 403
