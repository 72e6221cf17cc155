"""Series of numbers → an accessible SVG line chart, rendered on the server (no front-end build step, no script).

Pure: it knows neither Django nor the database, so it is unit-tested alone. Every text that reaches the
markup is escaped. The chart names itself for assistive technology (``role="img"``, ``<title>`` and ``<desc>``
referenced by ``aria-labelledby``), labels both axes, and gives each point a ``<title>`` tooltip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from html import escape
from itertools import count
from typing import Sequence

LEGEND_COLUMNS = 3
LEGEND_ROW = 16
"""Pixels per legend row; the chart grows by a row for every ``LEGEND_COLUMNS`` series past the first row."""
LEGEND_CHARS = 30
"""Longer series names are cut in the legend (the whole name stays in the entry's tooltip)."""
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
"""Okabe–Ito colours: told apart with the common colour-vision deficiencies; cycled when there are more series."""

_ids = count(1)


@dataclass(frozen=True)
class Series:
    """One line: a name for the legend and one value per x label."""

    name: str
    values: Sequence[float]


@dataclass(frozen=True)
class Frame:
    """The plot area inside the SVG, in pixels (room left for the axis labels and the legend)."""

    width: int = 720
    height: int = 280
    left: int = 56
    right: int = 16
    top: int = 16
    bottom: int = 64

    @property
    def plot_width(self) -> int:
        return self.width - self.left - self.right

    @property
    def plot_height(self) -> int:
        return self.height - self.top - self.bottom


def nice_ticks(highest: float, *, most: int = 5, whole: bool = False) -> list[float]:
    """Y-axis ticks from 0 past ``highest`` in steps of 1, 2 or 5 × 10^k, at most ``most`` + 1 of them
    (``whole``: steps of at least 1, for counts)."""
    if highest <= 0:
        return [0.0, 1.0]
    raw = highest / most
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    step = max(step, 1) if whole else step
    top = math.ceil(highest / step) * step
    return [i * step for i in range(int(round(top / step)) + 1)]


def line_chart(
    series: Sequence[Series], labels: Sequence[str], *, title: str, description: str, x_label: str, y_label: str,
    frame: Frame = Frame(), label_every: int = 3,
) -> str:
    """The SVG markup of ``series`` over ``labels`` (every ``label_every``-th label is printed under the x axis)."""
    for line in series:
        if len(line.values) != len(labels):
            raise ValueError(f"series {line.name!r} has {len(line.values)} values for {len(labels)} labels")
    extra_rows = max(0, (len(series) - 1) // LEGEND_COLUMNS)
    frame = replace(frame, height=frame.height + extra_rows * LEGEND_ROW, bottom=frame.bottom + extra_rows * LEGEND_ROW)
    values = [v for line in series for v in line.values]
    ticks = nice_ticks(max(values, default=0), whole=all(float(v).is_integer() for v in values))
    uid = f"kbchart{next(_ids)}"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="kb-chart" viewBox="0 0 {frame.width} {frame.height}" '
        f'width="{frame.width}" height="{frame.height}" aria-labelledby="{uid}-title {uid}-desc">',
        f'<title id="{uid}-title">{escape(title)}</title>',
        f'<desc id="{uid}-desc">{escape(description)}</desc>',
        *_axes(frame, ticks, labels, label_every, x_label=x_label, y_label=y_label),
    ]
    for index, line in enumerate(series):
        parts.extend(_line(frame, ticks[-1], labels, line, PALETTE[index % len(PALETTE)]))
    parts.extend(_legend(frame, series))
    parts.append("</svg>")
    return "\n".join(parts)


def _x(frame: Frame, index: int, points: int) -> float:
    return frame.left + (frame.plot_width * index / max(points - 1, 1))


def _y(frame: Frame, value: float, top: float) -> float:
    return frame.top + frame.plot_height * (1 - value / top)


def _axes(frame: Frame, ticks: list[float], labels: Sequence[str], label_every: int, *, x_label: str, y_label: str) -> list[str]:
    bottom, right = frame.top + frame.plot_height, frame.left + frame.plot_width
    parts = ['<g class="kb-axes" font-family="sans-serif" font-size="11" fill="#444">']
    for tick in ticks:
        y = _y(frame, tick, ticks[-1])
        parts.append(f'<line x1="{frame.left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{frame.left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:g}</text>')
    parts.append(f'<line x1="{frame.left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#888"/>')
    for index, label in enumerate(labels):
        if index % label_every == 0:
            x = _x(frame, index, len(labels))
            parts.append(f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">{escape(label)}</text>')
    parts.append(f'<text class="kb-x-label" x="{frame.left + frame.plot_width / 2:.1f}" y="{bottom + 34}" '
                 f'text-anchor="middle">{escape(x_label)}</text>')
    middle = frame.top + frame.plot_height / 2
    parts.append(f'<text class="kb-y-label" x="14" y="{middle:.1f}" text-anchor="middle" '
                 f'transform="rotate(-90 14 {middle:.1f})">{escape(y_label)}</text>')
    parts.append("</g>")
    return parts


def _line(frame: Frame, top: float, labels: Sequence[str], line: Series, colour: str) -> list[str]:
    points = [(_x(frame, i, len(labels)), _y(frame, v, top)) for i, v in enumerate(line.values)]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    parts = [f'<g class="kb-series" data-series="{escape(line.name)}">',
             f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>']
    for (x, y), label, value in zip(points, labels, line.values):
        if value:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}">'
                         f'<title>{escape(line.name)}: {value:g} at {escape(label)}</title></circle>')
    parts.append("</g>")
    return parts


def _legend(frame: Frame, series: Sequence[Series]) -> list[str]:
    top = frame.top + frame.plot_height + 48
    column = frame.plot_width / LEGEND_COLUMNS
    parts = ['<g class="kb-legend" font-family="sans-serif" font-size="11" fill="#222">']
    for index, line in enumerate(series):
        x, y = frame.left + column * (index % LEGEND_COLUMNS), top + LEGEND_ROW * (index // LEGEND_COLUMNS)
        name = line.name if len(line.name) <= LEGEND_CHARS else line.name[:LEGEND_CHARS - 1] + "…"
        parts.append(f'<g><title>{escape(line.name)}</title>'
                     f'<rect x="{x:.1f}" y="{y}" width="10" height="10" fill="{PALETTE[index % len(PALETTE)]}"/>'
                     f'<text x="{x + 14:.1f}" y="{y + 9}">{escape(name)}</text></g>')
    parts.append("</g>")
    return parts
