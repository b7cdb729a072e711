"""The throughput frontier (``loadgate sweep --frontier 1,5,10``): its search and its answer.

For each p99 overhead bound, the highest open-loop rate whose overhead p99 stays
under it. Pure functions over the sweep's typed step summaries
(:class:`~loadgate.result.model.SweepStep`), like :mod:`loadgate.analysis.knee`,
whose policy (:class:`~loadgate.analysis.knee.SweepPolicy`: ``start``,
``resolution``, ``max_value``, ``max_steps``, ``max_error_rate``) they share; the
runs are :mod:`loadgate.pipeline.sweep`'s.

One search over rate serves every bound (docs/sweep.md, "The throughput frontier"):

1. **ramp**: from ``sweep.start``, double the rate until a step is over the
   largest bound (or ``sweep.max_value``);
2. **bisect per bound**, smallest first, between the highest rate under it and
   the lowest over it, until they are within ``sweep.resolution`` of each other.
   Every measured step counts for every bound, so a step run for one bound
   narrows the others' brackets too. A bound the lowest rate is already over
   halves the rate down to ``start / 64``, but never to a step expected to
   measure fewer than :data:`FEW_SAMPLES` requests.

A step is *under* a bound when it is harness-valid, its error rate is at most
``sweep.max_error_rate`` (a gateway failing fast has a low overhead p99 of the
few it answers) and its overhead p99 is below the bound. Like the knee, the
answer for a bound is the top of the unbroken run of steps under it from the
lowest rate: a step under it again above a step over it is noise, and said so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from loadgate.analysis.knee import SweepPolicy, fmt_value
from loadgate.result.model import Frontier, FrontierPoint, SweepStep

__all__ = [
    "find_frontier",
    "frontier_line",
    "frontier_lines",
    "frontier_next",
    "frontier_verdict",
    "is_under",
]

_INTERRUPTS = ("SIGINT", "SIGTERM", "cancelled")
#: The policy when none is given (frozen, so one shared instance is safe).
_DEFAULT = SweepPolicy()
#: The halving search goes no lower than this share of the start rate.
_FLOOR_SHARE = 1 / 64
#: A p99 resting on fewer requests than this has under 10 observations in its tail
#: (the summary's stability rule, :data:`loadgate.report.summary.P99_MIN_SAMPLES`).
#: The halving search never runs a step expected to measure fewer (requests grow
#: with the rate): below that a step's p99 is little more than its maximum, and a
#: noisy machine makes it look over every bound. Longer steps reach lower rates.
FEW_SAMPLES = 1000


def is_under(step: SweepStep, bound_ms: float, policy: SweepPolicy = _DEFAULT) -> bool:
    """Did ``step`` keep the gateway's overhead p99 under ``bound_ms``?"""
    if step.verdict == "invalid":
        return False
    err = step.requests.error_rate
    if err is not None and err > policy.max_error_rate:
        return False
    p99 = step.metric("overhead_ms", "p99")
    return p99 is not None and p99 < bound_ms


def _bracket(
    ordered: Sequence[SweepStep], bound_ms: float, policy: SweepPolicy
) -> tuple[SweepStep | None, SweepStep | None]:
    """(top of the unbroken run under the bound from the lowest rate, the first step over)."""
    lo: SweepStep | None = None
    for step in ordered:
        if not is_under(step, bound_ms, policy):
            return lo, step
        lo = step
    return lo, None


def _round3(x: float) -> float:
    """Three significant figures, as the knee search's rates: 350, 37.5."""
    if x <= 0:
        return x
    digits = 2 - math.floor(math.log10(x))
    return round(x, digits) if digits > 0 else float(round(x, digits))


def _start(policy: SweepPolicy) -> float:
    return policy.start if policy.start is not None else 8.0


