"""Demo settlement: a repair template whose fields feed settlement, parties (engineers, stores, a
distributor, a medical-device agent), a price book, the seeds' rule set, last month's closed
tickets settled and approved by finance, and a few tickets closed this month (pending)."""

from __future__ import annotations

import contextlib
import random
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from scrm.models import Membership, Role, StaffProfile, Store
from settlement.calculator import period_window
from settlement.models import Party
from settlement.services import (
    field_map_save,
    party_create,
    price_set,
    rule_save,
    run_approve,
    run_execute,
    run_review,
    run_start,
    service_item_create,
)
from tickets.models import Status, Ticket
from tickets.services import category_get_or_create, template_create, template_publish, ticket_intake
from workflow.lifecycle import ticket_assign, ticket_status_change

try:
    import time_machine
except ImportError:  # a production install: the demo history keeps today's timeline times
    time_machine = None


def _l(zh, en):
    return {"zh-hans": zh, "en": en}


ITEMS = [  # code, name, unit, price
    ("repair", "上门维修", "次", "200.00"), ("install", "设备安装", "台", "300.00"),
    ("maintain", "定期保养", "次", "150.00"), ("renovation", "门店翻新工程", "项", "0.00"),
    ("equipment", "设备订货", "批", "0.00"),
]
ITEM_NAMES = {code: name for code, name, _unit, _price in ITEMS}
FIELDS = [
    {"key": "item", "type": "select", "label": _l("服务项目", "Service item"), "required": True, "public": "edit",
     "options": {"choices": [{"value": code, "label": _l(name, code)} for code, name, _u, _p in ITEMS]}},
    {"key": "quantity", "type": "integer", "label": _l("数量", "Quantity"), "public": "hidden",
     "validation": {"min": 1, "max": 999}},
    {"key": "fee", "type": "money", "label": _l("约定金额", "Agreed fee"), "public": "hidden"},
    {"key": "hours", "type": "decimal", "label": _l("工时（小时）", "Hours"), "public": "hidden",
     "validation": {"min": 0, "max": 200}},
    {"key": "night", "type": "checkbox", "label": _l("夜间服务", "Night service"), "public": "hidden"},
    {"key": "height_work", "type": "checkbox", "label": _l("高空作业", "Work at height"), "public": "hidden"},
    {"key": "altitude", "type": "integer", "label": _l("作业海拔（米）", "Altitude (m)"), "public": "hidden",
     "validation": {"min": -430, "max": 8900}},
    {"key": "km", "type": "decimal", "label": _l("路程（公里）", "Travel (km)"), "public": "hidden",
     "validation": {"min": 0, "max": 5000}},
    {"key": "designer", "type": "staff", "label": _l("设计师", "Designer"), "public": "hidden"},
    {"key": "supervisor", "type": "staff", "label": _l("监理", "Supervisor"), "public": "hidden"},
    {"key": "crew", "type": "staff", "label": _l("施工队长", "Crew lead"), "public": "hidden"},
]
MAPPING = {"service_item": "item", "quantity": "quantity", "fee": "fee", "hours": "hours", "night": "night",
           "height_work": "height_work", "altitude_m": "altitude", "distance_km": "km",
           "role:designer": "designer", "role:supervisor": "supervisor", "role:crew": "crew"}
TIERS = [{"from": 0, "percent": 0}, {"from": 100000, "percent": 2}, {"from": 300000, "percent": 3}]


