"""The pure business-hours calculator (workflow/sla.py): tables of (start, minutes, due) across
weekends, lunch breaks, holidays, make-up days (调休), midnight, a DST zone and 24×7, the bad
input it refuses, and hypothesis properties tying due_at and working_minutes_between together."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workflow.sla import (
    WEEKDAYS,
    Calendar,
    CalendarError,
    due_at,
    hours_parse,
    is_working,
    weekly_parse,
    working_minutes_between,
    working_time_between,
)

SH = ZoneInfo("Asia/Shanghai")
BER = ZoneInfo("Europe/Berlin")
OFFICE = [["09:00", "12:00"], ["13:30", "18:00"]]  # 7.5 h with a lunch break


def sh(*args):
    return datetime(*args, tzinfo=SH)


def ber(*args):
    return datetime(*args, tzinfo=BER)


# 2026: Oct 1–7 National Day (Thu–Wed), Sat Oct 10 a make-up day with Monday's hours;
# Sun Sep 20 a make-up day with explicit short hours.
SHANGHAI = Calendar.build(
    time_zone="Asia/Shanghai",
    weekly=dict.fromkeys(WEEKDAYS[:5], OFFICE),
    holidays=[date(2026, 10, d) for d in range(1, 8)],
    workdays={date(2026, 10, 10): "mon", date(2026, 9, 20): [["10:00", "12:00"]]},
)
# A shop open across midnight: 18:00–24:00 and 00:00–02:00 every day.
NIGHT = Calendar.build(time_zone="Asia/Shanghai",
                       weekly={day: [["00:00", "02:00"], ["18:00", "24:00"]] for day in WEEKDAYS})
BERLIN = Calendar.build(time_zone="Europe/Berlin", weekly={day: [["09:00", "18:00"]] for day in WEEKDAYS[:5]})
BERLIN_NIGHTS = Calendar.build(time_zone="Europe/Berlin", weekly={day: [["01:00", "04:00"]] for day in WEEKDAYS})
ALWAYS_BERLIN = Calendar.always("Europe/Berlin")


DUE_CASES = [
    # (id, calendar, start, minutes, due)
    ("inside, same interval", SHANGHAI, sh(2026, 12, 7, 9, 0), 60, sh(2026, 12, 7, 10, 0)),
    ("ends exactly at interval end", SHANGHAI, sh(2026, 12, 7, 11, 0), 60, sh(2026, 12, 7, 12, 0)),
    ("across lunch", SHANGHAI, sh(2026, 12, 7, 11, 30), 60, sh(2026, 12, 7, 14, 0)),
    ("start in lunch", SHANGHAI, sh(2026, 12, 7, 12, 30), 30, sh(2026, 12, 7, 14, 0)),
    ("start before opening", SHANGHAI, sh(2026, 12, 7, 7, 0), 15, sh(2026, 12, 7, 9, 15)),
    ("start after closing", SHANGHAI, sh(2026, 12, 7, 19, 0), 15, sh(2026, 12, 8, 9, 15)),
    ("friday over the weekend", SHANGHAI, sh(2026, 12, 4, 17, 0), 120, sh(2026, 12, 7, 10, 0)),
    ("start on saturday", SHANGHAI, sh(2026, 12, 5, 10, 0), 30, sh(2026, 12, 7, 9, 30)),
    ("a whole working day", SHANGHAI, sh(2026, 12, 7, 9, 0), 450, sh(2026, 12, 7, 18, 0)),
    ("two weeks exactly", SHANGHAI, sh(2026, 12, 7, 9, 0), 450 * 10, sh(2026, 12, 18, 18, 0)),
    ("seconds are kept", SHANGHAI, sh(2026, 12, 7, 9, 0, 30), 1, sh(2026, 12, 7, 9, 1, 30)),
    ("zero minutes inside", SHANGHAI, sh(2026, 12, 7, 10, 0), 0, sh(2026, 12, 7, 10, 0)),
    ("zero minutes at closing", SHANGHAI, sh(2026, 12, 7, 18, 0), 0, sh(2026, 12, 8, 9, 0)),
    ("zero minutes on sunday", SHANGHAI, sh(2026, 12, 6, 10, 0), 0, sh(2026, 12, 7, 9, 0)),
    ("holiday week skipped", SHANGHAI, sh(2026, 9, 30, 17, 0), 120, sh(2026, 10, 8, 10, 0)),
    ("start on a holiday", SHANGHAI, sh(2026, 10, 3, 10, 0), 30, sh(2026, 10, 8, 9, 30)),
    ("make-up saturday counts", SHANGHAI, sh(2026, 10, 9, 17, 0), 120, sh(2026, 10, 10, 10, 0)),
    ("make-up sunday, own hours", SHANGHAI, sh(2026, 9, 19, 8, 0), 150, sh(2026, 9, 21, 9, 30)),
    ("other weekends stay off", SHANGHAI, sh(2026, 10, 16, 17, 0), 120, sh(2026, 10, 19, 10, 0)),
    ("utc start, shanghai hours", SHANGHAI, datetime(2026, 12, 7, 0, 30, tzinfo=UTC), 60, sh(2026, 12, 7, 10, 0)),
    ("across midnight", NIGHT, sh(2026, 12, 7, 23, 0), 120, sh(2026, 12, 8, 1, 0)),
    ("midnight exactly", NIGHT, sh(2026, 12, 7, 23, 0), 60, sh(2026, 12, 8, 0, 0)),
    ("start in the closed day", NIGHT, sh(2026, 12, 7, 3, 0), 150, sh(2026, 12, 7, 20, 30)),
    ("berlin friday before DST", BERLIN, ber(2026, 3, 27, 17, 0), 120, ber(2026, 3, 30, 10, 0)),
    ("berlin, utc start in CEST", BERLIN, datetime(2026, 7, 1, 6, 0, tzinfo=UTC), 60, ber(2026, 7, 1, 10, 0)),
    # 01:00–04:00 local: 2 real hours on Mar 29 (02:00→03:00), 4 on Oct 25 (03:00→02:00).
    ("berlin spring night is shorter", BERLIN_NIGHTS, ber(2026, 3, 29, 1, 0), 150, ber(2026, 3, 30, 1, 30)),
    ("berlin autumn night is longer", BERLIN_NIGHTS, ber(2026, 10, 25, 1, 0), 210, ber(2026, 10, 25, 3, 30)),
    ("24x7 is wall time", ALWAYS_BERLIN, ber(2026, 12, 5, 23, 0), 90, ber(2026, 12, 6, 0, 30)),
    ("24x7 across spring DST", ALWAYS_BERLIN, ber(2026, 3, 29, 0, 0), 1440, ber(2026, 3, 30, 1, 0)),
]


@pytest.mark.parametrize(("calendar", "start", "minutes", "due"), [c[1:] for c in DUE_CASES],
                         ids=[c[0] for c in DUE_CASES])
def test_due_at(calendar, start, minutes, due):
    result = due_at(calendar, start, minutes)
    assert result == due
    assert result.tzinfo == calendar.zone
    assert result.utcoffset() == due.utcoffset()


BETWEEN_CASES = [
    # (id, calendar, a, b, minutes)
    ("same interval", SHANGHAI, sh(2026, 12, 7, 9, 0), sh(2026, 12, 7, 10, 0), 60),
    ("lunch not counted", SHANGHAI, sh(2026, 12, 7, 11, 0), sh(2026, 12, 7, 14, 0), 90),
    ("weekend not counted", SHANGHAI, sh(2026, 12, 4, 17, 0), sh(2026, 12, 7, 10, 0), 120),
    ("both outside", SHANGHAI, sh(2026, 12, 5, 0, 0), sh(2026, 12, 6, 23, 59), 0),
    ("a whole week", SHANGHAI, sh(2026, 12, 7, 0, 0), sh(2026, 12, 14, 0, 0), 2250),
    ("a year of weeks", SHANGHAI, sh(2027, 1, 4, 0, 0), sh(2027, 12, 27, 0, 0), 2250 * 51),
    ("holiday week", SHANGHAI, sh(2026, 9, 28, 0, 0), sh(2026, 10, 12, 0, 0), 450 * (3 + 2 + 1)),
    ("make-up sunday hours", SHANGHAI, sh(2026, 9, 20, 0, 0), sh(2026, 9, 21, 0, 0), 120),
    ("part minute truncated", SHANGHAI, sh(2026, 12, 7, 9, 0), sh(2026, 12, 7, 9, 1, 59), 1),
    ("reversed is negative", SHANGHAI, sh(2026, 12, 7, 10, 0), sh(2026, 12, 7, 9, 0, 30), -59),
    ("empty range", SHANGHAI, sh(2026, 12, 7, 10, 0), sh(2026, 12, 7, 10, 0), 0),
    ("across midnight", NIGHT, sh(2026, 12, 7, 23, 0), sh(2026, 12, 8, 1, 0), 120),
    ("berlin across DST week", BERLIN, ber(2026, 3, 23, 0, 0), ber(2026, 4, 6, 0, 0), 540 * 10),
    ("berlin spring night", BERLIN_NIGHTS, ber(2026, 3, 29, 0, 0), ber(2026, 3, 30, 0, 0), 120),
    ("berlin autumn night", BERLIN_NIGHTS, ber(2026, 10, 25, 0, 0), ber(2026, 10, 26, 0, 0), 240),
    ("24x7 spring day", ALWAYS_BERLIN, ber(2026, 3, 29, 0, 0), ber(2026, 3, 30, 0, 0), 23 * 60),
    ("24x7 autumn day", ALWAYS_BERLIN, ber(2026, 10, 25, 0, 0), ber(2026, 10, 26, 0, 0), 25 * 60),
]


@pytest.mark.parametrize(("calendar", "a", "b", "minutes"), [c[1:] for c in BETWEEN_CASES],
                         ids=[c[0] for c in BETWEEN_CASES])
def test_working_minutes_between(calendar, a, b, minutes):
    assert working_minutes_between(calendar, a, b) == minutes


@pytest.mark.parametrize(("moment", "working"), [
    (sh(2026, 12, 7, 9, 0), True), (sh(2026, 12, 7, 11, 59, 59), True), (sh(2026, 12, 7, 12, 0), False),
    (sh(2026, 12, 7, 18, 0), False), (sh(2026, 12, 5, 10, 0), False), (sh(2026, 10, 2, 10, 0), False),
    (sh(2026, 10, 10, 10, 0), True), (sh(2026, 9, 20, 13, 0), False),
])
def test_is_working(moment, working):
    assert is_working(SHANGHAI, moment) is working


def test_a_long_deadline_walks_days_not_minutes():
    # 100 working years of minutes would be tens of millions of steps minute by minute;
    # the week skip makes it a few hundred. The answer is checked by counting back.
    start = sh(2027, 1, 4, 9, 0)
    due = due_at(SHANGHAI, start, 450 * 5 * 52 * 10)
    assert working_minutes_between(SHANGHAI, start, due) == 450 * 5 * 52 * 10
    assert due == sh(2036, 12, 19, 18, 0)


@pytest.mark.parametrize(("calendar", "code"), [
    (Calendar.build(time_zone="Asia/Shanghai", weekly={}), "no_working_time"),
    (Calendar.build(time_zone="Asia/Shanghai", weekly={}, workdays={date(2026, 12, 1): OFFICE}), "no_working_time"),
])
def test_no_working_time_raises_instead_of_looping(calendar, code):
    with pytest.raises(CalendarError) as info:
        due_at(calendar, sh(2026, 12, 7, 9, 0), 1)
    assert info.value.code == code
    assert isinstance(info.value, ValueError)
    assert working_minutes_between(calendar, sh(2026, 12, 7), sh(2027, 12, 7)) == 0
    assert working_minutes_between(calendar, sh(2026, 12, 7), datetime.max.replace(tzinfo=UTC)) == 0


def test_make_up_day_before_start_is_not_working_time_left():
    calendar = Calendar.build(time_zone="Asia/Shanghai", weekly={}, workdays={date(2026, 12, 1): OFFICE})
    assert due_at(calendar, sh(2026, 11, 30, 9, 0), 60) == sh(2026, 12, 1, 10, 0)


def test_too_far_ahead_raises():
    with pytest.raises(CalendarError) as info:
        due_at(SHANGHAI, sh(2026, 12, 7, 9, 0), 10**9)
    assert info.value.code == "too_far"


@pytest.mark.parametrize(("call", "code"), [
    (lambda: due_at(SHANGHAI, datetime(2026, 12, 7, 9, 0), 1), "naive"),
    (lambda: working_minutes_between(SHANGHAI, datetime(2026, 12, 7), sh(2026, 12, 8)), "naive"),
    (lambda: due_at(SHANGHAI, sh(2026, 12, 7), -1), "minutes"),
    (lambda: due_at(SHANGHAI, sh(2026, 12, 7), 1.5), "minutes"),
    (lambda: due_at(SHANGHAI, sh(2026, 12, 7), True), "minutes"),
    (lambda: Calendar.build(time_zone="Mars/Olympus", weekly={}), "time_zone"),
    (lambda: Calendar.build(time_zone="", weekly={}), "time_zone"),
    (lambda: Calendar.build(time_zone="UTC", weekly={"monday": OFFICE}), "weekday"),
    (lambda: Calendar.build(time_zone="UTC", weekly=[OFFICE]), "weekly"),
    (lambda: Calendar.build(time_zone="UTC", weekly={"mon": [["18:00", "09:00"]]}), "interval_order"),
    (lambda: Calendar.build(time_zone="UTC", weekly={"mon": [["09:00", "09:00"]]}), "interval_order"),
    (lambda: Calendar.build(time_zone="UTC", weekly={"mon": [["09:00", "13:00"], ["12:00", "18:00"]]}),
     "interval_overlap"),
    (lambda: Calendar.build(time_zone="UTC", weekly={"mon": [["9:00", "18:00"]]}), "clock"),
    (lambda: Calendar.build(time_zone="UTC", weekly={"mon": [["09:00", "24:01"]]}), "clock"),
    (lambda: Calendar.build(time_zone="UTC", weekly={"mon": [["09:60", "10:00"]]}), "clock"),
    (lambda: Calendar.build(time_zone="UTC", weekly={"mon": ["09:00-18:00"]}), "hours"),
    (lambda: Calendar.build(time_zone="UTC", weekly={"mon": [["00:00", "00:01"]] * 13}), "hours"),
    (lambda: Calendar.build(time_zone="UTC", weekly={}, holidays=[date(2026, 1, 1)],
                            workdays={date(2026, 1, 1): "mon"}), "day_twice"),
    (lambda: Calendar(time_zone="UTC", weekly=((),) * 6), "weekly"),
])
def test_bad_input_is_refused(call, code):
    with pytest.raises(CalendarError) as info:
        call()
    assert info.value.code == code


def test_hours_parse_merges_touching_and_sorts():
    assert hours_parse([["13:00", "18:00"], ["09:00", "12:00"], ["12:00", "13:00"]]) == ((540, 1080),)
    assert hours_parse([["00:00", "24:00"]]) == ((0, 1440),)
    assert weekly_parse({"sat": []})[5] == ()


def test_make_up_day_keeps_the_named_weekday_hours():
    assert SHANGHAI.hours_on(date(2026, 10, 10)) == SHANGHAI.weekly[0]
    assert SHANGHAI.hours_on(date(2026, 10, 11)) == ()


# --- properties ------------------------------------------------------------------------------

CALENDARS = st.sampled_from([SHANGHAI, NIGHT, BERLIN, BERLIN_NIGHTS, ALWAYS_BERLIN])
MOMENTS = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31),
                       timezones=st.sampled_from([SH, BER, UTC]))
MINUTES = st.integers(min_value=0, max_value=450 * 5 * 8)


@settings(max_examples=200, deadline=None)
@given(calendar=CALENDARS, start=MOMENTS, minutes=MINUTES)
def test_minutes_between_start_and_due_is_n(calendar, start, minutes):
    due = due_at(calendar, start, minutes)
    assert due >= start
    begin = due_at(calendar, start, 0)  # the clock starts at the next working moment
    assert is_working(calendar, begin)
    assert working_time_between(calendar, begin, due) == timedelta(minutes=minutes)
    assert working_minutes_between(calendar, start, due) == minutes


@settings(max_examples=200, deadline=None)
@given(calendar=CALENDARS, start=MOMENTS, minutes=MINUTES, more=st.integers(min_value=1, max_value=3000))
def test_due_at_grows_with_minutes_and_start(calendar, start, minutes, more):
    # Compared as instants (UTC): datetimes of one zone compare by wall time and ignore `fold`, so
    # 02:00 before and after Berlin's autumn fall-back would look equal; and aware arithmetic is
    # wall-clock, so a wall time in the spring-forward gap plus a minute is an earlier instant.
    due = due_at(calendar, start, minutes).astimezone(UTC)
    assert due_at(calendar, start, minutes + more).astimezone(UTC) > due
    later = start.astimezone(UTC) + timedelta(minutes=more)
    assert due_at(calendar, later, minutes).astimezone(UTC) >= due


@settings(max_examples=200, deadline=None)
@given(calendar=CALENDARS, a=MOMENTS, b=MOMENTS, c=MOMENTS)
def test_minutes_between_adds_up_and_is_monotonic(calendar, a, b, c):
    a, b, c = sorted([a, b, c])
    ab, bc = working_time_between(calendar, a, b), working_time_between(calendar, b, c)
    assert ab >= timedelta(0) and bc >= timedelta(0)
    assert working_time_between(calendar, a, c) == ab + bc
    assert working_time_between(calendar, c, a) == -(ab + bc)
    assert ab <= b.astimezone(UTC) - a.astimezone(UTC)
