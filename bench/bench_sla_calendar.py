"""workflow/sla.py without a database: due_at and working_minutes_between on an office calendar
(two intervals a day, China's 2026/2027 holidays and make-up days, Asia/Shanghai) and on one in
Europe/Berlin (DST), for deadlines from 2 working hours to 2 working years — what a sweep or an
engine step pays per deadline. The cost should follow the days walked, flattened by week skips."""

import argparse
import random
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from common import ROOT, Timer, report

from workflow import sla


def china_calendar():
    # The shipped file, read the way the import reads it, without Django.
    payload = yaml.safe_load(Path(ROOT / "workflow" / "data" / "cn_holidays_2026_2027.yaml").read_text("utf-8"))
    holidays, workdays = [], {}
    for entry in payload["days"]:
        first = entry.get("date", entry.get("from"))
        last = entry.get("to", first)
        day = first
        while day <= last:
            holidays.append(day)
            day += timedelta(days=1)
        for extra in entry.get("workdays", []):
            workdays[extra] = "mon"
    office = [["09:00", "12:00"], ["13:30", "18:00"]]
    return sla.Calendar.build(time_zone="Asia/Shanghai", weekly=dict.fromkeys(sla.WEEKDAYS[:5], office),
                              holidays=holidays, workdays=workdays)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    rng = random.Random(7)
    calendars = {
        "shanghai+holidays": (china_calendar(), ZoneInfo("Asia/Shanghai")),
        "berlin": (sla.Calendar.build(time_zone="Europe/Berlin",
                                      weekly={day: [["09:00", "18:00"]] for day in sla.WEEKDAYS[:5]}),
                   ZoneInfo("Europe/Berlin")),
    }
    for label, (calendar, zone) in calendars.items():
        for minutes in (120, 450 * 5, 450 * 22, 450 * 250, 450 * 500):
            starts = [datetime.combine(date(2026, 1, 1) + timedelta(days=rng.randrange(700)),
                                       datetime.min.time(), tzinfo=zone) + timedelta(minutes=rng.randrange(1440))
                      for _ in range(args.calls)]
            due_timer, between_timer = Timer(), Timer()
            for start in starts:
                with due_timer.measure():
                    due = sla.due_at(calendar, start, minutes)
                with between_timer.measure():
                    sla.working_minutes_between(calendar, start, due)
            report(f"{label} due_at {minutes} min", calls=args.calls, **due_timer.summary_ms())
            report(f"{label} working_minutes_between {minutes} min", calls=args.calls, **between_timer.summary_ms())


if __name__ == "__main__":
    main()
