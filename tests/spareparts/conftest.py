"""Fixtures for spare parts: two regions' warehouses around Shanghai and Hangzhou, a compressor and
a filter, a repair template whose `repair` node reserves and consumes parts."""

from decimal import Decimal

import pytest

from scrm.models import Role
from spareparts import services
from spareparts.models import WarehouseKind
from tests.conftest import make_member
from tests.factories import RegionFactory, StoreFactory, published_template

FIELDS = [
    {"key": "parts", "type": "parts", "label": {"zh-hans": "所需备件"}, "required": False, "public": "hidden"},
    {"key": "note", "type": "textarea", "label": {"zh-hans": "处理说明"}, "required": False},
]
ROLE_AGENT = {"rule": "role", "role": "agent", "scope": "tenant"}
ROLE_ENGINEER = {"rule": "role", "role": "engineer", "scope": "tenant"}
GRAPH = {
    "nodes": [
        {"key": "start", "kind": "start", "name": "开始"},
        {"key": "accept", "kind": "task", "name": "受理", "handler": ROLE_AGENT},
        {"key": "repair", "kind": "task", "name": "上门维修", "handler": ROLE_ENGINEER,
         "parts": {"reserve": True, "consume": True}, "fields": {"editable": ["note"]}},
        {"key": "end", "kind": "end", "name": "结束"},
    ],
    "transitions": [{"from": "start", "to": "accept"}, {"from": "accept", "to": "repair"},
                    {"from": "repair", "to": "end"}],
}


@pytest.fixture
def staff(tenant_a):
    return {
        "agent": make_member(tenant_a, Role.AGENT, "sp_agent"),
        "engineer": make_member(tenant_a, Role.ENGINEER, "sp_engineer"),
        "manager": make_member(tenant_a, Role.MANAGER, "sp_manager"),
    }


@pytest.fixture
def lib(scope_a, staff):
    """Warehouses and parts: Shanghai central (far from the Hangzhou store), Hangzhou regional."""
    sh = RegionFactory(tenant=scope_a, name="华东一区", code="sh")
    hz = RegionFactory(tenant=scope_a, name="浙江区", code="hz")
    store = StoreFactory(tenant=scope_a, region=hz, name="杭州西湖店", latitude=Decimal("30.259"),
                         longitude=Decimal("120.130"))
    central = services.warehouse_create(tenant=scope_a, code="sh-central", name="上海中心仓",
                                        kind=WarehouseKind.CENTRAL, region=sh, latitude=Decimal("31.230"),
                                        longitude=Decimal("121.473"), keeper=staff["manager"])
    hangzhou = services.warehouse_create(tenant=scope_a, code="hz-rdc", name="杭州区域仓", kind=WarehouseKind.REGIONAL,
                                         region=hz, latitude=Decimal("30.274"), longitude=Decimal("120.155"))
    van = services.warehouse_create(tenant=scope_a, code="van-1", name="工程师车载库", kind=WarehouseKind.VAN,
                                    region=hz, owner=staff["engineer"])
    compressor = services.part_create(tenant=scope_a, sku="YS-COMP-15", barcode="6901234567001", name="压缩机 1.5匹",
                                      compatible_models="KFR-35GW, KFR-26GW", unit="台", cost_fen=68000,
                                      price_fen=98000, reorder_point=2, reorder_qty=5, supplier="格力配件中心")
    filt = services.part_create(tenant=scope_a, sku="LW-FILTER", barcode="6901234567002", name="空调滤网", unit="片",
                                cost_fen=1200, price_fen=3500)
    return {"store": store, "central": central, "hangzhou": hangzhou, "van": van, "compressor": compressor,
            "filter": filt, "sh": sh, "hz": hz}


@pytest.fixture
def repair_template(scope_a):
    return published_template(scope_a, name="家电维修", slug="repair", prefix="WX", fields=FIELDS)
