"""Demo history for the dashboards: six weeks of tickets that ran their preset workflow — filed
at realistic hours, acted on node by node (the store manager's node and the on-site install take
days, so the heatmap shows where tickets stall), many finished and rated by the customer — all
written through the ticket services and the workflow engine with the clock moved back
(time-machine), so every timestamp on the timeline, the tasks and the ratings agrees."""

import datetime
import random

from django.core.exceptions import ValidationError
from django.utils import timezone

from dashboards.models import QualityRule
from dashboards.services import quality_rule_save
from scrm.models import Customer, Membership, Role
from tickets.models import SatisfactionRating, Ticket
from tickets.selectors import template_list
from tickets.services import csat_rate, ticket_comment_add, ticket_intake
from workflow.engine import task_act
from workflow.lifecycle import ticket_assign
from workflow.models import Task, TaskStatus

from .ticket_seed import COMPLAINTS, INSTALLS

DAYS = 42
PER_TENANT = 40
# Minutes a node takes (low, high): the slow ones are what the heatmap should reveal.
NODE_MINUTES = {"store": (600, 4300), "install": (900, 5000), "refund": (120, 1500), "settle": (60, 900)}
DEFAULT_MINUTES = (4, 150)
COMMENTS = {
    5: ["处理很及时，师傅很专业", "店长亲自道歉，态度很好", "非常满意，点赞"],
    4: ["整体不错，就是等得有点久", "解决了问题，服务可以"],
    3: ["一般吧，来回沟通了好几次"],
    2: ["拖了三天才有人联系我", "处理结果不太满意"],
    1: ["师傅迟到两个小时，也没提前说", "投诉了没人管，非常失望"],
}
# The 质检 rules every demo tenant starts with, and what the handlers reply to customers: most
# replies polite, some with a phrase the rules flag, so the quality scores differ.
QUALITY_RULES = [
    ("礼貌用语", "required", ["您好", "感谢"]),
    ("服务禁语", "forbidden", ["不知道", "没办法", "不归我管"]),
    ("推诿用语", "flag", ["你自己", "找门店", "等通知"]),
]
REPLIES = [
    "您好，已收到您的反馈，我们马上安排处理，感谢耐心等待。",
    "您好，师傅已确认上门时间，感谢您的配合。",
    "您好，问题已处理完毕，感谢您的理解与支持。",
    "这个我也不知道，你自己去找门店问吧。",
    "没办法，配件要等通知。",
    "已登记，等通知。",
]


def dashboard_history_seed(*, tenant, rng=None):
    """Seed the history once per tenant (skipped when it already has ratings). Returns the
    number of tickets created. Needs time-machine (a dev dependency): without it, nothing."""
    try:
        import time_machine
    except ImportError:  # a production image without dev dependencies: no back-dated demo history
        return 0
    if SatisfactionRating.objects.exists():
        return 0
    rng = rng or random.Random(20)
    templates = {t.slug: t for t in template_list() if t.slug in ("canyin_tousu", "jiadian_anzhuang")}
    if not templates:
        return 0
    people = {role: [m.user for m in Membership.objects.filter(role=role, is_active=True).select_related("user")
                     .order_by("id")] for role in (Role.AGENT, Role.ENGINEER, Role.MANAGER)}
    customers = list(Customer.objects.select_related("store", "region").order_by("id")[:80])
    if not QualityRule.objects.exists():
        for name, kind, phrases in QUALITY_RULES:
            quality_rule_save(tenant=tenant, name=name, kind=kind, phrases=phrases)
    now = timezone.now()
    created = 0
    for i in range(PER_TENANT):
        day = DAYS - 1 - (i * DAYS) // PER_TENANT
        hour = rng.choices(range(8, 22), weights=[2, 4, 6, 5, 8, 9, 6, 4, 4, 6, 9, 8, 5, 3])[0]
        at = timezone.localtime(now - datetime.timedelta(days=day)).replace(hour=hour, minute=rng.randint(0, 59))
        if at >= now:
            at = now - datetime.timedelta(hours=rng.randint(2, 6))
        customer = customers[i % len(customers)]
        with time_machine.travel(at, tick=False):
            ticket = _file(tenant, templates, customer, rng, at, people)
        if ticket is None:
            continue
        created += 1
        finished_at = _walk(ticket, rng, at, now, people, time_machine, stop_early=day < 3 and i % 2 == 0)
        if finished_at is not None and rng.random() < 0.75:
            score = rng.choices([5, 4, 3, 2, 1], weights=[46, 28, 12, 8, 6])[0]
            with time_machine.travel(min(finished_at + datetime.timedelta(hours=rng.randint(1, 20)), now),
                                     tick=False):
                csat_rate(ticket=ticket, score=score, comment=rng.choice(COMMENTS[score]))
    return created


