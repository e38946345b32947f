"""Bar charts as geometry for server-rendered SVG: every bar with its value label, axis ticks, a tooltip.

The templates (``templates/_charts.html``) draw these; nothing here knows HTML, and every
text (a skill name a producer sent, say) reaches the page through Jinja's autoescaping.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

#: Longest category label drawn in full; the tooltip always has the whole text.
MAX_LABEL_CHARS = 24


@dataclass(frozen=True)
class Datum:
    label: str
    value: float
    #: drawn at the end of the bar (the count, or ``+5``, or ``350 ms``)
    value_text: str
    #: the bar's ``<title>``: what a person hovering, or a screen reader, gets
    tooltip: str
    #: CSS class of the bar (its colour)
    kind: str = "bar"


@dataclass(frozen=True)
class Bar:
    datum: Datum
    label: str
    x: float
    y: float
    width: float
    height: float
    label_x: float
    label_y: float
    value_x: float
    value_y: float


@dataclass(frozen=True)
class Tick:
    text: str
    #: x of a vertical grid line (horizontal bars) or y of a horizontal one (vertical bars)
    position: float


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    #: the accessible summary (``<desc>``)
    description: str
    orientation: Literal["vertical", "horizontal"]
    width: int
    height: int
    bars: list[Bar]
    ticks: list[Tick]
    #: the value axis's name, e.g. ``queries``
    unit: str
    #: plot area: left, top, right, bottom
    plot: tuple[float, float, float, float]

    @property
    def empty(self) -> bool:
        return not any(bar.datum.value for bar in self.bars)


def nice_ticks(maximum: float, most: int = 5) -> list[float]:
    """0 and whole round steps (1, 2 or 5 × 10ⁿ: every chart counts queries or milliseconds) up to at
    least ``maximum``, at most ``most`` + 1 of them."""
    if maximum <= 0:
        return [0.0, 1.0]
    raw = max(maximum / most, 1.0)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    count = math.ceil(maximum / step - 1e-9)
    return [round(i * step, 10) for i in range(count + 1)]


def tick_text(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2g}"


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL_CHARS else label[: MAX_LABEL_CHARS - 1] + "…"


def vertical_bars(
    chart_id: str, title: str, data: Sequence[Datum], *, unit: str, width: int = 640, height: int = 240
) -> Chart:
    """Columns left to right, the value axis on the left, the category under each column."""
    left, top, right, bottom = 48.0, 22.0, width - 8.0, height - 34.0
    ticks = nice_ticks(max((d.value for d in data), default=0))
    scale = (bottom - top) / ticks[-1]
    slot = (right - left) / max(len(data), 1)
    bars = []
    for i, d in enumerate(data):
        h = d.value * scale
        x = left + i * slot + slot * 0.15
        w = slot * 0.7
        bars.append(
            Bar(d, _short(d.label), x, bottom - h, w, h, x + w / 2, bottom + 16, x + w / 2, bottom - h - 5)
        )
    return Chart(
        chart_id, title, _describe(title, data, unit), "vertical", width, height, bars,
        [Tick(tick_text(t), bottom - t * scale) for t in ticks], unit, (left, top, right, bottom),
    )  # fmt: skip


def horizontal_bars(
    chart_id: str, title: str, data: Sequence[Datum], *, unit: str, width: int = 640, row: int = 26
) -> Chart:
    """Rows top to bottom, the category on the left, the value axis along the bottom."""
    height = int(24 + max(len(data), 1) * row + 26)
    left, top, right, bottom = 170.0, 12.0, width - 90.0, height - 26.0
    ticks = nice_ticks(max((d.value for d in data), default=0))
    scale = (right - left) / ticks[-1]
    bars = []
    for i, d in enumerate(data):
        w = d.value * scale
        y = top + i * row + row * 0.15
        h = row * 0.7
        bars.append(Bar(d, _short(d.label), left, y, w, h, left - 8, y + h * 0.75, left + w + 6, y + h * 0.75))
    return Chart(
        chart_id, title, _describe(title, data, unit), "horizontal", width, height, bars,
        [Tick(tick_text(t), left + t * scale) for t in ticks], unit, (left, top, right, bottom),
    )  # fmt: skip


def _describe(title: str, data: Sequence[Datum], unit: str) -> str:
    if not data:
        return f"{title}: no data."
    return f"{title}, in {unit}: " + "; ".join(f"{d.label}: {d.value_text}" for d in data) + "."
