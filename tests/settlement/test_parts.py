"""Parts consumed feed settlement: a parts line at cost per ticket (its own breakdown), on closing
and in a run (one provider call per batch), with a provider registered here the way spare parts
registers its own (`tickets.extensions.parts_used_register`)."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from settlement.calculator import Part, Rule, TicketInput, ticket_settle
from settlement.models import SettlementLine, SettlementRun
from settlement.services import run_execute, run_start
from tickets import extensions
from tickets.extensions import PartUsed

from .conftest import close_ticket

SHANGHAI = ZoneInfo("Asia/Shanghai")
D = Decimal


def _input(**kw):
    base = {"ticket_id": 1, "closed_on": date(2026, 11, 5), "unit_price": D("200.00"),
            "parties": (("engineer", 7), ("distributor", 9))}
    return TicketInput(**{**base, **kw})


def test_parts_line_at_cost_with_its_breakdown():
    parts = (Part("P-100", "压缩机", D("1"), D("850.00")), Part("C-2", "铜管（米）", D("2.5"), D("12.33")))
    result = ticket_settle(_input(parts=parts), [])
    labour, line = result.lines
    assert labour.amount == D("200.00") and labour.role == "engineer"
    # 850 + 2.5 × 12.33 = 880.825 → 880.83 (half-up, once, at the line)
    assert (line.party_id, line.role, line.amount) == (7, "parts", D("880.83"))
    assert result.total == D("1080.83")
    step = line.breakdown()[0]
    assert step["kind"] == "parts" and step["after"] == "880.83"
    assert step["detail"]["parts"][1] == {"sku": "C-2", "name": "铜管（米）", "quantity": "2.50",
                                          "unit_price": "12.33", "amount": "30.825"}


def test_parts_are_not_multiplied_nor_split():
    rules = [Rule(1, "A类", "region_class", {"coefficients": {"A": "2"}}),
             Rule(2, "分成", "split", {"roles": [{"role": "engineer", "weight": "1"},
                                                 {"role": "distributor", "weight": "1"}]})]
    result = ticket_settle(_input(region_class="A", parts=(Part("P", "件", D("1"), D("99.99")),)), rules)
    amounts = [(line.role, line.amount) for line in result.lines]
    assert amounts == [("engineer", D("200.00")), ("distributor", D("200.00")), ("parts", D("99.99"))]


def test_parts_go_to_the_first_party_without_an_engineer_and_settle_without_a_price():
    result = ticket_settle(_input(unit_price=None, parties=(("distributor", 9),),
                                  parts=(Part("P", "件", D("3"), D("10")),)), [])
    assert [(line.party_id, line.role, line.amount) for line in result.lines] == [(9, "parts", D("30.00"))]
    assert "no service item price" in result.problems[0]


def test_parts_without_anybody_to_pay_are_a_problem_not_a_line():
    result = ticket_settle(_input(parties=(), parts=(Part("P", "件", D("1"), D("5")),)), [])
    assert result.lines == ()
    assert sum("nobody to settle with" in p for p in result.problems) == 1


def test_same_parts_same_lines_on_rerun():
    parts = (Part("P", "件", D("1.333"), D("0.07")),)
    first, second = ticket_settle(_input(parts=parts), []), ticket_settle(_input(parts=parts), [])
    assert first == second


@pytest.fixture
def provider():
    """A parts provider like spare parts': priced parts per ticket, counting its calls."""
    used: dict = {}  # ticket id (or "*", every ticket) → its parts
    calls: list[list[int]] = []

    def parts(*, ticket_ids):
        calls.append(list(ticket_ids))
        return {pk: used.get(pk, used.get("*", [])) for pk in ticket_ids}

    extensions.parts_used_register(parts)
    yield used, calls
    extensions._parts_used.remove(parts)  # the registry has no unregister; tests clean up after themselves


@pytest.mark.django_db
def test_closing_a_ticket_settles_its_parts(setup, provider):
    used, _calls = provider
    with time_machine.travel(datetime(2026, 11, 4, 15, tzinfo=SHANGHAI), tick=False):
        ticket = close_ticket(setup, data={}, assignee=None)  # closed before any part: only its labour
        assert SettlementLine.objects.filter(ticket=ticket, role="parts").count() == 0
        used["*"] = [PartUsed("P-100", "压缩机", D("1"), D("850.00"))]
        ticket2 = close_ticket(setup, data={})
    line = SettlementLine.objects.get(ticket=ticket2, role="parts")
    assert (line.party_id, line.amount) == (setup.engineer_party.pk, D("850.00"))
    assert line.breakdown.steps[0]["detail"]["parts"][0]["sku"] == "P-100"


@pytest.mark.django_db
def test_a_run_asks_for_parts_once_per_batch(setup, provider):
    used, calls = provider
    with time_machine.travel(datetime(2026, 11, 4, 15, tzinfo=SHANGHAI), tick=False):
        tickets = [close_ticket(setup, data={}) for _ in range(5)]
    SettlementLine.objects.all().delete()  # as if closed before settlement was set up: the run settles them
    for t in tickets:
        used[t.pk] = [PartUsed("F-1", "滤网", D("2"), D("15.50"))]
    calls.clear()
    run = run_start(tenant=setup.tenant, period_kind="month", day=date(2026, 11, 1), actor=setup.admin,
                    background=False)
    run = run_execute(run=SettlementRun.objects.get(pk=run.pk), batch=2)
    assert len(calls) == 3  # 5 tickets in batches of 2
    assert sorted(pk for call in calls for pk in call) == sorted(t.pk for t in tickets)
    assert SettlementLine.objects.filter(role="parts", amount=D("31.00")).count() == 5


@pytest.mark.django_db
@pytest.mark.parametrize("part, message", [
    (PartUsed("X", "坏", D("-1"), D("5")), "between 0"),
    (PartUsed("X", "坏", D("1"), D("100000001")), "between 0"),
    (PartUsed("X", "坏", "abc", D("5")), "must be a number"),
    (PartUsed("X", "坏", None, D("5")), "no quantity or price"),
])
def test_bad_parts_from_a_provider_are_refused_and_nothing_is_written(setup, provider, part, message):
    from django.core.exceptions import ValidationError

    from settlement.inputs import ticket_input
    from tickets.models import Ticket

    used, _calls = provider
    with time_machine.travel(datetime(2026, 11, 4, 15, tzinfo=SHANGHAI), tick=False):
        ticket = close_ticket(setup, data={})
    used[ticket.pk] = [part]
    with pytest.raises(ValidationError) as err:
        ticket_input(ticket=Ticket.objects.get(pk=ticket.pk))
    assert message in str(err.value)
