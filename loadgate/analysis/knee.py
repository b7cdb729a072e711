"""A capacity sweep's decisions: which step next, when to stop, where the knee is.

Pure functions over typed :class:`~loadgate.result.model.SweepStep` summaries
(docs/sweep.md); the runs themselves are :mod:`loadgate.pipeline.sweep`'s.

* which step runs next (:func:`plan_next`): an explicit list of concurrencies or
  rates, cut short by :func:`stop_reason` once the gateway is clearly saturated or
  failing, or an automatic search (double until a step does not pass, then bisect
  between the last pass and the first non-pass to ~10 %);
* the knee (:func:`find_knee`): the largest step of the passing run that starts at
  the smallest step. A harness-bound (``invalid``) step is never the gateway's
  limit: the knee stops before it and says so;
* the sweep's verdict (:func:`sweep_verdict`), a recommendation line for a capacity
  plan (:func:`recommendation`) and the plot's data as CSV (:func:`steps_csv`).

A step summary is what the sweep's result file stores under ``steps``
(:func:`summarize_step` makes one from a step's run), so a sweep read back from
disk can be re-judged with the same functions.

Longer than the house's ~400 lines on purpose: the policy, the stop rules, the
search and the knee are one decision procedure (each rule refers to the others'
outcomes), and the tests drive them together.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from loadgate.analysis.stats import run_quantile, t_crit
from loadgate.errors import UsageError
from loadgate.histograms.hdr import bucket_bounds, counts_of, decode
from loadgate.judge.gates import parse_gate
from loadgate.result.model import (
    Knee,
    Result,
    StepGateway,
    StepHarness,
    StepRequests,
    SweepStep,
)

__all__ = [
    "PLAN_SHARE",
    "GatewayUsage",
    "Mode",
    "SweepPolicy",
    "budget_gate",
    "find_knee",
    "fmt_value",
    "overhead_p99_interval",
    "plan_next",
    "policy_from_sets",
    "recommendation",
    "steps_csv",
    "stop_reason",
    "summarize_step",
    "sweep_verdict",
]

Mode = Literal["concurrency", "rate"]

#: Share of the knee a capacity plan should count on (headroom for bursts, noise,
#: and a machine that is not the one measured).
PLAN_SHARE = 0.70
_INTERRUPTS = ("SIGINT", "SIGTERM", "cancelled")


@dataclasses.dataclass(frozen=True, slots=True)
class SweepPolicy:
    """When to stop, and how the automatic search moves. Set with ``--set sweep.<field>=…``.

    Explicit lists stop after a step that did not pass when

    * ``stop_after_fail`` is true (skip every step past the first failing one), or
    * it failed with ``requests.error_rate`` above ``max_error_rate`` (failing), or
    * it failed and its throughput grew less than ``min_growth`` over the previous
      step (saturated: more load only queues), or
    * it was ``invalid`` and ``stop_on_invalid`` is true (a harness that could not
      keep up at N will not at 2N).
    """

    stop_after_fail: bool = False
    stop_on_invalid: bool = True
    min_growth: float = 0.05
    max_error_rate: float = 0.10
    #: automatic mode: first step (None: 8 for concurrency, the profile's rate for rate)
    start: float | None = None
    #: automatic mode: bisect until first-non-pass − last-pass ≤ this share of the pass
    resolution: float = 0.10
    #: automatic mode: never double past this value
    max_value: float = 4096.0
    #: any mode: never run more steps than this
    max_steps: int = 20


def policy_from_sets(sets: Sequence[str]) -> tuple[SweepPolicy, list[str]]:
    """Split ``sweep.<field>=<TOML value>`` overrides from the profile's ``--set`` list."""
    fields = {f.name: f for f in dataclasses.fields(SweepPolicy)}
    changes: dict[str, Any] = {}
    rest: list[str] = []
    for item in sets:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not key.startswith("sweep."):
            rest.append(item)
            continue
        name = key.removeprefix("sweep.")
        if not sep or name not in fields:
            known = ", ".join(f"sweep.{n}" for n in fields)
            raise UsageError(f"--set {key}: unknown sweep key (one of {known})")
        try:
            value = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = text.strip()
        default = fields[name].default
        ok = (
            isinstance(value, bool)
            if isinstance(default, bool)
            else isinstance(value, int | float) and not isinstance(value, bool)
        )
        if name == "start" and isinstance(value, int | float) and not isinstance(value, bool):
            ok = value > 0
        if not ok:
            kind = "true or false" if isinstance(default, bool) else "a positive number"
            raise UsageError(f"--set {key}: must be {kind} (got {text.strip()!r})")
        if isinstance(default, int) and not isinstance(default, bool):
            if value != int(value) or value < 1:
                raise UsageError(f"--set {key}: must be a positive integer (got {text.strip()!r})")
            value = int(value)
        elif isinstance(default, float) and (value < 0 or not math.isfinite(value)):
            raise UsageError(f"--set {key}: must not be negative (got {text.strip()!r})")
        changes[name] = float(value) if name == "start" else value
    return dataclasses.replace(SweepPolicy(), **changes), rest


