"""Demo data for smart dispatch (智能派单) in 美嘉家电售后: two more Shanghai engineers (one senior),
the 家电安装流程's 上门安装 node dispatched by skill, distance, load and speed — the product type
picks the skill, VIP customers favour senior staff, a full store borrows from its neighbour —
and a handful of tickets whose 为什么派给他 shows each case, one of them in the exception pool.
Everything goes through the services; running it again changes nothing."""

import datetime
from decimal import Decimal

from django.utils import timezone

from scrm.models import Customer, CustomerTier, Membership, Role, StaffProfile, Store
from scrm.services import skill_get_or_create, staff_create, store_create
from workflow.engine import task_act
from workflow.models import Task, TaskStatus, Workflow
from workflow.services import workflow_draft_set, workflow_publish

TENANT = "meijia"
TEMPLATE = "jiadian_anzhuang"
SENIOR = "资深工程师"
SKILL_MAP = {"aircon": "空调安装", "fridge": "冰箱维修", "washer": "洗衣机维修", "water_heater": "热水器安装",
             "range_hood": "油烟机清洗"}
PASSWORD = "demo12345"
ENGINEERS = [
    # username, name, home store, skills, ticket limit
    ("mj_eng11", "张建华", "sh-pudong", ("空调安装", "空调维修", SENIOR), 1),
    ("mj_eng12", "陈立新", "sh-xuhui", ("空调维修", "冰箱维修"), 6),
]
# A third Shanghai service point, whose only engineer repairs but does not install.
XUHUI = {"code": "sh-xuhui", "name": "美嘉上海徐汇服务网点", "city": "上海", "address": "上海市徐汇区宜山路700号",
           "phone": "021-64857720", "latitude": Decimal("31.179600"), "longitude": Decimal("121.423400")}
# (product, store, address, coordinates, VIP?) — in order: a VIP at 浦东 (the senior engineer),
# an ordinary one there (he is full now), 徐汇 with no one who installs air conditioners (borrowed
# from 浦东: 跨店支援), and a water heater nobody in or near Shanghai installs (the exception pool).
TICKETS = [
    ("aircon", "sh-pudong", "上海市浦东新区张杨路1500号3号楼1202室", (31.2286, 121.5253), True),
    ("aircon", "sh-pudong", "上海市浦东新区金桥路1088号12号楼503室", (31.2530, 121.5910), False),
    ("aircon", "sh-xuhui", "上海市徐汇区漕溪北路595号2号楼1101室", (31.1880, 121.4365), False),
    ("water_heater", "sh-xuhui", "上海市徐汇区天钥桥路133号1502室", (31.1950, 121.4370), False),
]


def dispatch_rule(skills):
    return {"rule": "dispatch", "role": Role.ENGINEER, "overflow": ["store", "region", "nearby"], "radius_km": 50,
            "skill_by": "field", "skill_field": "product_category",
            "skill_map": {value: skills[name].pk for value, name in SKILL_MAP.items()},
            "on_duty_only": True, "under_capacity": True, "w_distance": 40, "w_load": 40, "w_speed": 20,
            "senior_skill": skills[SENIOR].pk, "senior_for": "svip", "senior_bonus": 30, "round_robin": True}


def _graph_with_dispatch(graph, rule):
    """The preset's graph with 上门安装 dispatched by `rule`, and the manual 派单 step (a regional
    manager picking the engineer) taken out: dispatch does that job now."""
    nodes = [dict(n, handler=rule) if n["key"] == "install" else n for n in graph["nodes"] if n["key"] != "dispatch"]
    transitions = []
    for t in graph["transitions"]:
        if t["from"] == "dispatch":
            continue
        transitions.append(dict(t, to="install") if t["to"] == "dispatch" else t)
    return {**graph, "nodes": nodes, "transitions": transitions}


def dispatch_demo_seed(*, tenant):
    """Seed the dispatch demo in 美嘉 once; other tenants are left alone."""
    if tenant.slug != TENANT:
        return 0
    workflow = Workflow.objects.filter(template__slug=TEMPLATE).select_related("current_version").first()
    if workflow is None or workflow.current_version is None:
        return 0
    install = next((n for n in workflow.current_version.graph["nodes"] if n["key"] == "install"), None)
    if install is None or (install.get("handler") or {}).get("rule") == "dispatch":
        return 0  # seeded before (or the preset changed)
    names = {*SKILL_MAP.values(), SENIOR, *(s for e in ENGINEERS for s in e[3])}
    skills = {name: skill_get_or_create(tenant=tenant, name=name) for name in names}
    if not Store.objects.filter(code=XUHUI["code"]).exists():
        pudong = Store.objects.get(code="sh-pudong")
        store_create(tenant=tenant, region=pudong.region, **XUHUI)
    stores = {s.code: s for s in Store.objects.filter(code__in=[e[2] for e in ENGINEERS] + [t[1] for t in TICKETS])}
    for username, name, store, skill_names, limit in ENGINEERS:
        if not StaffProfile.objects.filter(user__username=username).exists():
            staff_create(tenant=tenant, username=username, password=PASSWORD, display_name=name, role=Role.ENGINEER,
                         home_store=stores[store], skills=[skills[s] for s in skill_names], max_open_tickets=limit)
    workflow_draft_set(workflow=workflow, graph=_graph_with_dispatch(workflow.current_version.graph,
                                                                     dispatch_rule(skills)))
    workflow_publish(workflow=workflow)
    return _tickets(tenant, workflow, stores)


def _tickets(tenant, workflow, stores):
    from tickets.services import ticket_intake

    agent = Membership.objects.filter(role=Role.AGENT, is_active=True).select_related("user").order_by("id").first()
    vip = Customer.objects.filter(tier=CustomerTier.VIP).order_by("id").first()
    appointment = timezone.localtime(timezone.now() + datetime.timedelta(days=1)).replace(hour=10, minute=0)
    created = 0
    for product, store_code, address, (lat, lng), is_vip in TICKETS:
        store = stores[store_code]
        customer = vip if is_vip else Customer.objects.filter(store=store).exclude(tier=CustomerTier.VIP) \
            .order_by("id").first()
        data = {"product_category": product, "model": "KFR-35GW/NhGa1BAj" if product == "aircon" else "JSQ30-16WT3",
                "purchase_date": (timezone.localdate() - datetime.timedelta(days=2)).isoformat(),
                "install_address": {"text": address, "lat": lat, "lng": lng},
                "province_city": ["上海市", "浦东新区" if "浦东" in address else "徐汇区"],
                "contact_phone": customer.phone if customer else "13916002345"}
        ticket = ticket_intake(tenant=tenant, source="phone", template=workflow.template, data=data, audience="staff",
                               title=f"{'VIP ' if is_vip else ''}{address[3:9]} 上门安装", customer=customer,
                               store=store, region=store.region, actor=agent.user if agent else None, partial=True)
        accept = Task.objects.filter(ticket=ticket, node="accept", status=TaskStatus.OPEN).first()
        if accept is not None and accept.assignee is not None:
            task_act(task=accept, action="submit", user=accept.assignee,
                     data={"appointment_at": appointment.strftime("%Y-%m-%dT%H:%M")})
        created += 1
    return created


__all__ = ["dispatch_demo_seed"]