def _rules(tenant, today):
    spring = today.replace(month=1, day=20)
    rules = [
        ("大区系数（华东A类上浮15%）", "region_class",
         {"coefficients": {"A": "1.15", "B": "1.05", "C": "1.00"}}, 10,
         {"condition": {"field": "data.item", "op": "!=", "value": "equipment"}}),
        ("海拔3000米以上双倍", "altitude", {"above_m": 3000, "multiplier": "2"}, 20, {}),
        ("加急工单 +30%", "surcharge", {"flag": "urgent", "percent": "30"}, 100, {}),
        ("夜间服务 +20%", "surcharge", {"flag": "night", "percent": "20"}, 100, {}),
        ("高空作业 +15%", "surcharge", {"flag": "height_work", "percent": "15"}, 100, {}),
        ("500公里外每公里1.5元", "distance", {"base_km": "500", "base_amount": "0", "per_km": "1.50"}, 100, {}),
        ("保养按工时 80元/小时", "hourly", {"rate": "80"}, 50,
         {"condition": {"field": "data.item", "op": "=", "value": "maintain"}}),
        ("翻新工程分账 设计3:监理2:施工5", "split", {"roles": [
            {"role": "designer", "weight": 3}, {"role": "supervisor", "weight": 2}, {"role": "crew", "weight": 5}]},
         100, {"condition": {"field": "data.item", "op": "=", "value": "renovation"}}),
        ("经销商阶梯返利（全额累进）", "rebate", {"mode": "retroactive", "party_kind": "distributor", "tiers": TIERS},
         100, {}),
        ("代理商首单满50万奖励8%", "first_order_bonus", {"threshold": "500000", "percent": "8", "party_kind": "agent"},
         100, {}),
        ("代理商季度满200万再奖5%", "target_bonus", {"target": "2000000", "percent": "5", "period": "quarter",
                                          "party_kind": "agent"}, 100, {}),
        ("春节上门加急 +50%（到期自动恢复）", "surcharge", {"flag": "urgent", "percent": "50"}, 90,
         {"exclusive": True, "effective_from": spring, "effective_to": spring + timedelta(days=20)}),
    ]
    for name, kind, params, priority, extra in rules:
        rule_save(tenant=tenant, name=name, kind=kind, params=params, priority=priority, **extra)


def _clock(moment):
    """The clock moved to `moment` (time-machine, a dev dependency that `make run` installs);
    without it, or with no moment, the real clock (and `_backdate` moves the filing time)."""
    if moment is None or time_machine is None:
        return contextlib.nullcontext()
    return time_machine.travel(moment, tick=False)


def _backdate(ticket, when):
    """Demo history only: close a ticket of last month at `when`, as if it had been closed then
    (before settlement was switched on); the run settles it."""
    # Filed four hours before it closed: a history whose durations read like real work.
    changes = {"status": Status.CLOSED, "closed_at": when, "resolved_at": when, "updated_at": when}
    if time_machine is None:  # not filed under a moved clock: move the filing time at least
        changes["created_at"] = when - timedelta(hours=4)
    Ticket.objects.filter(pk=ticket.pk).update(**changes)