# ------------------------------------------------------------------ step summaries


@dataclasses.dataclass(frozen=True, slots=True)
class GatewayUsage:
    """The launched gateway's CPU (% of one core) and peak RSS (MB) during a step."""

    cpu_percent: float | None = None
    rss_mb: float | None = None


def fmt_value(v: float) -> str:
    """A step value as people write it: 16, 12.5."""
    return f"{v:g}"


def _failed_gates(step: SweepStep) -> list[str]:
    out = []
    for g in step.gates:
        if not g.passed:
            shown = "missing" if g.value is None else f"{g.value:g}"
            out.append(f"{g.name} = {shown} (needs {g.op} {g.threshold:g})")
    return out


def _first_reason(step: SweepStep) -> str:
    return str(step.reasons[0]) if step.reasons else "no reason recorded"


def overhead_p99_interval(result: Result, confidence: float = 0.95) -> tuple[float, float] | None:
    """95 % interval (ms) of the run's overhead p99: compare's estimator, one run.

    The order-statistic interval from the stored histogram, or the batch-means one
    when the run's own drift over its 20 time batches is larger
    (:func:`loadgate.analysis.stats.run_quantile`). None without a histogram.
    """
    encoded = result.histograms.get("overhead_ms")
    if not encoded:
        return None
    h = decode(encoded)
    bounds = bucket_bounds(h)
    batches = [counts_of(decode(b)) for b in result.histogram_batches.get("overhead_ms") or [] if b]
    value, se, n, df = run_quantile(counts_of(h), batches, 99.0, bounds)
    if n == 0 or not math.isfinite(se):
        return None
    half = t_crit(1.0 - confidence, df) * se
    return round(max(0.0, value - half) / 1e3, 4), round((value + half) / 1e3, 4)


