"""The harness's own figures and the control group, worded once for the HTML and
Markdown reports.

A run's latencies are only as good as the harness that measured them, so both
reports say, beside the figures: where the arrival times came from, the same-run
control group (``harness.control``: requests sent straight to the stub, beside
the load — the harness + loopback + stub floor at the same moment and under the
same contention as the gateway's figures), which CPUs each process ran on, and how
late the harness sent. The terminal summary (:mod:`loadgate.report.summary`)
words the same rows for a terminal.

Results from before these figures were recorded have ``None`` there: every
function here then returns fewer rows, never fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from loadgate.report._fmt import fmt_num, fmt_pct, metric
from loadgate.result.model import LagSummary, Result, Summary

__all__ = [
    "CONTROL_LABEL",
    "CONTROL_MEANING",
    "LatencyRow",
    "control_summary",
    "harness_rows",
    "lag_text",
    "latency_rows",
]

#: How a control row is labelled where the other rows name their mode.
CONTROL_LABEL = "control (floor)"
#: What a control row is, in one line (a note or a tooltip beside it).
CONTROL_MEANING = (
    "the same-run control group, requests sent straight to the stub beside the load: "
    "the harness + loopback + stub floor under the same contention"
)
_MODES = (("stream", "stream"), ("non_stream", "non-stream"))


@dataclass(frozen=True, slots=True)
class LatencyRow:
    """One row of a latency table: a mode's figures, or the control group's (``control``)."""

    metric: str
    label: str
    summary: Summary
    control: bool = False


def control_summary(result: Result, name: str) -> Summary | None:
    """The control group's summary of metric ``name`` (None: no control group, or no data)."""
    control = result.harness.control
    return control.metrics.get(name) if control is not None else None


def latency_rows(
    result: Result, metrics: Sequence[str], modes: bool = True, total: bool = True
) -> list[LatencyRow]:
    """Per metric: the all-modes row (``total``), the per-mode rows (``modes``; a mode
    holding every sample repeats the total and is left out when the total is shown), and
    the control group's row beside the total (after the modes when there is no total)."""
    rows: list[LatencyRow] = []
    for name in metrics:
        shown = metric(result, name) if total else None
        c = control_summary(result, name)
        control = [LatencyRow(name, CONTROL_LABEL, c, control=True)] if c is not None else []
        if shown is not None:
            rows += [LatencyRow(name, "all", shown), *control]
        for mode, label in _MODES if modes else ():
            s = metric(result, name, mode)
            if s is not None and (shown is None or s.count != shown.count):
                rows.append(LatencyRow(name, label, s))
        if shown is None:
            rows += control
    return rows


def lag_text(lag: LagSummary | Summary | None) -> str:
    """``"p50 0.19 / p99 1.42 / max 28.4"`` (ms), or "–"."""
    if lag is None:
        return "–"
    return f"p50 {fmt_num(lag.p50)} / p99 {fmt_num(lag.p99)} / max {fmt_num(lag.max)}"


def _open_loop(result: Result) -> bool:
    load = result.profile.get("load")
    return isinstance(load, dict) and load.get("rate") is not None


def _timestamps(result: Result) -> str | None:
    h = result.harness
    if h.timestamps is None:
        return None
    sources = h.timestamp_sources or {}
    src = ", ".join(f"{k} {v or '?'}" for k, v in sources.items())
    text = f"{h.timestamps} ({src})" if src else h.timestamps
    if h.timestamps == "kernel":
        text += ": arrival times from the kernel, not when loadgate read them"
    else:
        text += ": stamped when read, so the harness's own lateness is in the figures"
    if h.deltas_same_read_ratio:
        text += f"; {fmt_pct(h.deltas_same_read_ratio)} of stream deltas shared a read"
    if h.first_token_same_read_ratio:
        text += f", {fmt_pct(h.first_token_same_read_ratio)} of first tokens (TTFT an upper bound)"
    return text


def _send_lag(result: Result) -> str:
    lag = result.harness.send_lag_ms
    if lag is None:
        return "–"
    meaning = (
        "open loop: actual − scheduled send"
        if _open_loop(result)
        else "closed loop: from the worker's previous response to its next send"
    )
    return f"{lag_text(lag)} ({meaning})"


def _control_rows(result: Result) -> list[tuple[str, str]]:
    control = result.harness.control
    if control is None:
        return []
    rows = [
        (
            "control group",
            f"{fmt_num(control.requests)} requests, {fmt_num(control.failed)} failed "
            f"({fmt_pct(control.ratio)} beside the load), straight to the stub: the harness + "
            "loopback + stub floor, measured at the same moment as the gateway's figures",
        )
    ]
    own = control.metrics.get("overhead_ms")
    if own is not None:
        text = f"{lag_text(own)} (n={fmt_num(own.count)})"
        gw = metric(result, "overhead_ms")
        if gw is not None and gw.p99 > 0:
            text += (
                f"; its p99 is {fmt_pct(own.p99 / gw.p99)} of the gateway's overhead p99 "
                f"({fmt_num(gw.p99, 'ms')})"
            )
        rows.append(("control group overhead (ms)", text))
    return rows


def _cpus(cpus: list[int] | None) -> str:
    return ",".join(map(str, cpus)) if cpus is not None else "not pinned"


def _placement(result: Result) -> list[tuple[str, str]]:
    pl = result.harness.placement
    if pl is None:
        return []
    gateway = _cpus(pl.gateway) if pl.gateway_known else "unknown (not launched by loadgate)"
    where = f"harness {_cpus(pl.harness)} · stub {_cpus(pl.stub)} · gateway {gateway}"
    return [("CPUs", f"{where}: {pl.note}" if pl.note else where)]


def harness_rows(result: Result) -> list[tuple[str, str]]:
    """``(label, text)`` rows: timestamps, send lag, control group, CPUs, concurrency held.

    Send lag is always a row ("–" when not recorded); the others only when recorded.
    """
    h = result.harness
    rows: list[tuple[str, str]] = []
    stamps = _timestamps(result)
    if stamps is not None:
        rows.append(("timestamps", stamps))
    rows.append(("send lag (ms)", _send_lag(result)))
    rows += _control_rows(result)
    rows += _placement(result)
    if h.concurrency_ratio is not None:
        rows.append(("in flight / load.concurrency", fmt_num(h.concurrency_ratio)))
    return rows
