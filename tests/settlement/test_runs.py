"""Period runs: a month settled in batches, re-running a draft never double-counts, the states
draft → reviewed → approved → paid with finance approving, a frozen period refused, the
distributor crossing a rebate tier mid-month, and the engineer's message on approval."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import ValidationError

from notifications.models import Notification
from scrm.models import Role
from settlement.models import LineKind, RunState, SettlementLine, SettlementRun
from settlement.services import party_create, rule_save, run_approve, run_pay, run_review, run_start
from settlement.services.runs import run_lines
from tests.conftest import make_member
from tickets.models import Ticket

from .conftest import close_ticket

run_start_committed = run_start

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(autouse=True)
def _commit_callbacks(django_capture_on_commit_callbacks):
    # run_start sends the run's task on commit; run it as a committed request would.
    def start(**kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            run = run_start(**kwargs)
        return SettlementRun.objects.get(pk=run.pk)

    global run_start_committed
    run_start_committed = start


def at(day, hour=15):
    return time_machine.travel(datetime(2026, 11, day, hour, tzinfo=SHANGHAI), tick=False)


@pytest.fixture
def distributor(setup):
    """The store belongs to a distributor whose tickets earn it a tiered rebate."""
    party = party_create(tenant=setup.tenant, kind="distributor", name="华东经销商", code="east-dist",
                         store=setup.store)
    rule_save(tenant=setup.tenant, name="经销商阶梯返利", kind="rebate",
              params={"mode": "retroactive", "party_kind": "distributor", "tiers": [
                  {"from": 0, "percent": 0}, {"from": 1000, "percent": 2}, {"from": 3000, "percent": 3}]})
    return party


def test_distributor_crosses_a_rebate_tier_mid_month(setup, distributor):
    # tickets with no engineer settle to the store's party, the distributor: 5 × 2,000 = 10,000 by mid-month…
    with at(3):
        for _ in range(2):
            close_ticket(setup, data={"fee": "2000"}, region=setup.tibet, assignee=None)
    with at(20):
        close_ticket(setup, data={"fee": "1500"}, region=setup.tibet, assignee=None)
    with at(30):
        run = run_start_committed(tenant=setup.tenant, period_kind="month", day=date(2026, 11, 5), actor=setup.admin)
    run = SettlementRun.objects.get(pk=run.pk)
    # 2,000 + 2,000 = 4,000 before the 20th (tier 3 reached at 3,000), then 1,500 more = 5,500 × 3 % = 165.00
    rebate = SettlementLine.objects.get(kind=LineKind.REBATE)
    assert (rebate.party_id, rebate.amount) == (distributor.pk, Decimal("165.00"))
    assert rebate.breakdown.steps[0]["detail"]["tier"] == 3
    assert run.total == Decimal("5665.00") and run.line_count == 4 and run.ticket_count == 3
    assert run.progress == 100 and not run.is_running


def test_rerun_of_a_draft_replaces_it_without_double_counting(setup, distributor):
    with at(10):
        close_ticket(setup, data={"fee": "4000"}, region=setup.tibet, assignee=None)
    with at(30):
        first = run_start_committed(tenant=setup.tenant, period_kind="month", day=date(2026, 11, 1), actor=setup.admin)
        again = run_start_committed(tenant=setup.tenant, period_kind="month", day=date(2026, 11, 28), actor=setup.admin)
    assert again.pk == first.pk
    again = SettlementRun.objects.get(pk=again.pk)
    assert SettlementLine.objects.filter(kind=LineKind.REBATE).count() == 1
    assert again.total == Decimal("4120.00")  # 4,000 + 3 %
    assert SettlementLine.objects.filter(kind=LineKind.TICKET).count() == 1


def test_run_catches_up_closed_tickets_without_lines(setup):
    with at(10):
        ticket = close_ticket(setup, data={}, region=setup.tibet)
    SettlementLine.objects.filter(ticket=ticket).delete()  # as if closed before settlement existed
    with at(30):
        run = run_start_committed(tenant=setup.tenant, period_kind="month", day=date(2026, 11, 1), actor=setup.admin)
    run = SettlementRun.objects.get(pk=run.pk)
    assert run.total == Decimal("200.00") and run.ticket_count == 1


def test_states_finance_approves_and_engineer_is_told(setup):
    finance = make_member(setup.tenant, Role.FINANCE, "caiwu")
    with at(10):
        close_ticket(setup, data={"night": True}, priority="urgent")
    with at(30):
        run = run_start_committed(tenant=setup.tenant, period_kind="month", day=date(2026, 11, 1), actor=setup.admin)
    with pytest.raises(ValidationError):
        run_approve(run=run, actor=finance)  # a draft must be reviewed first
    run = run_review(run=run, actor=finance)
    with pytest.raises(ValidationError) as err:
        run_approve(run=run, actor=setup.engineer)
    assert "finance" in str(err.value)
    run = run_approve(run=run, actor=finance)
    assert run.state == RunState.APPROVED and run.approved_by == finance
    message = Notification.objects.filter(user=setup.engineer, event="settlement_ready")
    assert message.exists() and "345.00" in message.first().body
    run = run_pay(run=run, actor=finance)
    assert run.state == RunState.PAID


def test_approved_period_is_frozen(setup):
    finance = make_member(setup.tenant, Role.FINANCE, "caiwu")
    with at(10):
        ticket = close_ticket(setup, data={}, region=setup.tibet)
    with at(30):
        run = run_start_committed(tenant=setup.tenant, period_kind="month", day=date(2026, 11, 1), actor=setup.admin)
    run_review(run=run, actor=finance)
    run_approve(run=SettlementRun.objects.get(), actor=finance)
    count = SettlementRun.objects.count()
    with pytest.raises(ValidationError) as err:
        run_start_committed(tenant=setup.tenant, period_kind="month", day=date(2026, 11, 15), actor=setup.admin)
    assert "cannot be run again" in str(err.value)
    with pytest.raises(ValidationError):
        run_start_committed(tenant=setup.tenant, period_kind="quarter", day=date(2026, 11, 15), actor=setup.admin)
    assert SettlementRun.objects.count() == count
    # a late correction to a ticket of the approved month lands after it, as an adjustment
    from settlement.services import ticket_lines_compute

    ticket = Ticket.objects.get(pk=ticket.pk)
    ticket.data = {**ticket.data, "fee": "250"}
    ticket_lines_compute(ticket=ticket)
    adjustment = SettlementLine.objects.get(kind=LineKind.ADJUSTMENT)
    assert adjustment.amount == Decimal("50.00") and adjustment.period_date == date(2026, 12, 1)
    assert sum(line.amount for line in run_lines(SettlementRun.objects.get())) == Decimal("200.00")
