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
    (Rule("hourly", 1, NINE, datetime.date(2026, 1, 1)), "recurrence"),
    (Rule("cron", 1, NINE, datetime.date(2026, 1, 1)), "cron"),
])
def test_impossible_rules(rule, key):
    assert key in rule_problems(rule)
    assert occurrences(rule, after=at(2026, 1, 1)) == []


def cron(text, starts=datetime.date(2026, 12, 7), ends=None):
    return Rule("cron", 1, NINE, starts, ends_on=ends, cron=text)


def test_cron_weekdays_at_eight():
    assert occurrences(cron("0 8 * * 1-5"), after=at(2026, 12, 11), limit=3) == [
        at(2026, 12, 11, 8), at(2026, 12, 14, 8), at(2026, 12, 15, 8)]


def test_cron_lists_steps_and_sunday_as_seven():
    assert occurrences(cron("0,30 9 1-10/3 * *"), after=at(2026, 12, 7), limit=3) == [
        at(2026, 12, 7, 9), at(2026, 12, 7, 9, 30), at(2026, 12, 10, 9)]
    assert occurrences(cron("15 10 * * 7"), after=at(2026, 12, 7), limit=1) == [at(2026, 12, 13, 10, 15)]


def test_cron_day_fields_either_match_as_in_cron():
    # The 1st of the month or any Friday.
    assert [o.date() for o in occurrences(cron("0 9 1 * 5"), after=at(2026, 12, 7), limit=3)] == [
        datetime.date(2026, 12, 11), datetime.date(2026, 12, 18), datetime.date(2026, 12, 25)]
    assert next_run(cron("0 9 1 * 5"), after=at(2026, 12, 26)) == at(2027, 1, 1, 9)


def test_cron_29_february_waits_for_a_leap_year_and_stops_at_the_end_date():
    assert next_run(cron("0 0 29 2 *"), after=at(2026, 12, 7)) == at(2028, 2, 29)
    assert next_run(cron("0 0 29 2 *", ends=datetime.date(2027, 12, 31)), after=at(2026, 12, 7)) is None


@pytest.mark.parametrize("text, code", [
    ("", "empty"),
    ("0 0 31 2 *", "impossible"),
    ("0 0 30,31 2 *", "impossible"),
    ("60 9 * * *", "range"),
    ("0 24 * * *", "range"),
    ("0 9 0 * *", "range"),
    ("0 9 * 13 *", "range"),
    ("0 9 * * 8", "range"),
    ("0 9 1 * * *", "field_count"),
    ("0 9 1 *", "field_count"),
    ("0 9 L * *", "syntax"),
    ("0 9 5-1 * *", "reversed"),
    ("0 9 */0 * *", "step"),
    ("* * * * *", "too_often"),
    ("0-10 9 * * *", "too_often"),
    ("0 " * 60, "too_long"),
])
def test_impossible_or_malformed_cron_rules(text, code):
    assert rule_problems(cron(text)) == {"cron": code}
    assert occurrences(cron(text), after=at(2026, 12, 7)) == []
