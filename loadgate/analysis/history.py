"""Results across commits: filing them, and the view of ``loadgate history``.

This module owns the history layout and its view. Layout (asv-like, one
directory per machine because figures from different hardware are not
comparable):

    results/<machine_id>/<commit>.json          first run of a commit
    results/<machine_id>/<commit>.<n>.json      further runs (n = 2, 3, …)
    results/<machine_id>/<commit>+dirty.json    a run from an uncommitted tree

Several runs of one commit are kept, not overwritten: ``compare`` uses them as
repeated runs, which is what makes a step between two commits believable. Time
order comes from ``started_at`` (the first run of each commit), not from file
names: commit hashes have no order.

The view is a table of key figures per commit and, optionally, a line chart
(drawn by :func:`loadgate.report.svg.line_chart`, the reports' one SVG
plotter); a step is marked where ``compare`` finds a significant change between
consecutive commits. The functions return data, renderables or text; printing
and writing files is the CLI's.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadgate.analysis.compare import (
    IMPROVEMENT,
    MACHINE_CHANGED,
    REGRESSION,
    Comparison,
    Row,
    compare_results,
)
from loadgate.analysis.compare_render import plain_text
from loadgate.errors import UsageError
from loadgate.result.io import load_run_result, write_result
from loadgate.result.model import Result

__all__ = [
    "CommitEntry",
    "CommitFigures",
    "history_table",
    "load_history",
    "machine_dir",
    "render_svg",
    "render_table",
    "store_result",
]

_SAFE = re.compile(r"[^0-9A-Za-z._-]")
_REGRESSION_COLOR = "#c0392b"
#: the table's colour for a step's verdict
_STEP_STYLE = {REGRESSION: "bold red", IMPROVEMENT: "green", MACHINE_CHANGED: "yellow"}
_IMPROVEMENT_COLOR = "#1e7e34"
#: above this many commits the x axis gets round ticks instead of one per commit
_MAX_COMMIT_TICKS = 20


def store_result(result: Result, results_dir: Path) -> Path:
    """File a result as ``results_dir/<machine_id>/<commit>[.<n>].json``; return the path."""
    machine = result.environment.machine_id
    if not machine:
        raise UsageError("result: key 'environment.machine_id' missing: cannot file it")
    commit = result.git.commit if result.git is not None else None
    if not commit:
        raise UsageError(
            "result: key 'git.commit' missing: run with the gateway's git directory "
            "so the result says which commit it measured"
        )
    dirty = result.git is not None and bool(result.git.dirty)
    stem = _SAFE.sub("_", commit) + ("+dirty" if dirty else "")
    d = Path(results_dir) / _SAFE.sub("_", machine)
    path = d / f"{stem}.json"
    n = 1
    while path.exists():
        n += 1
        path = d / f"{stem}.{n}.json"
    return write_result(result, path)


@dataclass(frozen=True, slots=True)
class CommitFigures:
    """Key figures of one commit: the mean over its runs (None: no run had it)."""

    p50_ms: float | None
    p99_ms: float | None
    rps: float | None
    error_rate: float | None


def _mean(values: list[float | None]) -> float | None:
    nums = [v for v in values if v is not None]
    return sum(nums) / len(nums) if nums else None


def _overhead(r: Result, stat: str) -> float | None:
    s = r.metrics.get("overhead_ms")
    return None if s is None else float(getattr(s, stat))


@dataclass(slots=True)
class CommitEntry:
    """All runs of one commit on one machine, with the step from the previous commit."""

    commit: str
    started_at: str
    runs: list[Result]
    paths: list[Path] = field(default_factory=list)
    step: Comparison | None = None
    step_note: str = ""

    @property
    def figures(self) -> CommitFigures:
        return CommitFigures(
            p50_ms=_mean([_overhead(r, "p50") for r in self.runs]),
            p99_ms=_mean([_overhead(r, "p99") for r in self.runs]),
            rps=_mean([r.requests.throughput_rps for r in self.runs]),
            error_rate=_mean([r.requests.error_rate for r in self.runs]),
        )

    @property
    def verdicts(self) -> str:
        return ",".join(sorted({r.verdict for r in self.runs}))


def machine_dir(results_dir: Path, machine: str | None) -> Path:
    """The machine's directory under ``results_dir``; UsageError when it is not clear which."""
    if not results_dir.is_dir():
        raise UsageError(f"{results_dir}: no such results directory")
    machines = sorted(p.name for p in results_dir.iterdir() if p.is_dir())
    if not machines:
        raise UsageError(
            f"{results_dir}: no results filed yet (file runs with "
            f"`loadgate run PROFILE --git-dir GATEWAY_REPO --history {results_dir}`)"
        )
    if machine is not None:
        if machine not in machines:
            known = ", ".join(machines) or "none"
            raise UsageError(f"--machine: no results for {machine!r} in {results_dir} ({known})")
        return results_dir / machine
    if len(machines) != 1:
        known = ", ".join(machines) or "none"
        raise UsageError(f"{results_dir}: choose a machine with --machine (found: {known})")
    return results_dir / machines[0]


