"""The settlement calculator: every rule kind with amounts worked out by hand in fen, the seeds'
cases, and properties (a statement is the sum of its lines; a split never loses or invents a fen)."""

import itertools
import json
from datetime import date
from decimal import Decimal as D

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.calculator import (
    Part,
    PartyVolume,
    RenderedBreakdown,
    Rule,
    RuleBook,
    TicketInput,
    altitude_clean,
    distance_km,
    exclusive_overlaps,
    period_settle,
    period_window,
    rebate_amount,
    rule_check,
    rule_params_clean,
    split_amount,
    ticket_lines,
    ticket_settle,
)

DAY = date(2026, 11, 18)  # a Wednesday
ENGINEER = (("engineer", 7),)


def rule(id, kind, params, **kw):
    return Rule(id=id, name=kw.pop("name", f"{kind}-{id}"), kind=kind, params=rule_params_clean(kind, params), **kw)


REGION = rule(1, "region_class", {"coefficients": {"A": "1.15", "B": "1.05", "C": "1"}}, priority=10)
URGENT = rule(2, "surcharge", {"flag": "urgent", "percent": "30"})
NIGHT = rule(3, "surcharge", {"flag": "night", "percent": "20"})
ALTITUDE = rule(4, "altitude", {"above_m": 3000, "multiplier": "2"}, priority=20)
DISTANCE = rule(5, "distance", {"base_km": "500", "base_amount": "0", "per_km": "1.50"})
HEIGHT = rule(6, "surcharge", {"flag": "height_work", "percent": "15"})


def ticket(**kw):
    kw.setdefault("ticket_id", 1)
    kw.setdefault("closed_on", DAY)
    kw.setdefault("parties", ENGINEER)
    return TicketInput(**kw)


