"""Purchase requests: draft → ordered (who, supplier, expected date) → received by receiving the
part, or cancelled; still at most one open request per part and warehouse; bad input refused with
nothing written; the 补货 page's status filter and its order / cancel actions."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from scrm.models import Role
from scrm.tenancy import tenant_scope
from spareparts import selectors, services
from spareparts.models import PurchaseRequest, PurchaseStatus
from tests.conftest import make_member
from tickets.services import ticket_intake

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english():
    from django.utils import translation

    with translation.override("en"):
        yield


def soon(days=7):
    return timezone.localdate() + datetime.timedelta(days=days)


@pytest.fixture
def draft(scope_a, lib, repair_template):
    """The compressor fell below its reorder point (2) in 杭州区域仓: one draft request."""
    services.stock_receive(warehouse=lib["hangzhou"], part=lib["compressor"], quantity=3, actor=None)
    ticket = ticket_intake(tenant=scope_a, source="phone", template=repair_template, data={}, store=lib["store"])
    services.stock_reserve(ticket=ticket, part=lib["compressor"], quantity=2, actor=None)
    request = PurchaseRequest.objects.get()
    assert request.status == PurchaseStatus.DRAFT
    return request


@pytest.fixture
def buyer(tenant_a):
    return make_member(tenant_a, Role.PURCHASING, "sp_buyer")


def snapshot():
    return list(PurchaseRequest.objects.order_by("pk").values())


def test_order_then_receive_closes_it(draft, lib, buyer):
    services.purchase_order(request=draft, supplier=" 格力配件中心 ", expected_on=soon(), quantity=8, actor=buyer)
    draft.refresh_from_db()
    assert (draft.status, draft.supplier, draft.expected_on, draft.quantity, draft.ordered_by) == (
        PurchaseStatus.ORDERED, "格力配件中心", soon(), 8, buyer)
    assert draft.ordered_at is not None and draft.closed_at is None
    services.stock_receive(warehouse=lib["hangzhou"], part=lib["compressor"], quantity=8, actor=buyer)
    draft.refresh_from_db()
    assert draft.status == PurchaseStatus.RECEIVED and draft.closed_by == buyer and draft.closed_at is not None
    assert selectors.ledger_mismatches() == []


def test_transfer_in_also_closes_an_ordered_request(draft, lib, buyer):
    services.purchase_order(request=draft, supplier="格力", expected_on=soon().isoformat(), actor=buyer)
    services.stock_receive(warehouse=lib["central"], part=lib["compressor"], quantity=5, actor=None)
    transfer = services.transfer_create(part=lib["compressor"], source=lib["central"], destination=lib["hangzhou"],
                                        quantity=5, actor=None)
    services.transfer_receive(transfer=transfer, actor=buyer)
    draft.refresh_from_db()
    assert draft.status == PurchaseStatus.RECEIVED and draft.quantity == 5  # quantity kept when not given


def test_an_ordered_request_still_blocks_a_second_one(draft, scope_a, lib, repair_template, buyer):
    services.purchase_order(request=draft, supplier="格力", expected_on=soon(), actor=buyer)
    # Back above the point by a count, then below again: a new crossing, but the order is open.
    services.stock_adjust(warehouse=lib["hangzhou"], part=lib["compressor"], delta=5, reason="盘点", actor=None)
    ticket = ticket_intake(tenant=scope_a, source="phone", template=repair_template, data={}, store=lib["store"])
    services.stock_reserve(ticket=ticket, part=lib["compressor"], quantity=5, actor=None)
    assert PurchaseRequest.objects.count() == 1
    with pytest.raises(IntegrityError), transaction.atomic():
        PurchaseRequest.objects.create(tenant=scope_a, part=lib["compressor"], warehouse=lib["hangzhou"], quantity=1)


def test_cancel_then_the_next_crossing_opens_a_new_draft(draft, scope_a, lib, repair_template, buyer):
    services.purchase_cancel(request=draft, actor=buyer)
    draft.refresh_from_db()
    assert draft.status == PurchaseStatus.CANCELLED and draft.closed_by == buyer
    with pytest.raises(ValidationError):
        services.purchase_cancel(request=draft, actor=buyer)
    with pytest.raises(ValidationError):
        services.purchase_order(request=draft, supplier="格力", expected_on=soon(), actor=buyer)
    services.stock_adjust(warehouse=lib["hangzhou"], part=lib["compressor"], delta=5, reason="盘点", actor=None)
    ticket = ticket_intake(tenant=scope_a, source="phone", template=repair_template, data={}, store=lib["store"])
    services.stock_reserve(ticket=ticket, part=lib["compressor"], quantity=5, actor=None)
    assert list(PurchaseRequest.objects.order_by("pk").values_list("status", flat=True)) == [
        PurchaseStatus.CANCELLED, PurchaseStatus.DRAFT]


@pytest.mark.parametrize("fields, error", [
    ({"supplier": "", "expected_on": soon()}, "supplier"),
    ({"supplier": "   ", "expected_on": soon()}, "supplier"),
    ({"supplier": "x" * 101, "expected_on": soon()}, "supplier"),
    ({"supplier": "格力", "expected_on": None}, "expected_on"),
    ({"supplier": "格力", "expected_on": "2026-13-45"}, "expected_on"),
    ({"supplier": "格力", "expected_on": "next week"}, "expected_on"),
    ({"supplier": "格力", "expected_on": soon(-1)}, "expected_on"),
    ({"supplier": "格力", "expected_on": soon(400)}, "expected_on"),
    ({"supplier": "格力", "expected_on": soon(), "quantity": 0}, "quantity"),
    ({"supplier": "格力", "expected_on": soon(), "quantity": -3}, "quantity"),
    ({"supplier": "格力", "expected_on": soon(), "quantity": "abc"}, "quantity"),
    ({"supplier": "格力", "expected_on": soon(), "quantity": 10**9}, "quantity"),
])
def test_order_bad_input_writes_nothing(draft, buyer, fields, error):
    before = snapshot()
    with pytest.raises(ValidationError) as exc:
        services.purchase_order(request=draft, actor=buyer, **fields)
    assert error in exc.value.message_dict
    assert snapshot() == before


def test_order_twice_orders_once(draft, buyer):
    services.purchase_order(request=draft, supplier="格力", expected_on=soon(), actor=buyer)
    before = snapshot()
    with pytest.raises(ValidationError):
        services.purchase_order(request=draft, supplier="美的", expected_on=soon(3), actor=buyer)
    assert snapshot() == before


# --- the 补货 page ---------------------------------------------------------------------------


def test_page_filters_by_status(draft, lib, tenant_a, buyer, client_for, django_assert_max_num_queries):
    services.purchase_order(request=draft, supplier="格力", expected_on=soon(), actor=buyer)
    services.stock_receive(warehouse=lib["central"], part=lib["filter"], quantity=1, actor=None)
    client = client_for(buyer)
    url = reverse("parts-reorder")
    with django_assert_max_num_queries(25):
        page = client.get(url).content.decode()
    assert page.count('data-testid="purchase-row"') == 1 and "格力" in page and "sp_buyer" in page
    assert client.get(url + "?status=draft").content.decode().count('data-testid="purchase-row"') == 0
    assert client.get(url + "?status=ordered").content.decode().count('data-testid="purchase-row"') == 1
    assert client.get(url + "?status=cancelled").content.decode().count('data-testid="purchase-row"') == 0
    # An unknown filter falls back to the open requests.
    assert client.get(url + "?status=<x>").content.decode().count('data-testid="purchase-row"') == 1


def test_order_form_and_cancel_button(draft, tenant_a, buyer, client_for):
    client = client_for(buyer)
    order_url = reverse("parts-purchase-order", args=[draft.pk])
    form = client.get(order_url)
    assert form.status_code == 200 and "格力配件中心" in form.content.decode()  # the part's supplier to start with
    with tenant_scope(tenant_a):
        before = snapshot()
    bad = client.post(order_url, {"supplier": "格力", "quantity": "2", "expected_on": soon(-2).isoformat()})
    assert bad.status_code == 400 and "预计到货日期不能早于今天" in bad.content.decode()
    assert client.post(order_url, {"supplier": "", "quantity": "2", "expected_on": soon().isoformat()}
                       ).status_code == 400
    with tenant_scope(tenant_a):
        assert snapshot() == before
    done = client.post(order_url, {"supplier": "格力", "quantity": "6", "expected_on": soon().isoformat()})
    assert done.status_code == 302
    with tenant_scope(tenant_a):
        draft.refresh_from_db()
        assert draft.status == PurchaseStatus.ORDERED and draft.quantity == 6
    assert client.get(order_url).status_code == 302  # no longer a draft
    assert client.post(reverse("parts-purchase-cancel", args=[draft.pk])).status_code == 302
    with tenant_scope(tenant_a):
        draft.refresh_from_db()
        assert draft.status == PurchaseStatus.CANCELLED


def test_engineers_and_other_tenants_cannot_order(draft, tenant_a, tenant_b, staff, client_for):
    engineer = client_for(staff["engineer"])
    assert engineer.post(reverse("parts-purchase-order", args=[draft.pk]),
                         {"supplier": "格力", "quantity": "1", "expected_on": soon().isoformat()}).status_code == 403
    assert engineer.post(reverse("parts-purchase-cancel", args=[draft.pk])).status_code == 403
    outsider = client_for(make_member(tenant_b, Role.PURCHASING, "b_buyer"))
    assert outsider.get(reverse("parts-purchase-order", args=[draft.pk])).status_code == 404
    assert outsider.post(reverse("parts-purchase-cancel", args=[draft.pk])).status_code == 404
    with tenant_scope(tenant_a):
        draft.refresh_from_db()
        assert draft.status == PurchaseStatus.DRAFT
