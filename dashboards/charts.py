"""The manager dashboard's charts: for each chart the data static/js/dashboard-charts.js hands to
Apache ECharts (put in the page with json_script, never an inline script) and the same numbers as
a table — shown beside the chart (and instead of it without JavaScript) and downloaded as its CSV.
The builders are pure (selector output in, Chart out); `dashboard_charts` says which selector feeds
which chart, reading each selector once however many charts share it."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.utils.translation import gettext as _

from tickets.models import Source

from . import selectors
from .selectors import TicketFilters

WEEKDAYS = ("一", "二", "三", "四", "五", "六", "日")


@dataclass
class Chart:
    """One chart: `key` names it in the page (element ids) and in its CSV (`?table=key`);
    `data` is what the script draws (`kind` says how: "axis" bars and lines, "heatmap", "pie");
    `columns` / `rows` are its table, cell for cell the CSV's."""

    key: str
    title: str
    kind: str
    data: dict[str, Any]
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    note: str = ""
    height: int = 280  # the chart's height in CSS pixels on a wide screen (the script adapts it on phones)
    wide: bool = False  # the whole width of the page (a long time axis), else half of it on a wide screen

    @property
    def empty(self) -> bool:
        return not self.rows

    @property
    def script_id(self) -> str:
        return f"chart-{self.key}-data"


def hours(value: datetime.timedelta | None) -> float | None:
    """A duration in hours with two decimals (what the charts, tables and CSVs show); None stays."""
    return None if value is None else round(value.total_seconds() / 3600, 2)


