"""Markdown summary for a pull-request comment or ``$GITHUB_STEP_SUMMARY``.

Plain GitHub-flavoured Markdown, no emoji and no HTML: a verdict line, the
reasons of an invalid run, the gates table (an undecided gate says so, and why,
under the table), the key figures table, the latency table (with the same-run
control group's row, the harness floor, beside each metric), the harness table
(timestamps, send lag, control group, CPUs) and the harness warnings. Table
cells are escaped so a Prometheus selector with ``|`` or ``{}`` in a gate name
cannot break the table.
"""

from __future__ import annotations

from collections.abc import Sequence

from loadgate.report._checks import check_rows, lint_lines, probe_rows
from loadgate.report._fmt import (
    fmt_num,
    gate_outcome,
    gate_rule,
    gate_status,
    gate_value,
    key_figures,
    undecided_groups,
)
from loadgate.report._harness import CONTROL_LABEL, CONTROL_MEANING, harness_rows, latency_rows
from loadgate.result.model import Gate, Result

__all__ = ["render_markdown"]

_VERDICT = {
    "pass": "PASS: every gate passed",
    "fail": "FAIL: at least one gate failed",
    "invalid": "INVALID: the measurement cannot be trusted, the gates prove nothing",
}
#: The latency table's metrics: the ones gates and compare look at.
LATENCY_METRICS = ("overhead_ms", "ttft_overhead_ms", "e2e_ms")


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out


def _outcome(gate: Gate) -> str:
    status = gate_status(gate)
    text = gate_outcome(gate)
    return {"pass": text, "fail": f"**{text}**", "undecided": f"*{text}*"}[status]


def _latency(result: Result) -> list[str]:
    """All modes and the control group (the floor), per metric, in ms."""
    rows = [
        [f"`{r.metric}`", f"*{r.label}*" if r.control else r.label]
        + [fmt_num(v) for v in (r.summary.count, r.summary.p50, r.summary.p90, r.summary.p99)]
        + [fmt_num(v) for v in (r.summary.p999, r.summary.max)]
        for r in latency_rows(result, LATENCY_METRICS, modes=False)
    ]
    if not rows:
        return []
    head = ["metric", "mode", "count", "p50", "p90", "p99", "p99.9", "max"]
    out = ["#### Latency (ms)", "", *_table(head, rows), ""]
    if result.harness.control is not None:
        out += [f"*{CONTROL_LABEL}*: {CONTROL_MEANING}.", ""]
    return out


def render_markdown(result: Result) -> str:
    """The summary as Markdown text (ends with a newline)."""
    lines = [
        f"### loadgate: {_VERDICT[result.verdict]}",
        "",
        f"Profile `{result.profile_name}`, started {result.started_at or '?'}, "
        f"{fmt_num(result.duration_s, 's')}.",
        "",
    ]
    if result.verdict == "invalid":
        lines += ["**Why the run is invalid:**", ""]
        lines += [f"- {r}" for r in result.reasons] + [""]
    if result.gates:
        rows = [[f"`{g.name}`", gate_value(g), gate_rule(g), _outcome(g)] for g in result.gates]
        lines += ["#### Gates", "", *_table(["gate", "measured", "budget", "result"], rows), ""]
        for names, why in undecided_groups(result.gates):
            lines.append(f"Undecided: {', '.join(f'`{n}`' for n in names)}: {why.rstrip('.')}.")
            lines.append("")
    else:
        lines += ["No gates in this result.", ""]
    lines += ["#### Key figures", "", *_table(["figure", "value"], key_figures(result)), ""]
    lines += _latency(result)
    lines += ["#### Checks", "", *_table(["check", "result"], check_rows(result)), ""]
    lines += ["#### Probes", "", *_table(["probe", "result"], probe_rows(result)), ""]
    lines += [f"- metrics lint: {line}" for line in lint_lines(result)]
    if lint_lines(result):
        lines.append("")
    # Figures an older result did not record are left out, and the table with them.
    harness = [row for row in harness_rows(result) if row[1] != "–"]
    if harness:
        lines += ["#### Harness", "", *_table(["figure", "value"], harness), ""]
    if result.harness.warnings:
        lines += ["#### Warnings", "", *(f"- {w}" for w in result.harness.warnings), ""]
    return "\n".join(lines).rstrip("\n") + "\n"
