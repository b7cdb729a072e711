"""The workload tables of the terminal summary, and gates over the workload figures."""

from __future__ import annotations

import io

from rich.console import Console

from loadgate.judge.gates import evaluate_gates
from loadgate.report.summary import print_summary
from loadgate.report.workload import turn_table, workload_table
from loadgate.result.model import (
    Result,
    SessionFigures,
    Summary,
    TraceFigures,
    TurnFigures,
)


def _summary(p50: float, p99: float) -> Summary:
    return Summary(count=10, mean=p50, stdev=0.1, min=p50, p50=p50, p90=p99, p99=p99,
                   p999=p99, max=p99)  # fmt: skip


def _result() -> Result:
    r = Result()
    r.trace = TraceFigures(
        file="t.csv", format="burstgpt", rows=6, skipped={"failed": 2}, rows_in_window=4,
        rows_sent=4, passes=1, speedup=2.0, span_s=5.333,
    )  # fmt: skip
    r.sessions = SessionFigures(
        turns=2, think_time_s=0.5, started=5, completed=4, aborted=1, history_mismatches=3,
        by_turn=[
            TurnFigures(turn=0, requests=5, prompt_words=64,
                        metrics={"ttft_ms": _summary(20.5, 30.25),
                                 "overhead_ms": _summary(0.5, 1.75)}),
            TurnFigures(turn=1, requests=4, failed=1, prompt_words=104),
        ],
    )  # fmt: skip
    return r


def _text(table: object) -> str:
    buf = io.StringIO()
    Console(file=buf, width=200, color_system=None).print(table)
    return buf.getvalue()


def test_the_workload_table_says_what_the_trace_and_sessions_did() -> None:
    text = _text(workload_table(_result()))
    assert "t.csv" in text and "burstgpt, 6 rows, skipped: failed 2" in text
    assert "4 / 4" in text and "2.00" in text
    assert "5 / 4 / 1" in text and "history mismatches" in text


def test_the_turn_table_has_one_row_per_turn() -> None:
    rows = [line for line in _text(turn_table(_result())).splitlines() if "│" in line]
    assert len(rows) == 2  # turns 0 and 1
    assert "20.50" in rows[0] and "30.25" in rows[0] and "1.75" in rows[0] and "64" in rows[0]
    assert "104" in rows[1] and "—" in rows[1]  # turn 1 had no successful request measured


def test_without_a_workload_there_are_no_tables() -> None:
    assert workload_table(Result()) is None and turn_table(Result()) is None
    buf = io.StringIO()
    print_summary(_result(), Console(file=buf, width=240, color_system=None))
    assert "Workload" in buf.getvalue() and "Sessions by turn" in buf.getvalue()


def test_workload_figures_are_gateable() -> None:
    gates = evaluate_gates(
        {"sessions.history_mismatches": "== 0", "trace.skipped.failed": "<= 2"}, _result()
    )
    assert [(g.value, g.passed) for g in gates] == [(3.0, False), (2.0, True)]
