"""Demo automation for both tenants, written through the automation services: 签约 → 安装工单,
big deals entering negotiation → the manager's approval (no 签约 before it), a revisit a week
after an installation closes, lead grades A/B with their follow-ups, and a monthly equipment
inspection (设备巡检) of three stores. Then a few opportunities move, so the firings page, an
installation ticket, a waiting approval and planned revisits are there to look at."""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.utils import timezone

from automation.models import Firing, FiringStatus, Trigger
from automation.services import firing_run, schedule_create, trigger_create
from automation.services.leads import lead_rules_save
from scrm.models import Customer, Membership, Opportunity, OpportunityStage, Role, Store
from scrm.services import opportunity_create, opportunity_update
from tickets.models import Status, Ticket
from tickets.selectors import template_list
from tickets.services import category_get_or_create, template_create, template_publish
from workflow.lifecycle import ticket_status_change
from workflow.services import workflow_create, workflow_draft_set, workflow_publish

CONTRACT_FIELDS = [
    {"key": "contract_title", "type": "text", "label": {"zh-hans": "合同名称", "en": "Contract"}, "required": True},
    {"key": "contract_amount", "type": "money", "label": {"zh-hans": "合同金额", "en": "Contract amount"},
     "required": False},
    {"key": "signed_on", "type": "date", "label": {"zh-hans": "签约日期", "en": "Signed on"}, "required": False},
    {"key": "contact_phone", "type": "phone", "label": {"zh-hans": "联系电话", "en": "Contact phone"},
     "required": False},
    {"key": "site_address", "type": "address", "label": {"zh-hans": "安装地址", "en": "Site address"},
     "required": False},
    {"key": "appointment_at", "type": "datetime", "label": {"zh-hans": "预约时间", "en": "Appointment"},
     "required": False},
]
APPROVAL_FIELDS = [
    {"key": "deal", "type": "text", "label": {"zh-hans": "商机", "en": "Opportunity"}, "required": True},
    {"key": "amount", "type": "money", "label": {"zh-hans": "金额", "en": "Amount"}, "required": False},
    {"key": "customer_name", "type": "text", "label": {"zh-hans": "客户", "en": "Customer"}, "required": False},
    {"key": "opinion", "type": "textarea", "label": {"zh-hans": "审批意见", "en": "Opinion"}, "required": False},
]
APPROVAL_GRAPH = {"nodes": [
    {"key": "start", "kind": "start", "name": "开始"},
    {"key": "gm", "kind": "approval", "name": "总经理审批", "handler": {"rule": "role", "role": "manager",
                                                                  "scope": "tenant"}, "time_limit": 1440,
     "fields": {"visible": ["deal", "amount", "customer_name"], "editable": ["opinion"], "required": []}},
    {"key": "end", "kind": "end", "name": "结束"},
], "transitions": [{"from": "start", "to": "gm"}, {"from": "gm", "to": "end", "on": "approve"},
                   {"from": "gm", "to": "end", "on": "reject"}]}
WON = {"all": [{"field": "opportunity.stage", "op": "=", "value": "won"}]}
BIG_NEGOTIATION = {"all": [{"field": "opportunity.stage", "op": "=", "value": "negotiation"},
                           {"field": "opportunity.amount", "op": ">", "value": 500000}]}
# What the demo moves once the triggers exist (customer picked among the tenant's companies).
BIG_DEALS = {"weidao": ("年度企业团餐框架协议（全年）", "680000.00"),
             "meijia": ("酒店客房分体空调 200 套", "612000.00")}


def _template(tenant, *, slug, name, prefix, fields, category):
    existing = {t.slug: t for t in template_list()}
    if slug in existing:
        return existing[slug]
    template = template_create(tenant=tenant, name=name, slug=slug, number_prefix=prefix, fields=fields,
                               category=category_get_or_create(tenant=tenant, code=category[0], name=category[1]))
    template_publish(template=template)
    template.refresh_from_db()
    return template


