"""The configuration pages: a manager builds a template in the builder (add, reorder, preview,
publish) and customers get its public form; every bad input is a clear error that writes
nothing; export/import round-trips; presets; the rule tester; API keys; tenancy and roles."""

import json

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from scrm.tenancy import tenant_scope
from tests.factories import RegionFactory, StoreFactory, published_template
from tickets.fields import schema_validate
from tickets.forms_builder import choices_parse, tree_lines, tree_parse
from tickets.models import ApiKey, Category, ClassificationRule, TemplateVersion, TicketTemplate
from tickets.presets import preset_get, preset_list

# Until the site's root URLconf includes tickets.urls_config, these tests bring their own.
pytestmark = [pytest.mark.django_db]

HTMX = {"HTTP_HX_REQUEST": "true"}

EIGHT_FIELDS = [
    {"type": "pattern", "key": "order_no", "label_zh": "订单号", "label_en": "Order number", "required": "on",
     "regex": r"^[A-Z]{2}\d{6}$", "max_length": "8", "help_zh": "两个大写字母加六位数字"},
    {"type": "select", "key": "dish", "label_zh": "菜品", "label_en": "Dish", "required": "on",
     "choices": "fish|酸菜鱼|Pickled fish\nduck|烤鸭|Roast duck\nnoodles"},
    {"type": "date", "key": "dined_on", "label_zh": "用餐日期", "label_en": "Date of meal", "max": "today"},
    {"type": "integer", "key": "guests", "label_zh": "用餐人数", "label_en": "Guests", "min": "1", "max": "20"},
    {"type": "money", "key": "unit_price", "label_zh": "人均消费", "label_en": "Price per head", "min": "0",
     "public": "hidden"},
    {"type": "cascade", "key": "city", "label_zh": "所在城市", "label_en": "City",
     "tree": "浙江省|浙江|Zhejiang\n  杭州市|杭州|Hangzhou\n  宁波市\n江苏省\n  南京市"},
    {"type": "textarea", "key": "detail", "label_zh": "问题描述", "label_en": "What happened", "required": "on",
     "min_length": "5", "max_length": "2000"},
    {"type": "computed", "key": "total", "label_zh": "消费合计", "label_en": "Total", "formula_op": "mul",
     "formula_fields": "guests, unit_price", "formula_money": "on", "public": "hidden", "staff": "view"},
]


def field_data(**values):
    """A POST of the field editor: what the browser sends for an untouched form, plus `values`."""
    data = {"original_key": "", "type": "text", "key": "", "label_zh": "", "label_en": "", "help_zh": "",
            "help_en": "", "public": "edit", "staff": "edit", "default": "", "prefill": "", "min_length": "",
            "max_length": "", "regex": "", "min": "", "max": "", "decimal_places": "", "choices": "", "tree": "",
            "formula_op": "", "formula_fields": "", "formula_places": "", "scale": "5", "max_size_mb": "",
            "max_files": "", "extensions": ""}
    data.update(values)
    return data


def url(name, template=None, **query):
    target = reverse(name, args=[template.pk] if template is not None else [])
    return target + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def fresh(tenant, template):
    with tenant_scope(tenant):
        return TicketTemplate.objects.select_related("current_version").get(pk=template.pk)


def version_count(tenant):
    with tenant_scope(tenant):
        return TemplateVersion.objects.count()


def upload(name, content):
    return SimpleUploadedFile(name, content if isinstance(content, bytes) else content.encode("utf-8"))


@pytest.fixture
def staff_client(client_for, settings):
    """client_for in English: the assertions below read English messages (zh-hans is tested elsewhere)."""

    def make(user):
        client = client_for(user)
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
        return client

    return make


@pytest.fixture
def manager(staff_client, manager_a):
    return staff_client(manager_a)


@pytest.fixture
def blank(tenant_a, manager):
    """A public template made through the "new blank template" page."""
    response = manager.post(url("template-create"), {
        "name": "晚餐投诉", "slug": "dinner", "category": "", "new_category": "投诉", "description": "",
        "default_priority": "normal", "number_prefix": "wx", "is_public": "on", "is_active": "on",
    })
    assert response.status_code == 302
    with tenant_scope(tenant_a):
        template = TicketTemplate.objects.get(slug="dinner")
    assert response["Location"] == url("template-builder", template)
    assert template.number_prefix == "WX" and template.category.name == "投诉" and template.draft_fields == []
    return template


@pytest.fixture
def built(tenant_a, manager, blank):
    """`blank` with the eight fields added through the editor."""
    for values in EIGHT_FIELDS:
        response = manager.post(url("template-field-form", blank), field_data(**values), **HTMX)
        assert response.status_code == 200, response.content.decode()
    return fresh(tenant_a, blank)


