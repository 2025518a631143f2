"""Demo spare parts for the appliance after-sales tenant (美嘉): warehouses in its regions, a catalogue
of real-sounding parts priced in fen, opening stock, the 家电维修 template whose 上门维修 node
reserves parts on entry and consumes them on completion, and one ticket already there — so the
ticket page shows which warehouse to take the compressor from. Written through the services;
safe to run again (a tenant with warehouses is left alone)."""

from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils import timezone

from scrm.models import Region, Store
from spareparts import services
from spareparts.models import Movement, MovementKind, Part, Warehouse, WarehouseKind
from tickets.models import Ticket, TicketTemplate
from tickets.services import category_get_or_create, template_create, template_publish, ticket_intake
from workflow.engine import task_act
from workflow.models import Task, TaskStatus
from workflow.services import workflow_create, workflow_draft_set, workflow_publish

# (code, name, kind, region code, latitude, longitude, address)
WAREHOUSES = [
    ("sh-central", "美嘉上海中心仓", WarehouseKind.CENTRAL, "east-sh", "31.245000", "121.612000",
     "上海市浦东新区金海路2500号"),
    ("hz-rdc", "美嘉杭州区域仓", WarehouseKind.REGIONAL, "east-jz", "30.330000", "120.120000",
     "杭州市拱墅区康桥路88号"),
    ("gz-rdc", "美嘉广州区域仓", WarehouseKind.REGIONAL, "south", "23.210000", "113.260000",
     "广州市白云区太和镇龙归路36号"),
    ("wh-rdc", "美嘉武汉区域仓", WarehouseKind.REGIONAL, "central", "30.500000", "114.420000",
     "武汉市洪山区光谷大道77号"),
    ("cd-rdc", "美嘉成都区域仓", WarehouseKind.REGIONAL, "southwest", "30.600000", "104.050000",
     "成都市武侯区武科西五路360号"),
]

# (sku, barcode, name, compatible models, unit, cost fen, price fen, reorder point, reorder qty, supplier)
PARTS = [
    ("YS-COMP-15", "6923456700015", "压缩机 1.5匹 定频", "KFR-35GW, KFR-32GW", "台", 68000, 98000, 3, 10,
     "格力电器配件中心"),
    ("YS-COMP-26", "6923456700026", "压缩机 2匹 变频", "KFR-50LW, KFR-51GW", "台", 98000, 138000, 2, 6,
     "美的制冷配件公司"),
    ("LW-KFR-01", "6923456700101", "空调滤网（通用）", "KFR-26GW, KFR-35GW, KFR-50LW", "片", 800, 2500, 20, 100,
     "宁波嘉净滤材"),
    ("DJ-FAN-35", "6923456700305", "室外风扇电机", "KFR-35GW, KFR-32GW", "台", 18000, 32000, 3, 10,
     "威灵电机"),
    ("KB-PCB-35", "6923456700435", "室内机主板", "KFR-35GW", "块", 26000, 45000, 2, 8, "格力电器配件中心"),
    ("KT-CAP-35", "6923456700535", "启动电容 35μF", "KFR-35GW, KFR-50LW", "个", 800, 3000, 10, 50, "法拉电子"),
    ("LM-R410A", "6923456700610", "冷媒 R410A（10kg）", "变频空调通用", "瓶", 22000, 38000, 4, 12, "巨化制冷剂"),
    ("RS-HEAT-60", "6923456700760", "热水器加热管 2000W", "F60-21A, F80-32B", "根", 6500, 15000, 5, 20,
     "海尔配件中心"),
    ("RS-ANODE", "6923456700801", "热水器镁棒", "F50, F60, F80 系列", "根", 1500, 6000, 10, 40, "海尔配件中心"),
    ("BX-THERM", "6923456700901", "冰箱温控器", "BCD-215, BCD-258", "个", 3500, 9000, 5, 20, "容声配件"),
    ("XY-PUMP", "6923456701001", "洗衣机排水泵", "XQB80, EG10014", "个", 4500, 12000, 4, 15, "小天鹅配件"),
]

# Opening stock: warehouse code -> {sku: units}. Shanghai holds three 1.5匹 compressors (its reorder
# point): the demo ticket's reservation takes it below and opens a purchase request.
STOCK = {
    "sh-central": {"YS-COMP-15": 3, "YS-COMP-26": 6, "LW-KFR-01": 200, "DJ-FAN-35": 8, "KB-PCB-35": 6,
                   "KT-CAP-35": 60, "LM-R410A": 15, "RS-HEAT-60": 20, "RS-ANODE": 40, "BX-THERM": 18, "XY-PUMP": 12},
    "hz-rdc": {"YS-COMP-15": 4, "LW-KFR-01": 60, "KT-CAP-35": 20, "LM-R410A": 5, "RS-ANODE": 12},
    "gz-rdc": {"YS-COMP-15": 4, "YS-COMP-26": 2, "LW-KFR-01": 80, "DJ-FAN-35": 3, "KT-CAP-35": 30, "LM-R410A": 6},
    "wh-rdc": {"YS-COMP-15": 3, "LW-KFR-01": 40, "RS-HEAT-60": 6, "BX-THERM": 5, "XY-PUMP": 4},
    "cd-rdc": {"YS-COMP-15": 3, "LW-KFR-01": 40, "KT-CAP-35": 10},
}
VAN_STOCK = {"LW-KFR-01": 10, "KT-CAP-35": 4, "RS-ANODE": 2}