def _install_trigger(tenant):
    if tenant.slug == "meijia":  # the appliance company installs with its 家电安装 template and workflow
        return {"template": "jiadian_anzhuang", "title": "签约安装：{opportunity.title}",
                "description": "合同「{opportunity.title}」金额 {opportunity.amount} 元，"
                               "{opportunity.signed_date} 签约。",
                "mapping": {"model": "opportunity.title", "purchase_date": "opportunity.signed_date",
                            "contact_phone": "customer.phone", "install_address": "customer.address"}}
    _template(tenant, slug="anzhuang", name="安装工单", prefix="AZ", fields=CONTRACT_FIELDS,
              category=("install", "安装"))
    return {"template": "anzhuang", "title": "签约安装：{opportunity.title}",
            "mapping": {"contract_title": "opportunity.title", "contract_amount": "opportunity.amount",
                        "signed_on": "opportunity.signed_date", "contact_phone": "customer.phone",
                        "site_address": "customer.address"}}


def automation_seed(*, tenant):
    """Seed the tenant's triggers and schedule once (a tenant with triggers is left alone)."""
    if Trigger.objects.exists():
        return 0
    install = _install_trigger(tenant)
    approval = _template(tenant, slug="shangji_shenpi", name="商机审批", prefix="SP", fields=APPROVAL_FIELDS,
                         category=("approval", "审批"))
    workflow = workflow_create(template=approval, name="大额商机总经理审批")
    workflow_draft_set(workflow=workflow, graph=APPROVAL_GRAPH)
    workflow_publish(workflow=workflow)

    trigger_create(tenant=tenant, name="签约自动生成安装工单", event="opportunity.stage_entered", condition=WON,
                   action="create_ticket", params=install)
    trigger_create(tenant=tenant, name="50 万以上商机进入谈判：总经理审批", event="opportunity.stage_entered",
                   condition=BIG_NEGOTIATION, action="start_approval",
                   params={"template": "shangji_shenpi", "title": "商机审批：{opportunity.title}",
                           "mapping": {"deal": "opportunity.title", "amount": "opportunity.amount",
                                       "customer_name": "customer.name"}})
    trigger_create(tenant=tenant, name="安装完成 7 天回访", event="ticket.closed", action="plan_revisit",
                   condition={"all": [{"field": "template", "op": "in", "value": [install["template"]]}]},
                   params={"days": 7, "reason": "安装完成 7 天回访"})
    trigger_create(tenant=tenant, name="A 级线索（≥50 万）3 天内跟进", event="opportunity.amount_changed",
                   condition={"all": [{"field": "opportunity.amount", "op": ">=", "value": 500000}]},
                   action="set_lead_grade", params={"grade": "A", "days": 3, "reason": "A 级线索 3 天跟进"})
    trigger_create(tenant=tenant, name="B 级线索（10–50 万）7 天回访", event="opportunity.amount_changed",
                   condition={"all": [{"field": "opportunity.amount", "op": ">=", "value": 100000},
                                      {"field": "opportunity.amount", "op": "<", "value": 500000}]},
                   action="set_lead_grade", params={"grade": "B", "days": 7, "reason": "B 级线索 7 天回访"})
    trigger_create(tenant=tenant, name="新客户打标签", event="customer.created", action="add_tag",
                   params={"tag": "新客户"}, is_active=False)

    templates = {t.slug: t for t in template_list()}
    stores = list(Store.objects.order_by("id")[:3])
    today = timezone.localdate()
    schedule_create(tenant=tenant, name="后厨设备月度巡检" if tenant.slug == "weidao" else "商用空调月度巡检",
                    template=templates["shebei_xunjian"], recurrence="monthly", month_day=1,
                    at_time=datetime.time(9, 0), starts_on=today, stores=stores,
                    title="设备巡检", data={"device_type": "", "remark": "冷库、油烟机、燃气灶、消防器材"})
    schedule_create(tenant=tenant, name="门店消防器材周检", template=templates["shebei_xunjian"],
                    recurrence="weekly", weekday=0, at_time=datetime.time(8, 30), starts_on=today, stores=stores[:1],
                    title="消防器材周检")
    restaurant = tenant.slug == "weidao"
    cold_check = "冷库温度巡检" if restaurant else "展厅冷柜温度巡检"
    schedule_create(tenant=tenant, name=f"{cold_check}（每周一、三、五 8:00）", template=templates["shebei_xunjian"],
                    recurrence="cron", cron="0 8 * * 1,3,5", at_time=datetime.time(8, 0), starts_on=today,
                    stores=stores[:2], title=cold_check, data={"device_type": "freezer"},
                    mapping={"remark": "store.address"})
    store = stores[0] if stores else None
    schedule_create(tenant=tenant, name="重点设备季度保养（按设备清单）", template=templates["shebei_xunjian"],
                    recurrence="monthly", every=3, month_day=15, at_time=datetime.time(10, 0), starts_on=today,
                    target_kind="assets", title="设备季度保养", data={"device_type": "kitchen"},
                    mapping={"device_no": "asset.code", "remark": "asset.name"},
                    assets=[{"code": "LG-000101", "name": "二号冷库压缩机", "store": store},
                            {"code": "YY-000102", "name": "后厨油烟净化器", "store": store},
                            {"code": "RQ-000103", "name": "燃气炒灶（双头）", "store": store}] if restaurant else
                           [{"code": "KT-000201", "name": "展厅中央空调主机", "store": store},
                            {"code": "LG-000202", "name": "样机冷柜（双门）", "store": store},
                            {"code": "PD-000203", "name": "维修间配电箱", "store": store}])
    _lead_rules_seed(tenant)

    _demo_moves(tenant)
    return Trigger.objects.count()