# --- the happy path -------------------------------------------------------------------------

def test_manager_builds_reorders_previews_publishes_and_customers_get_the_form(tenant_a, manager, blank, client):
    builder = manager.get(url("template-builder", blank))
    assert builder.status_code == 200
    assert 'src="/static/vendor/sortablejs/Sortable.min.js"' in builder.content.decode()

    for values in EIGHT_FIELDS:
        response = manager.post(url("template-field-form", blank), field_data(**values), **HTMX)
        assert response.status_code == 200
        assert response["HX-Trigger"] == "draft-changed"  # the preview re-renders itself
        body = response.content.decode()
        assert 'id="field-list"' in body and 'hx-swap-oob="true"' in body
    template = fresh(tenant_a, blank)
    keys = [f["key"] for f in template.draft_fields]
    assert keys == ["order_no", "dish", "dined_on", "guests", "unit_price", "city", "detail", "total"]
    by_key = {f["key"]: f for f in template.draft_fields}
    assert by_key["order_no"]["validation"] == {"regex": r"^[A-Z]{2}\d{6}$", "max_length": 8}
    assert by_key["order_no"]["help"] == {"zh-hans": "两个大写字母加六位数字"}
    assert by_key["dish"]["options"]["choices"][0] == {"value": "fish", "label": {"zh-hans": "酸菜鱼",
                                                                                   "en": "Pickled fish"}}
    assert by_key["dish"]["options"]["choices"][2] == {"value": "noodles", "label": {"zh-hans": "noodles"}}
    assert by_key["guests"]["validation"] == {"min": 1, "max": 20}
    assert by_key["city"]["options"]["tree"] == [
        {"value": "浙江省", "label": {"zh-hans": "浙江", "en": "Zhejiang"},
         "children": [{"value": "杭州市", "label": {"zh-hans": "杭州", "en": "Hangzhou"}}, {"value": "宁波市"}]},
        {"value": "江苏省", "children": [{"value": "南京市"}]},
    ]
    assert by_key["total"]["options"]["formula"] == {"op": "mul", "fields": ["guests", "unit_price"], "money": True}
    assert by_key["total"]["public"] == "hidden" and by_key["total"]["staff"] == "view"

    # Drag and drop posts every key in the new order; the arrows move one field.
    new_order = ["detail", "order_no", "dish", "dined_on", "guests", "unit_price", "city", "total"]
    response = manager.post(url("template-fields-reorder", blank), {"keys": new_order}, **HTMX)
    assert response.status_code == 200 and response["HX-Trigger"] == "draft-changed"
    assert [f["key"] for f in fresh(tenant_a, blank).draft_fields] == new_order
    manager.post(url("template-fields-reorder", blank), {"move": "city", "direction": "up"}, **HTMX)
    manager.post(url("template-fields-reorder", blank), {"move": "detail", "direction": "up"}, **HTMX)  # first
    order = ["detail", "order_no", "dish", "dined_on", "guests", "city", "unit_price", "total"]
    assert [f["key"] for f in fresh(tenant_a, blank).draft_fields] == order

    # The preview renders the draft for both audiences.
    preview = manager.get(url("template-preview", blank), **HTMX).content.decode()
    public_part, staff_part = preview.split('data-preview-pane="staff"')
    for key in ("detail", "order_no", "dish", "dined_on", "guests", "city"):
        assert f'id="pv-public-{key}' in public_part
    assert "pv-public-unit_price" not in public_part and "pv-public-total" not in public_part
    assert "Hidden from customers: Price per head、Total" in public_part
    assert 'id="pv-contact-contact_phone"' in public_part  # no phone field: the fixed contact block shows
    for key in order:
        assert f'id="pv-staff-{key}' in staff_part
    assert public_part.index("pv-public-detail") < public_part.index("pv-public-order_no")

    # Publish: v1; publishing again without a change is refused and makes no version.
    assert manager.get(url("template-list")).content.decode().count("/s/weidao/dinner/") == 0
    response = manager.post(url("template-publish", blank), follow=True)
    assert response.status_code == 200
    assert "v1 published." in response.content.decode()
    template = fresh(tenant_a, blank)
    assert template.current_version.number == 1 and template.current_version.fields == template.draft_fields
    again = manager.post(url("template-publish", blank))
    assert again.status_code == 400
    assert "Nothing changed since version 1." in again.content.decode()
    assert version_count(tenant_a) == 1
    manager.post(url("template-field-delete", blank), {"key": "city"}, **HTMX)
    assert "v2 published." in manager.post(url("template-publish", blank), follow=True).content.decode()

    # The list links the public form, which renders the published public fields in their order.
    assert "/s/weidao/dinner/" in manager.get(url("template-list")).content.decode()
    public = client.get("/s/weidao/dinner/")
    assert public.status_code == 200
    body = public.content.decode()
    for label in ("问题描述", "订单号", "菜品", "用餐日期", "用餐人数"):
        assert label in body
    assert "人均消费" not in body and "消费合计" not in body and "所在城市" not in body
    assert body.index('name="detail"') < body.index('name="order_no"') < body.index('name="guests"')
    assert "酸菜鱼" in body