def _file(tenant, templates, customer, rng, at, people):
    store = customer.store
    if "canyin_tousu" in templates:
        kind, text, expectation = COMPLAINTS[rng.randrange(len(COMPLAINTS))]
        data = {"complaint_type": kind, "description": text, "expectation": expectation,
                "contact_name": customer.name, "contact_phone": customer.phone,
                "dined_at": (at - datetime.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")}
        if store is not None:
            data["store"] = str(store.pk)
        template, title = templates["canyin_tousu"], text[:30]
    else:
        category, model, address = INSTALLS[rng.randrange(len(INSTALLS))]
        data = {"product_category": category, "model": model, "install_address": {"text": address},
                "contact_phone": customer.phone,
                "appointment_at": (at + datetime.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")}
        template, title = templates["jiadian_anzhuang"], f"{customer.name} {model} 上门安装"
    agents = people[Role.AGENT]
    try:
        return ticket_intake(tenant=tenant, source=rng.choices(["phone", "web", "wecom", "api", "wechat"],
                                                               weights=[30, 30, 25, 8, 7])[0],
                             template=template, data=data, audience="staff", title=title, customer=customer,
                             actor=agents[0] if agents else None, partial=True)
    except ValidationError:
        return None


def _node_data(task, people):
    """Sample values for the fields this node lets its handler edit (the engine refuses others)."""
    node = next((n for n in task.run.version.graph.get("nodes", []) if n.get("key") == task.node), {})
    editable = set((node.get("fields") or {}).get("editable") or [])
    engineers = people[Role.ENGINEER]
    values = {"handling_note": "已与顾客沟通并致歉，赠送代金券一张", "refund_amount": "88.00", "satisfaction": 5,
            "appointment_at": (timezone.localtime() + datetime.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
            "engineer": str(engineers[task.pk % len(engineers)].pk) if engineers else "",
            "parts_qty": 1, "parts_unit_price": "35.00", "install_fee": "150.00"}
    return {key: value for key, value in values.items() if key in editable}


def _walk(ticket, rng, at, now, people, time_machine, *, stop_early):
    """Act on the ticket's open tasks one by one until it closes, the clock runs out, or a node
    refuses (the ticket then waits there, like a real one). The time it finished, or None."""
    clock = at
    for step in range(12):
        task = (Task.objects.filter(ticket=ticket, status=TaskStatus.OPEN).select_related("assignee", "run__version")
                .order_by("id").first())
        if task is None:
            status = Ticket.objects.filter(pk=ticket.pk).values_list("status", flat=True).first()
            return clock if status in ("closed", "resolved") else None
        if stop_early and step >= 1:
            return None
        low, high = NODE_MINUTES.get(task.node, DEFAULT_MINUTES)
        clock = clock + datetime.timedelta(minutes=rng.randint(low, high))
        if clock >= now:
            return None
        with time_machine.travel(clock, tick=False):
            holder = task.assignee
            if holder is None:  # the exception pool: a manager hands it to someone first
                pool = people[Role.ENGINEER] or people[Role.AGENT]
                if not pool or not people[Role.MANAGER]:
                    return None
                holder = pool[step % len(pool)]
                ticket_assign(ticket=ticket, assignee=holder, actor=people[Role.MANAGER][0])
                task.refresh_from_db()
            if step == 0:  # the first handler answers the customer (what 质检 reads)
                ticket_comment_add(ticket=ticket, body=rng.choices(REPLIES, weights=[4, 4, 4, 2, 2, 2])[0],
                                   actor=holder, is_public=True, notify=False)
            for action in ("submit", "approve"):
                try:
                    task_act(task=task, action=action, user=holder, data=_node_data(task, people))
                    break
                except ValidationError:
                    continue
            else:
                return None
    return None