def _lead_rules_seed(tenant):
    """Tier rules A–D over amount, source and last contact, each with its follow-up plan; the
    demo customers get the channels they came through first, so tier C has members."""
    sources = ["walk_in", "phone", "wecom", "website", "referral", "wechat"]
    for customer in Customer.objects.filter(source="").order_by("pk"):
        customer.source = sources[customer.pk % len(sources)]
        customer.save(update_fields=["source"])
    lead_rules_save(tenant=tenant, rules={
        "A": {"is_active": True, "min_amount": Decimal("500000"), "contact_within_days": 30,
              "followup_days": 3, "followup_reason": "A 级线索：3 天内上门拜访"},
        "B": {"is_active": True, "min_amount": Decimal("100000"), "followup_days": 7,
              "followup_reason": "B 级线索：7 天内电话回访"},
        "C": {"is_active": True, "sources": ["wecom", "website"], "followup_days": 14,
              "followup_reason": "C 级线索：两周内发送方案资料"},
        "D": {"is_active": True, "contact_older_than_days": 90, "followup_days": 30,
              "followup_reason": "D 级线索：每月一次企微关怀"},
    })


def _firings_run():
    for firing_id in list(Firing.objects.filter(status=FiringStatus.PENDING).order_by("pk").values_list("pk",
                                                                                                       flat=True)):
        firing_run(firing_id=firing_id)


def _demo_moves(tenant):
    """Move a few deals so the pages have firings: one deal won (installation ticket), a big one
    into negotiation (approval waiting), a closed installation (revisit planned)."""
    owner = Membership.objects.filter(role=Role.AGENT, is_active=True).select_related("user").first()
    candidates = Opportunity.objects.filter(stage__in=[OpportunityStage.NEGOTIATION, OpportunityStage.PROPOSAL],
                                            amount__lt=500000).exclude(customer__address="").order_by("id")
    deal = candidates.first()
    if deal is not None:
        opportunity_update(opportunity=deal, stage=OpportunityStage.WON, signed_date=timezone.localdate())
    customer = Customer.objects.exclude(address="").order_by("id").first()
    if customer is not None:
        title, amount = BIG_DEALS.get(tenant.slug, ("大客户框架协议", "600000.00"))
        big = opportunity_create(tenant=tenant, customer=customer, title=title, amount=Decimal(amount),
                                 stage=OpportunityStage.PROPOSAL, owner=owner.user if owner else None)
        opportunity_update(opportunity=big, stage=OpportunityStage.NEGOTIATION)
        opportunity_create(tenant=tenant, customer=customer, title="门店设备更新（二期）", amount=Decimal("238000.00"),
                           stage=OpportunityStage.QUALIFIED, owner=owner.user if owner else None)
    # The demo runs the firings here, not on a worker, so a fresh seed shows their outcomes.
    _firings_run()
    installed = Ticket.objects.filter(template__slug__in=["anzhuang", "jiadian_anzhuang"],
                                      status=Status.RESOLVED).order_by("id").first()
    if installed is not None and owner is not None:
        ticket_status_change(ticket=installed, action="close", actor=owner.user)
    _firings_run()
