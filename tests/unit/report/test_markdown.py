"""Markdown summary: verdict line, gates and figures tables, warnings, invalid reasons."""

from __future__ import annotations

import re

from loadgate.report import render_markdown
from loadgate.result import Result
from loadgate.result.io import load_run_result
from loadgate.result.model import Gate
from tests.support.paths import DATA


def _load(name: str) -> Result:
    return load_run_result(DATA / name)


def _rows(md: str, header: str) -> list[list[str]]:
    lines = md.splitlines()
    i = lines.index(header)
    out = []
    for line in lines[i + 4 :]:  # header, blank, table head, separator
        if not line.startswith("|"):
            break
        cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
        out.append([c.strip() for c in cells])
    return out


def test_fail_summary() -> None:
    result = _load("sample_fail.json")
    md = render_markdown(result)
    assert md.splitlines()[0] == "### loadgate: FAIL: at least one gate failed"
    gates = _rows(md, "#### Gates")
    assert gates[0] == ["`overhead_ms.p99`", "30.66 ms", "< 20", "**FAIL**"]
    assert [r[3] == "pass" for r in gates] == [g.passed for g in result.gates]
    assert "Undecided" not in md
    figures = {row[0]: row[1] for row in _rows(md, "#### Key figures")}
    assert figures["error rate"] == "0.182 %"
    assert figures["auth-cache hit rate"] == "92.0 %"
    assert figures["integrity violations / checked"] == "2 / 22459"
    assert figures["overhead p50 / p99 / p99.9"] == "1.039 / 30.66 / 38.21 ms"
    assert "- 1 of 15 gateway metric scrapes failed: the hit-rate series has a gap" in md
    assert md.endswith("\n") and not md.endswith("\n\n")


def test_pass_summary_has_no_warnings_section() -> None:
    md = render_markdown(_load("sample_pass.json"))
    assert md.startswith("### loadgate: PASS: every gate passed\n")
    assert all(r[3] == "pass" for r in _rows(md, "#### Gates"))
    assert "#### Warnings" not in md and "invalid" not in md.lower()


def test_invalid_lists_reasons_and_is_emoji_free() -> None:
    result = _load("sample_pass.json")
    result.verdict = "invalid"
    result.reasons = ["harness CPU 99 % of a core > 95 %: loadgate was saturated"]
    md = render_markdown(result)
    assert "INVALID" in md.splitlines()[0]
    assert "- harness CPU 99 % of a core > 95 %: loadgate was saturated" in md
    assert not re.search("[\u2600-\u27bf\U0001f000-\U0001faff]", md)


def test_undecided_gates_say_so_and_why_once() -> None:
    result = _load("sample_fail.json")
    result.verdict, result.reasons = "invalid", ["interrupted by SIGINT: partial result"]
    why = "the run is invalid: its gates prove nothing either way"
    for g in result.gates:
        g.decided, g.undecided_reason = False, why
    md = render_markdown(result)
    outcomes = [r[3] for r in _rows(md, "#### Gates")]
    assert outcomes == [
        "*undecided (would fail)*",
        "*undecided (would pass)*",
        "*undecided (would fail)*",
        "*undecided (would fail)*",
    ]
    assert "FAIL" not in "".join(outcomes)
    names = ", ".join(f"`{g.name}`" for g in result.gates)
    assert md.count("Undecided:") == 1
    assert f"Undecided: {names}: {why}." in md


def test_pipes_in_gate_names_do_not_break_the_table() -> None:
    result = _load("sample_pass.json")
    result.gates = [
        Gate(name='gateway.counters.x{a="b|c"}', op="<", threshold=1, value=0.5, passed=True)
    ]
    row = _rows(render_markdown(result), "#### Gates")[0]
    assert len(row) == 4 and row[0] == '`gateway.counters.x{a="b\\|c"}`'
