"""A run split into id windows: each window settled once, the same totals whatever the window size
or the order the workers take them, a failed window stopping the run with its message, and the
period run again to retry it."""

from datetime import date, datetime
from decimal import Decimal
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
import time_machine

from settlement.models import RunState, SettlementLine, SettlementRun, SettlementRunWindow, WindowState
from settlement.services import run_execute, run_start
from settlement.services.runs import run_finish, run_plan, run_window_execute, run_window_fail
from tickets import extensions

from .conftest import close_ticket

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _closed_without_lines(setup, n):
    """`n` tickets closed in November whose lines are gone, as if closed before settlement was set
    up: the run settles them (6 of 200.00 in class A, one of them urgent)."""
    with time_machine.travel(datetime(2026, 11, 4, 15, tzinfo=SHANGHAI), tick=False):
        tickets = [close_ticket(setup, data={}, priority="urgent" if i == 0 else "normal") for i in range(n)]
    SettlementLine.objects.all().delete()
    return tickets


def _start(setup):
    with time_machine.travel(datetime(2026, 11, 30, 15, tzinfo=SHANGHAI), tick=False):
        return run_start(tenant=setup.tenant, period_kind="month", day=date(2026, 11, 1), actor=setup.admin,
                         background=False)


def test_windows_in_any_order_give_the_sequential_totals(setup):
    _closed_without_lines(setup, 7)
    run = run_execute(run=_start(setup), batch=100)  # one window
    sequential = (run.total, run.line_count, run.ticket_count,
                  sorted(SettlementLine.objects.values_list("ticket_id", "amount")))
    assert run.total == Decimal("200.00") * Decimal("1.15") * 7 + Decimal("69.00")  # 230 × 7 + 30 % of 230

    SettlementLine.objects.all().delete()
    run = _start(setup)
    windows = run_plan(run=run, batch=2)
    assert len(windows) == 4  # 7 tickets by 2
    bounds = list(SettlementRunWindow.objects.filter(run=run).values_list("low", "high"))
    assert all(low <= high < next_low for (low, high), (next_low, _h) in pairwise(bounds))
    lasts = [run_window_execute(window_id=pk) for pk in reversed(windows)]  # the workers' order does not matter
    assert lasts == [False, False, False, True]  # only the last window to finish says so
    assert SettlementRun.objects.get(pk=run.pk).progress == 90
    run = run_finish(run=run)
    assert (run.total, run.line_count, run.ticket_count,
            sorted(SettlementLine.objects.values_list("ticket_id", "amount"))) == sequential
    assert run.progress == 100 and not run.is_running and run.state == RunState.DRAFT


def test_a_window_is_settled_once(setup):
    tickets = _closed_without_lines(setup, 3)
    run = _start(setup)
    (window,) = run_plan(run=run, batch=10)
    assert run_window_execute(window_id=window) is True
    assert run_window_execute(window_id=window) is False  # done already: nothing written again
    assert SettlementLine.objects.count() == len(tickets)
    done = SettlementRunWindow.objects.get(pk=window)
    assert (done.state, done.tickets, done.lines) == (WindowState.DONE, 3, 3)
    run_finish(run=run)
    run_finish(run=run)  # finishing twice changes nothing
    assert SettlementRun.objects.get(pk=run.pk).line_count == 3


def test_the_finish_waits_for_every_window(setup):
    _closed_without_lines(setup, 3)
    run = _start(setup)
    first, _second = run_plan(run=run, batch=2)
    run_window_execute(window_id=first)
    run = run_finish(run=run)
    assert run.is_running and run.progress == 45 and run.line_count == 0


@pytest.fixture
def broken_provider(setup):
    """A parts provider (spare parts' seam) whose store is down for one ticket: the window
    holding that ticket raises, as a database or provider outage would."""
    broken: set[int] = set()

    def parts(*, ticket_ids):
        if broken & set(ticket_ids):
            raise ConnectionError("parts store unreachable")
        return {}

    extensions.parts_used_register(parts)
    yield broken
    extensions._parts_used.remove(parts)  # the registry has no unregister; tests clean up after themselves


