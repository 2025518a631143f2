"""The manager's edit pages of the parts library — catalogue entries, warehouses, a template's bill
of materials — and the warehouse keeper and purchasing roles: what each may open, bad input
refused with nothing written, another tenant's objects out of reach, and the reorder alert reaching
the keeper and purchasing."""

from decimal import Decimal

import pytest
from django.urls import reverse

from notifications.models import Notification
from scrm.models import Role
from scrm.tenancy import tenant_scope
from spareparts import selectors, services
from spareparts.models import BillOfMaterials, Part, Warehouse
from tests.conftest import make_member
from tickets.services import ticket_intake

pytestmark = pytest.mark.django_db

PART = {"sku": "YS-FAN-01", "barcode": "6901234567099", "name": "外机风扇", "compatible_models": "KFR-35GW",
        "unit": "个", "cost": "80.50", "price": "150.00", "reorder_point": "2", "reorder_qty": "5",
        "supplier": "格力配件中心", "is_active": "on"}


@pytest.fixture(autouse=True)
def _english():
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture
def roles(tenant_a):
    return {"keeper": make_member(tenant_a, Role.WAREHOUSE_KEEPER, "sp_keeper"),
            "purchasing": make_member(tenant_a, Role.PURCHASING, "sp_buyer")}


def parts(tenant):
    with tenant_scope(tenant):
        return {p.sku: (p.name, p.price_fen, p.cost_fen) for p in Part.objects.all()}


def test_manager_creates_and_edits_a_part_priced_in_yuan(tenant_a, lib, staff, client_for):
    client = client_for(staff["manager"])
    assert client.get(reverse("parts-part-new")).status_code == 200
    response = client.post(reverse("parts-part-new"), PART)
    assert response.status_code == 302
    assert parts(tenant_a)["YS-FAN-01"] == ("外机风扇", 15000, 8050)
    with tenant_scope(tenant_a):
        fan = Part.objects.get(sku="YS-FAN-01")
    page = client.get(reverse("parts-part-edit", args=[fan.pk])).content.decode()
    assert 'name="price" value="150.00"' in page and "外机风扇" in page
    response = client.post(reverse("parts-part-edit", args=[fan.pk]),
                           {**PART, "price": "168.8", "name": "外机风扇电机"})
    assert response.status_code == 302
    assert parts(tenant_a)["YS-FAN-01"] == ("外机风扇电机", 16880, 8050)


@pytest.mark.parametrize("change, field", [
    ({"sku": ""}, "sku"),
    ({"name": ""}, "name"),
    ({"sku": "YS-COMP-15"}, "sku"),  # another part's SKU
    ({"barcode": "6901234567002"}, "barcode"),  # another part's barcode
    ({"price": "-1"}, "price"),
    ({"price": "abc"}, "price"),
    ({"price": "1.234"}, "price"),
    ({"cost": "100000001"}, "cost"),
    ({"reorder_point": "-3"}, "reorder_point"),
    ({"reorder_qty": "100001"}, "reorder_qty"),
    ({"sku": "X" * 41}, "sku"),
    ({"name": "长" * 101}, "name"),
    ({"compatible_models": "m" * 301}, "compatible_models"),
])
def test_bad_part_input_is_refused_and_nothing_written(tenant_a, lib, staff, client_for, change, field):
    client = client_for(staff["manager"])
    before = parts(tenant_a)
    response = client.post(reverse("parts-part-new"), {**PART, **change})
    assert response.status_code == 400
    assert response.context["form"].errors.get(field), response.context["form"].errors
    assert parts(tenant_a) == before
    # The same on an edit: the compressor keeps its values.
    response = client.post(reverse("parts-part-edit", args=[lib["compressor"].pk]),
                           {**PART, "sku": "YS-COMP-15", "barcode": "6901234567001", **change})
    if change != {"sku": "YS-COMP-15"}:  # its own SKU is fine
        assert response.status_code == 400
    assert parts(tenant_a) == before or change == {"sku": "YS-COMP-15"}


WAREHOUSE = {"code": "nb-rdc", "name": "宁波区域仓", "kind": "regional", "address": "宁波市鄞州区",
             "latitude": "29.8683", "longitude": "121.5440", "is_active": "on"}


def test_manager_creates_and_edits_a_warehouse(tenant_a, lib, staff, roles, client_for):
    client = client_for(staff["manager"])
    assert client.get(reverse("parts-warehouses")).status_code == 200
    response = client.post(reverse("parts-warehouse-new"), {**WAREHOUSE, "region": lib["hz"].pk,
                                                            "keeper": roles["keeper"].pk})
    assert response.status_code == 302
    with tenant_scope(tenant_a):
        w = Warehouse.objects.get(code="nb-rdc")
        assert (w.name, w.region, w.keeper) == ("宁波区域仓", lib["hz"], roles["keeper"])
        assert w.latitude == Decimal("29.8683")
    response = client.post(reverse("parts-warehouse-edit", args=[w.pk]),
                           {**WAREHOUSE, "name": "宁波仓", "is_active": ""})
    assert response.status_code == 302
    with tenant_scope(tenant_a):
        w.refresh_from_db()
        assert (w.name, w.is_active, w.keeper) == ("宁波仓", False, None)
    assert "宁波仓" in client.get(reverse("parts-warehouses")).content.decode()