# Each case: the ticket, the rules, the total in yuan worked by hand, and the steps' afters.
CASES = [
    pytest.param(  # 200 × 1.15 = 230.00; urgent 30% of 230 = 69.00; night 20% of 230 = 46.00 → 345.00
        ticket(region_class="A", unit_price=D("200"), flags=frozenset({"urgent", "night"})),
        [REGION, URGENT, NIGHT], "345.00", ["200", "230.00", "299.00", "345.00"], id="east-china-A-urgent-night"),
    pytest.param(  # Tibet, class C (×1), 4200 m above 3000 m doubles: 300 → 600.00
        ticket(region_class="C", unit_price=D("300"), altitude_m=4200),
        [REGION, ALTITUDE], "600.00", ["300", "300", "600"], id="tibet-4200m-double"),
    pytest.param(  # 2900 m is below the threshold: no multiplier
        ticket(region_class="C", unit_price=D("300"), altitude_m=2900),
        [ALTITUDE], "300.00", ["300"], id="below-altitude"),
    pytest.param(  # 650 km: 150 km beyond 500 × 1.50 = 225.00 on an 800.00 installation → 1025.00
        ticket(unit_price=D("800"), distance_km=D("650")),
        [DISTANCE], "1025.00", ["800", "1025.00"], id="650km-distance"),
    pytest.param(  # within 500 km nothing is added (beyond = 0)
        ticket(unit_price=D("800"), distance_km=D("320.5")),
        [DISTANCE], "800.00", ["800", "800.00"], id="within-base-km"),
    pytest.param(  # per item: 45.50 × 3 = 136.50
        ticket(unit_price=D("45.50"), quantity=D("3")), [rule(9, "per_item", {})], "136.50", ["136.50"],
        id="per-item"),
    pytest.param(  # hourly: 80 × 2.5 h = 200.00, the item's price is ignored
        ticket(unit_price=D("999"), hours=D("2.5")), [rule(9, "hourly", {"rate": "80"})], "200.00", ["200.0"],
        id="hourly"),
    pytest.param(  # fixed package 168.00 whatever the price book says
        ticket(unit_price=D("999")), [rule(9, "fixed", {"amount": "168"})], "168.00", ["168"], id="fixed"),
    pytest.param(  # milestones 30/50/20 of 10000; the first two accepted → 8000.00
        ticket(fee=D("10000"), milestones_done=("开工", "水电验收")),
        [rule(9, "milestones", {"milestones": [{"name": "开工", "share": "30"}, {"name": "水电验收", "share": "50"},
                                               {"name": "竣工", "share": "20"}]})], "8000.00", ["8000"],
        id="milestones"),
    pytest.param(  # work at height +15% of 260 = 39.00; cap 30 on the night surcharge (would be 52.00)
        ticket(unit_price=D("260"), flags=frozenset({"height_work", "night"})),
        [HEIGHT, rule(8, "surcharge", {"flag": "night", "percent": "20"}, cap=D("30"))], "329.00",
        ["260", "299", "329"], id="height-and-capped-night"),
    pytest.param(  # minimum: a 20% weekend surcharge on 50 (10.00) is raised to the 15.00 minimum
        ticket(unit_price=D("50"), flags=frozenset({"weekend"})),
        [rule(8, "surcharge", {"flag": "weekend", "percent": "20"}, minimum=D("15"))], "65.00", ["50", "65"],
        id="minimum-weekend"),
    pytest.param(  # rounding once: 33.33 × 1.05 = 34.9965 → 35.00 (half-up at the total)
        ticket(region_class="B", unit_price=D("33.33")), [REGION], "35.00", ["33.33", "34.9965", "35.00"],
        id="round-once-half-up"),
    pytest.param(  # exclusive: the exclusive 50% urgent rule applies alone, the stackable 30% does not
        ticket(unit_price=D("100"), flags=frozenset({"urgent"})),
        [URGENT, rule(10, "surcharge", {"flag": "urgent", "percent": "50"}, exclusive=True, priority=200)],
        "150.00", ["100", "150"], id="exclusive-wins"),
    pytest.param(  # seasonal: a rate that ended on 31 October no longer applies on 18 November
        ticket(unit_price=D("100"), flags=frozenset({"urgent"})),
        [rule(10, "surcharge", {"flag": "urgent", "percent": "50"}, effective_to=date(2026, 10, 31))],
        "100.00", ["100"], id="seasonal-reverted"),
    pytest.param(  # a condition: only VIP customers' tickets get the VIP surcharge
        ticket(unit_price=D("100"), flags=frozenset({"urgent"}), context={"customer.tier": "normal"}),
        [rule(10, "surcharge", {"flag": "urgent", "percent": "50"},
              condition={"field": "customer.tier", "op": "=", "value": "vip"})], "100.00", ["100"],
        id="condition-not-met"),
]


@pytest.mark.parametrize(("t", "rules", "total", "afters"), CASES)
def test_ticket_rule_kinds_by_hand(t, rules, total, afters):
    result = ticket_settle(t, rules)
    assert result.total == D(total)
    assert [str(s.after) for s in result.steps] == afters
    assert [line.amount for line in result.lines] == [D(total)]
    assert result.lines[0].steps == result.steps  # the line carries the whole breakdown
    assert ticket_settle(t, rules) == result  # identical on re-run


def test_breakdown_before_and_after_chain():
    result = ticket_settle(ticket(region_class="A", unit_price=D("200"), flags=frozenset({"urgent", "night"})),
                           [NIGHT, URGENT, REGION])
    steps = result.lines[0].breakdown()
    assert [(s["kind"], s["rule_id"], s["before"], s["after"]) for s in steps] == [
        ("per_item", None, "0.00", "200.00"), ("region_class", 1, "200.00", "230.00"),
        ("surcharge", 2, "230.00", "299.00"), ("surcharge", 3, "299.00", "345.00")]
    for a, b in itertools.pairwise(steps):
        assert a["after"] == b["before"]
    assert steps[2]["detail"] == {"flag": "urgent", "percent": "30", "of": "230.00"}