def frontier_next(
    steps: Sequence[SweepStep], bounds_ms: Sequence[float], policy: SweepPolicy = _DEFAULT
) -> float | None:
    """The next rate to measure (req/s), or None when every bound is settled or time is up."""
    if len(steps) >= policy.max_steps or not bounds_ms:
        return None
    if not steps:
        return _start(policy)
    if steps[-1].interrupted in _INTERRUPTS:
        return None
    ordered = sorted(steps, key=lambda s: s.value)
    done = {s.value for s in steps}
    # 1. ramp: double until the largest bound is crossed.
    if _bracket(ordered, max(bounds_ms), policy)[1] is None:
        nxt = _round3(ordered[-1].value * 2)
        if nxt <= policy.max_value and nxt not in done:
            return nxt
    # 2. bisect each bound's bracket, the smallest bound first.
    floor = _start(policy) * _FLOOR_SHARE
    for bound in sorted(bounds_ms):
        lo, hi = _bracket(ordered, bound, policy)
        if hi is None:
            continue  # above every rate tried: the ramp's cap decided that
        if lo is None:
            nxt = _round3(hi.value / 2)
            sent = hi.requests.sent
            thin = sent is not None and sent * nxt / hi.value < FEW_SAMPLES
            if nxt >= floor and nxt not in done and not thin:
                return nxt
            continue
        if hi.value - lo.value <= lo.value * policy.resolution:
            continue
        mid = _round3((lo.value + hi.value) / 2)
        if lo.value < mid < hi.value and mid not in done:
            return mid
    return None


def _p99(step: SweepStep | None) -> float | None:
    return step.metric("overhead_ms", "p99") if step is not None else None


def _over_text(step: SweepStep, bound: float) -> str:
    v = fmt_value(step.value)
    if step.verdict == "invalid":
        why = step.reasons[0] if step.reasons else "harness limits"
        return f"{v} req/s was harness-bound ({why})"
    err = step.requests.error_rate
    p99 = _p99(step)
    if p99 is not None and p99 >= bound:
        return f"{v} req/s had overhead p99 {p99:.3g} ms >= {bound:g} ms"
    if err is not None:
        return f"{v} req/s failed {err:.1%} of its requests (> sweep.max_error_rate)"
    return f"{v} req/s had no overhead figure"


def _marginal(lo: SweepStep | None, hi: SweepStep | None, bound: float) -> bool:
    """An interval that reaches across the bound: the step's side of it is not settled."""
    lo_high = lo.metric("overhead_ms", "p99_high") if lo is not None else None
    hi_low = hi.metric("overhead_ms", "p99_low") if hi is not None else None
    valid_hi = hi is not None and hi.verdict != "invalid"
    return (lo_high is not None and lo_high >= bound) or (
        valid_hi and hi_low is not None and hi_low < bound
    )


def _point(
    ordered: Sequence[SweepStep], bound: float, policy: SweepPolicy, steps_left: bool
) -> FrontierPoint:
    lo, hi = _bracket(ordered, bound, policy)
    status: Literal["found", "unresolved", "not_reached", "above_tried", "harness", "none"]
    if lo is None and hi is None:
        status, reason = "none", "no steps ran"
    elif lo is None:
        assert hi is not None
        status = "not_reached"
        reason = f"not reached: even the lowest rate tried, {_over_text(hi, bound)}"
    elif hi is None:
        status = "above_tried"
        reason = (
            f"above the highest rate tried: every rate up to {fmt_value(lo.value)} req/s kept "
            f"overhead p99 < {bound:g} ms"
        )
    elif hi.verdict == "invalid":
        status = "harness"
        reason = (
            f"at least {fmt_value(lo.value)} req/s: the next rate, {_over_text(hi, bound)}; "
            "the gateway's frontier is at or above it (add load.workers or cores)"
        )
    else:
        settled = hi.value - lo.value <= lo.value * policy.resolution
        status = "found" if settled else "unresolved"
        reason = f"{fmt_value(lo.value)} req/s; the next rate, {_over_text(hi, bound)}"
        if not settled:
            why = (
                f"sweep.max_steps = {policy.max_steps} reached"
                if not steps_left
                else "interrupted, or no three-figure rate left between them"
            )
            reason += f"; not bisected to {policy.resolution:.0%} ({why})"
    thin = [
        f"{fmt_value(s.value)} req/s ({s.requests.sent})"
        for s in (lo, hi)
        if s is not None and s.requests.sent is not None and s.requests.sent < FEW_SAMPLES
    ]
    if thin:
        reason += (
            f"; few requests behind the p99 at {', '.join(thin)}, under {FEW_SAMPLES}: "
            "lengthen load.duration"
        )
    marginal = _marginal(lo, hi, bound)
    if marginal:
        reason += "; the p99 interval of a step beside the frontier reaches across the bound"
    if hi is not None:
        again = [
            fmt_value(s.value) for s in ordered if s.value > hi.value and is_under(s, bound, policy)
        ]
        if again:
            reason += (
                f"; note: {', '.join(again)} req/s was under it again above: noisy steps, "
                "rerun with a longer load.duration"
            )
    return FrontierPoint(
        bound_ms=bound,
        status=status,
        max_rate=lo.value if lo is not None else None,
        throughput_rps=lo.requests.throughput_rps if lo is not None else None,
        overhead_p99_ms=_p99(lo),
        p99_low_ms=lo.metric("overhead_ms", "p99_low") if lo is not None else None,
        p99_high_ms=lo.metric("overhead_ms", "p99_high") if lo is not None else None,
        first_over=hi.value if hi is not None else None,
        first_over_p99_ms=_p99(hi),
        marginal=marginal,
        reason=reason,
    )