def _summarize_step(c: Comparison) -> str:
    def worst(rows: list[Row]) -> Row:
        return max(rows, key=lambda r: (r.mode == "all", abs(r.change_pct or 0.0)))

    if c.regressions:
        r = worst(c.regressions)
    elif c.machine_changed:  # the control group moved with the figures: not the gateway
        r = worst(c.machine_changed)
    elif c.improvements:
        r = worst(c.improvements)
    else:
        return "no significant change"
    pct = f" {r.change_pct:+.1f} %" if r.change_pct is not None else ""
    where = "" if r.mode == "all" else f" ({r.mode})"
    return f"{r.verdict}: {r.name}{where}{pct}"


def load_history(machine_dir: Path, threshold_pct: float = 5.0) -> list[CommitEntry]:
    """Runs grouped by commit, in time order, each compared with its predecessor.

    A file that is not a run's result is a UsageError naming it.
    """
    groups: dict[str, CommitEntry] = {}
    for p in sorted(machine_dir.glob("*.json")):
        result = load_run_result(p)
        commit = p.name.removesuffix(".json").split(".")[0]
        entry = groups.setdefault(commit, CommitEntry(commit, "", []))
        entry.runs.append(result)
        entry.paths.append(p)
    entries = list(groups.values())
    for entry in entries:
        entry.started_at = min(r.started_at for r in entry.runs)
    entries.sort(key=lambda e: e.started_at)
    for prev, cur in itertools.pairwise(entries):
        labels = ([p.name for p in prev.paths], [p.name for p in cur.paths])
        try:
            cur.step = compare_results(prev.runs, cur.runs, threshold_pct, labels=labels)
            cur.step_note = _summarize_step(cur.step)
        except UsageError as exc:
            cur.step_note = f"not comparable: {exc}"
    return entries


# --------------------------------------------------------------------- views


def _f(x: float | None, nd: int = 3) -> str:
    return "—" if x is None else f"{x:.{nd}f}"


def history_table(entries: list[CommitEntry], machine: str) -> Any:
    """The table as a rich renderable (colour on a terminal); ``#`` is the plot's x."""
    from rich.table import Table

    t = Table(title=f"loadgate history — machine {machine}", title_justify="left")
    for col in ("#", "commit", "started", "runs", "p50 ms", "p99 ms", "req/s", "errors",
                "verdict"):  # fmt: skip
        right = col not in ("commit", "started", "verdict")
        t.add_column(col, justify="right" if right else "left", no_wrap=True)
    t.add_column("step vs previous", ratio=1)
    for i, e in enumerate(entries, 1):
        f = e.figures
        style = ""
        if e.step is not None:
            style = _STEP_STYLE.get(e.step.verdict, "")
        note = f"[{style}]{e.step_note}[/]" if style else e.step_note
        t.add_row(
            str(i),
            e.commit[:12],
            e.started_at[:10],
            str(len(e.runs)),
            _f(f.p50_ms),
            _f(f.p99_ms),
            _f(f.rps, 0),
            _f(f.error_rate, 4),
            e.verdicts,
            note,
        )
    return t


def render_table(entries: list[CommitEntry], machine: str, width: int = 140) -> str:
    """The table as plain text."""
    return plain_text([history_table(entries, machine)], width)


def render_svg(entries: list[CommitEntry], title: str = "overhead (ms)") -> str:
    """p50 and p99 overhead per commit (x = the table's ``#``); a rule at each step."""
    from loadgate.report.svg import PALETTE, Axis, Rule, Series, line_chart

    xs = tuple(float(i) for i in range(1, len(entries) + 1))
    figures = [e.figures for e in entries]
    series = [
        Series("p50", xs, tuple(f.p50_ms for f in figures), color=PALETTE[0], markers=True),
        Series("p99", xs, tuple(f.p99_ms for f in figures), color=PALETTE[1], markers=True),
    ]
    rules = []
    for x, e in zip(xs, entries, strict=True):
        # A step the machine explains (the control group moved with it) gets no rule.
        if e.step is None or e.step.verdict not in (REGRESSION, IMPROVEMENT):
            continue
        worse = e.step.verdict == REGRESSION
        rules.append(
            Rule(
                "x",
                x,
                f"{e.commit[:8]} {'regression' if worse else 'improvement'}",
                _REGRESSION_COLOR if worse else _IMPROVEMENT_COLOR,
            )
        )
    x_axis = Axis(
        "commit, oldest first (# in the table)",
        lo=1.0,
        hi=float(max(len(entries), 2)),
        ticks=xs if 0 < len(xs) <= _MAX_COMMIT_TICKS else None,
    )
    chart = line_chart(
        series, x=x_axis, y=Axis("ms"), title=title, width=720, height=320, rules=rules
    )
    return chart + "\n"