def test_three_way_split_of_a_renovation():
    # 12,345.67 by 3:2:5 → 3703.701 / 2469.134 / 6172.835 floor to 3703.70, 2469.13, 6172.83 = 12345.66;
    # the left-over fen goes to the largest remainder (crew, .5) → 6172.84.
    split = rule(20, "split", {"roles": [{"role": "designer", "weight": 3}, {"role": "supervisor", "weight": 2},
                                         {"role": "crew", "weight": 5}]})
    result = ticket_settle(ticket(fee=D("12345.67"), parties=(("designer", 1), ("supervisor", 2), ("crew", 3))),
                           [split])
    assert [(line.party_id, line.role, line.amount) for line in result.lines] == [
        (1, "designer", D("3703.70")), (2, "supervisor", D("2469.13")), (3, "crew", D("6172.84"))]
    assert sum(line.amount for line in result.lines) == result.total
    assert result.lines[2].steps[-1].detail["weight"] == "5"


def test_split_ties_go_in_role_order():
    assert split_amount(D("100.00"), [D(1), D(1), D(1)]) == [D("33.34"), D("33.33"), D("33.33")]
    assert split_amount(D("0.02"), [D(1), D(1), D(1)]) == [D("0.01"), D("0.01"), D("0.00")]


def test_split_role_missing_falls_back_to_first_party():
    split = rule(20, "split", {"roles": [{"role": "designer", "weight": 1}]})
    result = ticket_settle(ticket(fee=D("80")), [split])
    assert [(line.role, line.amount) for line in result.lines] == [("engineer", D("80.00"))]
    assert result.problems


def test_nothing_to_price_is_a_problem_not_a_guess():
    result = ticket_settle(ticket(), [REGION])
    assert result.total == 0 and result.lines == () and result.problems


@pytest.mark.parametrize(("mode", "volume", "expected"), [
    # tiers 0 → 0 %, 100,000 → 2 %, 300,000 → 3 %; the distributor crossed 300,000 mid-month at 320,000
    ("retroactive", "320000", "9600.00"),   # 320,000 × 3 %
    ("marginal", "320000", "4600.00"),      # 100,000 × 0 + 200,000 × 2 % + 20,000 × 3 %
    ("retroactive", "299999.99", "5999.9998"),  # still tier 2: × 2 %
    ("marginal", "80000", "0"),
])
def test_tiered_rebate_retroactive_and_marginal(mode, volume, expected):
    params = rule_params_clean("rebate", {"mode": mode, "tiers": [
        {"from": 0, "percent": 0}, {"from": 100000, "percent": 2}, {"from": 300000, "percent": 3}]})
    amount, _detail = rebate_amount(D(volume), 10, params)
    assert amount == D(expected)


def test_distributor_crossing_a_tier_mid_month_gets_a_rounded_rebate_line():
    rebate = rule(30, "rebate", {"mode": "retroactive", "party_kind": "distributor", "tiers": [
        {"from": 0, "percent": 0}, {"from": 100000, "percent": 2}, {"from": 300000, "percent": 3}]})
    volumes = [PartyVolume(5, "distributor", D("320000.00"), 41), PartyVolume(6, "store", D("900000"), 90)]
    lines = period_settle(volumes, [rebate], period_end=date(2026, 11, 30))
    assert [(line.party_id, line.kind, line.amount) for line in lines] == [(5, "rebate", D("9600.00"))]
    assert lines[0].steps[0].detail["tier"] == 3


def test_medical_agent_first_order_8_and_quarter_5_percent():
    first = rule(31, "first_order_bonus", {"threshold": "500000", "percent": "8", "party_kind": "agent"})
    target = rule(32, "target_bonus", {"target": "2000000", "percent": "5", "period": "quarter",
                                       "party_kind": "agent"})
    agent = PartyVolume(9, "agent", D("2100000"), 4, first_order_amount=D("600000"))
    march = period_settle([agent], [first, target], period_end=date(2027, 3, 31))
    # first order 600,000 × 8 % = 48,000.00; quarter 2,100,000 × 5 % = 105,000.00
    assert [(line.kind, line.amount) for line in march] == [("bonus", D("48000.00")), ("bonus", D("105000.00"))]
    february = period_settle([agent], [target], period_end=date(2027, 2, 28))
    assert february == []  # the quarterly rule pays only in the run ending the quarter


def test_first_order_below_threshold_earns_nothing():
    first = rule(31, "first_order_bonus", {"threshold": "500000", "percent": "8"})
    assert period_settle([PartyVolume(9, "agent", D("499999.99"), 1, D("499999.99"))], [first],
                         period_end=date(2027, 1, 31)) == []


