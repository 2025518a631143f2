"""Starting a workflow on intake costs a small, constant number of statements: the run, the
token, the handler rule's one read (candidates with their load from the Workload roll-up), the
task, the handler's load +1, one UPDATE of the ticket (status and assignee together), the run's
and the node's events (one INSERT), the handler's notification (read: their profile and
preferences; written in intake's one INSERT of notifications) and the node's timers (its due-soon
reminder and timeout, one INSERT; workflow/sla_ticket.py) — whatever the number of candidates,
tickets or open tasks."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from scrm.models import Role
from tests.conftest import make_member
from tests.factories import RegionFactory, StoreFactory
from tickets.services import template_from_preset, ticket_intake
from workflow.services import workflow_from_preset

pytestmark = pytest.mark.django_db

DATA = {"dined_at": "2026-11-22T19:30", "complaint_type": "waiting",
        "description": "等了五十分钟才上菜，服务员也不理人", "contact_name": "赵女士", "contact_phone": "13917008866"}


def intake_statements(tenant, template, store):
    with CaptureQueriesContext(connection) as ctx:
        ticket_intake(tenant=tenant, source="web", template=template, data=dict(DATA, store=store.pk),
                      audience="public", contact={"name": "赵女士", "phone": "13917008866"})
    return [q["sql"] for q in ctx.captured_queries]


def test_the_workflow_adds_a_constant_handful_of_statements_to_intake(scope_a):
    template = template_from_preset(tenant=scope_a, preset_slug="canyin_tousu")
    store = StoreFactory(tenant=scope_a, region=RegionFactory(tenant=scope_a))
    make_member(scope_a, Role.AGENT, "agent0")
    intake_statements(scope_a, template, store)  # warms the configuration cache, creates the customer
    without = intake_statements(scope_a, template, store)

    workflow_from_preset(template=template, preset_slug="canyin_tousu")
    intake_statements(scope_a, template, store)
    first = intake_statements(scope_a, template, store)
    for i in range(1, 6):
        make_member(scope_a, Role.AGENT, f"agent{i}")
    # Each new agent's first task ever also inserts their Workload row; after that, as before.
    for _ in range(5):
        intake_statements(scope_a, template, store)
    many = intake_statements(scope_a, template, store)

    added = len(first) - len(without)
    assert added == 10, "\n".join(first)
    assert len(many) == len(first)  # several candidates: their load comes in the same read
    for i in range(6, 16):
        make_member(scope_a, Role.AGENT, f"agent{i}")
    for _ in range(10):
        intake_statements(scope_a, template, store)
    assert len(intake_statements(scope_a, template, store)) == len(many)  # whatever their number
    updates = [s for s in first if s.startswith("UPDATE") and "tickets_ticket\"" in s]
    assert len(updates) == 1 and "status" in updates[0] and "assignee_id" in updates[0]
    events = [s for s in first if s.startswith("INSERT") and "tickets_timelineevent\"" in s]
    assert len(events) == 2  # the ticket's, then the run's and the first node's together
    notifications = [s for s in first if s.startswith("INSERT") and "notifications_notification\"" in s]
    assert len(notifications) == 1  # the customer's "created" and the handler's "assigned" together
    # No savepoint of its own: intake's transaction rolls back whole.
    assert sum(s.startswith("SAVEPOINT") for s in first) == sum(s.startswith("SAVEPOINT") for s in without)
