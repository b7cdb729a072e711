"""Views of a :class:`~loadgate.analysis.compare.Comparison`: table, Markdown, JSON.

This module owns how a comparison reads (docs/compare.md, "Outputs"). Every
function is pure: it returns text, or the rich renderables the CLI prints in
colour on a terminal. Writing and printing are the caller's.
"""

from __future__ import annotations

import io
import json
from typing import Any

from loadgate.analysis.compare import (
    CHANGED,
    IMPROVEMENT,
    MACHINE_CHANGED,
    REGRESSION,
    Comparison,
    Row,
)

__all__ = ["FORMATS", "plain_text", "render", "render_markdown", "render_table", "table_view"]

#: the values of ``--format``
FORMATS = ("table", "markdown", "json")


def _fmt(x: float | None, unit: str = "") -> str:
    if x is None:
        return "—"
    return f"{x:.3f}{unit}" if abs(x) < 1000 else f"{x:.1f}{unit}"


def _change(r: Row) -> str:
    if r.change is None:
        return "—"
    pct = f" ({r.change_pct:+.1f} %)" if r.change_pct is not None else ""
    return f"{r.change:+.3f}{pct}"


def _ci(r: Row) -> str:
    if r.ci_low is None or r.ci_high is None:
        return "—"
    return f"[{r.ci_low:+.3f}, {r.ci_high:+.3f}]"


def _headline(c: Comparison) -> str:
    reading = _reading(c)
    if c.invalid_runs:
        return (
            f"INVALID: {c.invalid_runs} input run(s) invalid, so this comparison proves "
            f"nothing (exit 3); the figures, for reading only: {reading}"
        )
    return reading


def _reading(c: Comparison) -> str:
    n = len(c.regressions)
    if n:
        return f"REGRESSION: {n} figure(s) significantly worse by ≥ {c.threshold_pct:g} %"
    if c.machine_changed:
        return (
            f"inconclusive: the machine changed, not the gateway ({len(c.machine_changed)} "
            "figure(s) moved with the harness floor)"
        )
    if c.improvements:
        return f"improvement: {len(c.improvements)} figure(s) significantly better, no regression"
    return "no significant change"


def _floor_line(c: Comparison) -> str | None:
    """Each side's control-group overhead p99 and the rule, when either side has one."""
    base, cand = c.control_p99
    if base is None and cand is None:
        return None
    return (
        f"control group overhead p99 (the harness floor): base {_fmt(base, ' ms')}, "
        f"cand {_fmt(cand, ' ms')}; a latency change is the machine's when the control "
        f"group's figure moved the same way by ≥ {100 * c.floor_share:g} % of it"
    )


#: Quantiles of the control rows shown without ``verbose`` (others: when they explained a row).
_FLOOR_SHOWN = ("p50", "p99")


def _shown(c: Comparison, verbose: bool) -> list[Row]:
    if verbose:
        return c.rows
    # Per-mode rows only when they found something the all-modes row may hide.
    found = (REGRESSION, IMPROVEMENT, CHANGED, MACHINE_CHANGED)
    moved = {r.name.rsplit(".", 1)[1] for r in c.machine_changed}
    return [
        r
        for r in c.rows
        if (r.mode == "all" or r.verdict in found)
        and (r.kind != "control" or r.name.rsplit(".", 1)[1] in (*_FLOOR_SHOWN, *moved))
    ]


def render_markdown(c: Comparison, verbose: bool = False) -> str:
    lines = [
        f"### loadgate compare: {_headline(c)}",
        "",
        f"{c.base_runs} base run(s) vs {c.cand_runs} candidate run(s); "
        f"{c.confidence:.0%} simultaneous intervals over {c.tests} tests; "
        f"threshold {c.threshold_pct:g} %. Latencies in ms.",
        "",
        "| figure | mode | base | cand | change | interval | verdict |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for r in _shown(c, verbose):
        strong = (REGRESSION, IMPROVEMENT, MACHINE_CHANGED)
        verdict = f"**{r.verdict}**" if r.verdict in strong else r.verdict
        lines.append(
            f"| {r.name} | {r.mode} | {_fmt(r.base)} | {_fmt(r.cand)} | {_change(r)} "
            f"| {_ci(r)} | {verdict} |"
        )
    floor = _floor_line(c)
    if floor is not None:
        lines += ["", floor[0].upper() + floor[1:] + "."]
    if c.warnings:
        lines.append("")
        lines += [f"> ⚠ {w}" for w in c.warnings]
    return "\n".join(lines) + "\n"


def table_view(c: Comparison, verbose: bool = False) -> list[Any]:
    """The terminal view as rich renderables (table, method line, warnings), in order.

    Strings carry rich markup (colour on a terminal, dropped in plain text).
    """
    from rich.table import Table

    t = Table(title=f"loadgate compare — {_headline(c)}", title_justify="left")
    for col in ("figure", "mode", "base", "cand", "change", "interval", "verdict"):
        t.add_column(
            col, justify="right" if col in ("base", "cand", "change") else "left", no_wrap=True
        )
    styles = {REGRESSION: "bold red", IMPROVEMENT: "bold green", MACHINE_CHANGED: "bold yellow"}
    for r in _shown(c, verbose):
        style = styles.get(r.verdict)
        verdict = f"[{style}]{r.verdict}[/]" if style else r.verdict
        t.add_row(r.name, r.mode, _fmt(r.base), _fmt(r.cand), _change(r), _ci(r), verdict)
    out: list[Any] = [
        t,
        f"{c.base_runs} vs {c.cand_runs} run(s); {c.confidence:.0%} simultaneous intervals "
        f"over {c.tests} tests; threshold {c.threshold_pct:g} %; latencies in ms",
    ]
    floor = _floor_line(c)
    if floor is not None:
        out.append(floor)
    out += [f"[yellow]warning:[/] {w}" for w in c.warnings]
    return out


def plain_text(renderables: list[Any], width: int) -> str:
    """Rich renderables as plain text ``width`` columns wide (for files and tests)."""
    from rich.console import Console

    buf = io.StringIO()
    console = Console(width=width, file=buf, color_system=None)
    for item in renderables:
        console.print(item)
    return buf.getvalue()


def render_table(c: Comparison, verbose: bool = False, width: int = 140) -> str:
    """The terminal table as plain text."""
    return plain_text(table_view(c, verbose), width)


def render(c: Comparison, fmt: str, verbose: bool = False) -> str:
    """``fmt`` is one of :data:`FORMATS` (the CLI checks ``--format`` before any work)."""
    if fmt == "json":
        return json.dumps(c.to_dict(), indent=2, ensure_ascii=False) + "\n"
    if fmt == "markdown":
        return render_markdown(c, verbose)
    if fmt == "table":
        return render_table(c, verbose)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
