"""A comparison's rows and the words of their verdicts.

Shared by :mod:`loadgate.analysis.compare` (which makes and judges the rows) and
:mod:`loadgate.analysis.floor` (which holds latency rows against the same-run
control group), so that neither imports the other; ``compare`` re-exports them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CHANGED",
    "FLOOR",
    "IMPROVEMENT",
    "MACHINE_CHANGED",
    "NOT_TESTED",
    "NO_CHANGE",
    "REGRESSION",
    "Row",
]

REGRESSION = "regression"
IMPROVEMENT = "improvement"
NO_CHANGE = "no significant change"
CHANGED = "significant change"  # direction has no better/worse (raw counters)
NOT_TESTED = "not tested"
#: a significant latency change the control group moved with: the machine's, not the gateway's
MACHINE_CHANGED = "machine changed"
#: a control-group row: the harness floor, shown for information, never a verdict
FLOOR = "harness floor"


@dataclass(frozen=True, slots=True)
class Row:
    """One compared figure. Values in the figure's unit (ms for latencies)."""

    kind: str  # "quantile" | "rate" | "scalar" | "control"
    name: str  # "overhead_ms.p99", "requests.error_rate", "control.overhead_ms.p99", ...
    mode: str  # "all" | "stream" | "non_stream"
    base: float | None
    cand: float | None
    change: float | None  # cand − base
    change_pct: float | None  # relative to base, in %
    ci_low: float | None  # simultaneous interval for the change
    ci_high: float | None
    p_value: float | None  # unadjusted two-sided
    verdict: str
    gating: bool  # a regression here makes the exit code 1
    note: str = ""