def warehouses(tenant):
    with tenant_scope(tenant):
        return sorted(Warehouse.objects.values_list("code", "name", "kind", "owner_id", "latitude"))


@pytest.mark.parametrize("change, field", [
    ({"code": ""}, "code"),
    ({"code": "sh-central"}, "code"),  # another warehouse's code
    ({"code": "宁 波"}, "code"),  # not a slug
    ({"code": "x" * 31}, "code"),
    ({"name": ""}, "name"),
    ({"kind": "castle"}, "kind"),
    ({"kind": "van"}, "owner"),  # a van without its engineer
    ({"latitude": "91"}, "latitude"),
    ({"longitude": "abc"}, "longitude"),
    ({"longitude": ""}, "longitude"),  # latitude without longitude
    ({"region": "999999"}, "region"),
    ({"address": "路" * 201}, "address"),
])
def test_bad_warehouse_input_is_refused_and_nothing_written(tenant_a, lib, staff, client_for, change, field):
    client = client_for(staff["manager"])
    before = warehouses(tenant_a)
    response = client.post(reverse("parts-warehouse-new"), {**WAREHOUSE, **change})
    assert response.status_code == 400
    assert response.context["form"].errors.get(field), response.context["form"].errors
    assert warehouses(tenant_a) == before
    response = client.post(reverse("parts-warehouse-edit", args=[lib["hangzhou"].pk]), {**WAREHOUSE, **change})
    assert response.status_code == 400
    assert warehouses(tenant_a) == before


def test_another_tenants_region_keeper_or_objects_are_out_of_reach(tenant_a, tenant_b, lib, staff, client_for,
                                                                   admin_b):
    from tests.factories import RegionFactory

    with tenant_scope(tenant_b):
        region_b = RegionFactory(tenant=tenant_b, name="乙区域", code="b")
    client = client_for(staff["manager"])
    before = warehouses(tenant_a)
    for change in ({"region": region_b.pk}, {"keeper": admin_b.pk}, {"kind": "van", "owner": admin_b.pk}):
        assert client.post(reverse("parts-warehouse-new"), {**WAREHOUSE, **change}).status_code == 400, change
    assert warehouses(tenant_a) == before
    # The service refuses them too, whatever a form lets through.
    from django.core.exceptions import ValidationError

    with tenant_scope(tenant_a), pytest.raises(ValidationError):
        services.warehouse_create(tenant=tenant_a, code="x", name="x", kind="regional", keeper=admin_b)
    # B's manager cannot open or change A's part, warehouse or bill of materials.
    other = client_for(admin_b)
    for name, pk in (("parts-part-edit", lib["compressor"].pk), ("parts-warehouse-edit", lib["hangzhou"].pk)):
        assert other.get(reverse(name, args=[pk])).status_code == 404
        assert other.post(reverse(name, args=[pk]), {**PART, **WAREHOUSE}).status_code == 404
    assert parts(tenant_a)["YS-COMP-15"][0] == "压缩机 1.5匹" and warehouses(tenant_a) == before


def test_bill_of_materials_add_change_remove(tenant_a, lib, staff, client_for, repair_template):
    client = client_for(staff["manager"])
    assert "家电维修" in client.get(reverse("parts-bom")).content.decode()
    url = reverse("parts-bom-edit", args=[repair_template.pk])
    assert client.post(url, {"part": lib["filter"].pk, "quantity": "2"}).status_code == 302
    assert client.post(url, {"part": lib["filter"].pk, "quantity": "3"}).status_code == 302  # changes the line
    with tenant_scope(tenant_a):
        line = BillOfMaterials.objects.get(template=repair_template)
        assert (line.part, line.quantity) == (lib["filter"], 3)
        assert selectors.ticket_part_needs(ticket_intake(tenant=tenant_a, source="phone", template=repair_template,
                                                         data={}, store=lib["store"])) == {lib["filter"].pk: 3}
    page = client.get(url).content.decode()
    assert "空调滤网" in page
    assert client.post(url, {"action": "remove", "line": str(line.pk)}).status_code == 302
    with tenant_scope(tenant_a):
        assert not BillOfMaterials.objects.exists()


def bom(tenant):
    with tenant_scope(tenant):
        return sorted(BillOfMaterials.objects.values_list("template_id", "part_id", "quantity"))