def test_editing_a_field_fills_the_editor_and_renames_the_formula_reference(tenant_a, manager, built):
    editor = manager.get(url("template-field-form", built, key="guests"), **HTMX)
    assert editor.status_code == 200
    body = editor.content.decode()
    assert 'name="original_key" value="guests"' in body and 'value="用餐人数"' in body and 'value="20"' in body
    assert manager.get(url("template-builder", built) + "?edit=city").status_code == 200
    assert manager.get(url("template-field-form", built, key="nope"), **HTMX).status_code == 404

    response = manager.post(url("template-field-form", built), field_data(
        original_key="guests", type="integer", key="people", label_zh="人数", min="1", max="30"), **HTMX)
    assert response.status_code == 200
    fields = {f["key"]: f for f in fresh(tenant_a, built).draft_fields}
    assert "guests" not in fields and fields["people"]["validation"] == {"min": 1, "max": 30}
    assert fields["total"]["options"]["formula"]["fields"] == ["people", "unit_price"]
    assert [f["key"] for f in fresh(tenant_a, built).draft_fields].index("people") == 3  # kept its place


def test_editing_without_changes_changes_nothing(tenant_a, manager, built):
    """The editor shows a stored field so that saving it untouched writes the same definition."""
    from tickets.forms_builder import FieldForm

    before = fresh(tenant_a, built).draft_fields
    for field in before:
        initial = FieldForm.initial_for(field)
        data = {k: ("on" if v is True else "" if v in (None, False) else str(v)) for k, v in initial.items()}
        data = {k: v for k, v in data.items() if v != "" or k not in ("required", "formula_money")}
        response = manager.post(url("template-field-form", built), field_data(**data), **HTMX)
        assert response.status_code == 200, (field["key"], response.content.decode())
    assert fresh(tenant_a, built).draft_fields == before


def test_preset_templates_render_in_the_builder_and_edit_losslessly(tenant_a, manager):
    from tickets.forms_builder import FieldForm

    with tenant_scope(tenant_a):
        RegionFactory(tenant=tenant_a)
        StoreFactory(tenant=tenant_a, region__tenant=tenant_a)
    for preset in preset_list():
        response = manager.post(url("template-preset"), {"preset": preset["slug"]})
        assert response.status_code == 302, preset["slug"]
        with tenant_scope(tenant_a):
            template = TicketTemplate.objects.get(slug=preset["slug"])
        assert template.name == preset["name"] and template.current_version is None
        assert template.draft_fields == schema_validate(preset["fields"])
        assert manager.get(response["Location"]).status_code == 200
        for index, field in enumerate(template.draft_fields):
            form = FieldForm(field_data(**{k: ("on" if v is True else "" if v in (None, False) else str(v))
                                           for k, v in FieldForm.initial_for(field).items()}),
                             existing_keys=[f["key"] for f in template.draft_fields])
            assert form.is_valid(), (preset["slug"], field["key"], form.errors)
            edited = [form.field_dict() if i == index else f for i, f in enumerate(template.draft_fields)]
            assert schema_validate(edited)[index] == field, (preset["slug"], field["key"])


def test_each_preset_twice_and_beside_an_existing_category(tenant_a, manager):
    with tenant_scope(tenant_a):
        Category.objects.create(tenant=tenant_a, code="complaint", name="投诉")  # the preset says tousu/投诉
    for preset in preset_list():
        for _ in range(2):
            assert manager.post(url("template-preset"), {"preset": preset["slug"]}).status_code == 302
    with tenant_scope(tenant_a):
        slugs = set(TicketTemplate.objects.values_list("slug", flat=True))
        assert TicketTemplate.objects.get(slug="canyin_tousu").category.code == "complaint"
        assert Category.objects.filter(name="投诉").count() == 1
    assert slugs == {p["slug"] for p in preset_list()} | {p["slug"] + "-2" for p in preset_list()}
    response = manager.post(url("template-preset"), {"preset": "nope"}, follow=True)
    assert "Unknown preset." in response.content.decode()