def find_frontier(
    steps: Sequence[SweepStep], bounds_ms: Sequence[float], policy: SweepPolicy = _DEFAULT
) -> Frontier:
    """The answer for every bound, in ascending order, from the steps measured."""
    ordered = sorted(steps, key=lambda s: s.value)
    steps_left = len(steps) < policy.max_steps
    return Frontier(
        bounds_ms=sorted(bounds_ms),
        points=[_point(ordered, b, policy, steps_left) for b in sorted(bounds_ms)],
        resolution=policy.resolution,
    )


def frontier_verdict(
    steps: Sequence[SweepStep],
) -> tuple[Literal["pass", "invalid"], list[str], int]:
    """A frontier is a measurement: pass (0) when the lowest rate was harness-valid.

    invalid (3) when nothing ran or the lowest rate was harness-bound: then no
    bound's answer says anything about the gateway. Gates do not decide it.
    """
    if not steps:
        return "invalid", ["no steps ran"], 3
    lowest = min(steps, key=lambda s: s.value)
    if lowest.verdict == "invalid":
        why = lowest.reasons[0] if lowest.reasons else "harness limits"
        return (
            "invalid",
            [f"the lowest rate ({fmt_value(lowest.value)}) was harness-bound: {why}"],
            3,
        )
    return "pass", [], 0


def frontier_lines(frontier: Frontier) -> list[str]:
    """The frontier as a text table, one line per bound (the CLI prints it)."""
    head = f"{'p99 bound':>10}  {'max rate':>10}  {'served':>8}  {'p99 (95% CI)':<22} status"
    out = [head]
    for p in frontier.points:
        rate = f"{fmt_value(p.max_rate)}" if p.max_rate is not None else "–"
        served = f"{p.throughput_rps:.1f}" if p.throughput_rps is not None else "–"
        if p.overhead_p99_ms is None:
            p99 = "–"
        elif p.p99_low_ms is not None and p.p99_high_ms is not None:
            p99 = f"{p.overhead_p99_ms:.3g} ({p.p99_low_ms:.3g}–{p.p99_high_ms:.3g})"
        else:
            p99 = f"{p.overhead_p99_ms:.3g}"
        status = p.status + (" (marginal)" if p.marginal else "")
        out.append(f"{p.bound_ms:>7g} ms  {rate:>10}  {served:>8}  {p99:<22} {status}")
    return out


def _answer(p: FrontierPoint) -> str:
    rate = fmt_value(p.max_rate) if p.max_rate is not None else None
    if p.status == "not_reached" or rate is None:
        return "not reached"
    if p.status in ("above_tried", "harness"):
        return f">= {rate} req/s"
    if p.status == "unresolved" and p.first_over is not None:
        return f"{rate}–{fmt_value(p.first_over)} req/s"
    return f"{rate} req/s"


def frontier_line(frontier: Frontier, *, gateway: str, machine: str) -> str:
    """One line for a capacity plan: the highest offered rate under each p99 bound."""
    parts = [f"p99 < {p.bound_ms:g} ms: {_answer(p)}" for p in frontier.points]
    return (
        f"Highest offered rate of {gateway} on {machine} by overhead p99: " + "; ".join(parts) + "."
    )
