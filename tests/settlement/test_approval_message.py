"""The engineer's message when finance approves a run: the total, then each line with its
breakdown (service item, base, class premium, surcharges, distance, the line's total), capped,
and the link to all of them — in the tenant's language, through notifications' variables."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from notifications.models import Notification
from scrm.models import Role
from settlement.messages import MAX_LINES, line_text, lines_text
from settlement.models import SettlementRun
from settlement.services import run_approve, run_execute, run_review, run_start
from tests.conftest import make_member

from .conftest import close_ticket

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _approve(setup):
    finance = make_member(setup.tenant, Role.FINANCE, "caiwu")
    with time_machine.travel(datetime(2026, 11, 30, 15, tzinfo=SHANGHAI), tick=False):
        run = run_start(tenant=setup.tenant, period_kind="month", day=date(2026, 11, 1), actor=setup.admin,
                        background=False)
        run = run_execute(run=run)
        run_review(run=run, actor=finance)
        run_approve(run=SettlementRun.objects.get(pk=run.pk), actor=finance)
    return Notification.objects.filter(user=setup.engineer, event="settlement_ready").get()


@pytest.mark.django_db
def test_the_message_carries_each_line_with_its_breakdown(setup):
    with time_machine.travel(datetime(2026, 11, 4, 15, tzinfo=SHANGHAI), tick=False):
        ticket = close_ticket(setup, data={"night": True, "km": "650"}, priority="urgent")
    body = _approve(setup).body
    # 200 × 1.15 = 230; +30 % and +20 % of 230; 150 km beyond 500 × 1.50 = 225 → 570.00
    assert "金额 ¥570.00（1 条明细）" in body.splitlines()[0]  # the total, as before (the tenant's language)
    line = next(text for text in body.splitlines() if ticket.number in text)
    assert line == (f"{ticket.number} 上门维修: 基价 200.00 · 大区系数 +30.00 · 加急 +30% +69.00 · 夜间 +20% +46.00"
                    " · 500公里外每公里1.5元 +225.00 = ¥570.00")
    assert "/settlement/me/" in body  # the full list


@pytest.mark.django_db
def test_a_long_month_is_capped_with_a_link_to_the_rest(setup):
    with time_machine.travel(datetime(2026, 11, 4, 15, tzinfo=SHANGHAI), tick=False):
        for _ in range(MAX_LINES + 3):
            close_ticket(setup, data={})
    body = _approve(setup).body
    assert sum("= ¥230.00" in text for text in body.splitlines()) == MAX_LINES
    assert "还有 3 条" in body and "/settlement/me/" in body


def test_split_parts_and_rounding_steps_read_plainly():
    steps = [{"rule": "fixed package", "kind": "fixed", "before": "0", "after": "128000.00"},
             {"rule": "大区系数", "kind": "region_class", "before": "128000.00", "after": "147200.00"},
             {"rule": "rounding", "kind": "rounding", "before": "147200.004", "after": "147200.00"},
             {"rule": "装修分成", "kind": "split", "before": "147200.00", "after": "44160.00",
              "detail": {"role": "designer", "weight": "3.00", "of_weights": "10.00"}}]
    text = line_text(number="ZX-1", item="", role="designer", amount=Decimal("44160.00"), steps=steps)
    assert text == "ZX-1: base 128,000.00 · 大区系数 +19,200.00 · 装修分成: Designer 3/10 = ¥44,160.00"
    parts = line_text(number="WX-2", item="维修", role="parts", amount=Decimal("850"),
                      steps=[{"rule": "parts", "kind": "parts", "before": "0", "after": "850.00"}])
    assert parts == "WX-2 维修: parts at cost 850.00 = ¥850.00"
    assert line_text(number="", item="", role="x", amount=Decimal("5"), steps=[]) == ": ¥5.00"


def test_the_cap_counts_characters_too():
    texts = ["x" * 500] * 5
    capped = lines_text(texts, count=5)
    assert capped.count("x" * 500) == 2 and "3 more lines" in capped
    assert lines_text([], count=0) == ""
