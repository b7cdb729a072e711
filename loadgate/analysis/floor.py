"""The same-run control group in a comparison: did the gateway change, or the machine?

Every run beside a gateway sends a small share of its requests straight to the
stub (``harness.control``): the harness + loopback + stub floor, measured at the
same moment and under the same contention as the gateway's figures. When a
latency moved between base and candidate, the control group says whether the
floor moved with it. This module owns that rule (docs/compare.md, "The harness
floor"): :func:`judge_against_floor` re-judges compare's finished rows and
adds the control figures as rows of their own.

**The rule.** A significant latency change (a row compare would call a
regression or an improvement) is the machine's, not the gateway's, when the
control group's figure for the same metric and quantile moved the same way by at
least :data:`FLOOR_SHARE` (half) of the row's change::

    sign(Δfloor) == sign(Δrow)  and  |Δfloor| ≥ FLOOR_SHARE × |Δrow|

Half, because a floor that explains at least half of a change leaves the
gateway's share of it no larger than the machine's: the comparison cannot tell
them apart, so it says "machine changed" instead of a verdict on the gateway. A
floor that moved the other way explains nothing (the gateway changed by even
more than the row says). The control group has no per-mode split, so a stream
or non-stream row is held against the all-modes control figure; a metric the
control group did not record falls back to its ``overhead_ms`` at that quantile
(the floor of every overhead). The control group is small (5 % of the load by
default), so its far tail is often thin: a control quantile with fewer than 10
samples beyond it (``MIN_TAIL``) in some run is not used, and the nearest lower
quantile it does back stands in (p99.9 → p99 → p90 → p50). A busier machine
usually moves a tail more than the body, so the stand-in tends to under-state the
floor's change: it makes "machine changed" rarer, not commoner.
With no quantile backed, the row keeps its verdict.

Δfloor is the difference of the sides' means of the per-run control quantiles
(with paired rounds, the mean of the per-round differences: the same number).
The result file keeps the control group's summary, not its histogram, so there
is no interval for Δfloor: the rule uses the point figures, and the control rows
a comparison shows are descriptive.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from loadgate.analysis.rows import FLOOR, IMPROVEMENT, MACHINE_CHANGED, REGRESSION, Row
from loadgate.analysis.stats import MIN_TAIL
from loadgate.result.model import Result

__all__ = [
    "FLOOR_SHARE",
    "FloorShift",
    "control_p99",
    "explains",
    "floor_shifts",
    "has_control",
    "judge_against_floor",
]

#: Share of a row's change the floor must explain, the same way, to make it the machine's.
FLOOR_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class FloorShift:
    """One control figure (``metric`` at ``quantile``, ms) on both sides: means over runs."""

    metric: str
    quantile: str
    #: the quantile's level in percent (99.0 for p99)
    level: float
    base: float
    cand: float
    #: the fewest control samples behind the figure in any run (its tail's depth)
    min_count: int

    @property
    def change(self) -> float:
        return self.cand - self.base

    @property
    def name(self) -> str:
        return f"control.{self.metric}.{self.quantile}"

    @property
    def backed(self) -> bool:
        """At least MIN_TAIL control samples beyond the quantile (and below it) in every run."""
        p = self.level / 100.0
        return self.min_count * min(p, 1.0 - p) >= MIN_TAIL


def has_control(result: Result) -> bool:
    control = result.harness.control
    return control is not None and bool(control.metrics)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def floor_shifts(
    bases: Sequence[Result],
    cands: Sequence[Result],
    metrics: Sequence[str],
    quantiles: Sequence[tuple[str, float]],
) -> dict[tuple[str, str], FloorShift]:
    """``(metric, quantile)`` → the control figure on both sides.

    Empty unless every run on both sides has a control group; a metric is there
    only when every run's control group recorded it.
    """
    runs = [*bases, *cands]
    if not runs or not all(has_control(r) for r in runs):
        return {}
    out: dict[tuple[str, str], FloorShift] = {}
    for metric in metrics:
        per_run = [r.harness.control.metrics.get(metric) for r in runs if r.harness.control]
        if any(s is None for s in per_run):
            continue
        summaries = [s for s in per_run if s is not None]
        sb, sc = summaries[: len(bases)], summaries[len(bases) :]
        for q, level in quantiles:
            out[(metric, q)] = FloorShift(
                metric,
                q,
                level,
                _mean([float(getattr(s, q)) for s in sb]),
                _mean([float(getattr(s, q)) for s in sc]),
                min(s.count for s in summaries),
            )
    return out


def explains(floor_change: float, row_change: float, share: float = FLOOR_SHARE) -> bool:
    """True when the floor moved the row's way by at least ``share`` of the row's change."""
    if row_change == 0 or floor_change * row_change <= 0:
        return False
    return abs(floor_change) >= share * abs(row_change)


def control_p99(results: Sequence[Result]) -> float | None:
    """The mean control-group overhead p99 (ms) of ``results``; None unless every run has one."""
    values = [r.harness.control.p99() if r.harness.control is not None else None for r in results]
    numbers = [v for v in values if v is not None]
    if not numbers or len(numbers) != len(values):
        return None
    return _mean(numbers)


# ------------------------------------------------------------------ rows


def _matching(
    row: Row, shifts: dict[tuple[str, str], FloorShift], order: Sequence[str]
) -> FloorShift | None:
    """The control figure a row is held against: the same metric (else ``overhead_ms``)
    at the row's quantile, or the nearest lower one whose tail the control group backs."""
    metric, q = row.name.rsplit(".", 1)
    if (metric, q) not in shifts:
        metric = "overhead_ms"
    if q not in order:
        return None
    for lower in reversed(order[: order.index(q) + 1]):
        shift = shifts.get((metric, lower))
        if shift is not None and shift.backed:
            return shift
    return None


