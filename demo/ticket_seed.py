"""Demo tickets for `seed_demo`: templates from the industry presets, keyword rules, an API key
and a few dozen tickets in every state, all written through the ticket services; then the
preset workflows, which tickets submitted from then on run."""

import datetime
import random

from django.utils import timezone

from scrm.models import Customer, Membership, Role, Store
from tickets.models import ClassificationRule, Ticket
from tickets.selectors import template_list
from tickets.services import classification_rule_save, template_from_preset, ticket_comment_add, ticket_intake
from workflow.lifecycle import ticket_assign, ticket_status_change
from workflow.models import Workflow
from workflow.services import workflow_from_preset

PRESETS = {"weidao": ["canyin_tousu", "shebei_xunjian"], "meijia": ["jiadian_anzhuang", "shebei_xunjian"]}

RULES = [
    ("退费加急", "退费, 退款, 赔偿", "urgent", ["退费"]),
    ("投诉升级", "投诉, 差评, 曝光, 12315", "high", ["投诉"]),
    ("食品安全", "头发, 异物, 虫子, 拉肚子, 变质", "urgent", ["食品安全"]),
    ("报修", "坏了, 不制冷, 漏水, 报修, 异响", "high", ["报修"]),
]

COMPLAINTS = [
    ("quality", "菜里吃出头发，要求给个说法", "apology"),
    ("waiting", "等了四十分钟才上第一道菜", "apology"),
    ("service", "服务员态度很差，点菜时不耐烦", "apology"),
    ("quality", "酸菜鱼太咸，几乎没法吃", "redo"),
    ("hygiene", "餐具上有油渍，桌面没擦干净", "apology"),
    ("quality", "外卖送到时汤洒了一半，要求退款", "refund"),
    ("other", "团购券核销失败，前台说系统问题", "refund"),
]

INSTALLS = [
    ("aircon", "KFR-35GW/NhGa1BAj", "上海市浦东新区张杨路1500号3号楼1202室"),
    ("fridge", "BCD-500WKPZM(E)", "上海市闵行区七莘路3388弄18号601室"),
    ("washer", "XQG100-BD14376LU1", "苏州市工业园区星湖街328号"),
    ("aircon", "KFR-72LW/NhAa1BAj", "杭州市西湖区文三路90号东部软件园"),
    ("water_heater", "JSQ30-16WT3", "广州市天河区天河北路233号中信广场"),
]


def demo_tickets_seed(*, tenant, rng=None):
    """Seed templates, rules and tickets once per tenant; a tenant that has tickets is left alone.
    Returns the number of tickets created."""
    rng = rng or random.Random(2026)
    templates = {t.slug: t for t in template_list()}
    for slug in PRESETS.get(tenant.slug, []):
        if slug not in templates:
            templates[slug] = template_from_preset(tenant=tenant, preset_slug=slug)
    if not ClassificationRule.objects.exists():
        for order, (name, words, priority, tags) in enumerate(RULES):
            classification_rule_save(tenant=tenant, name=name, keywords=words, set_priority=priority, tag_names=tags,
                                     order=(order + 1) * 10)
    created = 0 if Ticket.objects.exists() else _demo_tickets(tenant, templates, rng)
    # Workflows come after the demo tickets (those show every plain status); tickets submitted
    # from now on run the preset workflow of their template.
    for slug in PRESETS.get(tenant.slug, []):
        if not Workflow.objects.filter(template=templates[slug]).exists():
            workflow_from_preset(template=templates[slug], preset_slug=slug)
    return created


def _demo_tickets(tenant, templates, rng):
    staff = {role: list(Membership.objects.filter(role=role, is_active=True).select_related("user").order_by("id"))
             for role in (Role.AGENT, Role.ENGINEER, Role.REGIONAL_MANAGER)}
    agents = [m.user for m in staff[Role.AGENT]]
    engineers = [m.user for m in staff[Role.ENGINEER]] or agents
    customers = list(Customer.objects.select_related("store").order_by("id")[:60])
    stores = list(Store.objects.order_by("id"))
    created = 0
    now = timezone.now()
    for i in range(36):
        customer = customers[i % len(customers)]
        actor = agents[i % len(agents)] if agents else None
        if tenant.slug == "weidao":
            kind, text, expectation = COMPLAINTS[i % len(COMPLAINTS)]
            store = customer.store or stores[i % len(stores)]
            data = {
                "store": str(store.pk), "complaint_type": kind, "description": text, "expectation": expectation,
                "contact_name": customer.name, "contact_phone": customer.phone,
                "dined_at": timezone.localtime(now - datetime.timedelta(days=i % 9, hours=rng.randint(1, 6)))
                .strftime("%Y-%m-%dT%H:%M"),
                "order_no": f"WD{20261100 + i:08d}"[:16],
            }
            template, title = templates["canyin_tousu"], text[:30]
        else:
            category, model, address = INSTALLS[i % len(INSTALLS)]
            data = {
                "product_category": category, "model": model,
                "purchase_date": (timezone.localdate() - datetime.timedelta(days=3 + i)).isoformat(),
                "install_address": {"text": address}, "province_city": ["上海市", "浦东新区"],
                "appointment_at": timezone.localtime(now + datetime.timedelta(days=1 + i % 5))
                .strftime("%Y-%m-%dT%H:%M"),
                "contact_phone": customer.phone,
            }
            template, title = templates["jiadian_anzhuang"], f"{customer.name} {model} 上门安装"
        try:
            ticket = ticket_intake(
                tenant=tenant, source=rng.choice(["web", "phone", "wecom", "api"]), template=template, data=data,
                audience="staff", title=title, customer=customer, actor=actor, partial=True,
            )
        except Exception as exc:  # a preset change should not break the whole seed: say which ticket
            raise RuntimeError(f"demo ticket {i} for {tenant.slug}: {exc}") from exc
        created += 1
        stage = i % 6
        if stage >= 1:
            ticket_assign(ticket=ticket, assignee=engineers[i % len(engineers)], actor=actor)
        if stage >= 2:
            ticket_status_change(ticket=ticket, action="start", actor=ticket.assignee or actor)
            ticket_comment_add(ticket=ticket, body="已联系客户，约好时间上门处理。", actor=ticket.assignee or actor,
                               is_public=True, notify=False)
        if stage == 3:
            ticket_status_change(ticket=ticket, action="wait", actor=actor, note="等待客户确认方案")
        if stage >= 4:
            ticket_status_change(ticket=ticket, action="resolve", actor=ticket.assignee or actor)
        if stage == 5:
            ticket_status_change(ticket=ticket, action="close", actor=actor)
    return created
