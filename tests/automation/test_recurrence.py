"""The recurrence calculator, without a database: month ends, leap years, week intervals, end
dates, impossible rules, and plans years old (the walk skips the periods already gone)."""

import datetime
from zoneinfo import ZoneInfo

import pytest

from automation.recurrence import Rule, next_run, occurrences, rule_problems

SH = ZoneInfo("Asia/Shanghai")
NINE = datetime.time(9)


def at(*args):
    return datetime.datetime(*args, tzinfo=SH)


def test_the_31st_runs_on_the_last_day_of_shorter_months():
    rule = Rule("monthly", 1, NINE, datetime.date(2027, 1, 1), month_day=31)
    assert [o.date() for o in occurrences(rule, after=at(2027, 1, 1), limit=4)] == [
        datetime.date(2027, 1, 31), datetime.date(2027, 2, 28), datetime.date(2027, 3, 31), datetime.date(2027, 4, 30)]


def test_every_three_months_counts_from_the_start():
    rule = Rule("monthly", 3, NINE, datetime.date(2026, 12, 7), month_day=15)
    assert [o.date() for o in occurrences(rule, after=at(2026, 12, 7), limit=3)] == [
        datetime.date(2026, 12, 15), datetime.date(2027, 3, 15), datetime.date(2027, 6, 15)]
    assert next_run(rule, after=at(2031, 1, 1)) == at(2031, 3, 15, 9)


def test_every_second_monday():
    rule = Rule("weekly", 2, NINE, datetime.date(2026, 12, 9), weekday=0)  # starts on a Wednesday
    assert [o.date() for o in occurrences(rule, after=at(2026, 12, 9), limit=3)] == [
        datetime.date(2026, 12, 14), datetime.date(2026, 12, 28), datetime.date(2027, 1, 11)]


def test_29_february_runs_on_the_28th_in_common_years():
    rule = Rule("yearly", 1, NINE, datetime.date(2027, 1, 1), month=2, month_day=29)
    assert [o.date() for o in occurrences(rule, after=at(2027, 1, 1), limit=2)] == [
        datetime.date(2027, 2, 28), datetime.date(2028, 2, 29)]


def test_a_rule_ends():
    rule = Rule("daily", 1, NINE, datetime.date(2026, 12, 1), ends_on=datetime.date(2026, 12, 3))
    assert len(occurrences(rule, after=at(2026, 11, 30), limit=10)) == 3
    assert next_run(rule, after=at(2026, 12, 3, 9)) is None


def test_a_plan_years_old_is_as_cheap_as_a_new_one():
    rule = Rule("daily", 1, NINE, datetime.date(2000, 1, 1))
    assert next_run(rule, after=at(2026, 12, 7, 10)) == at(2026, 12, 8, 9)


@pytest.mark.parametrize("rule, key", [
    (Rule("yearly", 1, NINE, datetime.date(2026, 1, 1), month=2, month_day=31), "month_day"),
    (Rule("yearly", 1, NINE, datetime.date(2026, 1, 1), month=4, month_day=31), "month_day"),
    (Rule("yearly", 1, NINE, datetime.date(2026, 1, 1), month=13, month_day=1), "month"),
    (Rule("weekly", 1, NINE, datetime.date(2026, 1, 1), weekday=7), "weekday"),
    (Rule("monthly", 1, NINE, datetime.date(2026, 1, 1)), "month_day"),
    (Rule("daily", 0, NINE, datetime.date(2026, 1, 1)), "every"),
    (Rule("daily", 1, NINE, datetime.date(2026, 1, 2), ends_on=datetime.date(2026, 1, 1)), "ends_on"),
    (Rule("cron", 1, NINE, datetime.date(2026, 1, 1)), "recurrence"),
])
def test_impossible_rules(rule, key):
    assert key in rule_problems(rule)
    assert occurrences(rule, after=at(2026, 1, 1)) == []
