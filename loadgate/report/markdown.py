"""Markdown summary for a pull-request comment or ``$GITHUB_STEP_SUMMARY``.

Plain GitHub-flavoured Markdown, no emoji and no HTML: a verdict line, the
gates table (an undecided gate says so, and why, under the table), the key
figures table, then harness warnings and the reasons of an invalid run. Table
cells are escaped so a Prometheus selector with ``|`` or ``{}`` in a gate name
cannot break the table.
"""

from __future__ import annotations

from collections.abc import Sequence

from loadgate.report._fmt import (
    fmt_num,
    gate_outcome,
    gate_rule,
    gate_status,
    gate_value,
    key_figures,
    undecided_groups,
)
from loadgate.result.model import Gate, Result

__all__ = ["render_markdown"]

_VERDICT = {
    "pass": "PASS: every gate passed",
    "fail": "FAIL: at least one gate failed",
    "invalid": "INVALID: the measurement cannot be trusted, the gates prove nothing",
}


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
    if result.harness.warnings:
        lines += ["#### Warnings", "", *(f"- {w}" for w in result.harness.warnings), ""]
    return "\n".join(lines).rstrip("\n") + "\n"