def test_period_window():
    assert period_window("month", date(2026, 12, 7)) == (date(2026, 12, 1), date(2026, 12, 31))
    assert period_window("quarter", date(2026, 11, 7)) == (date(2026, 10, 1), date(2026, 12, 31))
    assert period_window("month", date(2028, 2, 3)) == (date(2028, 2, 1), date(2028, 2, 29))


def test_distance_great_circle():
    # 上海人民广场 → 合肥: about 400 km as the crow flies
    km = distance_km(31.2304, 121.4737, 31.8206, 117.2272)
    assert D("395") < km < D("410") and km == km.quantize(D("0.1"))


# --- bad input ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "params", "message"), [
    ("fixed", {"amount": "-1"}, "cannot be below"),
    ("fixed", {"amount": "abc"}, "must be a number"),
    ("fixed", {"amount": "1e12"}, "cannot be above"),
    ("rebate", {"mode": "retroactive", "tiers": [{"from": 0, "percent": 1}, {"from": 300000, "percent": 3},
                                                 {"from": 100000, "percent": 2}]}, "ascending"),
    ("rebate", {"mode": "sideways", "tiers": [{"from": 0, "percent": 1}]}, "retroactive"),
    ("split", {"roles": [{"role": "designer", "weight": 0}, {"role": "crew", "weight": 0}]}, "zero"),
    ("split", {"roles": [{"role": "designer", "weight": -1}]}, "below"),
    ("altitude", {"above_m": 20000, "multiplier": 2}, "above"),
    ("milestones", {"milestones": [{"name": "a", "share": 30}]}, "100%"),
    ("surcharge", {"flag": "full_moon", "percent": 10}, "surcharge"),
    ("teleport", {}, "Unknown rule kind"),
])
def test_bad_rule_params_refused(kind, params, message):
    with pytest.raises(ValidationError) as err:
        rule_params_clean(kind, params)
    assert message in " ".join(err.value.messages)


@pytest.mark.parametrize("value", [-500, 20000, "high", None])
def test_impossible_altitudes_refused(value):
    with pytest.raises(ValidationError):
        altitude_clean(value)


def test_altitude_in_range_accepted():
    assert altitude_clean("4200") == 4200 and altitude_clean(-154) == -154  # 吐鲁番 lies below sea level


def test_rule_check_condition_and_dates():
    with pytest.raises(ValidationError):
        rule_check(Rule(1, "x", "fixed", {"amount": "1"}, condition={"field": "data.", "op": "="}))
    with pytest.raises(ValidationError):
        rule_check(Rule(1, "x", "fixed", {"amount": "1"}, effective_from=date(2026, 2, 1),
                        effective_to=date(2026, 1, 1)))
    with pytest.raises(ValidationError):
        rule_check(Rule(1, "x", "fixed", {"amount": "1"}, cap=D(1), minimum=D(2)))


def test_overlapping_exclusive_rules_found():
    a = rule(1, "surcharge", {"flag": "urgent", "percent": "30"}, exclusive=True, effective_from=date(2026, 1, 1))
    b = rule(2, "surcharge", {"flag": "urgent", "percent": "50"}, exclusive=True, effective_from=date(2026, 6, 1),
             effective_to=date(2026, 8, 31))
    c = rule(3, "surcharge", {"flag": "night", "percent": "50"}, exclusive=True)
    d = rule(4, "surcharge", {"flag": "urgent", "percent": "50"}, exclusive=True, effective_to=date(2025, 12, 31))
    assert exclusive_overlaps(b, [a, c, d]) == [a]
    assert exclusive_overlaps(d, [a, b, c]) == []


# --- properties -----------------------------------------------------------------------------------

fen = st.integers(min_value=0, max_value=10**10).map(lambda n: D(n) / 100)
weights = st.lists(st.integers(min_value=0, max_value=1000).map(D), min_size=1, max_size=8).filter(
    lambda ws: sum(ws) > 0)