@transaction.atomic
def settlement_seed(*, tenant, rng=None) -> int:
    """Seed once per tenant (a tenant with parties is left alone). Returns the tickets closed."""
    if Party.objects.exists():
        return 0
    rng = rng or random.Random(2026)
    today = timezone.localdate()
    category = category_get_or_create(tenant=tenant, code="settle", name="结算演示")
    template = template_create(tenant=tenant, name="上门服务结算单", slug="settle-service", category=category,
                               number_prefix="JS", is_public=False, fields=FIELDS)
    template_publish(template=template)
    template.refresh_from_db()
    field_map_save(tenant=tenant, template=template, mapping=MAPPING)
    prices = {}
    for code, name, unit, price in ITEMS:
        item = service_item_create(tenant=tenant, code=code, name=name, unit=unit)
        prices[code] = price_set(tenant=tenant, item=item, price=Decimal(price),
                                 effective_from=today.replace(year=today.year - 1, day=1))
    members = {role: [m.user for m in Membership.objects.filter(role=role, is_active=True).order_by("id")]
               for role in (Role.ENGINEER, Role.ADMIN, Role.FINANCE, Role.MANAGER)}
    names = dict(StaffProfile.objects.values_list("user_id", "display_name"))
    engineers = members[Role.ENGINEER]
    for i, user in enumerate(engineers):
        party_create(tenant=tenant, kind="engineer", name=names.get(user.pk, user.username), code=f"eng-{i + 1}",
                     user=user)
    stores = list(Store.objects.select_related("region").order_by("id"))
    by_class = {c: [s for s in stores if s.region.settlement_class == c] for c in "ABC"}
    east = by_class["A"][0] if by_class["A"] else stores[0]
    far = (by_class["C"] or by_class["B"] or stores)[0]
    distributor_store = by_class["A"][1] if len(by_class["A"]) > 1 else stores[-1]
    agent_store = by_class["A"][2] if len(by_class["A"]) > 2 else stores[-2]
    party_create(tenant=tenant, kind="distributor", name=f"{distributor_store.city or ''}鼎盛经销商",
                 code="dist-dingsheng", store=distributor_store)
    party_create(tenant=tenant, kind="agent", name="康宁医疗器械代理", code="agent-kangning", store=agent_store)
    _rules(tenant, today)
    admin = (members[Role.ADMIN] or engineers)[0]

    def close(*, store, data, priority="normal", engineer=None, when=None):
        # A ticket of last month is filed and dispatched then, under a moved clock, so its
        # timeline agrees with its filing time (what the dashboards' response times read).
        filed = when - timedelta(hours=4) if when is not None else None
        with _clock(filed):
            ticket = ticket_intake(tenant=tenant, source="phone", template=template, data=data, audience="staff",
                                   partial=True, title=f"{store.name} {ITEM_NAMES[data['item']]}",
                                   priority=priority, store=store, region=store.region, actor=admin)
        if engineer is not None:
            with _clock(filed + timedelta(minutes=25) if filed is not None else None):
                ticket = ticket_assign(ticket=ticket, assignee=engineer, actor=admin)
        if when is None:
            return ticket_status_change(ticket=ticket, action="close", actor=admin)
        _backdate(ticket, when)
        return ticket

    last_start, _last_end = period_window("month", today.replace(day=1) - timedelta(days=1))
    zone = timezone.get_current_timezone()

    def day(n, hour=15):
        return datetime.combine(last_start + timedelta(days=n), time(hour), zone)

    closed = 0
    if engineers:
        e = engineers
        # The seeds' cases, by hand: East China urgent night repair 200×1.15=230 +69 +46 = 345.00;
        # Tibet at 4,200 m: 200×1.00×2 = 400.00; a 650 km installation 300×1.00 + 150×1.5 = 525.00.
        close(store=east, data={"item": "repair", "night": True}, priority="urgent", engineer=e[0], when=day(2, 22))
        close(store=far, data={"item": "repair", "altitude": 4200}, engineer=e[-1], when=day(4))
        close(store=far, data={"item": "install", "km": "650"}, engineer=e[-1], when=day(6))
        # Three-way split of a renovation: 128,000 × 1.15 = 147,200 → 44,160 / 29,440 / 73,600.
        close(store=east, data={"item": "renovation", "fee": "128000", "designer": e[0].pk,
                                "supervisor": e[1 % len(e)].pk, "crew": e[2 % len(e)].pk}, when=day(9))
        for n in range(18):
            item = rng.choice(["repair", "install", "maintain"])
            data = {"item": item, "quantity": rng.choice([1, 1, 2]), "night": rng.random() < 0.2,
                    "height_work": rng.random() < 0.15}
            if item == "maintain":
                data["hours"] = str(rng.choice([1.5, 2, 3, 4]))
            close(store=rng.choice(stores), data=data, priority=rng.choice(["normal", "normal", "high", "urgent"]),
                  engineer=e[n % len(e)], when=day(1 + n % 27, rng.randint(9, 20)))
        closed += 22
    # The distributor crosses the 300,000 tier on the 15th: 357,000 × 3 % (retroactive) = 10,710.00;
    # the agent's first order of 600,000 earns 8 % = 48,000.00 (the quarterly 5 % pays in the quarter's last run).
    for n, fee in enumerate(["98000", "126000", "88000", "45000"]):
        close(store=distributor_store, data={"item": "equipment", "fee": fee}, when=day(3 + n * 6))
    close(store=agent_store, data={"item": "equipment", "fee": "600000"}, when=day(11))
    closed += 5
    finance = (members[Role.FINANCE] or [admin])[0]
    reviewer = (members[Role.MANAGER] or [admin])[0]
    run = run_start(tenant=tenant, period_kind="month", day=last_start, actor=finance, background=False)
    run = run_execute(run=run)
    run = run_review(run=run, actor=reviewer if reviewer != finance else finance)
    run_approve(run=run, actor=finance)
    # This month: a few closed through the lifecycle, settled by the ticket_closed hook, pending.
    for n in range(min(4, len(engineers))):
        close(store=east, data={"item": "repair", "night": n % 2 == 0}, engineer=engineers[n])
        closed += 1
    return closed
