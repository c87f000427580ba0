"""Geometry of the report's charts: bars of reference vs current shares, as numbers.

The template draws them as inline SVG (``report.html.j2``): every label goes through Jinja2's
escaping there, and this module only does arithmetic. See ``docs/report.md`` for why inline
SVG rather than a plotting library.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Bar", "BarChart", "BarGroup", "bar_chart"]

WIDTH = 460.0
PLOT_TOP = 12.0
PLOT_HEIGHT = 130.0
LEFT = 38.0
RIGHT = 8.0
#: Room under the plot for bin labels (rotated when there are many bins).
LABELS_FLAT = 28.0
LABELS_ROTATED = 74.0
#: Labels longer than this are cut (the full label is in the bar's tooltip).
LABEL_CHARS = 14


@dataclass(frozen=True)
class Bar:
    """One bar: its box and the share it stands for."""

    x: float
    y: float
    w: float
    h: float
    value: float


@dataclass(frozen=True)
class BarGroup:
    """One bin: its label, where to write it, and its bars (reference, then current)."""

    label: str
    short: str
    x: float
    bars: tuple[Bar, ...]


@dataclass(frozen=True)
class BarChart:
    """A chart of shares per bin for one or two series.

    Attributes:
        width, height: The SVG's size. top, bottom: The plot's vertical extent.
        left, right: Its horizontal extent. ticks: ``(y, label)`` of the value axis.
        groups: One per bin. rotated: Whether bin labels are rotated.
        series: Series names, in the order of each group's bars.
    """

    width: float
    height: float
    top: float
    bottom: float
    left: float
    right: float
    ticks: tuple[tuple[float, str], ...]
    groups: tuple[BarGroup, ...]
    rotated: bool
    series: tuple[str, ...]


def bar_chart(labels: Sequence[str], series: Sequence[Sequence[float]],
              names: Sequence[str] = ("reference", "current"), *,
              percent: bool = True) -> BarChart:
    """Bars of ``series`` (each one value per label) side by side per label.

    Args:
        labels: One per bin.
        series: Values per bin of each series (shares 0..1 when ``percent``).
        names: Series names.
        percent: Axis labels as percentages (else plain numbers).
    """
    n = max(len(labels), 1)
    k = max(len(series), 1)
    rotated = n > 6 or any(len(x) > 9 for x in labels)
    height = PLOT_TOP + PLOT_HEIGHT + (LABELS_ROTATED if rotated else LABELS_FLAT)
    bottom = PLOT_TOP + PLOT_HEIGHT
    right = WIDTH - RIGHT
    top_value = max([v for s in series for v in s if v == v] + [1e-12])
    top_value = _nice(top_value)
    step = (right - LEFT) / n
    bar_w = step * 0.8 / k
    groups = []
    for i, label in enumerate(labels):
        x0 = LEFT + i * step + step * 0.1
        bars = []
        for j, s in enumerate(series):
            v = float(s[i]) if i < len(s) and s[i] == s[i] else 0.0
            h = max(v, 0.0) / top_value * PLOT_HEIGHT
            bars.append(Bar(round(x0 + j * bar_w, 2), round(bottom - h, 2), round(bar_w, 2),
                            round(h, 2), v))
        short = label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "\u2026"
        groups.append(BarGroup(label, short, round(LEFT + (i + 0.5) * step, 2), tuple(bars)))
    ticks = tuple((round(bottom - t / 5 * PLOT_HEIGHT, 2),
                   _tick(top_value * t / 5, percent)) for t in range(6))
    return BarChart(WIDTH, height, PLOT_TOP, bottom, LEFT, right, ticks, tuple(groups),
                    rotated, tuple(names))


def _nice(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k at or above ``value``."""
    import math

    exp = math.floor(math.log10(value))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if m * 10 ** exp >= value * (1 - 1e-9):
            return m * 10 ** exp
    return 10.0 ** (exp + 1)


def _tick(value: float, percent: bool) -> str:
    if percent:
        return f"{value * 100:.3g}%"
    return f"{value:.3g}"