@pytest.mark.parametrize("data", [
    {}, {"part": "", "quantity": "1"}, {"part": "FILTER"},
    {"part": "999999", "quantity": "1"}, {"part": "abc", "quantity": "1"},
    {"part": "FILTER", "quantity": "0"}, {"part": "FILTER", "quantity": "-2"}, {"part": "FILTER", "quantity": "1.5"},
    {"part": "FILTER", "quantity": "100001"}, {"part": "FILTER", "quantity": "x" * 5000},
    {"action": "remove", "line": "999999"}, {"action": "remove", "line": "abc"},
])
def test_bad_bom_input_is_refused_and_nothing_written(tenant_a, lib, staff, client_for, repair_template, data):
    data = {k: (str(lib["filter"].pk) if v == "FILTER" else v) for k, v in data.items()}
    with tenant_scope(tenant_a):
        services.bom_line_set(template=repair_template, part=lib["compressor"], quantity=1)
    before = bom(tenant_a)
    response = client_for(staff["manager"]).post(reverse("parts-bom-edit", args=[repair_template.pk]), data)
    assert response.status_code == 400
    assert bom(tenant_a) == before


def test_another_tenants_part_or_template_is_refused_on_the_bom(tenant_a, tenant_b, lib, staff, client_for,
                                                                 repair_template, admin_b):
    with tenant_scope(tenant_b):
        other_part = services.part_create(tenant=tenant_b, sku="B-1", name="乙配件")
    client = client_for(staff["manager"])
    url = reverse("parts-bom-edit", args=[repair_template.pk])
    assert client.post(url, {"part": other_part.pk, "quantity": "1"}).status_code == 400
    assert client_for(admin_b).post(url, {"part": other_part.pk, "quantity": "1"}).status_code == 404
    assert client_for(admin_b).get(url).status_code == 404
    from django.core.exceptions import ValidationError

    with tenant_scope(tenant_a), pytest.raises(ValidationError):
        services.bom_line_set(template=repair_template, part=other_part, quantity=1)
    assert bom(tenant_a) == []


@pytest.mark.parametrize("who, allowed", [
    ("manager", {"parts-part-new", "parts-warehouse-new", "parts-bom", "parts-receive", "parts-warehouses"}),
    ("keeper", {"parts-receive", "parts-warehouses", "parts-transfers", "parts-adjust", "parts-import"}),
    ("purchasing", {"parts-part-new", "parts-warehouses", "parts-reorder"}),
    ("engineer", {"parts-warehouses", "parts-catalogue"}),
])
def test_who_may_open_which_parts_page(tenant_a, lib, staff, roles, client_for, who, allowed):
    user = {**staff, **roles}[who]
    client = client_for(user)
    pages = {"parts-part-new", "parts-warehouse-new", "parts-bom", "parts-receive", "parts-warehouses",
             "parts-transfers", "parts-adjust", "parts-import", "parts-reorder", "parts-catalogue"}
    expected_denied = {
        "manager": set(),
        "keeper": {"parts-part-new", "parts-warehouse-new", "parts-bom"},
        "purchasing": {"parts-warehouse-new", "parts-bom", "parts-receive", "parts-transfers", "parts-adjust",
                       "parts-import"},
        "engineer": {"parts-part-new", "parts-warehouse-new", "parts-bom", "parts-receive", "parts-transfers",
                     "parts-adjust", "parts-import"},
    }[who]
    for name in pages:
        status = client.get(reverse(name)).status_code
        assert status == (403 if name in expected_denied else 200), (who, name, status)
    assert allowed <= pages - expected_denied
    # The keeper edits warehouses but not the catalogue; purchasing the reverse.
    edit_part = client.get(reverse("parts-part-edit", args=[lib["compressor"].pk])).status_code
    edit_warehouse = client.get(reverse("parts-warehouse-edit", args=[lib["hangzhou"].pk])).status_code
    assert (edit_part, edit_warehouse) == {"manager": (200, 200), "keeper": (403, 200), "purchasing": (200, 403),
                                           "engineer": (403, 403)}[who]


def test_keeper_and_purchasing_are_told_when_a_part_runs_low(scope_a, lib, staff, roles, repair_template):
    # The Hangzhou warehouse has no keeper of its own: every warehouse keeper hears of it.
    services.stock_receive(warehouse=lib["hangzhou"], part=lib["compressor"], quantity=2, actor=None)
    ticket = ticket_intake(tenant=scope_a, source="phone", template=repair_template, data={}, store=lib["store"])
    services.stock_reserve(ticket=ticket, part=lib["compressor"], quantity=1, actor=None)  # 1 free < 2
    told = set(Notification.objects.filter(event="parts_low_stock").values_list("user__username", flat=True))
    assert {"sp_keeper", "sp_buyer", "sp_manager"} <= told and "sp_engineer" not in told
    # A warehouse with its own keeper tells that keeper (not the others) and purchasing.
    other_keeper = make_member(scope_a, Role.WAREHOUSE_KEEPER, "sp_keeper2")
    services.warehouse_update(warehouse=lib["central"], keeper=other_keeper)
    recipients = {u.username for u in selectors.reorder_recipients(warehouse=lib["central"])}
    assert {"sp_keeper2", "sp_buyer"} <= recipients and "sp_keeper" not in recipients
