"""Fixtures for workflow tests: a template with fields, staff in roles, and a graph builder."""

import pytest

from scrm.models import Role
from scrm.services import membership_set
from tests.conftest import make_member
from tests.factories import RegionFactory, StoreFactory, published_template

FIELDS = [
    {"key": "order_no", "type": "text", "label": {"zh-hans": "订单号"}, "required": False, "public": "edit"},
    {"key": "fee", "type": "money", "label": {"zh-hans": "费用"}, "required": False},
    {"key": "note", "type": "textarea", "label": {"zh-hans": "处理说明"}, "required": False},
]


def node(key, kind, name=None, **extra):
    return {"key": key, "kind": kind, "name": name or key, **extra}


def edge(a, b, **extra):
    return {"from": a, "to": b, **extra}


def role(r, scope="tenant"):
    return {"rule": "role", "role": r, "scope": scope}


@pytest.fixture
def people(tenant_a):
    return {
        "agent": make_member(tenant_a, Role.AGENT, "wf_agent"),
        "engineer": make_member(tenant_a, Role.ENGINEER, "wf_engineer"),
        "manager": make_member(tenant_a, Role.MANAGER, "wf_manager"),
        "manager2": make_member(tenant_a, Role.MANAGER, "wf_manager2"),
        "finance": make_member(tenant_a, Role.FINANCE, "wf_finance"),
        "gm": make_member(tenant_a, Role.ADMIN, "wf_gm"),
    }


@pytest.fixture
def wf_template(scope_a):
    return published_template(scope_a, name="维修", slug="repair", prefix="WX", fields=FIELDS)


@pytest.fixture
def place(scope_a):
    region = RegionFactory(tenant=scope_a)
    return StoreFactory(tenant=scope_a, region=region)


__all__ = ["edge", "membership_set", "node", "role"]
