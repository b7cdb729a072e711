"""A small, dependency-free SVG line-chart writer for the reports.

It owns axes (linear, log, and HdrHistogram's log-percentile scale), ticks,
grid, legend, reference rules and the data series; every chart of the product
(report, compare, sweep) is drawn here. Output is a deterministic string: the
same data gives byte-identical SVG, so reports diff cleanly and tests can
compare them. Every series is one ``<path class="series">`` that also carries
its data (``data-series``, ``data-x``, ``data-y``) so a test — or a reader with
the browser's inspector — can read back exactly what was drawn.

The legend sits between the title and the plot, never over it: a legend box
drawn over the lines hid the top of the plot (a throughput line near its
maximum looked absent). The plot's rectangle (``rect.plot-area``) and each
legend entry's (``rect.legend-box``) are in the SVG, so a test can check from
the geometry alone that they do not overlap.

Why hand-written rather than matplotlib/plotly/uPlot: see docs/report.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Literal

__all__ = [
    "PALETTE",
    "Axis",
    "Rule",
    "Series",
    "line_chart",
    "percentile_to_t",
    "stack",
]

#: Okabe–Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")

Scale = Literal["linear", "log", "percentile"]

_FONT = "font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif"
_PCT_LABELS = ("0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%", "99.99999%")
_MAX_DECADES = len(_PCT_LABELS) - 1


@dataclass(frozen=True, slots=True)
class Axis:
    """One axis. ``lo``/``hi`` are in data units (percent for ``percentile``)."""

    label: str
    scale: Scale = "linear"
    lo: float | None = None
    hi: float | None = None
    ticks: tuple[float, ...] | None = None  # explicit tick positions (data units)
    #: text for each of ``ticks`` (e.g. commit ids on an index axis); default: the number
    tick_labels: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.tick_labels is not None and (
            self.ticks is None or len(self.ticks) != len(self.tick_labels)
        ):
            raise ValueError("Axis.tick_labels needs one label per explicit tick")


@dataclass(frozen=True, slots=True)
class Series:
    """One line: ``ys`` may hold None for a gap (e.g. an interval with no data)."""

    name: str
    xs: tuple[float, ...]
    ys: tuple[float | None, ...]
    color: str | None = None
    dashed: bool = False
    markers: bool = False


@dataclass(frozen=True, slots=True)
class Rule:
    """A labelled reference line across the plot: ``axis="y"`` is horizontal."""

    axis: Literal["x", "y"]
    value: float
    label: str
    color: str = "#c0392b"


def percentile_to_t(q: float, t_max: float = float(_MAX_DECADES)) -> float:
    """Percentile (0..100) → decades of ``1/(1-q)``: 90 % → 1, 99 % → 2; 100 % → ``t_max``."""
    if q >= 100.0:
        return t_max
    return min(t_max, -math.log10(1.0 - max(q, 0.0) / 100.0))


def _nice_step(span: float, target: int) -> float:
    raw = span / max(target, 1)
    mag = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= m * mag:
            return m * mag
    return 10.0 * mag


def _tick_text(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 10000:
        return f"{v / 1000:g}k"
    return f"{v:.6g}"


def _num(v: float) -> str:
    """Compact, stable text for a coordinate or a data value."""
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.6g}" if abs(v) >= 1e-3 else f"{v:.4e}"


class _Scale:
    """Data ↔ pixel mapping of one axis, with its ticks."""

    def __init__(self, axis: Axis, values: Sequence[float], p0: float, p1: float) -> None:
        self.axis = axis
        self.p0, self.p1 = p0, p1
        if axis.scale == "percentile":
            finite = [percentile_to_t(v) for v in values if v < 100.0]
            top = max(finite, default=2.0)
            t_hi = (
                percentile_to_t(axis.hi)
                if axis.hi is not None
                else float(min(_MAX_DECADES, max(2, math.ceil(top - 1e-9))))
            )
            self.lo, self.hi = 0.0, t_hi
            self.ticks = [(float(k), _PCT_LABELS[k]) for k in range(int(t_hi) + 1)]
            return
        if axis.scale == "log":
            pos = [v for v in values if v > 0]
            lo = axis.lo if axis.lo is not None else min(pos, default=1.0)
            hi = axis.hi if axis.hi is not None else max(pos, default=10.0)
            self.lo, self.hi = math.log10(lo), math.log10(hi)
            if self.hi <= self.lo:
                self.lo, self.hi = self.lo - 0.5, self.hi + 0.5
            ticks = axis.ticks or tuple(
                10.0**k for k in range(math.floor(self.lo), math.ceil(self.hi) + 1)
            )
            self.ticks = [
                (math.log10(v), text)
                for v, text in zip(ticks, self._texts(ticks), strict=True)
                if v > 0 and self.lo - 1e-9 <= math.log10(v) <= self.hi + 1e-9
            ]
            return
        lo = axis.lo if axis.lo is not None else min(0.0, min(values, default=0.0))
        hi = axis.hi if axis.hi is not None else max(values, default=1.0)
        if hi <= lo:
            hi = lo + 1.0
        step = _nice_step(hi - lo, 5)
        if axis.hi is None:
            hi = math.ceil(hi / step - 1e-9) * step
        self.lo, self.hi = lo, hi
        if axis.ticks is not None:
            marks = list(axis.ticks)
        else:
            first = math.ceil(lo / step - 1e-9)
            marks = [k * step for k in range(first, math.floor(hi / step + 1e-9) + 1)]
        self.ticks = [
            (v, t) for v, t in zip(marks, self._texts(marks), strict=True) if lo <= v <= hi
        ]

    def _texts(self, values: Sequence[float]) -> list[str]:
        if self.axis.tick_labels is not None and self.axis.ticks is not None:
            return list(self.axis.tick_labels)
        return [_tick_text(round(v, 10)) for v in values]

    def t(self, v: float) -> float:
        if self.axis.scale == "percentile":
            return percentile_to_t(v, self.hi)
        if self.axis.scale == "log":
            return math.log10(v) if v > 0 else self.lo
        return v

    def px_t(self, t: float) -> float:
        return self.p0 + (t - self.lo) / (self.hi - self.lo) * (self.p1 - self.p0)

    def px(self, v: float) -> float:
        return self.px_t(self.t(v))


def _series_path(s: Series, sx: _Scale, sy: _Scale, color: str) -> str:
    parts: list[str] = []
    pen_up = True
    dots: list[str] = []
    for x, y in zip(s.xs, s.ys, strict=True):
        if y is None or not math.isfinite(y):
            pen_up = True
            continue
        px, py = round(sx.px(x), 2), round(sy.px(y), 2)
        parts.append(f"{'M' if pen_up else 'L'}{_num(px)},{_num(py)}")
        pen_up = False
        if s.markers:
            dots.append(f'<circle cx="{_num(px)}" cy="{_num(py)}" r="3" fill="{color}"/>')
    data_x = ",".join(_num(x) for x in s.xs)
    data_y = ",".join("null" if y is None else _num(y) for y in s.ys)
    dash = ' stroke-dasharray="6 4"' if s.dashed else ""
    path = (
        f'<path class="series" data-series="{escape(s.name)}" data-x="{data_x}" '
        f'data-y="{data_y}" d="{" ".join(parts)}" fill="none" stroke="{color}" '
        f'stroke-width="2" stroke-linejoin="round"{dash}/>'
    )
    return path + "".join(dots)


#: Legend layout: sample line length, gap to the text, gap between entries, row pitch (px).
_KEY_LINE, _KEY_GAP, _KEY_SPACING, _KEY_ROW = 22, 6, 16, 15
#: Width of one character of the 11 px sans-serif legend text, rounded up: the layout
#: is fixed in the SVG (no script measures the text), so it errs on the wide side.
_CHAR_PX = 6.6


def _legend_layout(
    names: Sequence[str], x0: float, x1: float, y0: float
) -> list[tuple[float, float]]:
    """Left edge and centre line of each legend entry: left to right, wrapped at ``x1``."""
    out: list[tuple[float, float]] = []
    x, y = x0, y0
    for name in names:
        w = _entry_width(name)
        if x > x0 and x + w > x1:
            x, y = x0, y + _KEY_ROW
        out.append((x, y))
        x += w + _KEY_SPACING
    return out


def _entry_width(name: str) -> float:
    return _KEY_LINE + _KEY_GAP + _CHAR_PX * len(name)


def line_chart(
    series: Sequence[Series],
    *,
    x: Axis,
    y: Axis,
    title: str,
    width: int = 560,
    height: int = 300,
    rules: Sequence[Rule] = (),
    chart_id: str = "",
) -> str:
    """One complete ``<svg>`` line chart (also valid as a standalone .svg file).

    The legend (one entry per drawn series) takes rows under the title and the
    plot starts below it; a chart of one series named like the chart has none
    (the title already says what the line is).
    """
    left, right, bottom = 62, 34, 44
    drawn = [s for s in series if any(v is not None and math.isfinite(v) for v in s.ys)]
    colors = [s.color or PALETTE[i % len(PALETTE)] for i, s in enumerate(drawn)]
    keyed = not (len(drawn) == 1 and drawn[0].name == title)
    legend = _legend_layout([s.name for s in drawn], left, width - right, 32.0) if keyed else []
    # Plot top: clear of the title (baseline 18) or of the last legend row (half a row + 9).
    top = 30 if not legend else int(legend[-1][1] + _KEY_ROW / 2 + 9)
    xs = [v for s in series for v in s.xs]
    ys = [v for s in series for v in s.ys if v is not None and math.isfinite(v)]
    ys += [r.value for r in rules if r.axis == "y"]
    sx = _Scale(x, xs, left, width - right)
    sy = _Scale(y, ys, height - bottom, top)
    ident = f' id="{escape(chart_id)}"' if chart_id else ""
    plot_bottom, plot_top = height - bottom, top
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg"{ident} class="chart" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" style="{_FONT};font-size:11px">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<rect class="plot-area" x="{left}" y="{plot_top}" width="{width - right - left}" '
        f'height="{plot_bottom - plot_top}" fill="none"/>',
        f'<text x="{left}" y="18" font-size="13" font-weight="600" fill="#222">'
        f"{escape(title)}</text>",
    ]
    for t, label in sy.ticks:
        py = _num(round(sy.px_t(t), 2))
        out.append(
            f'<line x1="{left}" x2="{width - right}" y1="{py}" y2="{py}" stroke="#e5e5e5"/>'
            f'<text x="{left - 6}" y="{py}" dy="0.32em" text-anchor="end" fill="#555">'
            f"{escape(label)}</text>"
        )
    for t, label in sx.ticks:
        px = _num(round(sx.px_t(t), 2))
        out.append(
            f'<line x1="{px}" x2="{px}" y1="{plot_top}" y2="{plot_bottom}" stroke="#eeeeee"/>'
            f'<text x="{px}" y="{plot_bottom + 15}" text-anchor="middle" fill="#555">'
            f"{escape(label)}</text>"
        )
    out.append(
        f'<path d="M{left},{plot_top}V{plot_bottom}H{width - right}" fill="none" '
        'stroke="#888"/>'
        f'<text x="{(left + width - right) / 2:g}" y="{height - 6}" text-anchor="middle" '
        f'fill="#333">{escape(x.label)}</text>'
        f'<text transform="translate(14 {(plot_top + plot_bottom) / 2:g}) rotate(-90)" '
        f'text-anchor="middle" fill="#333">{escape(y.label)}</text>'
    )
    for r in rules:
        scale = sx if r.axis == "x" else sy
        p = _num(round(scale.px(r.value), 2))
        # Labels sit inside the plot, on the side with room.
        if r.axis == "x":
            line = f'x1="{p}" x2="{p}" y1="{plot_top}" y2="{plot_bottom}"'
            right_half = float(p) > (left + width - right) / 2
            anchor = ' text-anchor="end" dx="-4"' if right_half else ' dx="4"'
            text = f'x="{p}" y="{plot_bottom - 8}"{anchor}'
        else:
            line = f'x1="{left}" x2="{width - right}" y1="{p}" y2="{p}"'
            text = f'x="{width - right - 4}" y="{p}" dy="-4" text-anchor="end"'
        out.append(
            f'<g class="rule" data-rule="{escape(r.label)}" data-value="{_num(r.value)}">'
            f'<line {line} stroke="{r.color}" stroke-dasharray="4 3"/>'
            f'<text {text} fill="{r.color}">{escape(r.label)}</text></g>'
        )
    if not drawn:
        out.append(
            f'<text class="no-data" x="{(left + width - right) / 2:g}" '
            f'y="{(plot_top + plot_bottom) / 2:g}" text-anchor="middle" fill="#999">no data</text>'
        )
    for s, color in zip(drawn, colors, strict=True):
        out.append(_series_path(s, sx, sy, color))
    keys = list(zip(drawn, colors, strict=True)) if legend else []
    for (s, color), (lx, ly) in zip(keys, legend, strict=True):
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        out.append(
            f'<g class="legend"><rect class="legend-box" x="{_num(lx)}" '
            f'y="{_num(ly - _KEY_ROW / 2)}" width="{_num(round(_entry_width(s.name), 2))}" '
            f'height="{_KEY_ROW}" fill="none"/>'
            f'<line x1="{_num(lx)}" x2="{_num(lx + _KEY_LINE)}" y1="{_num(ly)}" y2="{_num(ly)}" '
            f'stroke="{color}" stroke-width="2"{dash}/>'
            f'<text x="{_num(lx + _KEY_LINE + _KEY_GAP)}" y="{_num(ly)}" dy="0.32em" '
            f'fill="#222">{escape(s.name)}</text></g>'
        )
    out.append("</svg>")
    return "".join(out)


def stack(charts: Sequence[str], *, width: int, heights: Sequence[int], title: str) -> str:
    """Charts from :func:`line_chart` stacked vertically in one outer ``<svg>``."""
    total = sum(heights)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart-stack" width="{width}" '
        f'height="{total}" viewBox="0 0 {width} {total}" role="img" '
        f'aria-label="{escape(title)}">'
    ]
    offset = 0
    for chart, h in zip(charts, heights, strict=True):
        out.append(f'<g transform="translate(0 {offset})">{chart}</g>')
        offset += h
    out.append("</svg>")
    return "".join(out)
