"""The sweep's pictures: the knee plot (``sweep_svg``) and the sweep page.

Both read the typed :class:`~loadgate.result.model.SweepResult` that
``loadgate sweep`` writes: one point per step (its load value, throughput,
overhead p99, its same-run control group's overhead p99 — the harness floor the
overhead stands on — and verdict), the knee, and the overhead budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Literal

from loadgate.judge.gates import parse_gate
from loadgate.report._fmt import fmt_num, num
from loadgate.report._harness import CONTROL_MEANING
from loadgate.report._html import banner, header, machine, page, table
from loadgate.report.frontier import frontier_section
from loadgate.report.svg import PALETTE, Axis, Rule, Series, line_chart, stack
from loadgate.result.model import SweepResult

__all__ = ["SweepPoint", "budget_ms", "render_sweep_html", "sweep_points", "sweep_svg"]

#: The gate whose threshold the overhead panel draws as the budget line.
BUDGET_GATE = "overhead_ms.p99"
_VERDICT_CLASS = {"pass": "ok", "fail": "bad", "invalid": "undecided"}
#: Height of each of the knee plot's two panels (px).
_PANEL_H = 260
#: The overhead panel's second line: each step's control group, the harness floor.
CONTROL_SERIES = "control overhead p99, the floor (ms)"


@dataclass(frozen=True, slots=True)
class SweepPoint:
    """One step as plotted: load value, throughput (req/s), overhead p99 (ms), verdict,
    and the control group's overhead p99 (ms; None without one)."""

    x: float
    throughput_rps: float | None
    overhead_p99_ms: float | None
    verdict: Literal["pass", "fail", "invalid"]
    control_p99_ms: float | None = None


def sweep_points(sweep: SweepResult) -> tuple[str, list[SweepPoint]]:
    """``(x-axis label, points in ascending load)``."""
    label = "concurrency" if sweep.mode == "concurrency" else "offered rate (req/s)"
    points = [
        SweepPoint(
            step.value,
            num(step.requests.throughput_rps),
            num(step.metric("overhead_ms", "p99")),
            step.verdict,
            num(step.harness.control_overhead_p99_ms),
        )
        for step in sweep.steps
    ]
    return label, sorted(points, key=lambda p: p.x)


def budget_ms(sweep: SweepResult) -> float | None:
    """The overhead p99 budget the sweep was run against (None: it had none).

    A sweep file says it in ``budget`` (null: no budget). Early files have no
    ``budget`` key: their steps' ``overhead_ms.p99`` gate, else the profile's, gives it.
    """
    if "budget" in sweep.model_fields_set:
        b = sweep.budget
        return b.threshold if b is not None and b.name == BUDGET_GATE else None
    for step in sweep.steps:
        for g in step.gates:
            if g.name == BUDGET_GATE:
                return g.threshold
    gates = sweep.profile.get("gates")
    expr = gates.get(BUDGET_GATE) if isinstance(gates, dict) else None
    try:
        return parse_gate(BUDGET_GATE, expr).threshold if expr is not None else None
    except ValueError:
        return None


def sweep_svg(sweep: SweepResult, width: int = 760) -> str:
    """The knee plot as one standalone SVG: throughput above, overhead p99 below.

    Both panels share the load axis (log scale, a tick per step); the budget is a
    horizontal rule on the overhead panel, the knee a vertical rule on both. Steps
    with a control group add its overhead p99 to the overhead panel, dashed: the floor.
    """
    label, pts = sweep_points(sweep)
    xs = tuple(p.x for p in pts)
    x_axis = Axis(label, scale="log" if xs and min(xs) > 0 else "linear", ticks=xs or None)
    kx = sweep.knee.value
    knee = [Rule("x", kx, f"knee: {fmt_num(kx)}", "#1e7e34")] if kx is not None else []
    budget = num(budget_ms(sweep))
    rules = (
        [*knee, Rule("y", budget, f"budget {fmt_num(budget)} ms")] if budget is not None else knee
    )
    rps = tuple(p.throughput_rps for p in pts)
    p99 = tuple(p.overhead_p99_ms for p in pts)
    floor = tuple(p.control_p99_ms for p in pts)
    overhead = [Series("overhead p99 (ms)", xs, p99, color=PALETTE[1], markers=True)]
    if any(v is not None for v in floor):
        overhead.append(Series(CONTROL_SERIES, xs, floor, color=PALETTE[2], dashed=True))
    panels = (
        (
            "sweep-throughput",
            "Throughput",
            "req/s",
            [Series("throughput (req/s)", xs, rps, color=PALETTE[0], markers=True)],
            knee,
        ),
        ("sweep-overhead", "Overhead p99", "ms", overhead, rules),
    )
    charts = [
        line_chart(
            series,
            x=x_axis,
            y=Axis(unit),
            title=title,
            width=width,
            height=_PANEL_H,
            rules=panel_rules,
            chart_id=chart_id,
        )
        for chart_id, title, unit, series, panel_rules in panels
    ]
    return stack(charts, width=width, heights=[_PANEL_H] * 2, title="capacity sweep")


def render_sweep_html(sweep: SweepResult) -> str:
    """The sweep page: the knee, the frontier (``--frontier``), the knee plot, the steps."""
    title = f"loadgate sweep: {sweep.profile_name}"
    label, pts = sweep_points(sweep)
    knee = sweep.knee
    kx = knee.value
    knee_text = (
        f"Knee: {label} {fmt_num(kx)} at {fmt_num(knee.throughput_rps, 'req/s')}"
        if kx is not None
        else "No knee: no step passed every gate."
    )
    reasons = [knee.reason] if knee.reason else []
    cls = "pass" if kx is not None else "fail"
    floors = any(p.control_p99_ms is not None for p in pts)
    rows = [
        [
            fmt_num(p.x),
            fmt_num(p.throughput_rps),
            fmt_num(p.overhead_p99_ms),
            *([f'<span class="floor">{fmt_num(p.control_p99_ms)}</span>'] if floors else []),
            f'<span class="{_VERDICT_CLASS[p.verdict]}">'
            f"{'FAIL' if p.verdict == 'fail' else p.verdict}</span>",
        ]
        for p in pts
    ]
    head = [label, "throughput (req/s)", "overhead p99 (ms)"]
    head += ["control overhead p99, the floor (ms)"] if floors else []
    floor_note = (
        f'<p class="note">Control: {escape(CONTROL_MEANING)}, in each step: the floor the '
        "step's overhead stands on. Where the floor rises with the load, the harness and "
        "the machine pay part of the overhead; where it stays flat, the overhead's growth "
        "is the gateway's.</p>"
        if floors
        else ""
    )
    return page(
        title,
        [
            header(sweep, title),
            banner(cls, knee_text, reasons, sweep.verdict, "knee"),
            frontier_section(sweep),
            '<h2>Knee plot</h2><div class="card">' + sweep_svg(sweep) + "</div>",
            "<h2>Steps</h2>" + table([*head, "verdict"], rows) + floor_note,
            machine(sweep),
        ],
    )