def _against_floor(
    row: Row, shifts: dict[tuple[str, str], FloorShift], order: Sequence[str]
) -> Row:
    """A significant latency change the control group moved with is the machine's."""
    if row.kind != "quantile" or row.verdict not in (REGRESSION, IMPROVEMENT) or not row.change:
        return row
    shift = _matching(row, shifts, order)
    if shift is None or not explains(shift.change, row.change):
        return row
    note = (
        f"{shift.name} (straight to the stub) moved {shift.change:+.3f} ms of this "
        f"{row.change:+.3f} ms (≥ {100 * FLOOR_SHARE:g} %, the same way): the machine "
        f"changed, not the gateway; was {row.verdict}"
    )
    return dataclasses.replace(row, verdict=MACHINE_CHANGED, note=note)


def _floor_row(shift: FloorShift) -> Row:
    """A control figure on both sides: descriptive (no histogram, so no interval)."""
    d = shift.change
    note = "harness floor (control group, straight to the stub): informational"
    if not shift.backed:
        note += f"; thin tail: {shift.min_count} control samples in the smallest run"
    pct = round(100.0 * d / shift.base, 2) if shift.base else None
    return Row("control", shift.name, "all", round(shift.base, 4), round(shift.cand, 4),
               round(d, 4), pct, None, None, None, FLOOR, False, note)  # fmt: skip


def _warnings(
    results: Sequence[Result], rows: Sequence[Row], shifts: dict[tuple[str, str], FloorShift]
) -> list[str]:
    moved = [r for r in rows if r.verdict == MACHINE_CHANGED]
    if moved:
        p99 = shifts.get(("overhead_ms", "p99"))
        floor = f" (control overhead p99 {p99.base:.3f} → {p99.cand:.3f} ms)" if p99 else ""
        return [
            f"the machine changed between the runs: {len(moved)} latency figure(s) moved with "
            f"the control group{floor}, not with the gateway, and are not called regressions; "
            "rerun on a quiet machine, or use `loadgate ab`, whose rounds share the machine's "
            "state"
        ]
    if not shifts and any(has_control(r) for r in results):
        return [
            "not every run has a control group (harness.control): changes cannot be checked "
            "against the harness floor"
        ]
    return []


def judge_against_floor(
    rows: Sequence[Row],
    bases: Sequence[Result],
    cands: Sequence[Result],
    metrics: Sequence[str],
    quantiles: Sequence[tuple[str, float]],
) -> tuple[list[Row], list[str]]:
    """``(rows, warnings)``: compare's rows with the floor's verdicts, then the control rows.

    Nothing changes unless every run on both sides has a control group.
    """
    shifts = floor_shifts(bases, cands, metrics, quantiles)
    order = [q for q, _ in sorted(quantiles, key=lambda q: q[1])]
    judged = [_against_floor(r, shifts, order) for r in rows]
    judged += [_floor_row(s) for s in shifts.values()]
    return judged, _warnings([*bases, *cands], judged, shifts)
