"""Markdown summary for a pull-request comment or ``$GITHUB_STEP_SUMMARY``.

Plain GitHub-flavoured Markdown, no emoji and no HTML: a verdict line, the
gates table, the key figures table, then harness warnings and the reasons of an
invalid run. Table cells are escaped so a Prometheus selector with ``|`` or
``{}`` in a gate name cannot break the table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from loadgate.report._fmt import fmt_num, gate_rule, gate_value, key_figures, warnings_of

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


def render_markdown(data: Mapping[str, Any]) -> str:
    """The summary as Markdown text (ends with a newline)."""
    verdict = str(data.get("verdict") or "unknown")
    profile = (data.get("profile") or {}).get("name", "?")
    lines = [
        f"### loadgate: {_VERDICT.get(verdict, verdict.upper())}",
        "",
        f"Profile `{profile}`, started {data.get('started_at') or '?'}, "
        f"{fmt_num(data.get('duration_s'), 's')}.",
        "",
    ]
    if verdict == "invalid":
        lines += ["**Why the run is invalid:**", ""]
        lines += [f"- {r}" for r in data.get("reasons") or []] + [""]
    gates = [g for g in data.get("gates") or [] if isinstance(g, Mapping)]
    if gates:
        rows = [
            [
                f"`{g.get('name')}`",
                gate_value(g),
                gate_rule(g),
                "pass" if g.get("passed") else "**FAIL**",
            ]
            for g in gates
        ]
        lines += ["#### Gates", "", *_table(["gate", "measured", "budget", "result"], rows), ""]
    else:
        lines += ["No gates in this result.", ""]
    lines += ["#### Key figures", "", *_table(["figure", "value"], key_figures(data)), ""]
    warns = warnings_of(data)
    if warns:
        lines += ["#### Warnings", "", *(f"- {w}" for w in warns), ""]
    return "\n".join(lines).rstrip("\n") + "\n"
