"""Fixtures for automation tests: an installation template, an approval template with a
manager's approval workflow, and the two out-of-the-box triggers."""

import pytest

from automation.services import trigger_create
from tests.factories import published_template
from tests.workflow.conftest import edge, node, role
from workflow.services import workflow_create, workflow_draft_set, workflow_publish

INSTALL_FIELDS = [
    {"key": "contract_title", "type": "text", "label": {"zh-hans": "合同名称"}, "required": True},
    {"key": "contract_amount", "type": "money", "label": {"zh-hans": "合同金额"}, "required": False},
    {"key": "signed_on", "type": "date", "label": {"zh-hans": "签约日期"}, "required": False},
    {"key": "contact_phone", "type": "phone", "label": {"zh-hans": "联系电话"}, "required": False},
    {"key": "address", "type": "address", "label": {"zh-hans": "安装地址"}, "required": False},
]
APPROVAL_FIELDS = [
    {"key": "deal", "type": "text", "label": {"zh-hans": "商机"}, "required": False},
    {"key": "amount", "type": "money", "label": {"zh-hans": "金额"}, "required": False},
]
WON = {"all": [{"field": "opportunity.stage", "op": "=", "value": "won"}]}
BIG_NEGOTIATION = {"all": [{"field": "opportunity.stage", "op": "=", "value": "negotiation"},
                           {"field": "opportunity.amount", "op": ">", "value": 500000}]}


@pytest.fixture
def install_template(scope_a):
    return published_template(scope_a, name="安装工单", slug="anzhuang", prefix="AZ", fields=INSTALL_FIELDS,
                              category_code="install", category_name="安装")


@pytest.fixture
def approval_template(scope_a, manager_a):
    template = published_template(scope_a, name="商机审批", slug="shangji-shenpi", prefix="SP",
                                  fields=APPROVAL_FIELDS, category_code="approval", category_name="审批")
    workflow = workflow_create(template=template, name="总经理审批")
    workflow_draft_set(workflow=workflow, graph={"nodes": [
        node("start", "start"), node("gm", "approval", "总经理审批", handler=role("manager")),
        node("end", "end")], "transitions": [edge("start", "gm"), edge("gm", "end", on="approve"),
                                              edge("gm", "end", on="reject")]})
    workflow_publish(workflow=workflow)
    return template


@pytest.fixture
def won_trigger(install_template):
    return trigger_create(
        tenant=install_template.tenant, name="签约生成安装工单", event="opportunity.stage_entered", condition=WON,
        action="create_ticket", params={
            "template": "anzhuang", "title": "安装：{opportunity.title}",
            "mapping": {"contract_title": "opportunity.title", "contract_amount": "opportunity.amount",
                        "signed_on": "opportunity.signed_date", "contact_phone": "customer.phone",
                        "address": "customer.address"}})


@pytest.fixture
def approval_trigger(approval_template):
    return trigger_create(
        tenant=approval_template.tenant, name="大额商机总经理审批", event="opportunity.stage_entered",
        condition=BIG_NEGOTIATION, action="start_approval",
        params={"template": "shangji-shenpi", "title": "商机审批：{opportunity.title}",
                "mapping": {"deal": "opportunity.title", "amount": "opportunity.amount"}})
