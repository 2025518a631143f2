"""tickets.fields: the custom-field schema, the one cleaning path (data_clean), pickers inside
the tenant scope, files, computed fields, the generated form and the display of stored values."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import QueryDict
from django.utils import translation
from django.utils.datastructures import MultiValueDict
from django.utils.functional import Promise
from hypothesis import given
from hypothesis import strategies as st

from scrm.config_cache import config_pinned
from scrm.models import Membership
from scrm.tenancy import tenant_scope
from tests.factories import CustomerFactory, OpportunityFactory, RegionFactory, StoreFactory, UserFactory
from tickets.fields import (
    FIELD_TYPES,
    data_clean,
    display_value,
    field_label,
    form_class_for,
    prefill_values,
    schema_validate,
    upload_check,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
CHOICES = {
    "choices": [
        {"value": "a", "label": {"zh-hans": "菜品质量", "en": "Food quality"}},
        {"value": "b", "label": {"zh-hans": "服务态度", "en": "Service"}},
        {"value": "c"},
    ]
}
TREE = {
    "tree": [
        {"value": "浙江省", "children": [{"value": "杭州市"}, {"value": "宁波市"}]},
        {"value": "上海市", "label": {"zh-hans": "上海市", "en": "Shanghai"}},
    ]
}
PATTERN = {"validation": {"regex": r"[A-Z]{2}\d{4}"}}
# What each type needs beyond key/type/label to be a valid definition.
NEEDS = {
    "select": {"options": CHOICES},
    "multiselect": {"options": CHOICES},
    "radio": {"options": CHOICES},
    "cascade": {"options": TREE},
    "pattern": PATTERN,
    "computed": {"options": {"formula": {"op": "sum", "fields": ["n"]}}},
}
INPUT_TYPES = sorted(name for name, ft in FIELD_TYPES.items() if ft.clean is not None)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF" + b"\x00" * 40
GIF = b"GIF89a" + b"\x00" * 40
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 40


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def fld(key="f", type_="text", **settings):
    public = "hidden" if type_ == "computed" else "edit"  # computed fields are never editable
    return {"key": key, "type": type_, "label": {"zh-hans": "字段", "en": "Field"}, "public": public, **settings}


def clean_one(field, value, *, audience="staff", **kwargs):
    cleaned, _files = data_clean([field], {field["key"]: value}, audience=audience, **kwargs)
    return cleaned[field["key"]]


def errors_of(fields, data, *, audience="staff", **kwargs):
    with pytest.raises(ValidationError) as info:
        data_clean(fields, data, audience=audience, **kwargs)
    return info.value.message_dict


def upload(name, content, content_type="application/octet-stream"):
    return SimpleUploadedFile(name, content, content_type=content_type)


# --- the registry ------------------------------------------------------------------------------


def test_field_types_cover_at_least_twenty_types_with_translatable_labels():
    assert len(FIELD_TYPES) >= 20
    assert set(FIELD_TYPES) >= {
        "text", "textarea", "integer", "decimal", "money", "date", "datetime", "time", "select", "multiselect",
        "checkbox", "radio", "cascade", "phone", "email", "url", "pattern", "region", "store", "staff",
        "customer", "address", "rating", "image", "file", "computed",
    }
    for name, ftype in FIELD_TYPES.items():
        assert ftype.name == name
        assert isinstance(ftype.label, Promise)
    assert str(FIELD_TYPES["money"].label) == "Money"


# --- valid values clean to their stored form ----------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "extra", "raw", "stored"),
    [
        ("text", {}, "  杭州西湖店  ", "杭州西湖店"),
        ("text", {}, 12345, "12345"),
        ("textarea", {}, "第一行\r\n第二行 ", "第一行\n第二行"),
        ("integer", {}, "42", 42),
        ("integer", {}, -7, -7),
        ("integer", {}, 3.0, 3),
        ("decimal", {}, "36.50", "36.5"),
        ("decimal", {}, 0.1, "0.1"),
        ("decimal", {}, "1,280.25", "1280.25"),
        ("decimal", {}, "-0.000", "0"),
        ("money", {}, "1280.5", "1280.50"),
        ("money", {}, "¥1,280.50", "1280.50"),
        ("money", {}, 99, "99.00"),
        ("money", {}, Decimal("0.10"), "0.10"),
        ("money", {}, "999999999999.99", "999999999999.99"),
        ("date", {}, "2025-03-08", "2025-03-08"),
        ("date", {}, "2025/03/08", "2025-03-08"),
        ("date", {}, date(2025, 3, 8), "2025-03-08"),
        ("datetime", {}, "2025-03-08T12:30", "2025-03-08T12:30:00+08:00"),
        ("datetime", {}, "2025-03-08 04:30:00Z", "2025-03-08T12:30:00+08:00"),
        ("datetime", {}, datetime(2025, 3, 8, 12, 30, tzinfo=SHANGHAI), "2025-03-08T12:30:00+08:00"),
        ("time", {}, "9:30", "09:30:00"),
        ("time", {}, "18:05:09", "18:05:09"),
        ("select", NEEDS["select"], "a", "a"),
        ("multiselect", NEEDS["multiselect"], ["c", "a", "a"], ["a", "c"]),
        ("multiselect", NEEDS["multiselect"], "b", ["b"]),
        ("checkbox", {}, "on", True),
        ("checkbox", {}, True, True),
        ("checkbox", {}, "false", False),
        ("radio", NEEDS["radio"], "b", "b"),
        ("cascade", NEEDS["cascade"], ["浙江省", "杭州市"], ["浙江省", "杭州市"]),
        ("cascade", NEEDS["cascade"], '["浙江省", "宁波市"]', ["浙江省", "宁波市"]),
        ("cascade", NEEDS["cascade"], "上海市", ["上海市"]),
        ("phone", {}, "+86 138 1234 5678", "13812345678"),
        ("phone", {}, "0571 8888 6666", "0571-88886666"),
        ("email", {}, " li.lei@example.com ", "li.lei@example.com"),
        ("url", {}, "https://shop.example.com/o?id=1", "https://shop.example.com/o?id=1"),
        ("pattern", PATTERN, " ZJ2025 ", "ZJ2025"),
        (
            "address", {}, {"text": "杭州市西湖区文三路90号", "lat": "30.2741", "lng": 120.1551},
            {"text": "杭州市西湖区文三路90号", "lat": 30.2741, "lng": 120.1551},
        ),
        ("address", {}, "上海市徐汇区漕溪北路88号", {"text": "上海市徐汇区漕溪北路88号"}),
        ("address", {}, {"text": "上海市", "lat": "", "lng": None}, {"text": "上海市"}),
        ("rating", {}, 4, 4),
        ("rating", {"options": {"scale": 10}}, "10", 10),
    ],
)
def test_valid_input_cleans_to_the_stored_form(type_, extra, raw, stored):
    assert clean_one(fld("f", type_, **extra), raw) == stored


@pytest.mark.parametrize(
    ("type_", "extra", "raw"),
    [
        ("text", {"validation": {"max_length": 5}}, "一二三四五六"),
        ("text", {}, "x" * 201),
        ("text", {"validation": {"min_length": 3}}, "ab"),
        ("text", {}, {"a": 1}),
        ("text", {}, "a\x00b"),
        ("text", {"validation": {"regex": r"\d+"}}, "12a"),
        ("textarea", {}, "x" * 5001),
        ("textarea", {}, ["a"]),
        ("integer", {}, "abc"),
        ("integer", {}, "1.5"),
        ("integer", {}, 1.5),
        ("integer", {}, True),
        ("integer", {}, 10**16),
        ("integer", {"validation": {"min": 0, "max": 10}}, 11),
        ("integer", {"validation": {"min": 0, "max": 10}}, "-1"),
        ("decimal", {}, "abc"),
        ("decimal", {}, "NaN"),
        ("decimal", {}, float("inf")),
        ("decimal", {}, "1e5"),
        ("decimal", {}, "1" * 16),
        ("decimal", {"validation": {"decimal_places": 1}}, "36.55"),
        ("decimal", {"validation": {"min": -40, "max": 150}}, "150.1"),
        ("money", {}, "12.345"),
        ("money", {}, "1000000000000"),
        ("money", {}, "-1000000000000.00"),
        ("money", {}, "12,34"),
        ("money", {}, "abc"),
        ("money", {}, [1]),
        ("money", {"validation": {"min": 0}}, "-0.01"),
        ("date", {}, "2025-02-30"),
        ("date", {}, "08/03/2025"),
        ("date", {}, "2025-03-08T12:00"),
        ("date", {}, 20250308),
        ("date", {"validation": {"min": "2025-01-01"}}, "2024-12-31"),
        ("datetime", {}, "tomorrow"),
        ("datetime", {}, "2025-03-08T25:00"),
        ("datetime", {}, 1700000000),
        ("datetime", {"validation": {"max": "2025-01-01T00:00"}}, "2025-01-01T00:01"),
        ("time", {}, "25:00"),
        ("time", {}, "9.30"),
        ("time", {"validation": {"min": "08:30", "max": "17:30"}}, "18:00"),
        ("select", NEEDS["select"], "z"),
        ("select", NEEDS["select"], ["a"]),
        ("multiselect", NEEDS["multiselect"], ["a", "z"]),
        ("multiselect", NEEDS["multiselect"], {"a": True}),
        ("multiselect", NEEDS["multiselect"], ["a"] * 201),
        ("checkbox", {}, "maybe"),
        ("checkbox", {}, 2),
        ("radio", NEEDS["radio"], "z"),
        ("cascade", NEEDS["cascade"], ["浙江省", "广州市"]),
        ("cascade", NEEDS["cascade"], ["江苏省"]),
        ("cascade", NEEDS["cascade"], {"p": "浙江省"}),
        ("cascade", NEEDS["cascade"], "[broken json"),
        ("phone", {}, "12345"),
        ("phone", {}, "138-CALL-ME"),
        ("phone", {}, ["13812345678"]),
        ("phone", {}, "1" * 25),
        ("email", {}, "not-an-email"),
        ("email", {}, "a@" + "b" * 250 + ".com"),
        ("url", {}, "ftp://files.example.com/a"),
        ("url", {}, "javascript:alert(1)"),
        ("url", {}, "example"),
        ("pattern", PATTERN, "zj2025"),
        ("pattern", PATTERN, "ZJ20255"),
        ("pattern", {"validation": {"regex": ".*"}}, "x" * 65),
        ("address", {}, {"text": "杭州", "lat": 30}),
        ("address", {}, {"text": "x" * 201}),
        ("address", {}, {"text": "杭州", "lat": 91, "lng": 0}),
        ("address", {}, {"text": "杭州", "lat": 0, "lng": 181}),
        ("address", {}, {"text": "杭州", "lat": "north", "lng": 1}),
        ("address", {}, {"text": "杭州", "street": "文三路"}),
        ("address", {}, {"lat": 30, "lng": 120}),
        ("address", {}, 42),
        ("rating", {}, 0),
        ("rating", {}, 6),
        ("rating", {}, "good"),
        ("region", {}, "abc"),
        ("store", {}, -3),
        ("staff", {}, 1.5),
        ("customer", {}, {"id": 1}),
    ],
)
def test_bad_input_is_refused_under_its_key(type_, extra, raw):
    other = fld("other", "text")
    errors = errors_of([fld("f", type_, **extra), other], {"f": raw, "other": "fine"})
    assert list(errors) == ["f"]
    assert all(isinstance(message, str) and message for message in errors["f"])


def test_error_messages_are_specific():
    fields = [
        fld("qty", "integer", validation={"min": 1, "max": 99}),
        fld("price", "money"),
        fld("kind", "select", **NEEDS["select"]),
        fld("code", "text", validation={"max_length": 3}),
        fld("stars", "rating"),
    ]
    errors = errors_of(fields, {"qty": "100", "price": "1.005", "kind": "z", "code": "abcd", "stars": 9})
    assert errors == {
        "qty": ["Ensure this value is less than or equal to 99."],
        "price": ["Enter an amount in yuan with at most 2 decimal places (fen)."],
        "kind": ["Select a valid choice. z is not one of the available choices."],
        "code": ["Ensure this value has at most 3 characters (it has 4)."],
        "stars": ["Choose a rating from 1 to 5."],
    }


@pytest.mark.parametrize("type_", INPUT_TYPES)
@pytest.mark.parametrize("data", [{}, {"f": ""}, {"f": None}, {"f": []}], ids=["absent", "empty", "none", "list"])
def test_missing_required_value_of_every_type(type_, data):
    field = fld("f", type_, required=True, **NEEDS.get(type_, {}))
    assert errors_of([field], data) == {"f": ["This field is required."]}


def test_required_checkbox_must_be_ticked():
    field = fld("agree", "checkbox", required=True)
    assert errors_of([field], {"agree": False}) == {"agree": ["This field is required."]}
    assert clean_one(field, "on") is True


@pytest.mark.parametrize("type_", ["image", "file"])
def test_missing_required_files(type_):
    assert errors_of([fld("f", type_, required=True)], {}, files={}) == {"f": ["This field is required."]}


def test_empty_optional_values_have_one_stored_form():
    types = ["text", "integer", "money", "date", "multiselect", "checkbox", "cascade", "address", "image"]
    fields = [fld(t, t, **NEEDS.get(t, {})) for t in types]
    cleaned, files = data_clean(fields, {"text": " ", "integer": "", "address": {"text": ""}}, audience="staff")
    assert cleaned == {
        "text": None, "integer": None, "money": None, "date": None, "multiselect": [], "checkbox": False,
        "cascade": None, "address": None, "image": [],
    }
    assert files == {}


def test_defaults_fill_absent_keys_but_not_cleared_ones():
    fields = [fld("n", "integer", default=3), fld("kind", "select", default="b", **NEEDS["select"])]
    assert data_clean(fields, {}, audience="staff")[0] == {"n": 3, "kind": "b"}
    assert data_clean(fields, {"n": "", "kind": ""}, audience="staff")[0] == {"n": None, "kind": None}


def test_all_field_errors_come_at_once():
    fields = [fld("a", "integer", required=True), fld("b", "email"), fld("c", "phone"), fld("d", "text")]
    errors = errors_of(fields, {"b": "nope", "c": "123", "d": "ok"})
    assert set(errors) == {"a", "b", "c"}


def test_querydict_input_reads_lists_for_multi_types():
    fields = [fld("items", "multiselect", **NEEDS["multiselect"]), fld("qty", "integer")]
    data = QueryDict("items=a&items=b&qty=2&csrfmiddlewaretoken=x")
    assert data_clean(fields, data, audience="public")[0] == {"items": ["a", "b"], "qty": 2}


def test_unknown_audience_is_a_programming_error():
    with pytest.raises(ValueError, match="audience"):
        data_clean([fld()], {}, audience="robot")


# --- audiences -----------------------------------------------------------------------------------


def test_public_cannot_set_staff_only_or_view_only_fields():
    fields = [
        fld("desc", "text", required=True),
        fld("fee", "money", public="hidden", staff="edit", required=True),
        fld("status_note", "text", public="view", staff="edit", default="待处理"),
        fld("internal", "text", public="hidden", staff="view", default="内部"),
    ]
    data = {"desc": "菜凉了", "fee": "999", "status_note": "已解决", "internal": "改掉"}
    cleaned, _files = data_clean(fields, data, audience="public")
    assert cleaned == {"desc": "菜凉了", "fee": None, "status_note": "待处理", "internal": "内部"}
    cleaned, _files = data_clean(fields, data, audience="staff")
    assert cleaned == {"desc": "菜凉了", "fee": "999.00", "status_note": "已解决", "internal": "内部"}


def test_required_staff_only_field_is_not_required_from_the_public():
    fields = [fld("desc", "text"), fld("fee", "money", public="hidden", required=True)]
    assert data_clean(fields, {"desc": "x"}, audience="public")[0] == {"desc": "x", "fee": None}
    assert errors_of(fields, {"desc": "x"}, audience="staff") == {"fee": ["This field is required."]}


def test_public_cannot_upload_to_a_staff_only_file_field():
    fields = [fld("photos", "image", public="hidden")]
    cleaned, files = data_clean(fields, {}, audience="public", files={"photos": [upload("a.png", PNG)]})
    assert cleaned == {"photos": []}
    assert files == {}


def test_partial_skips_required_checks_for_absent_keys_only():
    fields = [fld("desc", "text", required=True), fld("fee", "money", required=True), fld("n", "integer")]
    assert data_clean(fields, {"fee": "10"}, audience="staff", partial=True)[0] == {"fee": "10.00"}
    assert errors_of(fields, {"desc": ""}, partial=True) == {"desc": ["This field is required."]}


# --- pickers -------------------------------------------------------------------------------------


def _picker_object(kind, tenant):
    with tenant_scope(tenant):
        if kind == "region":
            return RegionFactory(tenant=tenant)
        if kind == "store":
            return StoreFactory(region=RegionFactory(tenant=tenant))
        return CustomerFactory(tenant=tenant)


@pytest.mark.parametrize("kind", ["region", "store", "customer"])
def test_picker_accepts_own_tenant_ids_and_refuses_another_tenants(kind, tenant_a, tenant_b):
    mine, theirs = _picker_object(kind, tenant_a), _picker_object(kind, tenant_b)
    field = fld("pick", kind)
    with tenant_scope(tenant_a):
        assert clean_one(field, str(mine.pk)) == mine.pk
        assert clean_one(field, mine.pk, audience="public") == mine.pk
        errors = errors_of([field], {"pick": theirs.pk})
        assert errors == {"pick": [f"{kind.capitalize()} {theirs.pk} was not found."]}
        assert errors_of([field], {"pick": 987654}) == {"pick": [f"{kind.capitalize()} 987654 was not found."]}
        assert display_value(field, mine.pk) == mine.name
        assert display_value(field, theirs.pk) == f"#{theirs.pk}"


def test_staff_picker_needs_an_active_membership_in_the_tenant(tenant_a, agent_a, admin_b):
    field = fld("who", "staff")
    stranger = UserFactory()
    with tenant_scope(tenant_a):
        assert clean_one(field, agent_a.pk) == agent_a.pk
        assert display_value(field, agent_a.pk) == "agent_a"
        for user in (admin_b, stranger):
            assert errors_of([field], {"who": user.pk}) == {"who": [f"Staff member {user.pk} was not found."]}
        Membership.objects.filter(user=agent_a).update(is_active=False)
        assert errors_of([field], {"who": agent_a.pk}) == {"who": [f"Staff member {agent_a.pk} was not found."]}


def test_pickers_refuse_to_run_outside_a_tenant_scope(db):
    with pytest.raises(RuntimeError, match="tenant scope"):
        data_clean([fld("s", "store")], {"s": 1}, audience="staff")


def test_pickers_look_up_once_per_type(scope_a, django_assert_num_queries):
    stores = [StoreFactory(region=RegionFactory(tenant=scope_a)) for _ in range(3)]
    fields = [fld(f"s{i}", "store") for i in range(3)]
    data = {f"s{i}": s.pk for i, s in enumerate(stores)}
    with django_assert_num_queries(2):  # the tenant's config stamp, then its stores once
        cleaned, _files = data_clean(fields, data, audience="staff")
    assert cleaned == {f"s{i}": s.pk for i, s in enumerate(stores)}
    with django_assert_num_queries(1):  # the stores are cached until a store or region changes
        data_clean(fields, data, audience="staff")
    with config_pinned(scope_a), django_assert_num_queries(0):
        data_clean(fields, data, audience="staff")
    newer = StoreFactory(region=stores[0].region)
    cleaned, _files = data_clean([fld("s", "store")], {"s": newer.pk}, audience="staff")
    assert cleaned == {"s": newer.pk}


# --- files ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "content_type"),
    [("a.png", PNG, "image/png"), ("b.JPG", JPEG, "image/jpeg"), ("c.gif", GIF, "image/gif"),
     ("d.webp", WEBP, "image/webp")],
)
def test_real_images_are_accepted(name, content, content_type):
    photo = upload(name, content)
    cleaned, files = data_clean([fld("photos", "image")], {}, audience="public", files={"photos": [photo]})
    assert cleaned == {"photos": [{"name": name, "size": len(content), "content_type": content_type}]}
    assert files == {"photos": [photo]}


def test_file_field_accepts_documents_from_a_multivaluedict():
    report = upload("巡检报告.PDF", b"%PDF-1.7 ...", "application/pdf")
    files = MultiValueDict({"docs": [report, upload("data.csv", b"a,b\n1,2\n", "text/csv")]})
    cleaned, to_store = data_clean([fld("docs", "file")], {}, audience="staff", files=files)
    assert cleaned["docs"] == [
        {"name": "巡检报告.PDF", "size": 12, "content_type": "application/pdf"},
        {"name": "data.csv", "size": 8, "content_type": "text/csv"},
    ]
    assert to_store == {"docs": files.getlist("docs")}


@pytest.mark.parametrize(
    ("type_", "validation", "files", "message"),
    [
        ("image", {"max_size_mb": 1}, [upload("big.png", PNG + b"\x00" * 1024 * 1024)],
         "“big.png” is larger than 1 MB."),
        ("image", {}, [upload("virus.exe", b"MZ\x90\x00")], "“virus.exe”: this file type is not allowed"),
        ("image", {}, [upload("scan.pdf", b"%PDF-1.7")], "“scan.pdf”: this file type is not allowed"),
        ("image", {}, [upload("fake.png", b"<script>alert(1)</script>")],
         "“fake.png” is not a valid image (PNG, JPEG, GIF or WebP)."),
        ("image", {}, [upload("fake.jpg", b"GIF8")], "“fake.jpg” is not a valid image (PNG, JPEG, GIF or WebP)."),
        ("image", {"max_files": 2}, [upload(f"{i}.png", PNG) for i in range(3)], "Upload at most 2 files."),
        ("image", {}, [upload("empty.png", b"")], "“empty.png” is empty."),
        ("file", {}, [upload("page.html", b"<html></html>")], "“page.html”: this file type is not allowed"),
        ("file", {"extensions": ["pdf"]}, [upload("sheet.xlsx", b"PK\x03\x04")],
         "“sheet.xlsx”: this file type is not allowed (allowed: pdf)."),
        ("file", {}, [upload("photo.png", b"not an image")], "“photo.png” is not a valid image"),
        ("file", {}, [upload("x" * 200 + ".pdf", b"%PDF")], "The file name “xxxxx"),
        ("file", {}, ["not-a-file.pdf"], "No file was submitted."),
    ],
)
def test_bad_files_are_refused(type_, validation, files, message):
    field = fld("f", type_, validation=validation)
    errors = errors_of([field], {}, audience="public", files={"f": files})
    assert list(errors) == ["f"]
    assert any(m.startswith(message) for m in errors["f"]), errors


def test_one_bad_file_refuses_the_whole_field():
    files = {"f": [upload("ok.png", PNG), upload("bad.png", b"nope")]}
    assert errors_of([fld("f", "image")], {}, files=files) == {
        "f": ["“bad.png” is not a valid image (PNG, JPEG, GIF or WebP)."]
    }


# --- computed ------------------------------------------------------------------------------------


def _priced(formula):
    return [
        fld("quantity", "integer"),
        fld("unit_price", "money"),
        fld("total", "computed", public="view", options={"formula": formula}),
    ]


def test_computed_mul_of_money_is_fen_exact():
    fields = _priced({"op": "mul", "fields": ["quantity", "unit_price"], "money": True})
    cleaned, _files = data_clean(fields, {"quantity": "3", "unit_price": "1280.50"}, audience="public")
    assert cleaned["total"] == "3841.50"
    assert display_value(fields[2], cleaned["total"]) == "¥3,841.50"


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ({"op": "mul", "fields": ["quantity", "unit_price"]}, "3841.5"),
        ({"op": "mul", "fields": ["quantity", "unit_price"], "places": 0}, "3842"),  # half up
        ({"op": "sum", "fields": ["quantity", "unit_price"]}, "1283.5"),
        ({"op": "sum", "fields": ["quantity", "unit_price"], "places": 2}, "1283.50"),
    ],
)
def test_computed_mul_and_sum(formula, expected):
    cleaned, _files = data_clean(_priced(formula), {"quantity": 3, "unit_price": "1280.50"}, audience="staff")
    assert cleaned["total"] == expected


def test_computed_sum_over_decimal_integer_money_and_rating():
    fields = [
        fld("a", "decimal"), fld("b", "integer"), fld("c", "money"), fld("d", "rating"),
        fld("s", "computed", staff="view", options={"formula": {"op": "sum", "fields": ["a", "b", "c", "d"]}}),
    ]
    assert data_clean(fields, {"a": "1.25", "b": 2, "c": "0.75", "d": 5}, audience="staff")[0]["s"] == "9"


def test_computed_is_none_while_an_input_is_empty_and_never_read_from_input():
    fields = _priced({"op": "mul", "fields": ["quantity", "unit_price"]})
    cleaned, _files = data_clean(fields, {"quantity": "2", "total": "1000000"}, audience="staff")
    assert cleaned["total"] is None


def test_partial_recomputes_only_when_its_inputs_were_given():
    fields = _priced({"op": "mul", "fields": ["quantity", "unit_price"], "money": True})
    assert data_clean(fields, {"quantity": "2"}, audience="staff", partial=True)[0] == {"quantity": 2}
    both = {"quantity": "2", "unit_price": "5"}
    assert data_clean(fields, both, audience="staff", partial=True)[0]["total"] == "10.00"
    current = {"quantity": 1, "unit_price": "5.00", "total": "5.00"}
    changed = data_clean(fields, {"quantity": "3"}, audience="staff", partial=True, current=current)[0]
    assert changed == {"quantity": 3, "total": "15.00"}
    untouched = data_clean(fields, {}, audience="staff", partial=True, current=current)[0]
    assert untouched == {}


@time_machine.travel(datetime(2025, 6, 15, 9, 0, tzinfo=SHANGHAI), tick=False)
@pytest.mark.parametrize(
    ("birthday", "months"),
    [("2023-06-15", 24), ("2023-06-16", 23), ("2025-06-15", 0), ("2024-12-31", 5), ("2025-05-16", 0)],
)
def test_computed_months_since_counts_whole_months_to_today(birthday, months):
    fields = [
        fld("birthday", "date"),
        fld("age_months", "computed", staff="view", options={"formula": {"op": "months_since", "field": "birthday"}}),
    ]
    assert data_clean(fields, {"birthday": birthday}, audience="staff")[0]["age_months"] == months


def test_months_since_uses_the_local_date_not_utc():
    fields = [
        fld("birthday", "date"),
        fld("m", "computed", staff="view", options={"formula": {"op": "months_since", "field": "birthday"}}),
    ]
    # 2025-06-30 20:00 UTC is already 1 July in Shanghai.
    with time_machine.travel(datetime(2025, 6, 30, 20, 0, tzinfo=ZoneInfo("UTC")), tick=False):
        assert data_clean(fields, {"birthday": "2025-06-01"}, audience="staff")[0]["m"] == 1


def test_computed_days_between():
    fields = [
        fld("installed_on", "date"), fld("visit_at", "datetime"),
        fld("days", "computed", staff="view",
            options={"formula": {"op": "days_between", "fields": ["installed_on", "visit_at"]}}),
    ]
    data = {"installed_on": "2025-01-01", "visit_at": "2025-03-01T23:30"}
    assert data_clean(fields, data, audience="staff")[0]["days"] == 59


# --- schema_validate -----------------------------------------------------------------------------


def test_schema_validate_normalises_and_fills_defaults():
    fields = schema_validate([
        {"key": "order_no", "type": "pattern", "label": "订单号", "validation": {"regex": "[0-9]{6}"}},
        {"key": "kind", "type": "select", "label": {"zh-hans": "类型", "en": "Kind"}, "options": {"choices": ["甲"]}},
        {"key": "photos", "type": "image", "label": "照片", "public": "edit"},
        {"key": "stars", "type": "rating", "label": "评分", "required": True},
        {"key": "t", "type": "computed", "label": "合计", "options": {"formula": {"op": "sum", "fields": ["stars"]}}},
    ])
    assert fields[0] == {
        "key": "order_no", "type": "pattern", "label": {"zh-hans": "订单号"}, "help": {}, "required": False,
        "default": None, "validation": {"max_length": 64, "regex": "[0-9]{6}"}, "options": {},
        "public": "hidden", "staff": "edit", "prefill": "",
    }
    assert fields[1]["options"] == {"choices": [{"value": "甲", "label": {"zh-hans": "甲"}}]}
    assert fields[2]["validation"] == {
        "max_size_mb": 10, "extensions": ["jpg", "jpeg", "png", "gif", "webp"], "max_files": 5,
    }
    assert fields[3]["options"] == {"scale": 5}
    assert (fields[4]["public"], fields[4]["staff"]) == ("hidden", "view")
    assert schema_validate(fields) == fields  # idempotent: published versions re-validate unchanged


def test_schema_validate_checks_defaults_and_stores_them_cleaned():
    fields = schema_validate([{"key": "fee", "type": "money", "label": "费用", "default": "50"}])
    assert fields[0]["default"] == "50.00"


def _bad(position_field, *others):
    """A field list with valid neighbours, so the message must point at the right position."""
    return [fld("first", "text"), *others, position_field]


@pytest.mark.parametrize(
    ("field", "position", "key", "fragment"),
    [
        (fld("colour", "colour"), 2, "colour", "unknown type “colour”"),
        (fld("Order-No", "text"), 2, "Order-No", "the key must start with a-z"),
        (fld("x" * 41, "text"), 2, "x" * 41, "the key must start with a-z"),
        (fld("first", "integer"), 2, "first", "the key “first” is used twice."),
        ({"key": "k", "type": "text", "label": {"en": "Only English"}}, 2, "k", "needs Chinese (zh-hans)"),
        ({"key": "k", "type": "text"}, 2, "k", "needs Chinese (zh-hans)"),
        ({"key": "k", "type": "text", "label": {"zh-hans": "名", "fr": "Nom"}}, 2, "k", "unknown language(s): fr"),
        (fld("k", "select"), 2, "k", "choices are missing"),
        (fld("k", "multiselect", options={"choices": []}), 2, "k", "choices are missing"),
        (fld("k", "radio", options={"choices": ["a", "a"]}), 2, "k", "the choice “a” appears twice."),
        (fld("k", "cascade", options={"tree": []}), 2, "k", "the cascade tree is missing"),
        (fld("order_no", "pattern", validation={"regex": "(["}), 2, "order_no", "invalid regular expression"),
        (fld("order_no", "pattern", validation={"regex": "a" * 201}), 2, "order_no", "invalid regular expression"),
        (fld("order_no", "pattern"), 2, "order_no", "needs validation.regex"),
        (fld("n", "integer", validation={"min": 10, "max": 1}), 2, "n", "validation.min is greater than"),
        (fld("n", "money", validation={"min": "10", "max": "9.99"}), 2, "n", "validation.min is greater than"),
        (fld("d", "date", validation={"min": "2025-02-01", "max": "2025-01-01"}), 2, "d", "min is greater"),
        (fld("d", "date", validation={"max": "now"}), 2, "d", "validation.max is not a valid value."),
        (fld("n", "integer", validation={"min": "ten"}), 2, "n", "validation.min is not a valid value."),
        (fld("t", "text", validation={"min_length": 9, "max_length": 3}), 2, "t", "min_length is greater"),
        (fld("t", "text", validation={"max_length": 0}), 2, "t", "validation.max_length must be"),
        (fld("t", "text", validation={"max_size_mb": 5}), 2, "t", "validation.max_size_mb does not apply"),
        (fld("f", "image", validation={"max_size_mb": 0}), 2, "f", "validation.max_size_mb must be"),
        (fld("f", "file", validation={"max_size_mb": 51}), 2, "f", "validation.max_size_mb must be"),
        (fld("f", "file", validation={"max_files": 0}), 2, "f", "validation.max_files must be"),
        (fld("f", "image", validation={"extensions": ["svg"]}), 2, "f", "file type “svg” is not allowed here."),
        (fld("f", "file", validation={"extensions": ["exe"]}), 2, "f", "file type “exe” is not allowed here."),
        (fld("f", "file", validation={"extensions": []}), 2, "f", "validation.extensions must be"),
        (fld("r", "rating", options={"scale": 11}), 2, "r", "options.scale must be"),
        (fld("v", "text", public="everyone"), 2, "v", "“public” must be edit, view or hidden."),
        (fld("v", "text", staff="hidden"), 2, "v", "“staff” must be edit or view."),
        (fld("v", "text", required="yes"), 2, "v", "“required” must be true or false."),
        (fld("v", "text", prefill="customer.wechat"), 2, "v", "unknown prefill source “customer.wechat”."),
        (fld("v", "money", prefill="customer.phone"), 2, "v", "customer.phone cannot fill a field of this type."),
        (fld("v", "text", colour="red"), 2, "v", "unknown setting “colour”."),
        (fld("v", "select", default="z", **NEEDS["select"]), 2, "v", "the default is not valid"),
        (fld("v", "store", default=1), 2, "v", "this type cannot have a default."),
        (fld("v", "text", options={"choices": ["a"]}), 2, "v", "options.choices does not apply"),
        (fld("c", "computed", public="edit", options={"formula": {"op": "sum", "fields": ["first"]}}), 2, "c",
         "a computed field cannot be edited"),
        (fld("c", "computed", options={"formula": {"op": "pow", "fields": ["first"]}}), 2, "c", "the formula needs"),
        (fld("c", "computed", options={"formula": {"op": "mul", "fields": ["first", "ghost"]}}), 2, "c",
         "unknown field “ghost”"),
        (fld("c", "computed", options={"formula": {"op": "mul", "fields": ["first", "first"]}}), 2, "c",
         "the formula needs"),
        (fld("c", "computed", options={"formula": {"op": "sum", "fields": ["first"]}}), 2, "c",
         "needs a number field, but “first” is not one."),
        (fld("c", "computed", options={"formula": {"op": "months_since", "field": "first"}}), 2, "c",
         "needs a date field, but “first” is not one."),
        (fld("c", "computed", options={"formula": {"op": "days_between", "fields": ["first"]}}), 2, "c",
         "the formula needs"),
    ],
)
def test_schema_errors_name_the_field_position_and_key(field, position, key, fragment):
    with pytest.raises(ValidationError) as info:
        schema_validate(_bad(field))
    prefix = f"Field {position} ({key}): "
    assert any(m.startswith(prefix) and fragment in m for m in info.value.messages), info.value.messages


def test_schema_error_message_reads_like_the_builder_expects():
    fields = [fld("a", "text"), fld("b", "text"), fld("order_no", "pattern", validation={"regex": "("})]
    with pytest.raises(ValidationError) as info:
        schema_validate(fields)
    assert info.value.messages == [
        "Field 3 (order_no): invalid regular expression: missing ): (."
    ]


def test_schema_collects_every_problem():
    fields = [fld("A", "text"), fld("b", "nope"), {"key": "c", "type": "text"}, "not a field"]
    with pytest.raises(ValidationError) as info:
        schema_validate(fields)
    assert [m.split(":")[0] for m in info.value.messages] == ["Field 1 (A)", "Field 2 (b)", "Field 3 (c)",
                                                             "Field 4 (?)"]


@pytest.mark.parametrize("fields", [None, {"key": "a"}, "[]", [fld(f"f{i}") for i in range(101)]])
def test_schema_must_be_a_list_of_at_most_100_fields(fields):
    with pytest.raises(ValidationError):
        schema_validate(fields)


# --- hypothesis: bounds hold for every input -------------------------------------------------------

INT_FIELD = fld("n", "integer", validation={"min": -1000, "max": 1000})
DEC_FIELD = fld("d", "decimal", validation={"min": "-99.99", "max": "99.99", "decimal_places": 2})
TEXT_FIELD = fld("t", "text", validation={"min_length": 2, "max_length": 20})
MONEY_FIELD = fld("m", "money")


@given(st.integers(min_value=-1000, max_value=1000), st.booleans())
def test_integers_within_bounds_always_clean(value, as_text):
    assert clean_one(INT_FIELD, str(value) if as_text else value) == value


@given(st.integers().filter(lambda v: not -1000 <= v <= 1000))
def test_integers_out_of_bounds_always_fail(value):
    with pytest.raises(ValidationError):
        data_clean([INT_FIELD], {"n": value}, audience="staff")


@given(st.decimals(min_value="-99.99", max_value="99.99", places=2, allow_nan=False, allow_infinity=False))
def test_decimals_within_bounds_always_clean(value):
    assert Decimal(clean_one(DEC_FIELD, str(value))) == value


@given(
    st.one_of(
        st.decimals(min_value="100", max_value="1e9", places=2),
        st.decimals(max_value="-100", min_value="-1e9", places=2),
        st.decimals(min_value="-99", max_value="99", places=3).filter(lambda d: d != d.quantize(Decimal("0.01"))),
    )
)
def test_decimals_out_of_bounds_or_too_precise_always_fail(value):
    with pytest.raises(ValidationError):
        data_clean([DEC_FIELD], {"d": str(value)}, audience="staff")


@given(st.decimals(min_value="-999999999999.99", max_value="999999999999.99", places=2))
def test_money_within_limits_is_stored_with_two_places(value):
    stored = clean_one(MONEY_FIELD, str(value))
    assert Decimal(stored) == value
    assert len(stored.split(".")[1]) == 2


_clean_text = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)


@given(_clean_text.filter(lambda s: 2 <= len(s.strip()) <= 20))
def test_text_within_bounds_always_cleans(value):
    assert clean_one(TEXT_FIELD, value) == value.strip()


@given(_clean_text.filter(lambda s: len(s.strip()) > 20 or 0 < len(s.strip()) < 2))
def test_text_out_of_bounds_always_fails(value):
    with pytest.raises(ValidationError):
        data_clean([TEXT_FIELD], {"t": value}, audience="staff")


# --- prefill_values -------------------------------------------------------------------------------


def test_prefill_values_from_customer_and_opportunity(scope_a):
    customer = CustomerFactory(tenant=scope_a, name="王芳", phone="13912345678", address="杭州市西湖区文三路90号")
    opportunity = OpportunityFactory(customer=customer, title="总部中央空调改造", amount=Decimal("12800.5"))
    fields = [
        fld("name", "text", prefill="customer.name"),
        fld("phone", "phone", prefill="customer.phone"),
        fld("addr", "address", prefill="customer.address"),
        fld("amount", "money", prefill="opportunity.amount"),
        fld("title", "textarea", prefill="opportunity.title"),
        fld("plain", "text"),
    ]
    expected = {
        "name": "王芳", "phone": "13912345678", "addr": {"text": "杭州市西湖区文三路90号"},
        "amount": "12800.50", "title": "总部中央空调改造",
    }
    assert prefill_values(fields, customer=customer, opportunity=opportunity) == expected
    assert prefill_values(fields, opportunity=opportunity) == expected  # the customer comes with it
    assert prefill_values(fields, customer=customer) == {k: expected[k] for k in ("name", "phone", "addr")}
    assert prefill_values(fields) == {}


def test_prefill_skips_values_that_do_not_fit(scope_a):
    customer = CustomerFactory(tenant=scope_a, name="王" * 10, phone="", address="")
    fields = [fld("name", "text", prefill="customer.name", validation={"max_length": 5}),
              fld("phone", "phone", prefill="customer.phone")]
    assert prefill_values(fields, customer=customer) == {}


# --- display_value ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "extra", "value", "en", "zh"),
    [
        ("select", NEEDS["select"], "a", "Food quality", "菜品质量"),
        ("radio", NEEDS["radio"], "c", "c", "c"),
        ("multiselect", NEEDS["multiselect"], ["a", "b"], "Food quality, Service", "菜品质量、服务态度"),
        ("cascade", NEEDS["cascade"], ["浙江省", "杭州市"], "浙江省 / 杭州市", "浙江省 / 杭州市"),
        ("cascade", NEEDS["cascade"], ["上海市"], "Shanghai", "上海市"),
        ("money", {}, "1280.50", "¥1,280.50", "¥1,280.50"),
        ("money", {}, "-5.00", "-¥5.00", "-¥5.00"),
        ("rating", {}, 4, "★★★★☆", "★★★★☆"),
        ("rating", {"options": {"scale": 3}}, 1, "★☆☆", "★☆☆"),
        ("checkbox", {}, True, "Yes", "是"),
        ("checkbox", {}, False, "No", "否"),
        ("datetime", {}, "2025-03-08T04:30:00+00:00", "2025-03-08 12:30", "2025-03-08 12:30"),
        ("time", {}, "09:30:00", "09:30", "09:30"),
        ("date", {}, "2025-03-08", "2025-03-08", "2025-03-08"),
        ("address", {}, {"text": "文三路90号", "lat": 30.27, "lng": 120.15}, "文三路90号 (30.27, 120.15)",
         "文三路90号 (30.27, 120.15)"),
        ("image", {}, [{"name": "a.png", "size": 3}, {"name": "b.jpg", "size": 4}], "a.png, b.jpg", "a.png, b.jpg"),
        ("integer", {}, 0, "0", "0"),
        ("text", {}, None, "", ""),
        ("multiselect", NEEDS["multiselect"], [], "", ""),
    ],
)
def test_display_value(type_, extra, value, en, zh):
    field = schema_validate([fld("f", type_, **extra)])[0]
    assert display_value(field, value) == en
    with translation.override("zh-hans"):
        assert display_value(field, value) == zh


def test_display_value_survives_data_from_an_older_schema():
    assert display_value(schema_validate([fld("f", "money")])[0], "not money") == "not money"
    assert display_value({"key": "f", "type": "gone"}, 5) == "5"


# --- form_class_for -------------------------------------------------------------------------------


def _form_fields():
    return [
        fld("order_no", "pattern", required=True, label={"zh-hans": "订单号", "en": "Order number"},
            help={"zh-hans": "小票上的编号", "en": "On the receipt"}, **PATTERN),
        fld("qty", "integer", validation={"min": 1, "max": 9}),
        fld("price", "money"),
        fld("total", "computed", public="view", options={"formula": {"op": "mul", "fields": ["qty", "price"],
                                                                      "money": True}}),
        fld("kind", "select", **NEEDS["select"]),
        fld("items", "multiselect", **NEEDS["multiselect"]),
        fld("area", "cascade", **NEEDS["cascade"]),
        fld("agree", "checkbox"),
        fld("when", "datetime"),
        fld("day", "date"),
        fld("at", "time"),
        fld("phone", "phone"),
        fld("mail", "email"),
        fld("site", "url"),
        fld("addr", "address"),
        fld("stars", "rating", public="view"),
        fld("photos", "image", validation={"max_files": 3}),
        fld("doc", "file", validation={"max_files": 1, "extensions": ["pdf"]}),
        fld("fee", "money", public="hidden"),
    ]


def test_form_renders_bootstrap_html5_inputs_in_the_active_language():
    form_class = form_class_for(_form_fields(), audience="public", data_initial={"stars": 4, "total": "30.00"})
    html = str(form_class())
    assert "Order number" in html and "On the receipt" in html
    for snippet in (
        'type="text" name="order_no" class="form-control" maxlength="64" required',
        'type="number" name="qty" class="form-control" step="1"',
        'min="1" max="9"',
        'type="number" name="price" class="form-control" step="0.01"',
        'name="kind" class="form-select"',
        '<option value="a">Food quality</option>',
        'type="checkbox" name="items" value="a" class="form-check-input"',
        '浙江省 / 杭州市</option>',
        'type="checkbox" name="agree" class="form-check-input"',
        'type="datetime-local" name="when"',
        'type="date" name="day"',
        'type="time" name="at"',
        'type="tel" name="phone"',
        'type="email" name="mail"',
        'type="url" name="site"',
        'name="addr_0"',
        'type="file" name="photos" class="form-control" accept=".jpg,.jpeg,.png,.gif,.webp" multiple',
        'type="file" name="doc" class="form-control" accept=".pdf"',
        'value="¥30.00"',
    ):
        assert snippet in html, snippet
    assert 'name="fee"' not in html  # staff-only: not on the public form
    form = form_class()
    assert form.fields["stars"].disabled and form.fields["total"].disabled
    assert form.is_multipart()
    with translation.override("zh-hans"):
        assert "订单号" in str(form_class_for(_form_fields(), audience="public")())


def test_form_shows_stored_values_in_widget_formats():
    form_class = form_class_for(_form_fields(), audience="staff", data_initial={
        "when": "2025-03-08T04:30:00+00:00", "area": ["浙江省", "杭州市"], "at": "09:30:00",
        "addr": {"text": "文三路", "lat": 30.1, "lng": 120.2},
    })
    html = str(form_class())
    assert 'value="2025-03-08T12:30"' in html
    assert 'value="09:30"' in html
    assert '<option value="[&quot;浙江省&quot;, &quot;杭州市&quot;]" selected>' in html
    assert 'name="addr_0" value="文三路"' in html
    assert 'name="fee"' in html


@pytest.mark.parametrize(
    "post",
    [
        {"order_no": "ZJ2025", "qty": "3", "price": "12.5", "kind": "a", "items": ["a", "c"],
         "area": '["浙江省", "杭州市"]', "agree": "on", "when": "2025-03-08T12:30", "day": "2025-03-08",
         "at": "09:30", "phone": "138 1234 5678", "mail": "a@example.com", "site": "https://example.com",
         "addr_0": "文三路90号", "addr_1": "30.2", "addr_2": "120.1", "fee": "99"},
        {"order_no": "", "qty": "10", "price": "1.001", "kind": "z", "items": ["q"], "area": '["江苏省"]',
         "when": "later", "day": "2025-02-30", "at": "25:61", "phone": "123", "mail": "x", "site": "ftp://x",
         "addr_0": "文三路", "addr_1": "95", "addr_2": ""},
        {"order_no": "ZJ2025"},
    ],
    ids=["valid", "invalid", "minimal"],
)
def test_form_validation_is_data_clean(post, django_assert_num_queries):
    fields = _form_fields()
    form_class = form_class_for(fields, audience="public")
    query = QueryDict(mutable=True)
    for key, value in post.items():
        query.setlist(key, value if isinstance(value, list) else [value])
    form = form_class(query)
    widget_values = {k: form[k].data for k in form.fields if not form.fields[k].disabled}
    try:
        expected, _files = data_clean(fields, widget_values, audience="public", files={})
        expected_errors = {}
    except ValidationError as exc:
        expected, expected_errors = None, exc.message_dict
    assert form.is_valid() is not expected_errors
    assert {k: list(v) for k, v in form.errors.items()} == expected_errors
    assert form.cleaned_json == expected
    if expected and post.get("qty"):
        assert expected["fee"] is None  # posted, but staff-only
        assert expected["total"] == "37.50"
        assert expected["addr"] == {"text": "文三路90号", "lat": 30.2, "lng": 120.1}


def test_form_takes_uploads_into_files_to_store():
    fields = [fld("photos", "image", required=True, validation={"max_files": 3})]
    form_class = form_class_for(fields, audience="public")
    photo = upload("a.png", PNG)
    form = form_class(QueryDict(), MultiValueDict({"photos": [photo]}))
    assert form.is_valid(), form.errors
    assert form.files_to_store == {"photos": [photo]}
    assert form.cleaned_json == {"photos": [{"name": "a.png", "size": len(PNG), "content_type": "image/png"}]}
    bad = form_class(QueryDict(), MultiValueDict({"photos": [upload("a.png", b"fake")]}))
    assert not bad.is_valid()
    assert bad.errors == {"photos": ["“a.png” is not a valid image (PNG, JPEG, GIF or WebP)."]}
    assert bad.files_to_store == {}


def test_form_field_keys_may_shadow_form_methods():
    fields = [fld("clean", "text", required=True), fld("errors", "integer")]
    form = form_class_for(fields, audience="public")({"clean": "", "errors": "x"})
    assert not form.is_valid()
    assert form.errors == {"clean": ["This field is required."], "errors": ["Enter a whole number."]}


def test_form_pickers_list_only_the_scoped_tenants_rows(tenant_a, tenant_b, agent_a, admin_b):
    mine, theirs = _picker_object("store", tenant_a), _picker_object("store", tenant_b)
    with tenant_scope(tenant_a):
        closed = StoreFactory(region=mine.region, is_active=False, name="已关闭门店")
        fields = [fld("store", "store"), fld("region", "region"), fld("who", "staff"), fld("cust", "customer")]
        html = str(form_class_for(fields, audience="staff")())
        form = form_class_for(fields, audience="staff")({"store": str(theirs.pk), "who": str(admin_b.pk)})
        assert not form.is_valid()
        assert set(form.errors) == {"store", "who"}
    assert f'<option value="{mine.pk}">{mine.name}</option>' in html
    assert f'<option value="{mine.region.pk}">{mine.region.name}</option>' in html
    assert f'<option value="{agent_a.pk}">agent_a</option>' in html
    assert theirs.name not in html and closed.name not in html and "admin_b" not in html
    assert 'type="number" name="cust"' in html


# --- field_label, upload_check ---------------------------------------------------------------------


def test_field_label_follows_the_active_language_with_chinese_fallback():
    field = fld("order_no", "text", label={"zh-hans": "订单号", "en": "Order number"})
    assert field_label(field) == "Order number"
    with translation.override("zh-hans"):
        assert field_label(field) == "订单号"
    assert field_label({"key": "k", "label": {"zh-hans": "仅中文"}}) == "仅中文"


def test_upload_check_applies_the_file_rules_to_one_upload():
    assert upload_check(upload("scan.pdf", b"%PDF-1.7", "application/pdf")) == {
        "name": "scan.pdf", "size": 8, "content_type": "application/pdf",
    }
    assert upload_check(upload("a.webp", WEBP), kind="image")["content_type"] == "image/webp"
    for bad in (upload("x.html", b"<html>"), upload("x.png", b"nope"), upload("big.pdf", b"0" * (1024 * 1024 + 1))):
        with pytest.raises(ValidationError):
            upload_check(bad, max_size_mb=1)
    with pytest.raises(ValidationError):
        upload_check(upload("x.svg", b"<svg/>"), extensions=["svg", "pdf"])  # blocked whatever the caller says