def summarize_step(
    value: float,
    mode: Mode,
    result: Result,
    gateway_usage: GatewayUsage | None = None,
    result_path: str | None = None,
) -> SweepStep:
    """One step's summary (what the sweep stores under ``steps``) from its run's result."""
    usage = gateway_usage or GatewayUsage()
    lag = result.harness.loop_lag_ms
    control = result.harness.control
    req = result.requests
    step = SweepStep(
        value=value,
        verdict=result.verdict,
        exit_code=result.exit_code,
        reasons=list(result.reasons),
        gates=[g.model_copy() for g in result.gates],
        requests=StepRequests(
            sent=req.sent,
            ok=req.ok,
            failed=req.failed,
            error_rate=req.error_rate,
            throughput_rps=req.throughput_rps,
        ),
        metrics={
            m: {"p50": s.p50, "p99": s.p99}
            for m in ("overhead_ms", "ttft_overhead_ms")
            if (s := result.metrics.get(m)) is not None
        },
        goodput_ratio=result.goodput.ratio if result.goodput is not None else None,
        harness=StepHarness(
            valid=result.verdict != "invalid",
            cpu_percent=result.harness.cpu_percent,
            loop_lag_p99_ms=lag.p99 if lag is not None else None,
            control_overhead_p99_ms=control.p99() if control is not None else None,
        ),
        gateway=StepGateway(
            kind=result.gateway.kind,
            pid=result.gateway.pid,
            cpu_percent=usage.cpu_percent,
            rss_mb=usage.rss_mb,
        ),
        interrupted=result.interrupted,
        result=result_path,
    )
    interval = overhead_p99_interval(result)
    if interval is not None and "overhead_ms" in step.metrics:
        step.metrics["overhead_ms"].update(p99_low=interval[0], p99_high=interval[1])
    # Readers of the JSON find the step's load under its mode's name, too (an extra key).
    setattr(step, mode, value)
    return step


# ------------------------------------------------------------------ decisions


def stop_reason(steps: Sequence[SweepStep], policy: SweepPolicy) -> str | None:
    """Why an explicit list stops after its last step run so far (None: go on)."""
    if not steps:
        return None
    last = steps[-1]
    v = fmt_value(last.value)
    if last.interrupted in _INTERRUPTS:
        return f"interrupted at {v} ({last.interrupted})"
    if last.verdict == "invalid":
        if policy.stop_on_invalid:
            return f"harness-bound at {v}: {_first_reason(last)}"
        return None
    if last.verdict == "pass":
        return None
    if policy.stop_after_fail:
        return f"gates failed at {v} and sweep.stop_after_fail is set"
    err = last.requests.error_rate
    if err is not None and err > policy.max_error_rate:
        return (
            f"failing at {v}: error rate {err:.1%} > {policy.max_error_rate:.0%} "
            "(sweep.max_error_rate)"
        )
    if len(steps) >= 2:
        before, now = steps[-2].requests.throughput_rps, last.requests.throughput_rps
        if before and now is not None and now < before * (1 + policy.min_growth):
            growth = now / before - 1
            return (
                f"saturated at {v}: gates failed and throughput grew {growth:+.1%} over "
                f"{fmt_value(steps[-2].value)} (< {policy.min_growth:.0%}, sweep.min_growth)"
            )
    return None


def _by_value(steps: Sequence[SweepStep]) -> list[SweepStep]:
    return sorted(steps, key=lambda s: s.value)