# --- bad input: a clear error, nothing written ------------------------------------------------

@pytest.mark.parametrize(("values", "message"), [
    ({"key": "order_no", "label_zh": "再来一个"}, "Another field already uses the key “order_no”."),
    ({"key": "Order-No", "label_zh": "订单"}, "Use only lower-case letters a–z, digits and the underscore _"),
    ({"key": "x1", "type": "blob", "label_zh": "未知"}, "Select a valid choice. blob is not one of the available"),
    ({"key": "x2", "label_zh": "", "label_en": "English only"}, "This field is required."),
    ({"key": "x3", "type": "text", "label_zh": "编码", "regex": "[A-"}, "This is not a valid regular expression"),
    ({"key": "x4", "type": "select", "label_zh": "类型"}, "choices are missing: add at least one."),
    ({"key": "x5", "type": "integer", "label_zh": "数量", "min": "10", "max": "1"},
     "The maximum is smaller than the minimum."),
    ({"key": "x5", "type": "date", "label_zh": "日期", "min": "2025-02-01", "max": "2025-01-31"},
     "The maximum is smaller than the minimum."),
    ({"key": "x5", "type": "text", "label_zh": "名称", "min_length": "10", "max_length": "5"},
     "The maximum length is smaller than the minimum length."),
    ({"key": "x6", "type": "select", "label_zh": "类型", "choices": "a|甲|A|extra"},
     "Line 1: write value|中文|English"),
    ({"key": "x7", "type": "cascade", "label_zh": "城市", "tree": "浙江\n    杭州\n  宁波"},
     "Line 3: indent it like the other options at its level."),
    ({"key": "x8", "type": "computed", "label_zh": "合计", "formula_op": "mul", "formula_fields": "guests, nope"},
     "the formula refers to an unknown field “nope”."),
    ({"key": "x9", "type": "pattern", "label_zh": "编码"}, "a formatted-code field needs validation.regex."),
    ({"key": "x10", "type": "date", "label_zh": "日期", "min": "someday"}, "Enter a value of the field's type"),
    ({"key": "x10", "type": "integer", "label_zh": "数", "max": "today"}, "validation.max is not a valid value."),
    ({"key": "x11", "type": "integer", "label_zh": "数", "default": "abc"}, "the default is not valid"),
])
def test_bad_field_is_a_clear_error_and_writes_nothing(tenant_a, manager, built, values, message):
    before, versions = fresh(tenant_a, built).draft_fields, version_count(tenant_a)
    for headers in (HTMX, {}):  # the htmx editor and the plain form post
        response = manager.post(url("template-field-form", built), field_data(**values), **headers)
        assert response.status_code == 400
        body = response.content.decode()
        assert message in body.replace("&quot;", '"').replace("&#x27;", "'"), body[:3000]
        assert 'data-testid="field-form"' in body and "HX-Trigger" not in response
    assert fresh(tenant_a, built).draft_fields == before
    assert version_count(tenant_a) == versions


def test_bad_reorder_and_delete_write_nothing(tenant_a, manager, built):
    before = fresh(tenant_a, built).draft_fields
    keys = [f["key"] for f in before]
    for bad in (keys[:-1], [*keys, "extra"], [keys[0], *keys[:-1]], []):
        response = manager.post(url("template-fields-reorder", built), {"keys": bad}, **HTMX)
        assert response.status_code == 400
        assert "The field order does not match the draft" in response.content.decode()
    response = manager.post(url("template-field-delete", built), {"key": "guests"}, **HTMX)  # total uses it
    assert response.status_code == 400
    assert "the formula refers to an unknown field “guests”." in response.content.decode()
    assert manager.post(url("template-field-delete", built), {"key": "nope"}).status_code == 400
    assert fresh(tenant_a, built).draft_fields == before


def test_publishing_an_empty_draft_is_refused(tenant_a, manager, blank):
    response = manager.post(url("template-publish", blank))
    assert response.status_code == 400
    assert "Add at least one field before publishing." in response.content.decode()
    assert version_count(tenant_a) == 0


def export(manager, template, kind):
    response = manager.get(url("template-export", template, format=kind))
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{template.slug}.{kind}"'
    return response.content


def good_payload(manager, template):
    return json.loads(export(manager, template, "json"))


