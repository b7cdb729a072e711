"""The workload's own figures for the terminal summary: trace replay and sessions.

What a trace replay used of its trace (rows sent and skipped, format, speedup)
and how the sessions went (started, completed, aborted, history mismatches),
then one row per turn index: the turn's requests and its TTFT and overhead
percentiles, so a gateway whose cost grows with the history shows it.
"""

from __future__ import annotations

from rich.table import Table

from loadgate.result.model import Result, Summary

__all__ = ["turn_table", "workload_table"]


def _n(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"


def workload_table(result: Result) -> Table | None:
    """Trace and session figures; None when the run had neither."""
    t, s = result.trace, result.sessions
    if t is None and s is None:
        return None
    table = Table(title="Workload", title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("note")
    if t is not None:
        skipped = ", ".join(f"{k} {v}" for k, v in t.skipped.items()) or "none"
        window = f"start {t.start_s:g} s" + (f", end {t.end_s:g} s" if t.end_s else "")
        table.add_row("trace", t.file, f"{t.format}, {t.rows:,} rows, skipped: {skipped}")
        table.add_row(
            "rows sent / in window",
            f"{t.rows_sent:,} / {t.rows_in_window:,}",
            f"{window}; {t.passes} pass(es){' (loop)' if t.loop else ''}",
        )
        table.add_row("speedup", _n(t.speedup), f"one pass {_n(t.span_s)} s of trace time")
        if t.rows_with_prefix:
            table.add_row(
                "rows with prefix blocks",
                f"{t.rows_with_prefix:,}",
                f"hash_ids blocks of {t.block_tokens} words shared across requests",
            )
    if s is not None:
        table.add_row(
            "sessions started / completed / aborted",
            f"{s.started:,} / {s.completed:,} / {s.aborted:,}",
            f"{s.turns} turns, think time {s.think_time_s:g} s; "
            f"{max(0, s.started - s.completed - s.aborted):,} still in progress when the "
            "window closed",
        )
        table.add_row(
            "history mismatches",
            f"{s.history_mismatches:,}",
            "turns whose resent history the stub did not answer",
        )
    return table


def _p(m: dict[str, Summary], name: str) -> tuple[str, str]:
    s = m.get(name)
    return (_n(s.p50), _n(s.p99)) if s is not None else ("—", "—")


def turn_table(result: Result) -> Table | None:
    """Per turn index: requests, conversation size, TTFT and overhead p50/p99 (ms)."""
    s = result.sessions
    if s is None or not s.by_turn:
        return None
    table = Table(title="Sessions by turn", title_justify="left")
    for name in ("turn", "requests", "failed", "prompt words"):
        table.add_column(name, justify="right")
    for name in ("ttft p50", "ttft p99", "overhead p50", "overhead p99"):
        table.add_column(f"{name} (ms)", justify="right")
    for t in s.by_turn:
        table.add_row(
            str(t.turn),
            _n(t.requests),
            _n(t.failed),
            _n(t.prompt_words),
            *_p(t.metrics, "ttft_ms"),
            *_p(t.metrics, "overhead_ms"),
        )
    return table