FIELDS = [
    {"key": "product_category", "type": "select", "label": {"zh-hans": "产品类别", "en": "Product type"},
     "required": True, "public": "edit", "options": {"choices": [
         {"value": "aircon", "label": {"zh-hans": "空调", "en": "Air conditioner"}},
         {"value": "fridge", "label": {"zh-hans": "冰箱", "en": "Refrigerator"}},
         {"value": "washer", "label": {"zh-hans": "洗衣机", "en": "Washing machine"}},
         {"value": "water_heater", "label": {"zh-hans": "热水器", "en": "Water heater"}}]}},
    {"key": "model", "type": "text", "label": {"zh-hans": "型号", "en": "Model"}, "required": True, "public": "edit",
     "validation": {"max_length": 40}},
    {"key": "fault", "type": "textarea", "label": {"zh-hans": "故障描述", "en": "Fault"}, "required": True,
     "public": "edit"},
    {"key": "repair_address", "type": "address", "label": {"zh-hans": "维修地址", "en": "Address"},
     "prefill": "customer.address", "public": "edit"},
    {"key": "parts", "type": "parts", "label": {"zh-hans": "所需备件", "en": "Parts needed"}, "public": "hidden",
     "help": {"zh-hans": "每行一个：备件编码 数量", "en": "One per line: SKU quantity"}},
    {"key": "repair_note", "type": "textarea", "label": {"zh-hans": "维修记录", "en": "Repair notes"},
     "public": "hidden"},
]

GRAPH = {
    "nodes": [
        {"key": "start", "kind": "start", "name": "开始"},
        {"key": "accept", "kind": "task", "name": "受理", "time_limit": 30,
         "handler": {"rule": "role", "role": "agent", "scope": "tenant"},
         "fields": {"visible": ["product_category", "model", "fault"], "editable": ["parts"], "required": []}},
        {"key": "dispatch", "kind": "task", "name": "派单", "time_limit": 60,
         "handler": {"rule": "role", "role": "regional_manager", "scope": "region"},
         "backup": {"rule": "role", "role": "manager", "scope": "tenant"}, "actions": ["submit", "return", "transfer"],
         "fields": {"visible": ["parts"], "editable": [], "required": []}},
        {"key": "repair", "kind": "task", "name": "上门维修", "time_limit": 1440,
         "handler": {"rule": "role", "role": "engineer", "scope": "region"},
         "parts": {"reserve": True, "consume": True},
         "fields": {"visible": ["repair_address", "model", "fault", "parts"], "editable": ["repair_note"],
                    "required": ["repair_note"]}},
        {"key": "callback", "kind": "task", "name": "回访", "time_limit": 4320,
         "handler": {"rule": "role", "role": "agent", "scope": "tenant"}},
        {"key": "end", "kind": "end", "name": "结束"},
    ],
    "transitions": [
        {"from": "start", "to": "accept"}, {"from": "accept", "to": "dispatch"}, {"from": "dispatch", "to": "repair"},
        {"from": "repair", "to": "callback"}, {"from": "callback", "to": "end"},
    ],
}


def parts_demo_seed(*, tenant) -> int:
    """Seed the parts library of the appliance tenant; returns the number of warehouses created."""
    if tenant.slug != "meijia" or Warehouse.objects.exists():
        return 0
    regions = {r.code: r for r in Region.objects.all()}
    users = {u.username: u for u in get_user_model().objects.filter(
        username__in=["mj_keeper", "mj_manager", "mj_eng1"])}
    keeper = users.get("mj_keeper") or users.get("mj_manager")
    warehouses = {}
    for code, name, kind, region, lat, lng, address in WAREHOUSES:
        warehouses[code] = services.warehouse_create(
            tenant=tenant, code=code, name=name, kind=kind, region=regions.get(region), latitude=Decimal(lat),
            longitude=Decimal(lng), address=address, keeper=keeper)
    parts = {}
    for sku, barcode, name, models, unit, cost, price, point, qty, supplier in PARTS:
        parts[sku] = services.part_create(tenant=tenant, sku=sku, barcode=barcode, name=name, compatible_models=models,
                                          unit=unit, cost_fen=cost, price_fen=price, reorder_point=point,
                                          reorder_qty=qty, supplier=supplier)
    for code, lines in STOCK.items():
        for sku, units in lines.items():
            services.stock_receive(warehouse=warehouses[code], part=parts[sku], quantity=units, actor=keeper,
                                   reason="期初入库")
    engineer = users.get("mj_eng1")
    if engineer is not None:
        van = services.warehouse_create(tenant=tenant, code="van-mj-eng1", name="邓卫国的车载库",
                                        kind=WarehouseKind.VAN,
                                        region=regions.get("east-sh"), owner=engineer)
        for sku, units in VAN_STOCK.items():
            services.stock_receive(warehouse=van, part=parts[sku], quantity=units, actor=keeper, reason="车载备货")
    _repair_flow(tenant)
    return len(warehouses)


