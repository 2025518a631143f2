"""Business-hours arithmetic for SLA deadlines: "start + N working minutes" and "working minutes
between two moments" over a `Calendar` (a time zone, weekly hours, holidays, make-up working
days). Pure: plain values in, plain values out, no database (the models and the selector that
build a `Calendar` from rows are in workflow/models.py and workflow/selectors.py).

Conventions, decided once here:
- Moments are aware datetimes; a naive one is refused. The calendar's time zone decides which
  local day a moment falls on and where that day's working intervals lie; results come back in
  the calendar's zone.
- A working interval is half-open, [start, end): at 18:00 an office open 09:00–18:00 is closed.
  Clock times are whole minutes after local midnight, "24:00" allowed as an end.
- Minutes are real elapsed minutes. On a day a DST change falls inside working hours the day
  really is an hour shorter or longer (a 24×7 calendar in Europe/Berlin has 23 working hours on
  the last Sunday of March). Local clock times are read with fold=0: a time that happens twice
  means its first occurrence, a time skipped by the change is read with the offset before it;
  intervals of one day that then overlap are merged.
- `due_at(cal, start, 0)` is the next working moment: `start` itself inside working time, else
  the start of the next working interval (the clock starts there). For N > 0 the result is the
  moment the N-th working minute is used up, which may be the very end of an interval (due at
  18:00, not at 09:00 the next working day).
- `working_minutes_between(cal, a, b)` is whole minutes, truncated toward zero (a part-minute does
  not count), negative when b is before a; `working_time_between` gives the exact timedelta.

Cost follows the number of days walked, never minutes: each day is a handful of intervals, and a
whole week with no holiday, make-up day or DST change is skipped in one step (the week's minutes
are known). A calendar with no working time left raises `CalendarError` instead of looping."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MINUTES_PER_DAY = 24 * 60
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_INTERVALS_PER_DAY = 12
# No deadline is set further than this: past it the walk gives up with an error, whatever the
# calendar (a last guard; a calendar with no working time is refused earlier and more clearly).
MAX_DAYS = 366 * 20

Interval = tuple[int, int]  # minutes after local midnight, [start, end), 0 <= start < end <= 1440
DayHours = tuple[Interval, ...]
Span = tuple[datetime, datetime]  # UTC instants, [start, end)

_ZERO = timedelta(0)
_DAY = timedelta(days=1)
_WEEK = timedelta(days=7)


class CalendarError(ValueError):
    """Bad calendar data or arguments. `code` says which rule broke (forms and services map it to
    a translated message), `params` the values the message needs."""

    def __init__(self, code: str, message: str, **params: object) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


# --- parsing clock texts and hours -------------------------------------------------------------

def clock_parse(text: object) -> int:
    """"HH:MM" → minutes after midnight, "00:00" to "24:00"."""
    if not isinstance(text, str) or len(text) != 5 or text[2] != ":" or not (text[:2] + text[3:]).isdigit():
        raise CalendarError("clock", f"{text!r} is not a time as HH:MM.", value=str(text))
    hours, minutes = int(text[:2]), int(text[3:])
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise CalendarError("clock", f"{text!r} is not a time as HH:MM.", value=text)
    return hours * 60 + minutes


def clock_format(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def hours_parse(value: object) -> DayHours:
    """One day's hours from data: a list of [start, end] pairs of "HH:MM" texts (or of minutes),
    in any order. Each interval must end after it starts; intervals may touch (merged) but not
    overlap. An empty list is a day off."""
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or len(value) > MAX_INTERVALS_PER_DAY:
        raise CalendarError("hours", "Hours are a list of [start, end] pairs.", limit=MAX_INTERVALS_PER_DAY)
    intervals = []
    for pair in value:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise CalendarError("hours", "Hours are a list of [start, end] pairs.", limit=MAX_INTERVALS_PER_DAY)
        start, end = (p if isinstance(p, int) and not isinstance(p, bool) else clock_parse(p) for p in pair)
        if not 0 <= start < end <= MINUTES_PER_DAY:
            raise CalendarError("interval_order", "An interval must end after it starts.",
                                start=clock_format(max(0, min(start, MINUTES_PER_DAY))),
                                end=clock_format(max(0, min(end, MINUTES_PER_DAY))))
        intervals.append((start, end))
    intervals.sort()
    merged: list[Interval] = []
    for start, end in intervals:
        if merged and start < merged[-1][1]:
            raise CalendarError("interval_overlap", "Intervals overlap.",
                                first=f"{clock_format(merged[-1][0])}–{clock_format(merged[-1][1])}",
                                second=f"{clock_format(start)}–{clock_format(end)}")
        if merged and start == merged[-1][1]:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return tuple(merged)


def hours_dump(hours: DayHours) -> list[list[str]]:
    """The stored form of one day's hours (the inverse of hours_parse)."""
    return [[clock_format(start), clock_format(end)] for start, end in hours]


