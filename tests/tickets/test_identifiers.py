"""Identifiers made from Chinese names (issue 14 item 6): template slugs, field keys and workflow
node keys come from the name's pinyin when left empty, stay editable, and get a suffix when the
pinyin collides with one already taken; a bad identifier is refused in plain Chinese, nothing
written; saved-messages name the field's label; options are plain lines."""

import pytest
from django.urls import reverse

from scrm.tenancy import tenant_scope
from tests.tickets import test_builder as builder
from tickets.identifiers import identifier_from_name
from tickets.models import TicketTemplate

pytestmark = [pytest.mark.django_db]
# The builder tests' fixtures and helpers: a manager (English) and a blank template made through the pages.
staff_client, manager, blank = builder.staff_client, builder.manager, builder.blank
field_data, fresh, url = builder.field_data, builder.fresh, builder.url
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.mark.parametrize(("name", "expected"), [
    ("订单号", "dingdanhao"), ("重庆门店", "chongqingmendian"), ("上门处理 On-site", "shangmenchuli_on_site"),
    ("2号楼", "item_2_haolou"), ("！！！", "item"), ("客户-姓名（必填）", "kehu_xingming_bitian"), ("绿色", "lvse"),
])
def test_identifier_from_name(name, expected):
    assert identifier_from_name(name) == expected


def test_a_collision_after_pinyin_gets_a_suffix():
    # 订单号 and 定单号 are different names with the same pinyin.
    assert identifier_from_name("定单号", taken={"dingdanhao"}) == "dingdanhao_2"
    assert identifier_from_name("定单号", taken={"dingdanhao", "dingdanhao_2"}) == "dingdanhao_3"
    long = identifier_from_name("长" * 50, taken={"chang" * 8})
    assert long.endswith("_2") and len(long) == 40
    assert identifier_from_name("餐饮投诉", separator="-", taken={"canyintousu"}) == "canyintousu-2"


def test_field_key_made_from_the_label_with_a_suffix_and_message_names_the_label(tenant_a, manager, blank):
    response = manager.post(url("template-field-form", blank), field_data(label_zh="订单号"), **HTMX)
    assert response.status_code == 200
    response = manager.post(url("template-field-form", blank), field_data(label_zh="定单号"), **HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Field “定单号” saved." in body and "dingdanhao_2" in body
    assert [f["key"] for f in fresh(tenant_a, blank).draft_fields] == ["dingdanhao", "dingdanhao_2"]
    # A typed key is kept as typed.
    manager.post(url("template-field-form", blank), field_data(label_zh="门店编码", key="store_code"), **HTMX)
    assert fresh(tenant_a, blank).draft_fields[-1]["key"] == "store_code"


def test_a_bad_key_is_refused_in_plain_chinese_and_nothing_written(tenant_a, client_for, manager_a, blank):
    client = client_for(manager_a)  # Chinese
    before = fresh(tenant_a, blank).draft_fields
    for key in ("Order No", "1abc", "订单号", "a" * 41):
        response = client.post(url("template-field-form", blank), field_data(label_zh="订单号", key=key), **HTMX)
        assert response.status_code == 400
        if len(key) <= 40:
            assert "只能用小写英文字母 a–z、数字和下划线 _，以字母开头" in response.content.decode()
    assert fresh(tenant_a, blank).draft_fields == before


def test_options_are_plain_lines(tenant_a, manager, blank):
    response = manager.post(url("template-field-form", blank),
                            field_data(type="select", label_zh="诉求", choices="退款\n换货\n\nrepair|维修|Repair"),
                            **HTMX)
    assert response.status_code == 200
    [field] = fresh(tenant_a, blank).draft_fields
    assert [c["value"] for c in field["options"]["choices"]] == ["退款", "换货", "repair"]
    assert field["key"] == "suqiu"


def test_template_slug_made_from_the_name(tenant_a, manager):
    for _ in range(2):
        response = manager.post(url("template-create"), {
            "name": "餐饮投诉", "slug": "", "category": "", "new_category": "投诉", "description": "",
            "default_priority": "normal", "number_prefix": "CY", "is_public": "on", "is_active": "on"})
        assert response.status_code == 302
    with tenant_scope(tenant_a):
        assert sorted(TicketTemplate.objects.values_list("slug", flat=True)) == ["canyintousu", "canyintousu-2"]
    response = manager.post(url("template-create"), {
        "name": "坏标识", "slug": "a b!", "category": "", "new_category": "投诉", "description": "",
        "default_priority": "normal", "number_prefix": "CY", "is_public": "on", "is_active": "on"})
    assert response.status_code in (200, 400)
    with tenant_scope(tenant_a):
        assert TicketTemplate.objects.count() == 2


@pytest.mark.urls("tests.workflow.test_views")
def test_node_key_made_from_the_name_with_a_suffix(tenant_a, scope_a, manager_a, client_for):
    from tests.factories import published_template
    from tests.workflow.test_views import node_data, params
    from workflow.models import Workflow
    from workflow.services import workflow_create

    template = published_template(scope_a, name="维修", slug="repair", prefix="WX")
    workflow = workflow_create(template=template, name="维修流程")
    client = client_for(manager_a)
    for _ in range(2):
        response = client.post(reverse("workflow-node", args=[workflow.pk]), node_data(
            name_zh="上门处理", handler_rule="role", **params("handler", "role", role="engineer", scope="tenant")),
            **HTMX)
        assert response.status_code == 200, response.content.decode()[:2000]
    assert "节点“上门处理”已保存" in response.content.decode() or "上门处理" in response.content.decode()
    keys = [n["key"] for n in Workflow.objects.get(pk=workflow.pk).draft["nodes"]]
    assert keys[-2:] == ["shangmenchuli", "shangmenchuli_2"]
    response = client.post(reverse("workflow-node", args=[workflow.pk]), node_data(
        key="Bad Key", name_zh="回访", handler_rule="role", **params("handler", "role", role="agent")), **HTMX)
    assert response.status_code == 400 and "只能用小写英文字母" in response.content.decode()
    assert [n["key"] for n in Workflow.objects.get(pk=workflow.pk).draft["nodes"]] == keys
