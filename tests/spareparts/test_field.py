"""The `parts` custom field: SKU lines or API lists become [{"part", "sku", "name", "qty"}] from the
catalogue of the tenant in scope; bad lines and other tenants' parts are refused on the field."""

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from scrm.tenancy import tenant_scope
from spareparts import services
from tickets.fields import data_clean, display_value

pytestmark = pytest.mark.django_db
FIELD = {"key": "parts", "type": "parts", "label": {"zh-hans": "备件"}, "public": "edit"}


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def clean(value, field=FIELD):
    return data_clean([field], {"parts": value}, audience="staff")[0]["parts"]


def error(value):
    with pytest.raises(ValidationError) as info:
        clean(value)
    return info.value.message_dict["parts"]


def test_lines_by_sku_or_barcode_merge_per_part(scope_a, lib):
    cid = lib["compressor"].pk
    assert clean("YS-COMP-15 1\n6901234567001 x2\nLW-FILTER") == [
        {"part": cid, "sku": "YS-COMP-15", "name": "压缩机 1.5匹", "qty": 3},
        {"part": lib["filter"].pk, "sku": "LW-FILTER", "name": "空调滤网", "qty": 1}]
    assert clean([{"part": cid, "qty": 2}]) == [{"part": cid, "sku": "YS-COMP-15", "name": "压缩机 1.5匹", "qty": 2}]
    assert display_value(FIELD, clean("LW-FILTER 2")) == "空调滤网（LW-FILTER）×2"


@pytest.mark.parametrize("value, message", [
    ("NOPE 1", "Unknown part: NOPE."),
    ("YS-COMP-15 0", "Each quantity must be between 1 and 9999."),
    ("YS-COMP-15 99999", "Each quantity must be between 1 and 9999."),
    ("YS-COMP-15 -1", "Write each part as “SKU quantity”, one per line."),
    ([{"part": "x", "qty": "many"}], "Write each part as “SKU quantity”, one per line."),
    ({"sku": "YS-COMP-15"}, "Write each part as “SKU quantity”, one per line."),
    ("\n".join(f"LW-FILTER {i}" for i in range(1, 60)), "Enter at most 50 parts."),
    ("A" * 5000, "Enter at most 50 parts."),
])
def test_bad_values_are_refused_on_the_field(scope_a, lib, value, message):
    assert error(value) == [message]


def test_another_tenants_part_is_unknown(scope_a, lib, tenant_b):
    with tenant_scope(tenant_b):
        other = services.part_create(tenant=tenant_b, sku="B-ONLY", name="别家零件")
    assert error("B-ONLY 1") == ["Unknown part: B-ONLY."]
    assert error([{"part": other.pk, "qty": 1}]) == [f"Unknown part: {other.pk}."]
