"""The throughput frontier's picture and table (``loadgate sweep --frontier``).

Both read the typed :class:`~loadgate.result.model.SweepResult` whose ``frontier``
the sweep wrote. The plot has two panels drawn by :mod:`loadgate.report.svg`:

* the frontier: for each p99 bound, the highest rate measured under it and the
  lowest measured over it (dashed): the true frontier lies between the two lines;
* the measurements behind it: every step's overhead p99 against its offered rate
  with its 95 % interval (dashed), the step's same-run control group p99 (the
  harness + stub floor, dashed black), and each bound as a horizontal rule.
"""

from __future__ import annotations

import math
from html import escape
from typing import Literal

from loadgate.report._fmt import fmt_num
from loadgate.report._html import table
from loadgate.report.svg import PALETTE, Axis, Rule, Series, line_chart, stack
from loadgate.result.model import SweepResult

__all__ = ["frontier_section", "frontier_svg"]

_PANEL_H = 280
_STATUS_TEXT = {
    "found": "found",
    "unresolved": "unresolved (steps ran out)",
    "not_reached": "not reached",
    "above_tried": "above the highest rate tried",
    "harness": "harness-bound above",
    "none": "no steps",
}


def frontier_svg(sweep: SweepResult, width: int = 760) -> str:
    """The frontier plot as one standalone SVG (empty panels say "no data")."""
    frontier = sweep.frontier
    points = frontier.points if frontier is not None else []
    bounds = tuple(p.bound_ms for p in points)
    under = tuple(p.max_rate for p in points)
    over = tuple(p.first_over for p in points)
    top = line_chart(
        [
            Series("highest rate under the bound", bounds, under, PALETTE[0], markers=True),
            Series("lowest rate over it", bounds, over, PALETTE[1], dashed=True, markers=True),
        ],
        x=Axis("overhead p99 bound (ms)", scale="log", ticks=bounds or None),
        y=Axis("offered rate (req/s)"),
        title="Throughput frontier",
        width=width,
        height=_PANEL_H,
        chart_id="frontier",
    )
    steps = sorted(sweep.steps, key=lambda s: s.value)
    xs = tuple(s.value for s in steps)

    def col(stat: str) -> tuple[float | None, ...]:
        return tuple(s.metric("overhead_ms", stat) for s in steps)

    p99s = [v for v in col("p99") if v is not None]
    # Log: a frontier spans 1 ms to 100 ms bounds and a p99 that explodes past capacity.
    y_scale: Literal["log", "linear"] = "log" if p99s and min(p99s) > 0 else "linear"
    floor = tuple(s.harness.control_overhead_p99_ms for s in steps)
    valid = [s.verdict != "invalid" for s in steps]
    p99 = col("p99")
    bottom = line_chart(
        [
            Series(
                "overhead p99 (ms)",
                xs,
                tuple(v if ok else None for v, ok in zip(p99, valid, strict=True)),
                PALETTE[2],
                markers=True,
            ),
            Series(
                "harness-bound step",
                xs,
                tuple(None if ok else v for v, ok in zip(p99, valid, strict=True)),
                PALETTE[3],
                markers=True,
            ),
            Series("p99 95 % interval, high", xs, col("p99_high"), PALETTE[4], dashed=True),
            Series("p99 95 % interval, low", xs, col("p99_low"), PALETTE[4], dashed=True),
            # The same-run control group: where it is as high, the machine set the p99.
            Series("control p99, the floor (ms)", xs, floor, PALETTE[6], dashed=True),
        ],
        x=Axis(
            "offered rate (req/s)",
            scale="log" if xs and min(xs) > 0 else "linear",
            ticks=_ramp_ticks(xs),
        ),
        y=Axis("overhead p99 (ms)", scale=y_scale),
        title="Overhead p99 of each step",
        width=width,
        height=_PANEL_H,
        rules=[Rule("y", b, f"{b:g} ms", "#888888") for b in bounds],
        chart_id="frontier-steps",
    )
    return stack([top, bottom], width=width, heights=[_PANEL_H] * 2, title="throughput frontier")


def _ramp_ticks(xs: tuple[float, ...]) -> tuple[float, ...] | None:
    """Ticks at the doubling ramp's rates (the lowest × 2^k): bisection steps crowd."""
    if not xs or min(xs) <= 0:
        return None
    low = min(xs)
    ticks = tuple(x for x in xs if math.log2(x / low) == round(math.log2(x / low)))
    return ticks if len(ticks) >= 2 else None


def frontier_section(sweep: SweepResult) -> str:
    """The sweep page's frontier: the table, the plot, what a status means."""
    frontier = sweep.frontier
    if frontier is None:
        return ""
    rows = [
        [
            f"&lt; {fmt_num(p.bound_ms)}",
            fmt_num(p.max_rate),
            fmt_num(p.throughput_rps),
            fmt_num(p.overhead_p99_ms)
            + (
                f" ({fmt_num(p.p99_low_ms)}–{fmt_num(p.p99_high_ms)})"
                if p.p99_low_ms is not None
                else ""
            ),
            fmt_num(p.first_over),
            escape(_STATUS_TEXT[p.status]) + (" (marginal)" if p.marginal else ""),
            escape(p.reason),
        ]
        for p in frontier.points
    ]
    head = [
        "p99 bound (ms)",
        "highest rate under it (req/s)",
        "served (req/s)",
        "its p99 (95 % interval, ms)",
        "lowest rate over it",
        "status",
        "why",
    ]
    res = f"{100 * frontier.resolution:g} %" if frontier.resolution is not None else "–"
    note = (
        '<p class="note">Each bound: the top of the unbroken run of steps, from the lowest '
        "rate, whose overhead p99 was under it (harness-valid, error rate within "
        f"sweep.max_error_rate), bisected to {res}. <em>marginal</em>: the p99 interval of "
        "a step beside the frontier reaches across the bound.</p>"
    )
    return (
        "<h2>Throughput frontier</h2>"
        + table(head, rows)
        + note
        + '<div class="card">'
        + frontier_svg(sweep)
        + "</div>"
    )