def weekly_parse(value: object) -> tuple[DayHours, ...]:
    """Weekly hours from data: {"mon": [["09:00", "12:00"], ["13:30", "18:00"]], …, "sun": []}.
    A weekday left out is a day off."""
    if not isinstance(value, Mapping):
        raise CalendarError("weekly", "Weekly hours are a mapping of weekday (mon…sun) to hours.")
    unknown = sorted(str(k) for k in value if k not in WEEKDAYS)
    if unknown:
        raise CalendarError("weekday", f"Unknown weekday {unknown[0]!r}.", value=unknown[0])
    week = []
    for name in WEEKDAYS:
        try:
            week.append(hours_parse(value.get(name)))
        except CalendarError as exc:
            exc.params["weekday"] = name
            raise
    return tuple(week)


def weekly_dump(week: Sequence[DayHours]) -> dict[str, list[list[str]]]:
    return {name: hours_dump(hours) for name, hours in zip(WEEKDAYS, week, strict=True)}


def zone_get(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise CalendarError("time_zone", f"Unknown time zone {name!r}.", value=str(name)) from None


# --- the calendar ----------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Calendar:
    """When work happens. `weekly` holds seven days' hours, Monday first; `holidays` are dates
    with no working time whatever their weekday; `workdays` are make-up working days (调休) with
    their hours, also whatever their weekday. A date cannot be both."""

    time_zone: str
    weekly: tuple[DayHours, ...]
    holidays: frozenset[date] = frozenset()
    workdays: Mapping[date, DayHours] = field(default_factory=dict)

    def __post_init__(self) -> None:
        zone_get(self.time_zone)
        if len(self.weekly) != 7:
            raise CalendarError("weekly", "Weekly hours need seven days, Monday first.")
        for hours in (*self.weekly, *self.workdays.values()):
            if hours_parse(list(hours)) != tuple(hours):
                raise CalendarError("hours", "Hours must be sorted, separate [start, end) intervals.",
                                    limit=MAX_INTERVALS_PER_DAY)
        both = sorted(self.holidays & set(self.workdays))
        if both:
            raise CalendarError("day_twice", f"{both[0]} is both a holiday and a working day.",
                                date=both[0].isoformat())
        # Read-only from here on: a Calendar is shared between requests (scrm.config_cache).
        object.__setattr__(self, "workdays", MappingProxyType(dict(self.workdays)))

    @classmethod
    def build(cls, *, time_zone: str, weekly: Mapping[str, object], holidays: Iterable[date] = (),
              workdays: Mapping[date, object] | None = None) -> Calendar:
        """From data as stored: weekly hours as `weekly_parse` reads them, make-up days mapping a
        date to a list of intervals or to a weekday name whose hours it keeps."""
        week = weekly_parse(weekly)
        extra = {}
        for day, hours in (workdays or {}).items():
            extra[day] = week[WEEKDAYS.index(hours)] if isinstance(hours, str) and hours in WEEKDAYS \
                else hours_parse(hours)
        return cls(time_zone=time_zone, weekly=week, holidays=frozenset(holidays), workdays=extra)

    @classmethod
    def always(cls, time_zone: str = "UTC") -> Calendar:
        """24×7: every moment is working time (holidays do not apply)."""
        return cls(time_zone=time_zone, weekly=(((0, MINUTES_PER_DAY),),) * 7)

    @cached_property
    def zone(self) -> ZoneInfo:
        return zone_get(self.time_zone)

    @cached_property
    def is_24x7(self) -> bool:
        return all(hours == ((0, MINUTES_PER_DAY),) for hours in self.weekly) and not self.holidays

    @cached_property
    def week_minutes(self) -> int:
        """Working minutes of a week without holidays, make-up days or a DST change."""
        return sum(end - start for hours in self.weekly for start, end in hours)

    @cached_property
    def special_dates(self) -> list[date]:
        return sorted(self.holidays | set(self.workdays))

    def hours_on(self, day: date) -> DayHours:
        """The local working intervals of one date."""
        if day in self.workdays:
            return self.workdays[day]
        if day in self.holidays:
            return ()
        return self.weekly[day.weekday()]

    def spans_on(self, day: date) -> list[Span]:
        """The working intervals of one local date as UTC instants, sorted and separate."""
        midnight = datetime(day.year, day.month, day.day, tzinfo=self.zone)
        spans: list[Span] = []
        for start, end in self.hours_on(day):
            # Wall-clock arithmetic (same tzinfo), then fold=0 conversion: see the module docstring.
            a = (midnight + timedelta(minutes=start)).astimezone(UTC)
            b = (midnight + timedelta(minutes=end)).astimezone(UTC)
            if b <= a:  # wholly inside a skipped hour
                continue
            if spans and a <= spans[-1][1]:
                spans[-1] = (spans[-1][0], max(b, spans[-1][1]))
            else:
                spans.append((a, b))
        return spans

    def midnight(self, day: date) -> datetime:
        return datetime(day.year, day.month, day.day, tzinfo=self.zone).astimezone(UTC)

    def week_is_plain(self, day: date) -> bool:
        """True when the seven days from `day` have no holiday, no make-up day and no DST change,
        so their working time is exactly `week_minutes`. (A zone that changes offset twice within
        one week and back would fool the offset test; no zone in use does.)"""
        specials = self.special_dates
        i = bisect.bisect_left(specials, day)
        if i < len(specials) and specials[i] < day + _WEEK:
            return False
        start = datetime(day.year, day.month, day.day, tzinfo=self.zone)
        end = start + _WEEK
        return start.utcoffset() == end.utcoffset()

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def _no_time_left(self, day: date) -> bool:
        return self.week_minutes == 0 and (not self.special_dates or day > self.special_dates[-1])


def _aware(moment: datetime, name: str) -> datetime:
    if not isinstance(moment, datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise CalendarError("naive", f"{name} must be an aware datetime.", name=name)
    return moment.astimezone(UTC)


def _no_working_time() -> CalendarError:
    return CalendarError("no_working_time", "The calendar has no working time left to count in.")


# --- the two calculations -------------------------------------------------------------------

def is_working(calendar: Calendar, moment: datetime) -> bool:
    """True when `moment` lies inside working time."""
    t = _aware(moment, "moment")
    return any(a <= t < b for a, b in calendar.spans_on(calendar.local_date(t)))


def due_at(calendar: Calendar, start: datetime, minutes: int) -> datetime:
    """The moment `minutes` working minutes after `start` are used up (see the module docstring
    for N = 0 and for a start outside working time). Raises CalendarError when the calendar has
    no working time from `start` on."""
    t = _aware(start, "start")
    if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 0:
        raise CalendarError("minutes", "Minutes must be a whole number, zero or more.")
    zone = calendar.zone
    if calendar.is_24x7:
        return (t + timedelta(minutes=minutes)).astimezone(zone)
    remaining = timedelta(minutes=minutes)
    week = timedelta(minutes=calendar.week_minutes)
    day = calendar.local_date(t)
    last = day + timedelta(days=MAX_DAYS)
    while day < last:
        if calendar._no_time_left(day):
            raise _no_working_time()
        # Skip whole weeks while more than a week's worth remains: the last one is walked by day.
        while (remaining > week > _ZERO and day < last and calendar.midnight(day) >= t
               and calendar.week_is_plain(day)):
            remaining -= week
            day += _WEEK
        for a, b in calendar.spans_on(day):
            if b <= t:
                continue
            a = max(a, t)
            if not remaining:
                return a.astimezone(zone)
            if remaining <= b - a:
                return (a + remaining).astimezone(zone)
            remaining -= b - a
        day += _DAY
    raise CalendarError("too_far", f"Deadlines are set at most {MAX_DAYS} days ahead.", days=MAX_DAYS)


def working_time_between(calendar: Calendar, a: datetime, b: datetime) -> timedelta:
    """The exact working time in [a, b); negative when b is before a."""
    start, end = _aware(a, "a"), _aware(b, "b")
    if end < start:
        return -working_time_between(calendar, b, a)
    if calendar.is_24x7:
        return end - start
    total = _ZERO
    week = timedelta(minutes=calendar.week_minutes)
    day = calendar.local_date(start)
    while calendar.midnight(day) < end:
        if calendar._no_time_left(day):
            break
        midnight = calendar.midnight(day)
        if (midnight >= start and week and calendar.week_is_plain(day)
                and calendar.midnight(day + _WEEK) <= end):
            total += week
            day += _WEEK
            continue
        for s, e in calendar.spans_on(day):
            lo, hi = max(s, start), min(e, end)
            if hi > lo:
                total += hi - lo
        day += _DAY
    return total


def working_minutes_between(calendar: Calendar, a: datetime, b: datetime) -> int:
    """Whole working minutes in [a, b), truncated toward zero; negative when b is before a."""
    time = working_time_between(calendar, a, b)
    whole = abs(time) // timedelta(minutes=1)
    return whole if time >= _ZERO else -whole
