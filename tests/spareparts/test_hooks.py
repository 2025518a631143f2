"""Parts ride the workflow: the `repair` node reserves the ticket's parts on entry (nearest warehouse),
consumes them when its task is submitted, releases them on return or cancel; an out-of-stock
reservation rolls the whole step back with the message."""

import pytest
from django.core.exceptions import ValidationError

from spareparts import selectors, services
from spareparts.models import BillOfMaterials, Movement, Stock
from tests.spareparts.conftest import GRAPH
from tests.workflow.test_engine import open_tasks, publish
from tickets.models import Ticket
from tickets.services import ticket_intake
from workflow.engine import task_act
from workflow.graph import graph_validate
from workflow.lifecycle import ticket_status_change
from workflow.models import Task

pytestmark = pytest.mark.django_db


def level(warehouse, part):
    s = Stock.objects.filter(warehouse=warehouse, part=part).first()
    return (s.on_hand, s.reserved) if s else (0, 0)


@pytest.fixture
def flow(scope_a, lib, repair_template, staff):
    publish(repair_template, GRAPH)
    services.stock_receive(warehouse=lib["hangzhou"], part=lib["compressor"], quantity=2, actor=None)
    services.stock_receive(warehouse=lib["central"], part=lib["filter"], quantity=10, actor=None)
    return repair_template


def new_ticket(scope, template, store, parts="YS-COMP-15 1"):
    return ticket_intake(tenant=scope, source="phone", template=template, data={"parts": parts}, store=store)


def test_reserve_on_entry_consume_on_submit(scope_a, lib, staff, flow):
    BillOfMaterials.objects.create(tenant=scope_a, template=flow, part=lib["filter"], quantity=2)
    ticket = new_ticket(scope_a, flow, lib["store"])
    assert selectors.ticket_reservations(ticket=ticket) == []  # accept does not reserve
    task_act(task=open_tasks(ticket)[0], action="submit", user=staff["agent"])
    rows = {r.part_id: r for r in selectors.ticket_reservations(ticket=ticket)}
    assert rows[lib["compressor"].pk].warehouse_id == lib["hangzhou"].pk
    assert rows[lib["filter"].pk].warehouse_id == lib["central"].pk
    assert {(r.held, r.status) for r in rows.values()} == {(1, "reserved"), (2, "reserved")}
    assert set(Movement.objects.filter(ticket=ticket, kind="reserve").values_list("node_key", flat=True)) == {"repair"}
    assert level(lib["hangzhou"], lib["compressor"]) == (2, 1)
    [task] = open_tasks(ticket)
    assert task.node == "repair"
    task_act(task=task, action="submit", user=staff["engineer"])
    assert level(lib["hangzhou"], lib["compressor"]) == (1, 0)
    assert level(lib["central"], lib["filter"]) == (8, 0)
    assert {(r.status, r.held, r.consumed) for r in selectors.ticket_reservations(ticket=ticket)} == {
        ("consumed", 0, 1), ("consumed", 0, 2)}


def test_out_of_stock_rolls_the_step_back(scope_a, lib, staff, flow):
    ticket = new_ticket(scope_a, flow, lib["store"], parts="YS-COMP-15 3")
    task = open_tasks(ticket)[0]
    before = Movement.objects.count()
    with pytest.raises(ValidationError) as info:
        task_act(task=task, action="submit", user=staff["agent"])
    assert "杭州区域仓" in info.value.messages[0] or "Hangzhou" in info.value.messages[0] or "区域仓" in str(info.value)
    task.refresh_from_db()
    assert task.status == "open" and [t.node for t in open_tasks(ticket)] == ["accept"]
    assert Movement.objects.count() == before and selectors.ticket_reservations(ticket=ticket) == []
    assert level(lib["hangzhou"], lib["compressor"]) == (2, 0)


def test_return_and_cancel_release(scope_a, lib, staff, flow):
    ticket = new_ticket(scope_a, flow, lib["store"])
    task_act(task=open_tasks(ticket)[0], action="submit", user=staff["agent"])
    assert level(lib["hangzhou"], lib["compressor"]) == (2, 1)
    task_act(task=open_tasks(ticket)[0], action="return", user=staff["engineer"], comment="客户改约")
    assert level(lib["hangzhou"], lib["compressor"]) == (2, 0)
    task_act(task=open_tasks(ticket)[0], action="submit", user=staff["agent"])
    assert level(lib["hangzhou"], lib["compressor"]) == (2, 1)
    ticket = Ticket.objects.get(pk=ticket.pk)
    ticket_status_change(ticket=ticket, action="cancel", actor=staff["manager"], note="客户取消")
    assert level(lib["hangzhou"], lib["compressor"]) == (2, 0)
    assert not Task.objects.filter(ticket=ticket, status="open").exists()


def test_the_graph_checks_the_parts_option():
    graph = {"nodes": [{"key": "start", "kind": "start"},
                       {"key": "fix", "kind": "task",
                        "handler": {"rule": "role", "role": "engineer", "scope": "tenant"},
                        "parts": {"reserve": "yes"}},
                       {"key": "end", "kind": "end"}],
             "transitions": [{"from": "start", "to": "fix"}, {"from": "fix", "to": "end"}]}
    with pytest.raises(ValidationError) as info:
        graph_validate(graph)
    assert any("reserve" in m for m in info.value.messages)
