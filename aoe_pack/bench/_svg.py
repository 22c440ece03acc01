"""A grouped horizontal bar chart as hand-written SVG: no JavaScript, no network.

Each group is an artifact, each bar a device. A bar may carry a whisker (for
latency: the bar ends at p50, the whisker reaches p99 with a tick at p90).
Every bar has a ``<title>``, which browsers show as a tooltip.

The axis is scaled to the bars, not the whiskers: one stalled run can put a
p99 a thousand times above the median (seen on a busy 2-core VM), which would
flatten every bar. A whisker beyond the axis stops at its end with an
arrowhead, and the bar's label gives the whisker's true value after an arrow
(``0.84 → 912``); a tick beyond the axis is not drawn. The tooltip keeps every
figure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#3b6ea8", "#e07b39", "#4f9d69", "#b5485d", "#7d5ba6", "#c9a227", "#3a9fb0", "#7a7a7a")

_WIDTH = 760
_LABEL_W = 190
_PLOT_W = _WIDTH - _LABEL_W - 130  # room on the right for "value → clipped whisker"
_BAR_H = 14
_BAR_GAP = 3
_GROUP_GAP = 14
_TOP = 46
_AXIS_H = 30
_WHISKER_ROOM = 1.6
"""The axis reaches at most this many times the longest bar, to leave whiskers room."""


@dataclass(frozen=True, kw_only=True)
class Bar:
    group: str
    series: int
    """Index of the device: picks the colour and the legend entry."""
    value: float
    tick: float | None = None
    whisker: float | None = None
    base: float | None = None
    """Drawn paler from 0 to here: a share of the bar that is not the artifact's own."""
    tooltip: str = ""


def _nice_step(top: float) -> float:
    raw = top / 5 if top > 0 else 1.0
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * magnitude:
            return m * magnitude
    return 10 * magnitude


def _fmt(v: float) -> str:
    return f"{v:.3g}" if v < 100 else f"{v:.0f}"


def bar_chart(title: str, unit: str, series: Sequence[str], bars: Sequence[Bar]) -> str:
    """An ``<svg>`` element; ``series`` names the devices in legend order."""
    groups: list[str] = []
    for b in bars:
        if b.group not in groups:
            groups.append(b.group)
    top = max([b.value for b in bars] + [0.0])
    whiskers = max([max(b.whisker or 0.0, b.tick or 0.0) for b in bars] + [0.0])
    top = min(whiskers, _WHISKER_ROOM * top) if whiskers > top else top
    step = _nice_step(top)
    axis_max = step * max(1, math.ceil(top / step)) if top > 0 else step

    def x(v: float) -> float:
        return _LABEL_W + _PLOT_W * v / axis_max

    per_group = len(series) * (_BAR_H + _BAR_GAP)
    height = _TOP + len(groups) * (per_group + _GROUP_GAP) + _AXIS_H
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_WIDTH} {height}" role="img" font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="16" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    lx = 0
    for i, name in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        out.append(f'<rect x="{lx}" y="26" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text x="{lx + 14}" y="35">{escape(name)}</text>')
        lx += 24 + 7 * len(name)
    plot_bottom = height - _AXIS_H
    ticks = round(axis_max / step)
    for k in range(ticks + 1):
        v = k * step
        out.append(
            f'<line x1="{x(v):.1f}" y1="{_TOP - 4}" x2="{x(v):.1f}" y2="{plot_bottom}" '
            'stroke="#ddd"/>'
        )
        out.append(
            f'<text x="{x(v):.1f}" y="{plot_bottom + 16}" text-anchor="middle">{_fmt(v)}</text>'
        )
    out.append(
        f'<text x="{_LABEL_W + _PLOT_W}" y="{plot_bottom + 28}" text-anchor="end" '
        f'fill="#555">{escape(unit)}</text>'
    )
    for gi, group in enumerate(groups):
        y0 = _TOP + gi * (per_group + _GROUP_GAP)
        out.append(
            f'<text x="{_LABEL_W - 8}" y="{y0 + per_group / 2 + 4:.1f}" '
            f'text-anchor="end">{escape(group)}</text>'
        )
        for b in (b for b in bars if b.group == group):
            y = y0 + b.series * (_BAR_H + _BAR_GAP)
            mid = y + _BAR_H / 2
            colour = PALETTE[b.series % len(PALETTE)]
            out.append(
                f'<rect x="{_LABEL_W}" y="{y}" width="{x(b.value) - _LABEL_W:.1f}" '
                f'height="{_BAR_H}" fill="{colour}"><title>{escape(b.tooltip)}</title></rect>'
            )
            if b.base is not None and 0 < b.base <= b.value:
                out.append(
                    f'<rect x="{_LABEL_W}" y="{y}" width="{x(b.base) - _LABEL_W:.1f}" '
                    f'height="{_BAR_H}" fill="#fff" fill-opacity="0.55">'
                    f"<title>{escape(b.tooltip)}</title></rect>"
                )
            end, label = b.value, _fmt(b.value)
            if b.whisker is not None:
                end = min(max(b.value, b.whisker), axis_max)
                out.append(
                    f'<line x1="{x(b.value):.1f}" y1="{mid}" x2="{x(end):.1f}" y2="{mid}" '
                    'stroke="#333"/>'
                )
                if b.whisker > axis_max:  # clipped: an arrowhead says it goes on, to where
                    tip = x(axis_max)
                    out.append(
                        f'<path d="M{tip - 6:.1f},{mid - 4} L{tip:.1f},{mid} '
                        f'L{tip - 6:.1f},{mid + 4}" fill="none" stroke="#333"/>'
                    )
                    label += f" \u2192 {_fmt(b.whisker)}"
                else:
                    out.append(
                        f'<line x1="{x(end):.1f}" y1="{y + 2}" x2="{x(end):.1f}" '
                        f'y2="{y + _BAR_H - 2}" stroke="#333"/>'
                    )
            if b.tick is not None and b.tick <= axis_max:
                out.append(
                    f'<line x1="{x(b.tick):.1f}" y1="{y + 4}" x2="{x(b.tick):.1f}" '
                    f'y2="{y + _BAR_H - 4}" stroke="#333"/>'
                )
            out.append(f'<text x="{x(end) + 4:.1f}" y="{mid + 4}">{label}</text>')
    out.append("</svg>")
    return "\n".join(out)