@pytest.mark.parametrize(("name", "content", "message"), [
    ("big.json", b" " * (512 * 1024 + 1), "The file is larger than 512 KB."),
    ("broken.json", b'{"format": "scrm.ticket-template/1", "fields": [', "The file is not valid JSON"),
    ("broken.yaml", b"name: a\nfields: [\n  - key: x\n", "The file is not valid YAML"),
    ("tabs.yaml", b"name: a\n\tfields: []\n", "The file is not valid YAML"),
    ("list.yaml", b"- a\n- b\n", "The file does not describe a ticket template."),
    ("alias.yaml", b"a: &x [1, 2]\nb: *x\n", "YAML aliases (*name) are not allowed"),
    ("latin1.json", "{\"name\": \"caf\u00e9\"}".encode("latin-1"), "The file is not UTF-8 text."),
    ("template.txt", b"{}", "Upload a .json, .yaml or .yml file."),
])
def test_bad_import_file_is_a_clear_error(tenant_a, manager, built, name, content, message):
    before, versions = fresh(tenant_a, built).draft_fields, version_count(tenant_a)
    for target in (url("template-import"), url("template-import-into", built)):
        response = manager.post(target, {"file": upload(name, content), "publish": "on"})
        assert response.status_code == 400
        assert message in response.content.decode().replace("&quot;", '"').replace("&#x27;", "'")
    assert fresh(tenant_a, built).draft_fields == before
    assert version_count(tenant_a) == versions
    with tenant_scope(tenant_a):
        assert TicketTemplate.objects.count() == 1


@pytest.mark.parametrize(("change", "message"), [
    ({"format": "scrm.ticket-template/9"}, "Unknown template format “scrm.ticket-template/9”."),
    ({"fields": [{"key": "a", "type": "blob", "label": "甲"}]}, "Field 1 (a): unknown type “blob”."),
    ({"fields": [{"key": "a", "type": "text"}]}, "Field 1 (a): the label needs Chinese (zh-hans) text."),
    ({"number_prefix": "w1"}, "Use 1 to 8 letters A–Z, e.g. WX."),
    ({"default_priority": "asap"}, "Unknown priority “asap”."),
    ({"category": {"code": "new-one", "name": "投诉"}}, "A category with this name already exists."),
    ({"name": ""}, "The file lacks: name."),
    ({"slug": "no spaces"}, "slug: Enter a valid “slug”"),
    ({"description": "长" * 1001}, "description: Ensure this value has at most 1000 characters"),
])
def test_import_with_bad_content_writes_nothing(tenant_a, manager, built, change, message):
    payload = {**good_payload(manager, built), "slug": "copy", **change}
    before, versions = fresh(tenant_a, built).draft_fields, version_count(tenant_a)
    for name, text in (("t.json", json.dumps(payload, ensure_ascii=False)),
                       ("t.yaml", yaml.safe_dump(payload, allow_unicode=True, sort_keys=False))):
        targets = [url("template-import")]
        if "slug" not in change:  # importing into a template keeps its slug
            targets.append(url("template-import-into", built))
        for target in targets:
            response = manager.post(target, {"file": upload(name, text), "publish": "on"})
            assert response.status_code == 400, (target, name)
            assert message in response.content.decode().replace("&quot;", '"').replace("&#x27;", "'")
    assert fresh(tenant_a, built).draft_fields == before and version_count(tenant_a) == versions
    with tenant_scope(tenant_a):
        assert list(TicketTemplate.objects.values_list("slug", flat=True)) == ["dinner"]
        assert Category.objects.count() == 1


def test_unknown_export_format_is_a_400(manager, built):
    response = manager.get(url("template-export", built, format="xml"))
    assert response.status_code == 400
    assert "Unknown export format: use json or yaml." in response.content.decode()


# --- export and import round trip -------------------------------------------------------------

@pytest.mark.parametrize("kind", ["json", "yaml"])
def test_export_import_round_trip(tenant_a, manager, built, kind):
    draft = fresh(tenant_a, built).draft_fields
    content = export(manager, built, kind)
    parsed = json.loads(content) if kind == "json" else yaml.safe_load(content)
    assert parsed["format"] == "scrm.ticket-template/1" and parsed["fields"] == draft
    assert "订单号" in content.decode()  # Chinese stays readable (no \u escapes)

    # Into the builder: the draft comes back after it was changed.
    manager.post(url("template-field-delete", built), {"key": "total"})
    manager.post(url("template-field-delete", built), {"key": "city"})
    assert fresh(tenant_a, built).draft_fields != draft
    response = manager.post(url("template-import-into", built), {"file": upload(f"x.{kind}", content)})
    assert response.status_code == 302
    assert fresh(tenant_a, built).draft_fields == draft

    # From the list, under another slug: a new template with the same draft, published at once.
    payload = {**parsed, "slug": "dinner-copy", "name": "晚餐投诉（副本）"}
    text = json.dumps(payload, ensure_ascii=False) if kind == "json" else yaml.safe_dump(payload, allow_unicode=True)
    response = manager.post(url("template-import"), {"file": upload(f"copy.{kind}", text), "publish": "on"})
    assert response.status_code == 302
    with tenant_scope(tenant_a):
        copy = TicketTemplate.objects.select_related("current_version").get(slug="dinner-copy")
        assert copy.draft_fields == draft and copy.current_version.fields == draft
        assert copy.category_id == built.category_id and copy.number_prefix == "WX"