def test_a_failed_window_stops_the_run_and_a_rerun_retries_it(setup, broken_provider):
    tickets = _closed_without_lines(setup, 4)
    broken_provider.add(tickets[3].pk)
    run = _start(setup)
    with pytest.raises(ConnectionError):
        run_execute(run=run, batch=2)
    run = SettlementRun.objects.get(pk=run.pk)
    assert not run.is_running and run.state == RunState.DRAFT
    assert f"{tickets[2].pk}–{tickets[3].pk}" in run.error and "parts store unreachable" in run.error
    assert "Run the period again" in run.error
    failed = SettlementRunWindow.objects.get(state=WindowState.FAILED)
    assert failed.low == tickets[2].pk and "unreachable" in failed.error
    # the first window's lines stay; the failed window wrote nothing
    assert sorted(SettlementLine.objects.values_list("ticket_id", flat=True)) == [tickets[0].pk, tickets[1].pk]

    broken_provider.clear()  # the store is back: running the period again settles what is left
    run = run_execute(run=_start(setup), batch=2)
    assert run.error == "" and run.ticket_count == 4 and run.line_count == 4
    assert SettlementRunWindow.objects.filter(run=run).count() == 1  # only the two tickets left
    assert SettlementLine.objects.values("ticket_id").distinct().count() == 4


def test_a_window_of_a_stopped_run_is_not_settled(setup):
    _closed_without_lines(setup, 4)
    run = _start(setup)
    first, second = run_plan(run=run, batch=2)
    run_window_fail(window_id=first, error="boom")
    assert run_window_execute(window_id=second) is False  # the run stopped: the queue's leftovers do nothing
    assert SettlementLine.objects.count() == 0


def test_the_celery_fan_out_settles_and_finishes(setup, django_capture_on_commit_callbacks):
    _closed_without_lines(setup, 5)
    # eager tasks: the plan's task sends one task per window, the last window sends the finish
    with (time_machine.travel(datetime(2026, 11, 30, 15, tzinfo=SHANGHAI), tick=False),
          django_capture_on_commit_callbacks(execute=True)):
        run = run_start(tenant=setup.tenant, period_kind="month", day=date(2026, 11, 1), actor=setup.admin)
    run = SettlementRun.objects.get(pk=run.pk)
    assert SettlementRunWindow.objects.filter(run=run, state=WindowState.DONE).count() == 1
    assert run.progress == 100 and not run.is_running and run.ticket_count == 5


def test_the_run_page_shows_the_failed_batch_and_retries_it(setup, broken_provider, client_for,
                                                             django_capture_on_commit_callbacks,
                                                             django_assert_max_num_queries):
    from django.urls import reverse

    from scrm.models import Role
    from tests.conftest import make_member

    finance = make_member(setup.tenant, Role.FINANCE, "caiwu")
    tickets = _closed_without_lines(setup, 3)
    broken_provider.add(tickets[2].pk)
    client = client_for(finance)
    client.cookies["django_language"] = "en"  # the assertions read the English messages
    run = _start(setup)
    with pytest.raises(ConnectionError):
        run_execute(run=run, batch=2)
    with django_assert_max_num_queries(14):
        page = client.get(reverse("settlement-run", args=[run.pk])).content.decode()
    assert "1 of 2 batches settled" in page and "1 batch failed" in page and "could not be settled" in page
    assert 'value="retry"' in page
    # a failed run cannot be reviewed: nothing moves
    client.post(reverse("settlement-run", args=[run.pk]), {"action": "review"})
    assert SettlementRun.objects.get(pk=run.pk).state == RunState.DRAFT

    broken_provider.clear()
    with (time_machine.travel(datetime(2026, 11, 30, 15, tzinfo=SHANGHAI), tick=False),
          django_capture_on_commit_callbacks(execute=True)):
        response = client.post(reverse("settlement-run", args=[run.pk]), {"action": "retry"})
    assert response.status_code == 302
    run = SettlementRun.objects.get(pk=run.pk)
    assert run.error == "" and run.ticket_count == 3 and not run.is_running
    progress = client.get(reverse("settlement-run-progress", args=[run.pk])).content.decode()
    assert "1 of 1 batches settled" in progress and "100%" in progress


def test_retry_of_an_approved_run_is_refused_and_writes_nothing(setup, client_for):
    from django.urls import reverse

    from scrm.models import Role
    from settlement.services import run_approve, run_review
    from tests.conftest import make_member

    finance = make_member(setup.tenant, Role.FINANCE, "caiwu")
    _closed_without_lines(setup, 1)
    run = run_execute(run=_start(setup))
    run_review(run=run, actor=finance)
    run_approve(run=SettlementRun.objects.get(pk=run.pk), actor=finance)
    windows = SettlementRunWindow.objects.count()
    client = client_for(finance)
    client.cookies["django_language"] = "en"
    response = client.post(reverse("settlement-run", args=[run.pk]), {"action": "retry"}, follow=True)
    assert "cannot be run again" in response.content.decode()
    assert SettlementRunWindow.objects.count() == windows and SettlementRun.objects.get().is_running is False
