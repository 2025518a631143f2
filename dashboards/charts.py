"""Chart geometry for the server-rendered SVG charts: plain functions from numbers to rectangles
and labels (dataclasses), which the templates draw as <svg> — no script, no CDN, readable by
tests. Text is escaped by the template like any other value."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

# One colour per channel, in the order Source lists them; muted, distinguishable, print-safe.
PALETTE = ("#0d6efd", "#20c997", "#fd7e14", "#6f42c1", "#198754", "#d63384", "#6c757d", "#0dcaf0")


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    color: str
    title: str
    opacity: float = 1.0


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "middle"


@dataclass
class Chart:
    width: int
    height: int
    rects: list[Rect] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)
    gridlines: list[Label] = field(default_factory=list)


def nice_max(value: float) -> int:
    """The axis top: the value rounded up to 1, 2 or 5 × a power of ten (at least 1)."""
    if value <= 1:
        return 1
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def stacked_bars(*, days: list[datetime.date], series: dict[str, list[int]], names: dict[str, str],
                 width: int = 720, height: int = 220) -> Chart:
    """Stacked bars per day (one colour per series), a y axis with three gridlines and a date
    label under every 7th bar."""
    left, bottom, top = 36, 22, 8
    plot_w, plot_h = width - left - 8, height - bottom - top
    totals = [sum(values[i] for values in series.values()) for i in range(len(days))]
    peak = nice_max(max(totals or [0]))
    chart = Chart(width=width, height=height)
    slot = plot_w / max(len(days), 1)
    bar_w = max(slot * 0.7, 1.0)
    keys = sorted(series)
    for key_index, key in enumerate(keys):
        chart.legend.append((names.get(key, key), PALETTE[key_index % len(PALETTE)]))
    for i, day in enumerate(days):
        y: float = top + plot_h
        for key_index, key in enumerate(keys):
            n = series[key][i]
            if not n:
                continue
            h = plot_h * n / peak
            y -= h
            chart.rects.append(Rect(x=round(left + i * slot + (slot - bar_w) / 2, 1), y=round(y, 1),
                                    w=round(bar_w, 1), h=round(h, 1), color=PALETTE[key_index % len(PALETTE)],
                                    title=f"{day:%m-%d} {names.get(key, key)}: {n}"))
        if i % 7 == 0 or (i == len(days) - 1 and i % 7 > 3):
            chart.labels.append(Label(x=round(left + i * slot + slot / 2, 1), y=height - 6, text=f"{day:%m-%d}"))
    for step in (0, 0.5, 1):
        chart.gridlines.append(Label(x=left - 4, y=round(top + plot_h * (1 - step), 1), text=f"{peak * step:g}",
                                     anchor="end"))
    return chart


def heat_color(n: int, peak: int) -> float:
    """Cell opacity: 0 for nothing, then 0.15 … 1 by share of the peak."""
    if not n or not peak:
        return 0.0
    return round(0.15 + 0.85 * n / peak, 2)


def heatmap(*, rows: list[str], cols: list[str], values: list[list[int]], cell_w: int = 44, cell_h: int = 26,
            left: int = 110, color: str = "#dc3545", col_every: int = 1) -> Chart:
    """A grid of cells whose depth of colour says how many; row labels left, column labels on top."""
    top = 20
    peak = max([v for row in values for v in row] or [0])
    chart = Chart(width=left + cell_w * len(cols) + 4, height=top + cell_h * len(rows) + 4)
    for j, col in enumerate(cols):
        if j % col_every == 0:
            chart.labels.append(Label(x=left + j * cell_w + cell_w / 2, y=14, text=col))
    for i, row in enumerate(rows):
        chart.labels.append(Label(x=left - 6, y=top + i * cell_h + cell_h / 2 + 4, text=row[:14], anchor="end"))
        for j, col in enumerate(cols):
            n = values[i][j]
            chart.rects.append(Rect(x=left + j * cell_w, y=top + i * cell_h, w=cell_w - 2, h=cell_h - 2,
                                    color=color if n else "#f1f3f5", opacity=heat_color(n, peak) if n else 1.0,
                                    title=f"{row} · {col}: {n}"))
    return chart


def duration_text(value: datetime.timedelta | None) -> str:
    """A duration as 2天3小时 / 3小时20分 / 12分 (the numbers and unit letters d/h/m, kept short)."""
    if value is None:
        return "—"
    minutes = int(value.total_seconds() // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {mins}m"
    return f"{mins}m"
