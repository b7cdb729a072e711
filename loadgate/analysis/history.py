"""Results across commits: filing them, and ``loadgate history``.

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

The view is a table of key figures per commit and, optionally, a small
hand-written SVG plot (no plotting dependency); a step is marked where
``compare`` finds a significant change between consecutive commits.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from loadgate.analysis.compare import Comparison, Row, compare_results
from loadgate.errors import UsageError
from loadgate.result.legacy import dig

__all__ = ["CommitEntry", "load_history", "main", "render_svg", "store_result"]

_SAFE = re.compile(r"[^0-9A-Za-z._-]")


def _get(d: Any, path: str) -> Any:
    return dig(d, *path.split("."))


def store_result(result: Any, results_dir: Path) -> Path:
    """File a result as ``results_dir/<machine_id>/<commit>[.<n>].json``; return the path."""
    from loadgate.result.legacy import as_dict

    result_dict = as_dict(result)
    machine = _get(result_dict, "environment.machine_id")
    if not isinstance(machine, str) or not machine:
        raise UsageError("result: key 'environment.machine_id' missing: cannot file it")
    commit = _get(result_dict, "git.commit")
    if not isinstance(commit, str) or not commit:
        raise UsageError(
            "result: key 'git.commit' missing: run with the gateway's git directory "
            "so the result says which commit it measured"
        )
    stem = _SAFE.sub("_", commit) + ("+dirty" if _get(result_dict, "git.dirty") else "")
    d = results_dir / _SAFE.sub("_", machine)
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{stem}.json"
    n = 1
    while path.exists():
        n += 1
        path = d / f"{stem}.{n}.json"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(result_dict, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


@dataclass(slots=True)
class CommitEntry:
    """All runs of one commit on one machine, with the step from the previous commit."""

    commit: str
    started_at: str
    runs: list[dict[str, Any]]
    step: Comparison | None = None
    step_note: str = ""
    figures: dict[str, float | None] = field(default_factory=dict)


def _mean(values: list[Any]) -> float | None:
    nums = [float(v) for v in values if isinstance(v, int | float)]
    return sum(nums) / len(nums) if nums else None


def _figures(runs: list[dict[str, Any]]) -> dict[str, float | None]:
    return {
        "p50": _mean([_get(r, "metrics.overhead_ms.p50") for r in runs]),
        "p99": _mean([_get(r, "metrics.overhead_ms.p99") for r in runs]),
        "rps": _mean([_get(r, "requests.throughput_rps") for r in runs]),
        "errors": _mean([_get(r, "requests.error_rate") for r in runs]),
    }


def _pick_machine(results_dir: Path, machine: str | None) -> Path:
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
    elif c.improvements:
        r = worst(c.improvements)
    else:
        return "no significant change"
    pct = f" {r.change_pct:+.1f} %" if r.change_pct is not None else ""
    where = "" if r.mode == "all" else f" ({r.mode})"
    return f"{r.verdict}: {r.name}{where}{pct}"


def load_history(machine_dir: Path, threshold_pct: float = 5.0) -> list[CommitEntry]:
    """Runs grouped by commit, in time order, each compared with its predecessor."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for p in sorted(machine_dir.glob("*.json")):
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise UsageError(f"{p}: not a readable result ({e})") from None
        commit = p.name.removesuffix(".json").split(".")[0]
        groups.setdefault(commit, []).append(data)
    entries = [
        CommitEntry(c, min(str(r.get("started_at") or "") for r in runs), runs)
        for c, runs in groups.items()
    ]
    entries.sort(key=lambda e: e.started_at)
    for prev, cur in itertools.pairwise(entries):
        try:
            cur.step = compare_results(prev.runs, cur.runs, threshold_pct)
            cur.step_note = _summarize_step(cur.step)
        except UsageError as exc:
            cur.step_note = f"not comparable: {exc}"
    for entry in entries:
        entry.figures = _figures(entry.runs)
    return entries


