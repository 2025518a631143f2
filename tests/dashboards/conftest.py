"""Fixtures for the dashboards: a published two-node workflow (受理 by an agent, 维修 by an
engineer), two stores in two regions, and a helper that files tickets through intake."""

import pytest

from scrm.models import Role
from tests.conftest import make_member
from tests.factories import CustomerFactory, RegionFactory, StoreFactory, published_template
from tickets.services import ticket_intake
from workflow.services import workflow_create, workflow_draft_set, workflow_publish

GRAPH = {
    "nodes": [
        {"key": "start", "kind": "start", "name": "开始"},
        {"key": "accept", "kind": "task", "name": "受理", "time_limit": 30,
         "handler": {"rule": "role", "role": "agent", "scope": "tenant"}},
        {"key": "fix", "kind": "task", "name": "维修",
         "handler": {"rule": "role", "role": "engineer", "scope": "tenant"}},
        {"key": "end", "kind": "end", "name": "结束"},
    ],
    "transitions": [{"from": "start", "to": "accept"}, {"from": "accept", "to": "fix"}, {"from": "fix", "to": "end"}],
}


@pytest.fixture
def places(scope_a):
    east, north = RegionFactory(tenant=scope_a, name="华东"), RegionFactory(tenant=scope_a, name="华北")
    return {"east": east, "north": north,
            "xuhui": StoreFactory(tenant=scope_a, region=east, name="徐汇店"),
            "chaoyang": StoreFactory(tenant=scope_a, region=north, name="朝阳店")}


@pytest.fixture
def staff(tenant_a):
    return {"agent": make_member(tenant_a, Role.AGENT, "db_agent"),
            "engineer": make_member(tenant_a, Role.ENGINEER, "db_engineer"),
            "manager": make_member(tenant_a, Role.MANAGER, "db_manager")}


@pytest.fixture
def repair(scope_a, staff):
    template = published_template(scope_a, name="维修", slug="repair", prefix="WX")
    workflow = workflow_create(template=template, name="维修流程")
    workflow_draft_set(workflow=workflow, graph=GRAPH)
    workflow_publish(workflow=workflow)
    return template


@pytest.fixture
def file_ticket(scope_a, repair):
    def make(store=None, source="phone", title="冷柜不制冷", priority=None):
        customer = CustomerFactory(tenant=scope_a)
        return ticket_intake(tenant=scope_a, source=source, template=repair, data={}, customer=customer,
                             title=title, partial=True, store=store, region=store.region if store else None,
                             priority=priority)
    return make


@pytest.fixture
def roll(scope_a):
    """Recompute the roll-ups of the last `days` days, as the beat task and the backfill do:
    the dashboard reads only them."""
    import datetime

    from django.utils import timezone

    from dashboards.services import rollup_backfill

    def run(days=10):
        return rollup_backfill(tenant=scope_a, since=timezone.localdate() - datetime.timedelta(days=days))
    return run
