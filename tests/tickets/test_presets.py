"""Industry presets: each is valid data for tickets.fields, big enough to use as it is, and
covers the request it is named for."""

import json
import re

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from scrm.tenancy import tenant_scope
from tests.factories import RegionFactory, StoreFactory
from tickets.fields import data_clean, form_class_for, schema_validate
from tickets.models import Priority
from tickets.presets import PRESET_DIR, preset_get, preset_list

# slug -> (number prefix, category code, field types it must have, keys it must have)
EXPECTED = {
    "canyin_tousu": (
        "TS", "tousu",
        {"store", "datetime", "pattern", "select", "textarea", "image", "phone", "radio", "rating"},
        {"store", "dined_at", "order_no", "complaint_type", "description", "photos", "contact_phone",
         "expectation", "satisfaction"},
    ),
    "jiadian_anzhuang": (
        "AZ", "anzhuang",
        {"select", "text", "pattern", "date", "address", "cascade", "datetime", "checkbox", "money", "integer",
         "computed"},
        {"product_category", "model", "serial_no", "purchase_date", "install_address", "province_city",
         "appointment_at", "remove_old", "install_fee", "parts_qty", "parts_unit_price", "parts_total"},
    ),
    "4s_baoyang": (
        "BY", "baoyang",
        {"pattern", "text", "integer", "date", "time", "multiselect", "store", "phone"},
        {"plate_no", "car_model", "mileage", "appointment_date", "arrival_time", "service_items"},
    ),
    "kecheng_zixun": (
        "KC", "zixun",
        {"date", "computed", "select", "money", "textarea", "phone"},
        {"student_birthday", "age_months", "course", "refund_amount", "refund_reason"},
    ),
    "shebei_xunjian": (
        "XJ", "xunjian",
        {"pattern", "date", "multiselect", "decimal", "radio", "image", "file", "staff"},
        {"device_no", "inspect_date", "items", "temperature", "result", "photos", "attachment"},
    ),
}


def by_key(preset):
    return {field["key"]: field for field in schema_validate(preset["fields"])}


def test_every_json_file_is_a_listed_preset():
    files = sorted(path.stem for path in PRESET_DIR.glob("*.json"))
    assert files == sorted(EXPECTED)
    assert [p["slug"] for p in preset_list()] == files  # slug == file name


@pytest.mark.parametrize("slug", sorted(EXPECTED))
def test_preset_is_valid_big_enough_and_covers_its_category(slug):
    prefix, category, types, keys = EXPECTED[slug]
    preset = preset_get(slug)
    assert set(preset) >= {"name", "slug", "category", "number_prefix", "default_priority", "description", "fields"}
    assert preset["slug"] == slug
    assert preset["number_prefix"] == prefix and re.fullmatch(r"[A-Z]{1,8}", prefix)
    assert preset["category"]["code"] == category and preset["category"]["name"]
    assert preset["default_priority"] in Priority.values
    assert preset["name"] and preset["description"]
    fields = schema_validate(preset["fields"])
    assert len(fields) >= 8
    assert {f["type"] for f in fields} >= types
    assert {f["key"] for f in fields} >= keys
    for field in fields:
        assert field["label"]["zh-hans"] and field["label"]["en"], field["key"]
        assert set(field["help"]) in (set(), {"zh-hans", "en"}), field["key"]
        for choice in field["options"].get("choices", []):
            assert set(choice["label"]) == {"zh-hans", "en"}, (field["key"], choice)


def test_staff_only_fields_stay_off_the_public_form():
    canyin = by_key(preset_get("canyin_tousu"))
    assert (canyin["satisfaction"]["public"], canyin["satisfaction"]["staff"]) == ("hidden", "edit")
    jiadian = by_key(preset_get("jiadian_anzhuang"))
    assert jiadian["install_fee"]["public"] == "hidden"
    assert jiadian["parts_total"]["options"]["formula"] == {
        "op": "mul", "fields": ["parts_qty", "parts_unit_price"], "money": True,
    }
    assert by_key(preset_get("kecheng_zixun"))["age_months"]["options"]["formula"] == {
        "op": "months_since", "field": "student_birthday",
    }


@pytest.mark.parametrize(
    ("plate", "ok"),
    [("沪A12345", True), ("粤BD12345", True), ("京A1B2C3", True), ("A12345", False), ("沪a12345", False),
     ("沪A1234", False), ("港A12345", False)],
)
def test_4s_plate_number_pattern(plate, ok):
    field = by_key(preset_get("4s_baoyang"))["plate_no"]
    if ok:
        assert data_clean([field], {"plate_no": plate}, audience="public")[0] == {"plate_no": plate}
        return
    with pytest.raises(ValidationError) as info, translation.override("en"):
        data_clean([field], {"plate_no": plate}, audience="public")
    assert info.value.message_dict == {"plate_no": ["Enter a value in the expected format."]}


def test_shebei_temperature_bounds():
    fields = [by_key(preset_get("shebei_xunjian"))["temperature"]]
    assert data_clean(fields, {"temperature": "-18.5"}, audience="staff")[0] == {"temperature": "-18.5"}
    for bad in ("150.5", "-41", "4.25"):
        with pytest.raises(ValidationError) as info:
            data_clean(fields, {"temperature": bad}, audience="staff")
        assert list(info.value.message_dict) == ["temperature"]


def test_preset_get_returns_copies_and_none_for_unknown():
    preset = preset_get("canyin_tousu")
    preset["fields"].clear()
    assert len(preset_get("canyin_tousu")["fields"]) >= 8
    assert preset_get("no-such-preset") is None


def test_preset_files_are_utf8_json_with_chinese_kept_readable():
    for path in PRESET_DIR.glob("*.json"):
        text = path.read_text(encoding="utf-8")
        assert "\\u" not in text
        assert json.loads(text)["fields"]


def test_a_public_complaint_cleans_and_its_form_renders(tenant_a):
    with tenant_scope(tenant_a):
        store = StoreFactory(region=RegionFactory(tenant=tenant_a), name="西湖银泰店")
        fields = preset_get("canyin_tousu")["fields"]
        data = {
            "store": str(store.pk), "dined_at": "2025-03-08T12:30", "order_no": "WX20250308001",
            "complaint_type": "quality", "description": "酸菜鱼里吃出了头发，服务员态度也很冷淡。",
            "contact_name": "王女士", "contact_phone": "138 1234 5678", "expectation": "refund",
            "satisfaction": "5", "refund_amount": "88",
        }
        cleaned, files = data_clean(fields, data, audience="public")
        with translation.override("en"):
            html = str(form_class_for(fields, audience="public")())
    assert cleaned["store"] == store.pk
    assert cleaned["contact_phone"] == "13812345678"
    assert cleaned["dined_at"] == "2025-03-08T12:30:00+08:00"
    assert cleaned["satisfaction"] is None and cleaned["refund_amount"] is None  # staff-only
    assert files == {}
    assert "西湖银泰店" in html and "Complaint type" in html and 'name="satisfaction"' not in html


@pytest.mark.parametrize("slug", sorted(EXPECTED))
@pytest.mark.parametrize("audience", ["public", "staff"])
def test_every_preset_form_renders_for_both_audiences(slug, audience, scope_a):
    StoreFactory(region=RegionFactory(tenant=scope_a))
    fields = preset_get(slug)["fields"]
    form = form_class_for(fields, audience=audience)()
    html = str(form)
    visible = [f for f in schema_validate(fields) if f[audience] != "hidden"]
    assert list(form.fields) == [f["key"] for f in visible]
    assert html.count("<label") + html.count("<legend") >= len(visible)
