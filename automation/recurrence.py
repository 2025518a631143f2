"""When a recurring plan runs: a pure calculator over a `Rule` dataclass (no database), used by the
schedule service (next run after a tick), the form (is the rule possible?) and the calendar view.

Rules count from `starts_on`: every N days; every N weeks on a weekday; every N months on a day
(a day past the month's end runs on its last day: the 31st of every month runs on 30 April and 28
February); every year on a month and day (a date no year has, 31 February, is refused; 29
February runs on 28 February in common years); or a cron-like rule, five fields "minute hour
day-of-month month day-of-week" (numbers, `*`, ranges `a-b`, lists `a,b`, steps `*/n` and
`a-b/n`; day-of-week 0–6 from Sunday, 7 also Sunday; when both day fields are restricted a day
matching either runs, as in cron). Cron rules are bounded: at most 100 characters, a minute list
of at most 12 and an hour list of at most 24 values once expanded are fine, but a rule firing
more often than every 5 minutes is refused (a ticket each time would flood the queue)."""

from __future__ import annotations

import calendar
import datetime
import itertools
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

KINDS = ("daily", "weekly", "monthly", "yearly", "cron")
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
    cron: str = ""


def rule_problems(rule: Rule) -> dict[str, str]:
    """Field → message for what makes the rule impossible (empty when it can run)."""
    problems = {}
    if rule.kind not in KINDS:
        problems["recurrence"] = "unknown"
        return problems
    if rule.kind == "cron":
        try:
            cron_parse(rule.cron)
        except CronError as exc:
            problems["cron"] = exc.code
        if rule.ends_on is not None and rule.ends_on < rule.starts_on:
            problems["ends_on"] = "before_start"
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
    if rule.kind == "cron":
        return _cron_occurrences(rule, cron_parse(rule.cron), after=after, limit=limit, until=until, zone=zone)
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


# --- cron-like rules ----------------------------------------------------------------------

CRON_MAX_LENGTH = 100
CRON_FIELDS = ("minute", "hour", "day", "month", "weekday")
_CRON_BOUNDS = {"minute": (0, 59), "hour": (0, 23), "day": (1, 31), "month": (1, 12), "weekday": (0, 7)}
MIN_CRON_GAP_MINUTES = 5
# Days walked looking for the next run: 29 February on a Monday can be 28 years away; a rule
# that finds nothing within this many days is refused as never running.
_CRON_SEARCH_DAYS = 366 * 29
_CRON_TOKEN = re.compile(r"^(\*|\d{1,2}(?:-\d{1,2})?)(?:/(\d{1,2}))?$")


class CronError(ValueError):
    """Why a cron rule cannot run: `code` (for the message), `field` (which of the five, or ""),
    `token` (the part at fault)."""

    def __init__(self, code: str, field: str = "", token: str = ""):
        super().__init__(code)
        self.code, self.field, self.token = code, field, token


@dataclass(frozen=True)
class Cron:
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Monday, as datetime.weekday()
    day_any: bool
    weekday_any: bool

    def day_matches(self, day: datetime.date) -> bool:
        if day.month not in self.months:
            return False
        on_day, on_weekday = day.day in self.days, day.weekday() in self.weekdays
        if self.day_any or self.weekday_any:
            return on_day and on_weekday
        return on_day or on_weekday


def _cron_field(text: str, name: str) -> tuple[set[int], bool]:
    low, high = _CRON_BOUNDS[name]
    values: set[int] = set()
    parts = text.split(",")
    if len(parts) > 60:
        raise CronError("too_long", name, text[:20])
    for part in parts:
        match = _CRON_TOKEN.match(part)
        if match is None:
            raise CronError("syntax", name, part[:20])
        span, step_text = match.group(1), match.group(2)
        if span == "*":
            start, end = low, high if name != "weekday" else 6
        elif "-" in span:
            start, end = (int(x) for x in span.split("-"))
            if start > end:
                raise CronError("reversed", name, part)
        else:
            start = end = int(span)
            if step_text is not None:
                end = high if name != "weekday" else 6
        for value in (start, end):
            if not low <= value <= high:
                raise CronError("range", name, part)
        step = int(step_text) if step_text is not None else 1
        if step < 1:
            raise CronError("step", name, part)
        values.update(range(start, end + 1, step))
    return values, text == "*"


def cron_parse(text: str) -> Cron:
    """The cron rule's expanded sets, or CronError saying what is wrong with it."""
    text = (text or "").strip()
    if not text:
        raise CronError("empty")
    if len(text) > CRON_MAX_LENGTH:
        raise CronError("too_long")
    fields = text.split()
    if len(fields) != len(CRON_FIELDS):
        raise CronError("field_count", token=str(len(fields)))
    parsed = {name: _cron_field(part, name) for name, part in zip(CRON_FIELDS, fields, strict=True)}
    minutes = sorted(parsed["minute"][0])
    gaps = [b - a for a, b in itertools.pairwise(minutes)]
    if len(minutes) > 1 and min([*gaps, 60 - minutes[-1] + minutes[0]]) < MIN_CRON_GAP_MINUTES:
        raise CronError("too_often", "minute", fields[0])
    # cron's day-of-week counts from Sunday (0 and 7); datetime's weekday() from Monday.
    weekdays = frozenset((value - 1) % 7 for value in parsed["weekday"][0])
    cron = Cron(minutes=tuple(minutes), hours=tuple(sorted(parsed["hour"][0])), days=frozenset(parsed["day"][0]),
                months=frozenset(parsed["month"][0]), weekdays=weekdays, day_any=parsed["day"][1],
                weekday_any=parsed["weekday"][1])
    if cron.weekday_any and not any(day <= _days_in(2024, month) for month in cron.months for day in cron.days):
        raise CronError("impossible", "day", fields[2])  # 31 February, 31 April …: no year has it
    return cron


def _cron_occurrences(rule: Rule, cron: Cron, *, after: datetime.datetime, limit: int,
                      until: datetime.datetime | None, zone: ZoneInfo) -> list[datetime.datetime]:
    found: list[datetime.datetime] = []
    local_after = after.astimezone(zone)
    day = max(local_after.date(), rule.starts_on)
    for _ in range(_CRON_SEARCH_DAYS):
        if rule.ends_on is not None and day > rule.ends_on:
            break
        if cron.day_matches(day):
            for hour in cron.hours:
                for minute in cron.minutes:
                    moment = datetime.datetime.combine(day, datetime.time(hour, minute), tzinfo=zone)
                    if until is not None and moment > until:
                        return found
                    if moment > after:
                        found.append(moment)
                        if len(found) >= limit:
                            return found
        day += datetime.timedelta(days=1)
    return found
