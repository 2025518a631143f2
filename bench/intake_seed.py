"""What the intake benches share: one tenant with stores, the 餐饮投诉 preset published as a
public template, a few classification rules, and the form data of the n-th complaint; and a
second 餐饮投诉 template bound to its preset workflow, as every demo template is, with the agents
its first node dispatches to — the path users actually take."""

import datetime

COMPLAINTS = [
    ("quality", "红烧肉里吃出一根头发，太恶心了，要求退款"),
    ("service", "服务员态度很差，点餐半天没人理，希望门店给个说法"),
    ("waiting", "等位一个多小时还没有上菜，孩子饿得直哭，体验非常差"),
    ("hygiene", "桌子上有虫子爬过，卫生状况堪忧，请尽快整改"),
    ("quality", "鱼不新鲜，吃完以后有点拉肚子，希望赔偿医药费"),
    ("other", "发票开错了抬头，打电话一直没人接，请尽快联系我处理"),
]
EXPECTATIONS = ["apology", "redo", "refund", "coupon", "other"]
STORES = 10


def seed_intake(*, tenant, stores=STORES):
    """Region, stores, the public 餐饮投诉 template and four active rules (plus an inactive one).
    Call inside tenant_scope(tenant). Returns (template, [store ids])."""
    from scrm.services import region_create, store_create
    from tickets.models import Priority
    from tickets.services import category_get_or_create, classification_rule_save, template_from_preset

    region = region_create(tenant=tenant, name="华东", code="east")
    store_ids = [
        store_create(tenant=tenant, region=region, name=f"上海{i}号店", code=f"sh-{i:02d}").pk for i in range(stores)
    ]
    template = template_from_preset(tenant=tenant, preset_slug="canyin_tousu")
    template.refresh_from_db()
    safety = category_get_or_create(tenant=tenant, code="food_safety", name="食品安全")
    classification_rule_save(tenant=tenant, name="退款", keywords=["退款", "退费", "赔偿"],
                             set_priority=Priority.URGENT, tag_names=["退款"], order=10)
    classification_rule_save(tenant=tenant, name="食品安全", keywords=["头发", "异物", "虫子", "拉肚子"],
                             set_category=safety, set_priority=Priority.HIGH, tag_names=["食品安全"], order=20)
    classification_rule_save(tenant=tenant, name="服务态度", keywords=["态度", "服务员"], tag_names=["服务"], order=30)
    classification_rule_save(tenant=tenant, name="等位", keywords=["等位", "上菜"], match="all", tag_names=["出餐慢"],
                             order=40)
    classification_rule_save(tenant=tenant, name="停用规则", keywords=["发票"], set_priority=Priority.URGENT,
                             order=5, is_active=False)
    return template, store_ids


def seed_workflow_template(*, tenant, agents=3):
    """The 餐饮投诉 preset imported again (its own slug) with the preset workflow published on it,
    and `agents` agents for the workflow's first node (客服受理, role agent). Call inside
    tenant_scope(tenant) after seed_intake. Returns the template."""
    from scrm.models import Role
    from scrm.services import staff_create
    from tickets.presets import preset_get
    from tickets.services import template_import
    from workflow.services import workflow_from_preset

    for i in range(agents):
        staff_create(tenant=tenant, username=f"bench_agent{i}", password="bench-Pass-123",
                     display_name=f"客服{i}", role=Role.AGENT, max_open_tickets=32767)
    preset = preset_get("canyin_tousu")
    template = template_import(tenant=tenant, payload={**preset, "slug": f"{preset['slug']}-wf"}, publish=True)
    workflow_from_preset(template=template, preset_slug="canyin_tousu")
    template.refresh_from_db()
    return template


def seed_dispatch_template(*, tenant, store_ids, per_store=2):
    """The 餐饮投诉 preset imported a third time with its first node (客服受理) dispatched by the
    smart-dispatch rule (agents, store → region → company, distance/load/speed weights), and
    `per_store` agents at each store to pick from. Call inside tenant_scope(tenant) after
    seed_intake. Returns the template."""
    import copy

    from scrm.models import Role, Store
    from scrm.services import staff_create
    from tickets.presets import preset_get
    from tickets.services import template_import
    from workflow.presets import workflow_preset_get
    from workflow.services import workflow_import

    for store in Store.objects.filter(pk__in=store_ids).order_by("pk"):
        for i in range(per_store):
            staff_create(tenant=tenant, username=f"bench_disp{store.pk}_{i}", password="bench-Pass-123",
                         display_name=f"派单客服{store.pk}-{i}", role=Role.AGENT, home_store=store,
                         max_open_tickets=32767)
    preset = preset_get("canyin_tousu")
    template = template_import(tenant=tenant, payload={**preset, "slug": f"{preset['slug']}-dispatch"}, publish=True)
    flow = copy.deepcopy(workflow_preset_get("canyin_tousu"))
    for node in flow["graph"]["nodes"]:
        if node.get("key") == "triage":
            node["handler"] = {"rule": "dispatch", "role": "agent", "overflow": ["store", "region", "tenant"],
                               "radius_km": 30, "on_duty_only": True, "under_capacity": True, "w_distance": 40,
                               "w_load": 40, "w_speed": 20, "round_robin": True}
    workflow_import(template=template, payload=flow, publish=True)
    template.refresh_from_db()
    return template


def form_data(i, *, store_ids, phones):
    """The public form's fields for complaint i; `phones` distinct phones are reused, so the
    first `phones` complaints create customers and the rest link to them."""
    kind, text = COMPLAINTS[i % len(COMPLAINTS)]
    dined = datetime.datetime(2025, 1, 1, 12, 0) + datetime.timedelta(minutes=37 * i)
    return {
        "store": str(store_ids[i % len(store_ids)]),
        "dined_at": dined.strftime("%Y-%m-%dT%H:%M"),
        "order_no": f"WD{i:010d}",
        "complaint_type": kind,
        "description": f"{text}（第{i}单）",
        "contact_name": f"顾客{i % phones}",
        "contact_phone": f"139{i % phones:08d}",
        "expectation": EXPECTATIONS[i % len(EXPECTATIONS)],
    }
