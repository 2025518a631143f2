"""Catalogue and stock-count imports: a preview writes nothing, a file with any wrong row writes
nothing, a clean file writes every row; malformed files get a clear error."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from scrm.tenancy import tenant_scope
from spareparts import services
from spareparts.models import Movement, Part, Stock

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english(settings):
    settings.LANGUAGE_CODE = "en"

CATALOGUE = ("sku,name,unit,cost_fen,price_fen,reorder_point,reorder_qty,barcode\n"
             "DJ-FAN-35,室外风扇电机,台,18000,32000,3,10,6923456700305\n"
             "LW-FILTER,空调滤网（新款）,片,1200,3800,10,50,6901234567002\n")


def upload(client, text, *, kind="catalogue", action="import", name="parts.csv"):
    data = text.encode("utf-8") if isinstance(text, str) else text
    return client.post("/parts/import/", {"kind": kind, "action": action,
                                          "file": SimpleUploadedFile(name, data, content_type="text/csv")})


def snapshot(tenant):
    with tenant_scope(tenant):
        return (list(Part.objects.order_by("sku").values_list("sku", "name", "price_fen")),
                list(Stock.objects.order_by("pk").values_list("on_hand", "reserved")), Movement.objects.count())


def test_preview_then_import_the_catalogue(tenant_a, lib, staff, client_for):
    client = client_for(staff["manager"])
    before = snapshot(tenant_a)
    response = upload(client, CATALOGUE, action="preview")
    assert response.status_code == 200 and "New 1, changed 1, unchanged 0." in response.content.decode()
    assert snapshot(tenant_a) == before
    assert upload(client, CATALOGUE).status_code == 302
    with tenant_scope(tenant_a):
        assert Part.objects.get(sku="LW-FILTER").price_fen == 3800
        assert Part.objects.get(sku="DJ-FAN-35").tenant_id == tenant_a.pk


@pytest.mark.parametrize("text, message", [
    (CATALOGUE + "BAD-1,坏行,个,-5,100,0,0,\n", "Row 3"),
    (CATALOGUE + ",没有编码,个,1,1,0,0,\n", "Row 3"),
    (CATALOGUE + "X-2,价格不对,个,abc,1,0,0,\n", "Row 3"),
    ("name,unit\n滤网,片\n", "Missing columns: sku."),
    (b"\xff\xfe\x00garbage", "could not be read"),
    ("", "The submitted file is empty."),
    ("\n\n", "no header row"),
])
def test_a_wrong_row_or_file_writes_nothing(tenant_a, lib, staff, client_for, text, message):
    client = client_for(staff["manager"])
    before = snapshot(tenant_a)
    response = upload(client, text)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert snapshot(tenant_a) == before


def test_wrong_extension_and_oversized(tenant_a, lib, staff, client_for):
    client = client_for(staff["manager"])
    before = snapshot(tenant_a)
    assert "Upload a .csv or .xlsx file." in upload(client, CATALOGUE, name="parts.txt").content.decode()
    big = "sku,name\n" + "\n".join(f"S{i},配件{i}" for i in range(5001))
    assert "At most 5000 rows per file." in upload(client, big).content.decode()
    assert snapshot(tenant_a) == before


def test_stock_counts_become_adjustments_all_or_nothing(tenant_a, lib, staff, client_for, tenant_b):
    with tenant_scope(tenant_a):
        services.stock_receive(warehouse=lib["central"], part=lib["filter"], quantity=10, actor=None)
    with tenant_scope(tenant_b):
        services.warehouse_create(tenant=tenant_b, code="b-wh", name="别家仓", kind="central")
    client = client_for(staff["manager"])
    before = snapshot(tenant_a)
    bad = ("warehouse,sku,counted\nsh-central,LW-FILTER,8\nb-wh,LW-FILTER,1\nsh-central,NOPE,1\n"
           "sh-central,LW-FILTER,-1\n")
    response = upload(client, bad, kind="counts")
    body = response.content.decode()
    assert response.status_code == 400
    assert "Row 2: unknown warehouse “b-wh”." in body and "Row 3: unknown SKU “NOPE”." in body
    assert "Row 4:" in body
    assert snapshot(tenant_a) == before
    assert upload(client, "warehouse,sku,counted\nsh-central,LW-FILTER,8\nhz-rdc,YS-COMP-15,2\n",
                  kind="counts").status_code == 302
    with tenant_scope(tenant_a):
        levels = {(s.warehouse.code, s.part.sku): s.on_hand for s in Stock.objects.select_related("warehouse", "part")}
        assert levels[("sh-central", "LW-FILTER")] == 8 and levels[("hz-rdc", "YS-COMP-15")] == 2
        assert set(Movement.objects.filter(kind="adjust").values_list("reason", flat=True)) == {"盘点导入"}


def test_exports(tenant_a, lib, staff, client_for):
    client = client_for(staff["engineer"])
    text = client.get("/parts/export/catalogue.csv").content.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("sku,barcode,name") and "YS-COMP-15" in text
    assert client.get("/parts/export/stock.csv").status_code == 200
