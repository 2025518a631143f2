"""Demo SLA data: a business calendar and SLA policies with escalation chains in both demo
tenants, and three fresh tickets each whose clocks started at different moments — one on
track, one due soon, one breached and escalated (its WeCom and SMS messages are in the outbox).
Written through the workflow services; run once per tenant (a tenant with policies is left
alone)."""

import datetime
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from scrm.models import Customer, Membership, Role
from tickets.models import TicketTemplate
from tickets.services import ticket_intake
from workflow import sla
from workflow.models import BusinessCalendar, SlaPolicy
from workflow.selectors import sla_calendar
from workflow.services import calendar_create, calendar_days_import, calendar_file_load
from workflow.sla_policy import sla_policy_create
from workflow.sla_sweep import sla_sweep
from workflow.sla_ticket import sla_start

HOLIDAYS = Path(settings.BASE_DIR) / "workflow" / "data" / "cn_holidays_2026_2027.yaml"
DAILY = {day: [["09:00", "22:00"]] for day in sla.WEEKDAYS}
OFFICE = {**{day: [["08:30", "12:00"], ["13:00", "17:30"]] for day in ("mon", "tue", "wed", "thu", "fri")},
          "sat": [["09:00", "17:00"]]}

# tenant slug → (calendar name, weekly hours, import the public holidays?, template slug, policies)
PLANS = {
    "weidao": ("门店营业时间", DAILY, False, "canyin_tousu", [
        {"name": "顾客投诉", "category": "tousu", "response_minutes": 120, "resolution_minutes": 480,
         "due_soon_percent": 25, "escalations": [
             {"after": 120, "to": "regional_manager", "channels": ["wecom"], "until": "response"},
             {"after": 240, "to": "manager", "channels": ["sms"], "actions": ["raise_priority"]}]},
        {"name": "设备巡检", "category": "xunjian", "response_minutes": 480, "resolution_minutes": 2880,
         "due_soon_percent": 20, "escalations": [
             {"after": 960, "to": "regional_manager", "channels": ["wecom"]}]},
    ]),
    "meijia": ("售后服务时间", OFFICE, True, "jiadian_anzhuang", [
        {"name": "上门安装", "category": "anzhuang", "response_minutes": 60, "resolution_minutes": 1440,
         "due_soon_percent": 20, "node_limits": {"dispatch": 60},
         "escalations": [
             {"after": 120, "to": "supervisor", "channels": ["wecom"], "until": "response"},
             {"after": 240, "to": "manager", "channels": ["sms", "wecom"], "actions": ["transfer_backup"]}]},
    ]),
}
# How long ago each demo ticket's clock started, as a share of the first response target (the
# breached one also long enough for every escalation level to have fired).
AGES = [("on_track", 0.1), ("due_soon", 0.85), ("breached", None)]


def _backdated(calendar, now, working_minutes):
    """The moment `working_minutes` of working time before now (5-minute steps, at most 30 days)."""
    start = now
    limit = now - datetime.timedelta(days=30)
    while start > limit and sla.working_minutes_between(calendar, start, now) < working_minutes:
        start -= datetime.timedelta(minutes=5)
    return start


def _level(spec, director):
    level = {k: v for k, v in spec.items() if k != "to"}
    if spec["to"] == "manager":  # 运营总监: the tenant's manager, by name
        return {**level, "to": "user", "user": director.pk}
    return {**level, "to": spec["to"]}


def sla_demo_seed(*, tenant):
    """Seed once per tenant; returns the number of demo tickets given an SLA."""
    plan = PLANS.get(tenant.slug)
    if plan is None or SlaPolicy.objects.exists():
        return 0
    calendar_name, weekly, holidays, template_slug, policies = plan
    calendar = BusinessCalendar.objects.filter(name=calendar_name).first() or calendar_create(
        tenant=tenant, name=calendar_name, weekly_hours=weekly, is_default=True)
    if holidays:
        calendar_days_import(calendar=calendar, payload=calendar_file_load(HOLIDAYS.read_bytes()))
    director = (Membership.objects.filter(role=Role.MANAGER, is_active=True).select_related("user")
                .order_by("id").first())
    template = TicketTemplate.objects.filter(slug=template_slug).first()
    if director is None or template is None:
        return 0
    # The demo tickets first, so their clocks can start at earlier moments below.
    customers = list(Customer.objects.exclude(phone="").order_by("id")[:len(AGES)])
    tickets = []
    for (state, _age), customer in zip(AGES, customers, strict=False):
        title = {"on_track": "包厢空调不制冷，客人投诉", "due_soon": "外卖少送一份菜，顾客要求退款",
                 "breached": "菜品里吃出异物，顾客要求赔偿"}[state] if tenant.slug == "weidao" else {
                 "on_track": "新购洗衣机预约安装", "due_soon": "空调安装师傅迟迟未联系",
                 "breached": "热水器安装超时，客户多次催促"}[state]
        tickets.append(ticket_intake(tenant=tenant, source="phone", template=template, data={}, audience="staff",
                                     title=title, customer=customer, partial=True, priority="normal"))
    for spec in policies:
        sla_policy_create(
            tenant=tenant, name=spec["name"], calendar=calendar,
            condition={"all": [{"field": "category", "op": "in", "value": [spec["category"]]}]},
            response_minutes=spec["response_minutes"], resolution_minutes=spec["resolution_minutes"],
            due_soon_percent=spec["due_soon_percent"], node_limits=spec.get("node_limits", {}),
            escalations=[_level(level, director.user) for level in spec["escalations"]])
    now = timezone.now()
    pure = sla_calendar(calendar_id=calendar.pk)
    started = 0
    first = policies[0]
    longest = max(level["after"] for level in first["escalations"]) + 30
    for ticket, (_state, share) in zip(tickets, AGES, strict=False):
        age = round(first["response_minutes"] * share) if share is not None else longest
        if sla_start(ticket=ticket, now=_backdated(pure, now, age)) is not None:
            started += 1
    sla_sweep(now=now)  # the breached ticket escalates now: its WeCom and SMS rows go to the outbox
    return started
