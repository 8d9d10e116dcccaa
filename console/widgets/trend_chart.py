"""A trend over time with axes and values (plotext, through textual-plotext), as Dolphie
draws them: x is the time of day (UTC), y the figure, the title the latest value.

What to draw is decided by `plan`, a pure function: an empty series says so, a single
point is one marker in a window around it (never a line stretched across the width),
two or more points are a line."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from textual_plotext import PlotextPlot

POINT = "●"


@dataclass(frozen=True)
class ChartPlan:
    mode: str  # "empty" | "point" | "line"
    title: str
    xs: tuple[float, ...]
    ys: tuple[float, ...]
    xlim: tuple[float, float] | None = None
    ylim: tuple[float, float] | None = None
    xticks: tuple[tuple[float, ...], tuple[str, ...]] = ((), ())
    yticks: tuple[tuple[float, ...], tuple[str, ...]] = ((), ())


def compact(value: float) -> str:
    """An axis or title value in a few cells: 7, 2.5, 1.2k, 3.4M."""
    for size, unit in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.1f}".rstrip("0").rstrip(".") + unit
    if value == int(value):
        return str(int(value))
    return f"{value:.1f}"


def clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M")


def _ticks(lo: float, hi: float) -> tuple[tuple[float, ...], tuple[str, ...]]:
    if hi <= lo:
        return (lo,), (compact(lo),)
    mid = (lo + hi) / 2
    return (lo, mid, hi), (compact(lo), compact(mid), compact(hi))


def plan(name: str, xs: Sequence[float], ys: Sequence[float | None], unit: str = ""
         ) -> ChartPlan:
    """xs are epoch seconds, oldest first; a None y (no value then) is left out."""
    points = [(x, float(y)) for x, y in zip(xs, ys, strict=False) if y is not None]
    if not points:
        return ChartPlan("empty", f"{name}: no runs yet", (), ())
    px, py = tuple(p[0] for p in points), tuple(p[1] for p in points)
    last = f"{name}: {compact(py[-1])}{unit}"
    peak = max(max(py), 1.0)
    top = peak * 1.15  # head room: the peak is not drawn on the frame
    ylim = (0.0, top)
    yticks = _ticks(0.0, peak)
    if len(points) == 1:
        # One point: a marker in a one-hour window around it, with its time below.
        x = px[0]
        return ChartPlan("point", f"{last} (1 run so far)", px, py, (x - 1800, x + 1800),
                         ylim, ((x,), (clock(x),)), yticks)
    lo, hi = px[0], px[-1]
    if hi <= lo:
        hi = lo + 1  # several points at one instant (a frozen clock): still a window
    mid = (lo + hi) / 2
    return ChartPlan("line", last, px, py, (lo, hi), ylim,
                     ((lo, mid, hi), (clock(lo), clock(mid), clock(hi))), yticks)


class TrendChart(PlotextPlot):
    """Redrawn only when its plan changes: a refresh with the same figures costs nothing."""

    DEFAULT_CSS = "TrendChart { height: 9; min-width: 24; }"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.current: ChartPlan | None = None

    def show(self, chart: ChartPlan) -> None:
        if chart == self.current:
            return
        self.current = chart
        plt = self.plt
        plt.clear_figure()
        plt.title(chart.title)
        if chart.mode == "empty":
            plt.xticks([], [])
            plt.yticks([], [])
        else:
            if chart.mode == "point":
                plt.scatter(list(chart.xs), list(chart.ys), marker=POINT)
            else:
                plt.plot(list(chart.xs), list(chart.ys), marker="braille")
            if chart.xlim:
                plt.xlim(*chart.xlim)
            if chart.ylim:
                plt.ylim(*chart.ylim)
            plt.xticks(list(chart.xticks[0]), list(chart.xticks[1]))
            plt.yticks(list(chart.yticks[0]), list(chart.yticks[1]))
        self.refresh()