def _f(x: float | None, nd: int = 3) -> str:
    return "—" if x is None else f"{x:.{nd}f}"


def _verdicts(runs: list[dict[str, Any]]) -> str:
    return ",".join(sorted({str(r.get("verdict")) for r in runs}))


def render_table(entries: list[CommitEntry], machine: str) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"loadgate history — machine {machine}", title_justify="left")
    for col in ("commit", "started", "runs", "p50 ms", "p99 ms", "req/s", "errors", "verdict"):
        right = col not in ("commit", "started", "verdict")
        t.add_column(col, justify="right" if right else "left", no_wrap=True)
    t.add_column("step vs previous", ratio=1)
    for e in entries:
        f = e.figures
        style = ""
        if e.step is not None and e.step.regressions:
            style = "bold red"
        elif e.step is not None and e.step.improvements:
            style = "green"
        note = f"[{style}]{e.step_note}[/]" if style else e.step_note
        t.add_row(
            e.commit[:12],
            e.started_at[:10],
            str(len(e.runs)),
            _f(f["p50"]),
            _f(f["p99"]),
            _f(f["rps"], 0),
            _f(f["errors"], 4),
            _verdicts(e.runs),
            note,
        )
    Console().print(t)


def render_svg(entries: list[CommitEntry], title: str = "overhead (ms)") -> str:
    """A small line plot of p50 and p99 overhead per commit; steps marked."""
    w, h, left, right, top, bottom = 720, 320, 56, 16, 28, 64
    series = {
        k: [(i, v) for i, e in enumerate(entries) if (v := e.figures.get(k)) is not None]
        for k in ("p50", "p99")
    }
    ys = [v for pts in series.values() for _, v in pts]
    ymax = max(ys) * 1.1 if ys else 1.0
    n = max(len(entries) - 1, 1)

    def x(i: int) -> float:
        return left + (w - left - right) * i / n

    def y(v: float) -> float:
        return top + (h - top - bottom) * (1.0 - v / ymax)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11">',
        f'<text x="{left}" y="16" font-size="13">{escape(title)}</text>',
        f'<line x1="{left}" y1="{h - bottom}" x2="{w - right}" y2="{h - bottom}" stroke="#888"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h - bottom}" stroke="#888"/>',
    ]
    for k in range(5):
        v = ymax * k / 4
        out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.2f}</text>')
    for row, (label, color) in enumerate((("p50", "#1f77b4"), ("p99", "#d62728"))):
        line = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in series[label])
        if line:
            out.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{line}"/>')
        ly = top + 14 * row
        out.append(f'<text x="{w - right - 40}" y="{ly + 10}" fill="{color}">{label}</text>')
    for i, e in enumerate(entries):
        out.append(
            f'<text x="{x(i):.1f}" y="{h - bottom + 14}" text-anchor="end" '
            f'transform="rotate(-45 {x(i):.1f} {h - bottom + 14})">{escape(e.commit[:8])}</text>'
        )
        if e.step is None or not (e.step.regressions or e.step.improvements):
            continue
        color = "#d62728" if e.step.regressions else "#2ca02c"
        out.append(
            f'<circle cx="{x(i):.1f}" cy="{top + 4}" r="5" fill="{color}">'
            f"<title>{escape(e.step_note)}</title></circle>"
        )
        out.append(
            f'<line x1="{x(i):.1f}" y1="{top + 9}" x2="{x(i):.1f}" y2="{h - bottom}" '
            f'stroke="{color}" stroke-dasharray="3,3"/>'
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(results_dir: Path, machine: str | None, plot: Path | None) -> int:
    """``loadgate history``: table (and optional SVG) of figures across commits."""
    d = _pick_machine(results_dir, machine)
    entries = load_history(d)
    if not entries:
        raise UsageError(f"{d}: no result files")
    render_table(entries, d.name)
    if plot is not None:
        plot.write_text(render_svg(entries, f"overhead (ms) — machine {d.name}"), "utf-8")
        print(f"plot written to {plot}", file=sys.stderr)
    return 0