def test_settings_page_edits_the_template(tenant_a, manager, built):
    assert manager.get(url("template-settings", built)).status_code == 200
    data = {"name": "晚餐投诉单", "slug": "dinner", "category": built.category_id, "new_category": "",
            "description": "说明", "default_priority": "high", "number_prefix": "ts", "is_public": "on",
            "is_active": "on"}
    assert manager.post(url("template-settings", built), data).status_code == 302
    template = fresh(tenant_a, built)
    assert (template.name, template.default_priority, template.number_prefix) == ("晚餐投诉单", "high", "TS")
    bad = manager.post(url("template-settings", built), {**data, "number_prefix": "t-1", "category": ""})
    assert bad.status_code == 400
    body = bad.content.decode()
    assert "Use 1 to 8 letters A–Z, e.g. WX." in body and "Pick a category or type a new one." in body
    assert fresh(tenant_a, built).number_prefix == "TS"


def test_new_template_with_a_taken_slug_is_a_field_error(tenant_a, manager, blank):
    response = manager.post(url("template-create"), {
        "name": "另一个", "slug": "dinner", "category": blank.category_id, "default_priority": "normal",
        "number_prefix": "GD", "is_active": "on",
    })
    assert response.status_code == 400
    assert "A template with this slug already exists." in response.content.decode()
    with tenant_scope(tenant_a):
        assert TicketTemplate.objects.count() == 1


# --- the form's text parsers ------------------------------------------------------------------

def test_choice_and_tree_text_round_trip():
    assert choices_parse("a|甲|A\n\n b \nc|丙") == [
        {"value": "a", "label": {"zh-hans": "甲", "en": "A"}},
        {"value": "b"},
        {"value": "c", "label": {"zh-hans": "丙"}},
    ]
    tree = tree_parse("浙江\n\t杭州\n\t\t西湖区|西湖\n\t宁波\n江苏\n  南京")
    assert tree == [
        {"value": "浙江", "children": [
            {"value": "杭州", "children": [{"value": "西湖区", "label": {"zh-hans": "西湖"}}]}, {"value": "宁波"}]},
        {"value": "江苏", "children": [{"value": "南京"}]},
    ]
    assert tree_parse("\n".join(tree_lines(tree))) == tree
    with pytest.raises(Exception, match="Line 2"):
        tree_parse("  浙江\n江苏")


# --- rules and the tester ---------------------------------------------------------------------