def _auto_next(steps: Sequence[SweepStep], policy: SweepPolicy, integer: bool) -> float | None:
    start = policy.start if policy.start is not None else 8.0
    if integer:
        start = float(max(1, round(start)))
    if not steps:
        return start
    done = {s.value for s in steps}
    ordered = _by_value(steps)
    bad = [s.value for s in ordered if s.verdict != "pass"]
    if not bad:
        nxt = ordered[-1].value * 2
        return nxt if nxt <= policy.max_value else None
    first_bad = bad[0]
    passes = [s.value for s in ordered if s.verdict == "pass" and s.value < first_bad]
    if not passes:
        # Even the first step did not pass: halve down to find a passing floor.
        nxt = math.floor(first_bad / 2) if integer else _round3(first_bad / 2)
        floor = 1 if integer else start / 64
        return float(nxt) if nxt >= floor and nxt not in done else None
    lo = max(passes)
    if first_bad - lo <= max(lo * policy.resolution, 1.0 if integer else 0.0):
        return None
    mid = float((lo + first_bad) // 2) if integer else _round3((lo + first_bad) / 2)
    if mid <= lo or mid >= first_bad or mid in done:
        return None
    return mid


def _round3(x: float) -> float:
    """Three significant figures: automatic rates read 350, 37.5, not 351.5625."""
    if x <= 0:
        return x
    digits = 2 - math.floor(math.log10(x))
    return round(x, digits) if digits > 0 else float(round(x, digits))


def plan_next(
    steps: Sequence[SweepStep],
    policy: SweepPolicy = SweepPolicy(),  # frozen, so one shared default is safe
    values: Sequence[float] | None = None,
    *,
    integer: bool = True,
) -> float | None:
    """The next step's value, or None when the sweep is done.

    ``values`` given: the next one not yet run, in ascending order, unless
    :func:`stop_reason` says stop. ``values`` None: the automatic search
    (``integer`` steps for concurrency, three significant figures for rates).
    """
    if len(steps) >= policy.max_steps:
        return None
    if values is not None:
        if stop_reason(steps, policy) is not None:
            return None
        done = {s.value for s in steps}
        return next((float(v) for v in sorted(values) if v not in done), None)
    if steps and steps[-1].interrupted in _INTERRUPTS:
        return None
    return _auto_next(steps, policy, integer)


def find_knee(steps: Sequence[SweepStep], mode: Mode = "concurrency") -> Knee:
    """The knee: the largest step of the passing run that starts at the smallest step.

    The first step that did not pass bounds it. When that step was ``invalid`` the
    bound is the harness, not the gateway (``limited_by = "harness"``). A step that
    passes again above a failure is reported in the reason, never taken as the
    knee: a capacity plan must not rest on a figure with a failure below it.
    """
    ordered = _by_value(steps)
    knee: SweepStep | None = None
    bound: SweepStep | None = None
    for s in ordered:
        if s.verdict == "pass":
            knee = s
        else:
            bound = s
            break
    limited_by: Literal["none", "untested", "harness", "gateway"]
    if not ordered:
        reason, limited_by = "no steps ran", "none"
    elif bound is None:
        assert knee is not None
        reason = (
            f"every step passed up to {fmt_value(knee.value)}: the limit is above the largest "
            "step tried"
        )
        limited_by = "untested"
    elif bound.verdict == "invalid":
        reason = f"harness-bound at {fmt_value(bound.value)}: {_first_reason(bound)}"
        limited_by = "harness"
    else:
        failed = _failed_gates(bound) or [_first_reason(bound)]
        reason = f"gates failed at {fmt_value(bound.value)}: {'; '.join(failed)}"
        limited_by = "gateway"
    if ordered and knee is None:
        reason = f"no step passed; {reason}"
    if bound is not None:
        later = [
            fmt_value(s.value) for s in ordered if s.verdict == "pass" and s.value > bound.value
        ]
        if later:
            reason += (
                f"; note: {', '.join(later)} passed again above it: noisy steps, "
                "rerun with a longer load.duration"
            )
    value = knee.value if knee is not None else None
    return Knee(
        max_concurrency=value if mode == "concurrency" else None,
        max_rate=value if mode == "rate" else None,
        throughput_rps=knee.requests.throughput_rps if knee is not None else None,
        overhead_p99_ms=knee.metric("overhead_ms", "p99") if knee is not None else None,
        first_not_passing=bound.value if bound is not None else None,
        limited_by=limited_by,
        reason=reason,
    )


def sweep_verdict(
    steps: Sequence[SweepStep], knee: Knee
) -> tuple[Literal["pass", "fail", "invalid"], list[str], int]:
    """``(verdict, reasons, exit_code)`` of the whole sweep.

    pass (0): the smallest step passed, so the knee is a measured figure;
    fail (1): no step passed its gates; invalid (3): no steps, or the smallest
    step was harness-bound — then the sweep proves nothing about the gateway.
    """
    if not steps:
        return "invalid", ["no steps ran"], 3
    smallest = min(steps, key=lambda s: s.value)
    if smallest.verdict == "invalid":
        v = fmt_value(smallest.value)
        return (
            "invalid",
            [f"the smallest step ({v}) was harness-bound: {_first_reason(smallest)}"],
            3,
        )
    if knee.value is None:
        return "fail", [knee.reason], 1
    return "pass", [], 0


def budget_gate(gates: Mapping[str, str]) -> tuple[str, float] | None:
    """``(op, threshold)`` of the ``overhead_ms.p99`` gate, the plot's budget line."""
    expr = gates.get("overhead_ms.p99")
    if expr is None:
        return None
    spec = parse_gate("overhead_ms.p99", expr)
    return spec.op, spec.threshold


def recommendation(
    knee: Knee,
    mode: Mode,
    *,
    gateway: str,
    machine: str,
    budget: tuple[str, float] | None,
) -> str:
    """One line a user can paste into a capacity plan."""
    value = knee.max_concurrency if mode == "concurrency" else knee.max_rate
    if value is None:
        why = knee.reason.removeprefix("no step passed; ")
        return f"No step passed its gates for {gateway} on {machine}: {why}."
    rps = knee.throughput_rps
    p99 = knee.overhead_p99_ms
    if mode == "concurrency":
        load = f"{fmt_value(value)} concurrent requests" + (f" ({rps:.0f} req/s)" if rps else "")
        planned = f"{max(1, math.floor(value * PLAN_SHARE))}"
    else:
        load = f"{fmt_value(value)} req/s offered" + (f" ({rps:.0f} req/s served)" if rps else "")
        planned = f"{_round3(value * PLAN_SHARE):g} req/s"
    if p99 is None:
        overhead = "with every gate passing"
    elif budget is not None:
        overhead = f"with p99 overhead {p99:.1f} ms {budget[0]} {budget[1]:g} ms budget"
    else:
        overhead = f"with p99 overhead {p99:.1f} ms and every gate passing"
    at_least = "at least " if knee.limited_by == "untested" else ""
    caveat = ""
    if knee.limited_by == "harness":
        caveat = " (the harness, not the gateway, bounded the sweep above that)"
    return (
        f"One instance of {gateway} sustains {at_least}{load} {overhead} on {machine}"
        f"{caveat}; plan for ≤ {PLAN_SHARE:.0%} of that: {planned}."
    )


# ------------------------------------------------------------------ the plot's data

_CSV_COLUMNS = (
    "verdict",
    "throughput_rps",
    "overhead_p50_ms",
    "overhead_p99_ms",
    "control_overhead_p99_ms",
    "ttft_overhead_p99_ms",
    "error_rate",
    "harness_valid",
    "gateway_cpu_percent",
    "gateway_rss_mb",
    "reason",
)


def _csv_row(step: SweepStep, mode: Mode) -> dict[str, Any]:
    return {
        mode: fmt_value(step.value),
        "verdict": step.verdict,
        "throughput_rps": step.requests.throughput_rps,
        "overhead_p50_ms": step.metric("overhead_ms", "p50"),
        "overhead_p99_ms": step.metric("overhead_ms", "p99"),
        "control_overhead_p99_ms": step.harness.control_overhead_p99_ms,
        "ttft_overhead_p99_ms": step.metric("ttft_overhead_ms", "p99"),
        "error_rate": step.requests.error_rate,
        "harness_valid": step.harness.valid,
        "gateway_cpu_percent": step.gateway.cpu_percent,
        "gateway_rss_mb": step.gateway.rss_mb,
        "reason": "" if step.verdict == "pass" else _first_reason(step),
    }


def steps_csv(steps: Sequence[SweepStep], mode: Mode = "concurrency") -> str:
    """The plot's data, one row per step in ascending order (empty cell = no figure)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[mode, *_CSV_COLUMNS], lineterminator="\n")
    writer.writeheader()
    for step in _by_value(steps):
        writer.writerow({k: "" if v is None else v for k, v in _csv_row(step, mode).items()})
    return buf.getvalue()