def duration_text(value: datetime.timedelta | None) -> str:
    """A duration as 2d 3h / 3h 20m / 12m (kept short for the 工作台's figures)."""
    if value is None:
        return "—"
    minutes = int(value.total_seconds() // 60)
    days, rest = divmod(minutes, 1440)
    hours_, mins = divmod(rest, 60)
    if days:
        return f"{days}d {hours_}h"
    if hours_:
        return f"{hours_}h {mins}m"
    return f"{mins}m"


def _pct(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def channel_names() -> dict[str, str]:
    return {value: str(label) for value, label in Source.choices}


# --- builders: selector output → Chart ---------------------------------------------------------

def intake_daily(data: dict[str, Any], names: dict[str, str]) -> Chart:
    """Tickets filed per day, a stacked bar per channel (selectors.intake)."""
    keys = sorted(data["series"])
    days: list[datetime.date] = data["days"]
    rows = [[day.isoformat(), *[data["series"][k][i] for k in keys], sum(data["series"][k][i] for k in keys)]
            for i, day in enumerate(days)] if keys else []
    return Chart(key="intake", title=_("Intake per day by channel"), kind="axis", wide=True, columns=[
        _("Day"), *[names.get(k, k) for k in keys], _("Total")], rows=rows, data={
        "categories": [f"{day:%m-%d}" for day in days],
        "series": [{"name": names.get(k, k), "type": "bar", "stack": "intake", "data": data["series"][k]}
                   for k in keys],
        "axes": [{"name": _("Tickets")}]})


def intake_channels(data: dict[str, Any], names: dict[str, str]) -> Chart:
    """The period's intake per channel, largest first (selectors.intake)."""
    totals = sorted(((names.get(k, k), sum(v)) for k, v in data["series"].items()), key=lambda kv: (-kv[1], kv[0]))
    whole = sum(n for _name, n in totals)
    return Chart(key="channels", title=_("Intake by channel"), kind="pie", columns=[
        _("Channel"), _("Tickets"), _("Share (%)")],
        rows=[[name, n, round(100 * n / whole, 1)] for name, n in totals if n],
        data={"data": [{"name": name, "value": n} for name, n in totals if n]})


def backlog(data: dict[str, Any]) -> Chart:
    """Open tickets at the end of each day, with the day's filed and finished (selectors.backlog_trend)."""
    days = data["days"]
    moved = any(row["created"] or row["finished"] for row in days) or data["open_now"]
    return Chart(key="backlog", title=_("Backlog trend: open tickets at the end of each day"), kind="axis", wide=True,
                 note=_("Counted back from the %(n)d tickets open now through each day's filed and finished tickets.")
                 % {"n": data["open_now"]},
                 columns=[_("Day"), _("Filed"), _("Finished"), _("Open at the end of the day")],
                 rows=[[row["day"].isoformat(), row["created"], row["finished"], row["open"]] for row in days]
                 if moved else [],
                 data={"categories": [f"{row['day']:%m-%d}" for row in days], "axes": [{"name": _("Tickets")}],
                       "series": [
                           {"name": _("Filed"), "type": "bar", "data": [row["created"] for row in days]},
                           {"name": _("Finished"), "type": "bar", "data": [row["finished"] for row in days]},
                           {"name": _("Open at the end of the day"), "type": "line", "area": True,
                            "data": [row["open"] for row in days]}]})


def breach(data: dict[str, Any]) -> Chart:
    """Finished tickets per day and the share that breached their SLA (selectors.backlog_trend)."""
    days = data["days"]
    rows = [[row["day"].isoformat(), row["finished"], row["breached"], _pct(row["breach_rate"])] for row in days]
    return Chart(key="breach", title=_("SLA breach rate per day"), kind="axis", wide=True,
                 columns=[_("Day"), _("Finished"), _("Breached SLA"), _("Breach rate (%)")],
                 rows=rows if any(row["finished"] for row in days) else [],
                 data={"categories": [f"{row['day']:%m-%d}" for row in days],
                       "axes": [{"name": _("Tickets")}, {"name": "%", "max": 100}],
                       "series": [
                           {"name": _("Finished"), "type": "bar", "data": [row["finished"] for row in days]},
                           {"name": _("Breach rate (%)"), "type": "line", "axis": 1, "unit": "%",
                            "data": [_pct(row["breach_rate"]) for row in days]}]})


TIME_TITLES = {"region": lambda: _("Response and resolution time by region"),
               "store": lambda: _("Response and resolution time by store"),
               "person": lambda: _("Response and resolution time by person")}


def service_times(by: str, rows: list[dict[str, Any]]) -> Chart:
    """First response and resolution p50/p90 (hours) per region, store or person
    (selectors.service_times)."""
    names = [row["name"] for row in rows]
    measures = (("response_p50", _("First response p50 (h)")), ("response_p90", _("First response p90 (h)")),
                ("resolution_p50", _("Resolution p50 (h)")), ("resolution_p90", _("Resolution p90 (h)")))
    # Short legend names (the axis says hours) so the four fit in one line on a phone.
    legends = (_("Response p50"), _("Response p90"), _("Resolution p50"), _("Resolution p90"))
    return Chart(key=f"times-{by}", title=TIME_TITLES[by](), kind="axis", height=max(260, 70 + 44 * len(rows)),
                 columns=[_("Name"), _("First responses"), measures[0][1], measures[1][1], _("Finished"),
                          measures[2][1], measures[3][1]],
                 rows=[[row["name"], row["responded"], hours(row["response_p50"]), hours(row["response_p90"]),
                        row["resolved"], hours(row["resolution_p50"]), hours(row["resolution_p90"])] for row in rows],
                 data={"categories": names, "horizontal": True, "axes": [{"name": _("Hours")}],
                       "series": [{"name": legend, "type": "bar", "unit": "h",
                                   "data": [hours(row[key]) for row in rows]}
                                  for (key, _label), legend in zip(measures, legends, strict=True)]})


RANKING_TITLES = {"store": lambda: _("Ranking: stores"), "person": lambda: _("Ranking: people"),
                  "region": lambda: _("Ranking: regions")}
RANKING_KEYS = {"store": "stores", "person": "people", "region": "regions"}  # the CSV names (kept from before)


def ranking(by: str, rows: list[dict[str, Any]]) -> Chart:
    """Tickets finished per store, person or region, busiest first, with their resolution time
    and SLA breach rate (selectors.rankings)."""
    return Chart(key=RANKING_KEYS[by], title=RANKING_TITLES[by](), kind="axis", height=max(240, 60 + 30 * len(rows)),
                 columns=["#", _("Name"), _("Finished"), _("Average resolution (h)"), _("Resolution p50 (h)"),
                          _("Resolution p90 (h)"), _("Breach rate (%)")],
                 rows=[[i, row["name"], row["n"], hours(row["avg"]), hours(row["p50"]), hours(row["p90"]),
                        _pct(row["breach_rate"])] for i, row in enumerate(rows, start=1)],
                 data={"categories": [row["name"] for row in rows], "horizontal": True,
                       "axes": [{"name": _("Tickets")}, {"name": "%", "max": 100}],
                       "series": [{"name": _("Finished"), "type": "bar", "data": [row["n"] for row in rows]},
                                  {"name": _("Breach rate (%)"), "type": "bar", "axis": 1, "unit": "%",
                                   "data": [_pct(row["breach_rate"]) for row in rows]}]})


def node_heatmap(data: dict[str, Any]) -> Chart:
    """Finished workflow tasks per node × duration bucket, the slowest node first: where tickets
    stall (selectors.node_heatmap)."""
    rows = data["rows"]
    cells = [[j, i, n] for i, row in enumerate(rows) for j, n in enumerate(row["cells"])]
    return Chart(key="nodes", title=_("Where tickets stall: time per workflow node"), kind="heatmap",
                 height=max(220, 90 + 36 * len(rows)),
                 note=_("The slowest node (by average time) comes first."),
                 columns=[_("Node"), _("Tasks"), _("Average (h)"), *data["buckets"]],
                 rows=[[row["node"], row["n"], hours(row["avg"]), *row["cells"]] for row in rows],
                 data={"x": data["buckets"], "y": [row["node"] for row in rows], "data": cells,
                       "max": data["peak"], "name": _("Tasks"), "color": "#dc3545"})


def hour_heatmap(data: dict[str, Any]) -> Chart:
    """Tickets filed per weekday × hour of the day (selectors.intake's grid)."""
    grid = data["grid"]
    weekdays = [_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun")]
    return Chart(key="hours", title=_("When requests arrive: weekday × hour"), kind="heatmap", height=300, wide=True,
                 columns=[_("Weekday"), *[str(h) for h in range(24)]],
                 rows=[[weekdays[d], *grid[d]] for d in range(7)] if data["peak"] else [],
                 data={"x": [str(h) for h in range(24)], "y": weekdays,
                       "data": [[h, d, grid[d][h]] for d in range(7) for h in range(24)],
                       "max": data["peak"], "name": _("Tickets"), "color": "#0d6efd"})


# --- which selector feeds which chart ----------------------------------------------------------

class _Reads:
    """The selectors behind the charts, each read at most once per request."""

    def __init__(self, user: Any, filters: TicketFilters):
        self.user, self.filters = user, filters

    @cached_property
    def intake(self) -> dict[str, Any]:
        return selectors.intake(user=self.user, filters=self.filters)

    @cached_property
    def backlog(self) -> dict[str, Any]:
        return selectors.backlog_trend(user=self.user, filters=self.filters)

    @cached_property
    def times(self) -> dict[str, list[dict[str, Any]]]:
        return selectors.service_times(user=self.user, filters=self.filters)

    @cached_property
    def rankings(self) -> dict[str, list[dict[str, Any]]]:
        return selectors.rankings(user=self.user, filters=self.filters)

    @cached_property
    def nodes(self) -> dict[str, Any]:
        return selectors.node_heatmap(user=self.user, filters=self.filters)


BUILDERS: dict[str, Callable[[_Reads], Chart]] = {  # the page's order: wide time axes first, then pairs
    "intake": lambda r: intake_daily(r.intake, channel_names()),
    "backlog": lambda r: backlog(r.backlog),
    "breach": lambda r: breach(r.backlog),
    "nodes": lambda r: node_heatmap(r.nodes),
    "channels": lambda r: intake_channels(r.intake, channel_names()),
    "hours": lambda r: hour_heatmap(r.intake),
    "times-region": lambda r: service_times("region", r.times["region"]),
    "times-store": lambda r: service_times("store", r.times["store"]),
    "times-person": lambda r: service_times("person", r.times["person"]),
    "regions": lambda r: ranking("region", r.rankings["region"]),
    "stores": lambda r: ranking("store", r.rankings["store"]),
    "people": lambda r: ranking("person", r.rankings["person"]),
}
CHART_KEYS = tuple(BUILDERS)  # the page's order


def dashboard_charts(*, user: Any, filters: TicketFilters, only: tuple[str, ...] = CHART_KEYS
                     ) -> tuple[list[Chart], dict[str, Any]]:
    """The charts named in `only` (all by default, in the page's order), and the intake read they
    share (for the page's "as of" line) when it was read."""
    reads = _Reads(user, filters)
    built = [BUILDERS[key](reads) for key in only]
    return built, reads.__dict__.get("intake") or {}