@settings(max_examples=300, deadline=None)
@given(total=fen, ws=weights)
def test_split_never_loses_or_invents_a_fen(total, ws):
    parts = split_amount(total, ws)
    assert sum(parts) == total
    assert all(p >= 0 and p == p.quantize(D("0.01")) for p in parts)
    # each part is within one fen of its exact share
    for p, w in zip(parts, ws, strict=True):
        assert abs(p - total * w / sum(ws)) < D("0.01")


@settings(max_examples=150, deadline=None)
@given(price=fen, pct=st.integers(0, 300), cls=st.sampled_from("ABC"),
       roles=st.lists(st.integers(1, 9), min_size=1, max_size=4))
def test_statement_is_sum_of_lines(price, pct, cls, roles):
    split = rule(20, "split", {"roles": [{"role": f"r{i}", "weight": w} for i, w in enumerate(roles)]})
    surcharge = rule(21, "surcharge", {"flag": "urgent", "percent": pct})
    t = ticket(region_class=cls, unit_price=price, flags=frozenset({"urgent"}),
               parties=tuple((f"r{i}", i) for i in range(len(roles))))
    result = ticket_settle(t, [REGION, surcharge, split])
    assert sum(line.amount for line in result.lines) == result.total
    assert result.total == result.total.quantize(D("0.01"))
    assert ticket_settle(t, [split, surcharge, REGION]) == result  # order of the rule list is irrelevant


SPLIT = rule(22, "split", {"roles": [{"role": "designer", "weight": "3"}, {"role": "crew", "weight": "5"},
                                     {"role": "idle", "weight": "0"}]})
VIP = rule(23, "surcharge", {"flag": "night", "percent": "10"},
           condition={"field": "customer.tier", "op": "=", "value": "vip"})
# Every combination of a few values per input (equal values in different exponents included), so
# two tickets that differ in any one input follow each other through the same book.
GRID = [ticket(ticket_id=n, closed_on=day, region_class=cls, unit_price=price, fee=fee, quantity=qty, flags=flags,
               altitude_m=alt, distance_km=km, parties=parties, parts=parts, context=ctx)
        for n, (day, cls, price, fee, qty, flags, alt, km, parties, parts, ctx) in enumerate(itertools.product(
            [DAY, date(2026, 12, 5)], ["A", ""], [None, D("200"), D("200.00")], [None, D("0.01")],
            [D("1"), D("3")], [frozenset(), frozenset({"urgent", "weekend"})], [500, 4200], [None, D("650.5")],
            [(), ENGINEER, (("store", 5),), (("designer", 1), ("crew", 2))],
            [(), (Part("P1", "滤芯", D("2"), D("9.99")),)], [{}, {"customer.tier": "vip"}]))]


@pytest.mark.parametrize(("with_split", "with_condition"), [(False, False), (True, True)])
def test_run_lines_equal_the_calculators_lines(with_split, with_condition):
    """A run's remembered steps (ticket_lines over one RuleBook) give exactly ticket_settle's lines,
    breakdowns included, whatever came before in the run."""
    rules = [REGION, URGENT, NIGHT, ALTITUDE, DISTANCE,
             rule(24, "surcharge", {"flag": "weekend", "percent": "20"}, minimum=D("15"),
                  effective_to=date(2026, 11, 30)),
             *([SPLIT] if with_split else []), *([VIP] if with_condition else [])]
    book = RuleBook(rules)
    for t in GRID:
        expected = [(line.party_id, line.role, line.amount, line.breakdown())
                    for line in ticket_settle(t, rules).lines]
        got = ticket_lines(t, book)
        assert got == expected, t
        assert [str(a) for _p, _r, a, _b in got] == [str(a) for _p, _r, a, _b in expected]


def test_a_rendered_breakdown_is_written_as_json_dumps_writes_the_list():
    from settlement.models import BreakdownEncoder

    steps = [{"rule_id": 1, "rule": "大区系数", "kind": "region_class", "before": "300.00", "after": "345.00",
              "detail": {"class": "A"}}]
    rendered = RenderedBreakdown(steps)
    assert rendered == steps
    assert json.dumps(rendered, cls=BreakdownEncoder) == json.dumps(steps)
    assert json.dumps([{"a": "1"}], cls=BreakdownEncoder) == json.dumps([{"a": "1"}])