def test_rules_are_made_in_forms_and_the_tester_shows_the_firing_rule(tenant_a, manager, built):
    rule = {"name": "退费加急", "keywords_text": "退费，退款、赔偿", "match": "any", "set_template": built.pk,
            "set_category": "", "set_priority": "urgent", "tags_text": "退费, 加急", "order": "10", "is_active": "on"}
    assert manager.post(url("rule-create"), rule).status_code == 302
    assert manager.post(url("rule-create"), {**rule, "name": "投诉", "keywords_text": "投诉, 退款",
                                             "set_priority": "high", "tags_text": "", "order": "20"}).status_code == 302
    with tenant_scope(tenant_a):
        saved = ClassificationRule.objects.get(name="退费加急")
        assert saved.keywords == ["退费", "退款", "赔偿"]
        assert sorted(t.name for t in saved.add_tags.all()) == ["加急", "退费"]
    listing = manager.get(url("rule-list")).content.decode()
    assert "退费加急" in listing and "赔偿" in listing

    assert manager.get(url("rule-test")).status_code == 200
    response = manager.post(url("rule-test"), {"text": "上周买的课，我要ＲＥＦＵＮＤ退款，不然就投诉"}, **HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    assert "退费加急" in body and 'data-testid="rule-verdict"' in body
    assert '<mark class="me-1" data-testid="matched-keyword">退款</mark>' in body
    assert "晚餐投诉" in body and "退费" in body and "加急" in body  # what it would set
    assert "投诉" in body.split("Also matching")[1] if "Also matching" in body else True
    none = manager.post(url("rule-test"), {"text": "请问营业时间"}).content.decode()
    assert 'data-testid="rule-none"' in none
    assert manager.post(url("rule-test"), {"text": ""}).status_code == 400

    # Editing keeps the id; a rule that sets nothing is a clear error and changes nothing.
    with tenant_scope(tenant_a):
        pk = ClassificationRule.objects.get(name="投诉").pk
    assert manager.get(reverse("rule-update", args=[pk])).status_code == 200
    bad = manager.post(reverse("rule-update", args=[pk]), {**rule, "name": "投诉", "set_template": "",
                                                           "set_priority": "", "tags_text": ""})
    assert bad.status_code == 400
    assert "A rule must set a template, category, priority or tags." in bad.content.decode()
    empty = manager.post(reverse("rule-update", args=[pk]), {**rule, "keywords_text": " , ，"})
    assert empty.status_code == 400 and "Give at least one keyword." in empty.content.decode()
    with tenant_scope(tenant_a):
        assert ClassificationRule.objects.get(pk=pk).set_priority == "high"


# --- API keys -------------------------------------------------------------------------------

def test_admin_creates_sees_once_and_revokes_an_api_key(tenant_a, admin_a, staff_client, manager):
    admin = staff_client(admin_a)
    response = admin.post(url("apikey-list"), {"name": "小程序"})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    body = response.content.decode()
    with tenant_scope(tenant_a):
        key = ApiKey.objects.get()
    secret = body.split('data-select-all')[0].rsplit('value="', 1)[1].split('"')[0]
    assert secret.startswith(key.prefix + ".")
    from tickets.services import api_key_hash

    assert key.hashed_key == api_key_hash(secret)
    assert secret not in admin.get(url("apikey-list")).content.decode()
    assert admin.post(url("apikey-list"), {"name": ""}).status_code == 400
    assert admin.post(reverse("apikey-revoke", args=[key.pk])).status_code == 302
    with tenant_scope(tenant_a):
        assert ApiKey.objects.get().is_active is False
        assert ApiKey.objects.count() == 1
    # Managers configure templates and rules, not keys.
    assert manager.get(url("apikey-list")).status_code == 403
    assert manager.post(url("apikey-list"), {"name": "x"}).status_code == 403


# --- tenancy and roles ------------------------------------------------------------------------

def test_another_tenants_ids_are_404_and_change_nothing(tenant_a, built, admin_a, admin_b, staff_client):
    with tenant_scope(tenant_a):
        rule = ClassificationRule.objects.create(tenant=tenant_a, name="甲规则", keywords=["甲"], set_priority="high")
    staff_client(admin_a).post(url("apikey-list"), {"name": "甲密钥"})
    with tenant_scope(tenant_a):
        key = ApiKey.objects.get()
    other = staff_client(admin_b)
    template_routes = ["template-builder", "template-settings", "template-field-form", "template-field-delete",
                       "template-fields-reorder", "template-preview", "template-publish", "template-export",
                       "template-import-into"]
    for name in template_routes:
        target = url(name, built)
        assert other.get(target).status_code == 404, name
        assert other.post(target, field_data(key="hack", label_zh="篡改")).status_code == 404, name
    for target in (reverse("rule-update", args=[rule.pk]), reverse("apikey-revoke", args=[key.pk])):
        assert other.get(target).status_code == 404
        assert other.post(target, {"name": "篡改", "keywords_text": "x", "set_priority": "low"}).status_code == 404
    for name in ("template-list", "rule-list", "apikey-list"):
        body = other.get(url(name)).content.decode()
        assert "晚餐投诉" not in body and "甲规则" not in body and "甲密钥" not in body
    # B's preset with the same slug lives beside A's: slugs are per tenant.
    assert other.post(url("template-preset"), {"preset": "canyin_tousu"}).status_code == 302
    assert fresh(tenant_a, built).draft_fields == built.draft_fields
    with tenant_scope(tenant_a):
        assert ClassificationRule.objects.get().name == "甲规则" and ApiKey.objects.get().is_active
        assert TicketTemplate.objects.count() == 1


def test_an_agent_gets_403_everywhere_and_writes_nothing(tenant_a, built, agent_a, staff_client):
    agent = staff_client(agent_a)
    versions = version_count(tenant_a)
    for name in ("template-list", "template-create", "template-import", "rule-list", "rule-create", "rule-test",
                 "apikey-list"):
        assert agent.get(url(name)).status_code == 403, name
    for name in ("template-builder", "template-preview", "template-export", "template-settings"):
        assert agent.get(url(name, built)).status_code == 403, name
    posts = [
        (url("template-field-form", built), field_data(key="hack", label_zh="篡改")),
        (url("template-field-delete", built), {"key": "order_no"}),
        (url("template-fields-reorder", built), {"keys": list(reversed([f["key"] for f in built.draft_fields]))}),
        (url("template-publish", built), {}),
        (url("template-preset"), {"preset": "canyin_tousu"}),
        (url("template-create"), {"name": "x", "slug": "x", "new_category": "x", "default_priority": "normal",
                                  "number_prefix": "X"}),
        (url("rule-create"), {"name": "x", "keywords_text": "x", "match": "any", "set_priority": "low",
                              "order": "1"}),
        (url("apikey-list"), {"name": "x"}),
    ]
    for target, data in posts:
        assert agent.post(target, data).status_code == 403, target
    assert fresh(tenant_a, built).draft_fields == built.draft_fields
    assert version_count(tenant_a) == versions
    with tenant_scope(tenant_a):
        assert TicketTemplate.objects.count() == 1
        assert not ClassificationRule.objects.exists() and not ApiKey.objects.exists()


def test_anonymous_is_sent_to_login(client, built):
    for target in (url("template-list"), url("template-builder", built), url("rule-test"), url("apikey-list")):
        response = client.get(target)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


# --- query counts -----------------------------------------------------------------------------

def make_templates(tenant, start, count):
    with tenant_scope(tenant):
        for i in range(start, start + count):
            template = published_template(tenant, name=f"模板{i}", slug=f"t{i}", is_public=i % 2 == 0)
            if i % 3 == 0:
                template.draft_fields = [*template.draft_fields[:1]]
                template.save(update_fields=["draft_fields"])


def test_template_list_queries_do_not_grow(tenant_a, manager, django_assert_max_num_queries):
    make_templates(tenant_a, 0, 2)
    manager.get(url("template-list"))  # warm the per-user caches a first request fills
    with CaptureQueriesContext(connection) as two:
        assert manager.get(url("template-list")).status_code == 200
    queries = len(two.captured_queries)
    make_templates(tenant_a, 2, 8)
    with django_assert_max_num_queries(queries):
        body = manager.get(url("template-list")).content.decode()
    assert body.count('data-testid="public-link"') == 5
    assert body.count("unpublished changes") == 4


def test_rule_list_queries_do_not_grow(tenant_a, manager, django_assert_max_num_queries):
    def add(n):
        with tenant_scope(tenant_a):
            from tickets.services import classification_rule_save

            template = TicketTemplate.objects.first() or published_template(tenant_a)
            for i in range(n):
                classification_rule_save(tenant=tenant_a, name=f"规则{i}-{n}", keywords=["退款"],
                                         set_template=template, set_category=template.category,
                                         tag_names=["甲", "乙"])

    add(2)
    manager.get(url("rule-list"))
    with CaptureQueriesContext(connection) as two:
        manager.get(url("rule-list"))
    queries = len(two.captured_queries)
    add(8)
    with django_assert_max_num_queries(queries):
        assert manager.get(url("rule-list")).status_code == 200


def test_builder_and_preview_queries_do_not_grow_with_fields(tenant_a, manager, blank, django_assert_max_num_queries):
    manager.post(url("template-field-form", blank), field_data(**EIGHT_FIELDS[0]))
    manager.get(url("template-builder", blank))
    with CaptureQueriesContext(connection) as one:
        manager.get(url("template-builder", blank))
    queries = len(one.captured_queries)  # read now: the next request resets the query log
    for values in EIGHT_FIELDS[1:]:
        manager.post(url("template-field-form", blank), field_data(**values))
    with django_assert_max_num_queries(queries):
        assert manager.get(url("template-builder", blank)).status_code == 200


def test_preset_payloads_are_not_modified_by_creation(manager):
    before = preset_get("canyin_tousu")
    manager.post(url("template-preset"), {"preset": "canyin_tousu"})
    assert preset_get("canyin_tousu") == before


def test_preview_follows_the_public_forms_contact_rule(tenant_a, manager):
    """A template with its own public phone field gets no second, fixed contact block."""
    manager.post(url("template-preset"), {"preset": "canyin_tousu"})
    with tenant_scope(tenant_a):
        template = TicketTemplate.objects.get(slug="canyin_tousu")
    body = manager.get(url("template-preview", template), **HTMX).content.decode()
    assert "pv-contact-contact_phone" not in body and 'id="pv-public-contact_phone"' in body
    assert 'id="pv-staff-handling_note"' in body and "pv-public-handling_note" not in body