def _repair_flow(tenant):
    """The 家电维修 template and workflow, and one ticket walked to 上门维修 (compressor reserved)."""
    if TicketTemplate.objects.filter(slug="jiadian_weixiu").exists():
        return
    category = category_get_or_create(tenant=tenant, code="weixiu", name="维修")
    template = template_create(tenant=tenant, name="家电维修", slug="jiadian_weixiu", category=category,
                               number_prefix="WX", is_public=True, fields=FIELDS,
                               description="空调、冰箱、洗衣机、热水器上门维修；需要备件时从最近的有货仓库预占，上门扫码领用。")
    template_publish(template=template)
    template.refresh_from_db()
    workflow = workflow_create(template=template, name="家电维修流程")
    workflow_draft_set(workflow=workflow, graph=GRAPH)
    workflow_publish(workflow=workflow)
    store = Store.objects.filter(code="sh-pudong").first()
    if store is None:
        return
    ticket = ticket_intake(
        tenant=tenant, source="phone", template=template, store=store, region=store.region,
        title="浦东金桥 空调不制冷，外机不启动",
        data={"product_category": "aircon", "model": "KFR-35GW",
              "fault": "开机后外机不转，室内只吹风不制冷，已用 6 年。",
              "repair_address": {"text": "上海市浦东新区金桥路1088号 3 号楼 1202 室", "lat": 31.262, "lng": 121.5863},
              "parts": "YS-COMP-15 1\nKT-CAP-35 1"})
    for node in ("accept", "dispatch"):
        task = Task.objects.filter(ticket=ticket, node=node, status=TaskStatus.OPEN).select_related("assignee").first()
        if task is None or task.assignee is None:
            return
        task_act(task=task, action="submit", user=task.assignee)


# What an installation uses, by SKU and units: filters and capacitors on most jobs, refrigerant on
# some, a compressor now and then — so the reorder suggestions show a realistic monthly rate.
HISTORY_USE = [("LW-KFR-01", 2), ("KT-CAP-35", 1), ("LW-KFR-01", 1), ("LM-R410A", 1), ("RS-ANODE", 1),
               ("LW-KFR-01", 2), ("KT-CAP-35", 2), ("YS-COMP-26", 1)]


def parts_history_seed(*, tenant, limit: int = 60) -> int:
    """Back-dated consumption on the last 90 days' resolved installation tickets (run after the
    dashboard history that creates them): each reserves at the nearest warehouse and consumes;
    every other one is restocked the same day, so the reorder suggestions have a recent rate and
    the busiest warehouses run low. Needs time-machine (a dev dependency), like the dashboard
    history; returns units used."""
    try:
        import time_machine
    except ImportError:
        return 0
    if tenant.slug != "meijia" or Movement.objects.filter(kind=MovementKind.CONSUME).exists():
        return 0
    parts = {p.sku: p for p in Part.objects.all()}
    keeper = get_user_model().objects.filter(username="mj_keeper").first()
    tickets = list(Ticket.objects.filter(template__slug="jiadian_anzhuang", resolved_at__isnull=False)
                   .exclude(store=None).select_related("store").order_by("resolved_at")[:limit])
    used, now = 0, timezone.now()
    for i, ticket in enumerate(tickets):
        sku, quantity = HISTORY_USE[i % len(HISTORY_USE)]
        part = parts.get(sku)
        if part is None:
            continue
        with time_machine.travel(ticket.resolved_at - timedelta(hours=2), tick=False):
            try:
                line = services.stock_reserve(ticket=ticket, part=part, quantity=quantity, actor=keeper)
            except ValidationError:
                continue
            used += services.reservations_consume(ticket=ticket, actor=ticket.assignee or keeper)
        if i % 2:
            continue
        with time_machine.travel(min(ticket.resolved_at + timedelta(hours=6), now), tick=False):
            services.stock_receive(warehouse=line.warehouse, part=part, quantity=quantity, actor=keeper,
                                   reason="补货入库")
    return used
