"""A repair template whose fields feed settlement, parties, a price book and the seeds' rules."""

from datetime import date
from decimal import Decimal

import pytest
from django.utils import translation

from scrm.models import Role
from settlement.services import field_map_save, party_create, price_set, rule_save, service_item_create
from tests.conftest import make_member
from tests.factories import RegionFactory, StoreFactory, published_template
from tickets.services import ticket_intake
from workflow.lifecycle import ticket_assign, ticket_status_change


def _label(zh):
    return {"zh-hans": zh, "en": zh}


REPAIR_FIELDS = [
    {"key": "item", "type": "select", "label": _label("服务项目"), "required": True, "public": "edit",
     "options": {"choices": [{"value": "repair", "label": _label("维修")},
                             {"value": "install", "label": _label("安装")}]}},
    {"key": "fee", "type": "money", "label": _label("服务费"), "public": "hidden"},
    {"key": "hours", "type": "decimal", "label": _label("工时"), "public": "hidden"},
    {"key": "night", "type": "checkbox", "label": _label("夜间服务"), "public": "hidden"},
    {"key": "altitude", "type": "integer", "label": _label("海拔（米）"), "public": "hidden"},
    {"key": "km", "type": "decimal", "label": _label("路程（公里）"), "public": "hidden"},
    {"key": "designer", "type": "staff", "label": _label("设计师"), "public": "hidden"},
]
MAPPING = {"service_item": "item", "fee": "fee", "hours": "hours", "night": "night", "altitude_m": "altitude",
           "distance_km": "km", "role:designer": "designer"}


@pytest.fixture(autouse=True)
def _english():
    # Assertions read the English source messages, whatever the default language.
    with translation.override("en"):
        yield


@pytest.fixture
def setup(scope_a, tenant_a):
    """Everything a ticket needs to settle in tenant A; returns a namespace of the objects."""
    class NS:
        pass

    ns = NS()
    ns.tenant = tenant_a
    ns.east = RegionFactory(tenant=tenant_a, name="华东大区", code="east", settlement_class="A")
    ns.tibet = RegionFactory(tenant=tenant_a, name="西藏", code="tibet", settlement_class="C")
    ns.store = StoreFactory(tenant=tenant_a, region=ns.east, name="上海徐汇店", code="xuhui")
    ns.template = published_template(tenant_a, name="设备维修", slug="repair", fields=REPAIR_FIELDS, prefix="WX")
    field_map_save(tenant=tenant_a, template=ns.template, mapping=MAPPING)
    ns.engineer = make_member(tenant_a, Role.ENGINEER, "zhang_gong")
    ns.engineer_party = party_create(tenant=tenant_a, kind="engineer", name="张工", code="zhang", user=ns.engineer)
    ns.repair = service_item_create(tenant=tenant_a, code="repair", name="上门维修")
    price_set(tenant=tenant_a, item=ns.repair, price=Decimal("200.00"), effective_from=date(2026, 1, 1))
    ns.region_rule = rule_save(tenant=tenant_a, name="大区系数", kind="region_class", priority=10,
                               params={"coefficients": {"A": "1.15", "B": "1.05", "C": "1.00"}})
    ns.urgent = rule_save(tenant=tenant_a, name="加急 +30%", kind="surcharge", params={"flag": "urgent", "percent": 30})
    ns.night = rule_save(tenant=tenant_a, name="夜间 +20%", kind="surcharge", params={"flag": "night", "percent": 20})
    ns.altitude = rule_save(tenant=tenant_a, name="海拔3000米以上双倍", kind="altitude", priority=20,
                            params={"above_m": 3000, "multiplier": 2})
    ns.distance = rule_save(tenant=tenant_a, name="500公里外每公里1.5元", kind="distance",
                            params={"base_km": 500, "base_amount": 0, "per_km": "1.50"})
    ns.admin = make_member(tenant_a, Role.ADMIN, "boss")
    return ns


def close_ticket(ns, *, data, priority="normal", region=None, assignee="engineer"):
    """Create a ticket with `data` and close it by hand (the ticket_closed hook settles it)."""
    ticket = ticket_intake(tenant=ns.tenant, source="web", template=ns.template, data={"item": "repair", **data},
                           title="维修", priority=priority, region=region or ns.east, store=ns.store, actor=ns.admin)
    if assignee:
        ticket = ticket_assign(ticket=ticket, assignee=getattr(ns, assignee), actor=ns.admin)
    return ticket_status_change(ticket=ticket, action="close", actor=ns.admin)
