"""When a recurring plan runs: a pure calculator over a `Rule` dataclass (no database), used by the
schedule service (next run after a tick), the form (is the rule possible?) and the calendar view.

Rules count from `starts_on`: every N days; every N weeks on a weekday; every N months on a day
(a day past the month's end runs on its last day: the 31st of every month runs on 30 April and 28
February); every year on a month and day (a date no year has, 31 February, is refused; 29
February runs on 28 February in common years)."""

from __future__ import annotations

import calendar
import datetime
from dataclasses import dataclass
from zoneinfo import ZoneInfo

KINDS = ("daily", "weekly", "monthly", "yearly")
MAX_EVERY = 366
_SEARCH_LIMIT = 5000  # occurrences walked before giving up (a rule that never lands)


@dataclass(frozen=True)
class Rule:
    kind: str
    every: int
    at: datetime.time
    starts_on: datetime.date
    ends_on: datetime.date | None = None
    weekday: int | None = None  # 0 = Monday
    month_day: int | None = None
    month: int | None = None
    zone: str = "Asia/Shanghai"


def rule_problems(rule: Rule) -> dict[str, str]:
    """Field → message for what makes the rule impossible (empty when it can run)."""
    problems = {}
    if rule.kind not in KINDS:
        problems["recurrence"] = "unknown"
        return problems
    if not 1 <= rule.every <= MAX_EVERY:
        problems["every"] = "range"
    if rule.kind == "weekly" and (rule.weekday is None or not 0 <= rule.weekday <= 6):
        problems["weekday"] = "required"
    if rule.kind in ("monthly", "yearly") and (rule.month_day is None or not 1 <= rule.month_day <= 31):
        problems["month_day"] = "required"
    if rule.kind == "yearly":
        if rule.month is None or not 1 <= rule.month <= 12:
            problems["month"] = "required"
        elif rule.month_day and rule.month_day > _days_in(2024, rule.month):  # 2024: a leap year
            problems["month_day"] = "impossible"
    if rule.ends_on is not None and rule.ends_on < rule.starts_on:
        problems["ends_on"] = "before_start"
    return problems


def _days_in(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def _add_months(year: int, month: int, n: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + n
    return index // 12, index % 12 + 1


def _dates(rule: Rule, near: datetime.date):
    """The rule's dates in order, from the last one a little before `near` (endless; callers
    stop): the walk skips the periods already gone, so a plan years old costs no more."""
    start = rule.starts_on
    gap = max(0, (near - start).days - 2)
    if rule.kind == "daily":
        day = start + datetime.timedelta(days=(gap // rule.every) * rule.every)
        while True:
            yield day
            day += datetime.timedelta(days=rule.every)
    elif rule.kind == "weekly":
        assert rule.weekday is not None
        day = start + datetime.timedelta(days=(rule.weekday - start.weekday()) % 7)
        day += datetime.timedelta(weeks=(gap // (7 * rule.every)) * rule.every)
        while True:
            yield day
            day += datetime.timedelta(weeks=rule.every)
    elif rule.kind == "monthly":
        assert rule.month_day is not None
        year, month = start.year, start.month
        months = max(0, (near.year - year) * 12 + near.month - month - 1)
        n = (months // rule.every) * rule.every
        while True:
            y, m = _add_months(year, month, n)
            day = datetime.date(y, m, min(rule.month_day, _days_in(y, m)))
            if day >= start:
                yield day
            n += rule.every
    else:
        assert rule.month is not None and rule.month_day is not None
        year = max(start.year, near.year - 1)
        while True:
            day = datetime.date(year, rule.month, min(rule.month_day, _days_in(year, rule.month)))
            if day >= start:
                yield day
            year += 1


def occurrences(rule: Rule, *, after: datetime.datetime, limit: int = 1,
                until: datetime.datetime | None = None) -> list[datetime.datetime]:
    """Up to `limit` run times strictly after `after` (and not after `until`), aware datetimes in
    the rule's zone. Empty once the rule has ended."""
    if rule_problems(rule):
        return []
    zone = ZoneInfo(rule.zone)
    found: list[datetime.datetime] = []
    for walked, day in enumerate(_dates(rule, after.astimezone(zone).date())):
        if walked > _SEARCH_LIMIT or (rule.ends_on is not None and day > rule.ends_on):
            break
        moment = datetime.datetime.combine(day, rule.at, tzinfo=zone)
        if until is not None and moment > until:
            break
        if moment > after:
            found.append(moment)
            if len(found) >= limit:
                break
    return found


def next_run(rule: Rule, *, after: datetime.datetime) -> datetime.datetime | None:
    """The first run time strictly after `after`, or None when the rule has ended."""
    found = occurrences(rule, after=after, limit=1)
    return found[0] if found else None
