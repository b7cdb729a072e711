"""Capacity sweep (``loadgate sweep``): one run per load step, the knee, the plot.

This module owns the sweep's decisions and its outputs:

* which step runs next (:func:`plan_next`): an explicit list of concurrencies or
  rates, cut short by :func:`stop_reason` once the gateway is clearly saturated or
  failing, or an automatic search (double until a step does not pass, then bisect
  between the last pass and the first non-pass to ~10 %);
* the knee (:func:`find_knee`): the largest step of the passing run that starts at
  the smallest step. A harness-bound (``invalid``) step is never the gateway's
  limit: the knee stops before it and says so;
* the sweep's verdict (:func:`sweep_verdict`), a recommendation line for a capacity
  plan (:func:`recommendation`) and the plot's data as CSV (:func:`steps_csv`); the
  plot and the HTML page themselves are drawn by :mod:`loadgate.report` from the
  same step summaries;
* the runs (:func:`run_sweep`): each step is a full :func:`loadgate.pipeline.run.run_profile`
  in ``<sweep dir>/step-<value>/``; the launched gateway's CPU and RSS are sampled
  from ``/proc`` while the step runs (:class:`ChildSampler`).

Every decision works on step *summaries*: the JSON dicts stored under ``steps`` in
the sweep's result file, so a sweep read back from disk can be re-judged.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import dataclasses
import io
import json
import math
import os
import shlex
import sys
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from loadgate.errors import DepDownError, UsageError
from loadgate.judge.gates import parse_gate
from loadgate.profile import Profile, load_profile
from loadgate.result import SCHEMA, SweepResult, collect_environment, write_atomic
from loadgate.result.legacy import as_dict

__all__ = [
    "ChildSampler",
    "Mode",
    "SweepPolicy",
    "budget_gate",
    "find_knee",
    "main",
    "plan_next",
    "policy_from_sets",
    "recommendation",
    "run_sweep",
    "step_profile",
    "steps_csv",
    "stop_reason",
    "summarize_step",
    "sweep_result",
    "sweep_verdict",
    "write_outputs",
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


def _value(step: Mapping[str, Any]) -> float:
    v = step["value"]
    assert isinstance(v, int | float)
    return v


def _throughput(step: Mapping[str, Any]) -> float | None:
    v = (step.get("requests") or {}).get("throughput_rps")
    return v if isinstance(v, int | float) else None


def _error_rate(step: Mapping[str, Any]) -> float | None:
    v = (step.get("requests") or {}).get("error_rate")
    return v if isinstance(v, int | float) else None


def _metric(step: Mapping[str, Any], name: str, stat: str) -> float | None:
    v = ((step.get("metrics") or {}).get(name) or {}).get(stat)
    return v if isinstance(v, int | float) else None


def _fmt(v: float) -> str:
    """A step value as people write it: 16, 12.5."""
    return f"{v:g}"


def _failed_gates(step: Mapping[str, Any]) -> list[str]:
    out = []
    for g in step.get("gates") or []:
        if not g.get("passed"):
            value = g.get("value")
            shown = "missing" if value is None else f"{value:g}"
            out.append(f"{g['name']} = {shown} (needs {g['op']} {g['threshold']:g})")
    return out


def _first_reason(step: Mapping[str, Any]) -> str:
    reasons = step.get("reasons") or []
    return str(reasons[0]) if reasons else "no reason recorded"


def summarize_step(
    value: float,
    mode: Mode,
    data: Mapping[str, Any],
    gateway_usage: Mapping[str, float | None] | None = None,
    result_path: str | None = None,
) -> dict[str, Any]:
    """One step's summary (the shape stored under ``steps``) from its run's result data."""
    req = data.get("requests") or {}
    metrics = data.get("metrics") or {}
    harness = data.get("harness") or {}
    gw = data.get("gateway") or {}
    lag = harness.get("loop_lag_ms") or {}
    summary: dict[str, Any] = {
        mode: value,
        "value": value,
        "verdict": data.get("verdict"),
        "exit_code": data.get("exit_code"),
        "reasons": list(data.get("reasons") or []),
        "gates": list(data.get("gates") or []),
        "requests": {
            k: req.get(k) for k in ("sent", "ok", "failed", "error_rate", "throughput_rps")
        },
        "metrics": {
            m: {s: (metrics.get(m) or {}).get(s) for s in ("p50", "p99")}
            for m in ("overhead_ms", "ttft_overhead_ms")
            if m in metrics
        },
        "harness": {
            "valid": data.get("verdict") != "invalid",
            "cpu_percent": harness.get("cpu_percent"),
            "loop_lag_p99_ms": lag.get("p99"),
        },
        "gateway": {
            "kind": gw.get("kind"),
            "pid": gw.get("pid"),
            "cpu_percent": (gateway_usage or {}).get("cpu_percent"),
            "rss_mb": (gateway_usage or {}).get("rss_mb"),
        },
        "interrupted": data.get("interrupted"),
        "result": result_path,
    }
    return summary


# ------------------------------------------------------------------ decisions


def stop_reason(steps: Sequence[Mapping[str, Any]], policy: SweepPolicy) -> str | None:
    """Why an explicit list stops after its last step run so far (None: go on)."""
    if not steps:
        return None
    last = steps[-1]
    v = _fmt(_value(last))
    if last.get("interrupted") in _INTERRUPTS:
        return f"interrupted at {v} ({last['interrupted']})"
    verdict = last.get("verdict")
    if verdict == "invalid":
        if policy.stop_on_invalid:
            return f"harness-bound at {v}: {_first_reason(last)}"
        return None
    if verdict == "pass":
        return None
    if policy.stop_after_fail:
        return f"gates failed at {v} and sweep.stop_after_fail is set"
    err = _error_rate(last)
    if err is not None and err > policy.max_error_rate:
        return (
            f"failing at {v}: error rate {err:.1%} > {policy.max_error_rate:.0%} "
            "(sweep.max_error_rate)"
        )
    if len(steps) >= 2:
        before, now = _throughput(steps[-2]), _throughput(last)
        if before and now is not None and now < before * (1 + policy.min_growth):
            growth = now / before - 1
            return (
                f"saturated at {v}: gates failed and throughput grew {growth:+.1%} over "
                f"{_fmt(_value(steps[-2]))} (< {policy.min_growth:.0%}, sweep.min_growth)"
            )
    return None


def _auto_next(
    steps: Sequence[Mapping[str, Any]], policy: SweepPolicy, integer: bool
) -> float | None:
    start = policy.start if policy.start is not None else 8.0
    if integer:
        start = float(max(1, round(start)))
    if not steps:
        return start
    done = {_value(s) for s in steps}
    ordered = sorted(steps, key=_value)
    bad = [_value(s) for s in ordered if s.get("verdict") != "pass"]
    if not bad:
        nxt = _value(ordered[-1]) * 2
        return nxt if nxt <= policy.max_value else None
    first_bad = bad[0]
    passes = [_value(s) for s in ordered if s.get("verdict") == "pass" and _value(s) < first_bad]
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
    steps: Sequence[Mapping[str, Any]],
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
        done = {_value(s) for s in steps}
        return next((float(v) for v in sorted(values) if v not in done), None)
    if steps and steps[-1].get("interrupted") in _INTERRUPTS:
        return None
    return _auto_next(steps, policy, integer)


def find_knee(steps: Sequence[Mapping[str, Any]], mode: Mode = "concurrency") -> dict[str, Any]:
    """The knee: the largest step of the passing run that starts at the smallest step.

    The first step that did not pass bounds it. When that step was ``invalid`` the
    bound is the harness, not the gateway (``limited_by = "harness"``). A step that
    passes again above a failure is reported in the reason, never taken as the
    knee: a capacity plan must not rest on a figure with a failure below it.
    """
    key = "max_concurrency" if mode == "concurrency" else "max_rate"
    ordered = sorted(steps, key=_value)
    knee: Mapping[str, Any] | None = None
    bound: Mapping[str, Any] | None = None
    for s in ordered:
        if s.get("verdict") == "pass":
            knee = s
        else:
            bound = s
            break
    if not ordered:
        reason, limited_by = "no steps ran", "none"
    elif bound is None:
        assert knee is not None
        reason = (
            f"every step passed up to {_fmt(_value(knee))}: the limit is above the largest "
            "step tried"
        )
        limited_by = "untested"
    elif bound.get("verdict") == "invalid":
        reason = f"harness-bound at {_fmt(_value(bound))}: {_first_reason(bound)}"
        limited_by = "harness"
    else:
        failed = _failed_gates(bound) or [_first_reason(bound)]
        reason = f"gates failed at {_fmt(_value(bound))}: {'; '.join(failed)}"
        limited_by = "gateway"
    if ordered and knee is None:
        reason = f"no step passed; {reason}"
    if bound is not None:
        later = [
            _fmt(_value(s))
            for s in ordered
            if s.get("verdict") == "pass" and _value(s) > _value(bound)
        ]
        if later:
            reason += (
                f"; note: {', '.join(later)} passed again above it: noisy steps, "
                "rerun with a longer load.duration"
            )
    return {
        key: _value(knee) if knee is not None else None,
        "throughput_rps": _throughput(knee) if knee is not None else None,
        "overhead_p99_ms": _metric(knee, "overhead_ms", "p99") if knee is not None else None,
        "first_not_passing": _value(bound) if bound is not None else None,
        "limited_by": limited_by,
        "reason": reason,
    }


def sweep_verdict(
    steps: Sequence[Mapping[str, Any]], knee: Mapping[str, Any]
) -> tuple[str, list[str], int]:
    """``(verdict, reasons, exit_code)`` of the whole sweep.

    pass (0): the smallest step passed, so the knee is a measured figure;
    fail (1): no step passed its gates; invalid (3): no steps, or the smallest
    step was harness-bound — then the sweep proves nothing about the gateway.
    """
    if not steps:
        return "invalid", ["no steps ran"], 3
    smallest = min(steps, key=_value)
    if smallest.get("verdict") == "invalid":
        v = _fmt(_value(smallest))
        return (
            "invalid",
            [f"the smallest step ({v}) was harness-bound: {_first_reason(smallest)}"],
            3,
        )
    if knee.get("max_concurrency", knee.get("max_rate")) is None:
        return "fail", [str(knee["reason"])], 1
    return "pass", [], 0


def budget_gate(gates: Mapping[str, str]) -> tuple[str, float] | None:
    """``(op, threshold)`` of the ``overhead_ms.p99`` gate, the plot's budget line."""
    expr = gates.get("overhead_ms.p99")
    if expr is None:
        return None
    spec = parse_gate("overhead_ms.p99", expr)
    return spec.op, spec.threshold


def recommendation(
    knee: Mapping[str, Any],
    mode: Mode,
    *,
    gateway: str,
    machine: str,
    budget: tuple[str, float] | None,
) -> str:
    """One line a user can paste into a capacity plan."""
    value = knee.get("max_concurrency" if mode == "concurrency" else "max_rate")
    if value is None:
        why = str(knee["reason"]).removeprefix("no step passed; ")
        return f"No step passed its gates for {gateway} on {machine}: {why}."
    rps = knee.get("throughput_rps")
    p99 = knee.get("overhead_p99_ms")
    if mode == "concurrency":
        load = f"{_fmt(value)} concurrent requests" + (f" ({rps:.0f} req/s)" if rps else "")
        planned = f"{max(1, math.floor(value * PLAN_SHARE))}"
    else:
        load = f"{_fmt(value)} req/s offered" + (f" ({rps:.0f} req/s served)" if rps else "")
        planned = f"{_round3(value * PLAN_SHARE):g} req/s"
    if p99 is None:
        overhead = "with every gate passing"
    elif budget is not None:
        overhead = f"with p99 overhead {p99:.1f} ms {budget[0]} {budget[1]:g} ms budget"
    else:
        overhead = f"with p99 overhead {p99:.1f} ms and every gate passing"
    at_least = "at least " if knee.get("limited_by") == "untested" else ""
    caveat = ""
    if knee.get("limited_by") == "harness":
        caveat = " (the harness, not the gateway, bounded the sweep above that)"
    return (
        f"One instance of {gateway} sustains {at_least}{load} {overhead} on {machine}"
        f"{caveat}; plan for ≤ {PLAN_SHARE:.0%} of that: {planned}."
    )


# ------------------------------------------------------------------ outputs

_CSV_COLUMNS = (
    "value",
    "verdict",
    "throughput_rps",
    "overhead_p50_ms",
    "overhead_p99_ms",
    "ttft_overhead_p99_ms",
    "error_rate",
    "harness_valid",
    "gateway_cpu_percent",
    "gateway_rss_mb",
    "reason",
)


def _row(step: Mapping[str, Any]) -> dict[str, Any]:
    gw = step.get("gateway") or {}
    return {
        "value": _fmt(_value(step)),
        "verdict": step.get("verdict"),
        "throughput_rps": _throughput(step),
        "overhead_p50_ms": _metric(step, "overhead_ms", "p50"),
        "overhead_p99_ms": _metric(step, "overhead_ms", "p99"),
        "ttft_overhead_p99_ms": _metric(step, "ttft_overhead_ms", "p99"),
        "error_rate": _error_rate(step),
        "harness_valid": (step.get("harness") or {}).get("valid"),
        "gateway_cpu_percent": gw.get("cpu_percent"),
        "gateway_rss_mb": gw.get("rss_mb"),
        "reason": "" if step.get("verdict") == "pass" else _first_reason(step),
    }


def steps_csv(steps: Sequence[Mapping[str, Any]], mode: Mode = "concurrency") -> str:
    """The plot's data, one row per step in ascending order (empty cell = no figure)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[mode, *_CSV_COLUMNS[1:]], lineterminator="\n")
    writer.writeheader()
    for step in sorted(steps, key=_value):
        row = _row(step)
        row[mode] = row.pop("value")
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buf.getvalue()


# ------------------------------------------------------------------ gateway CPU / RSS


def _proc_table() -> dict[int, tuple[int, int, int]]:
    """pid → (ppid, utime+stime ticks, rss pages) for every visible process."""
    table: dict[int, tuple[int, int, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                raw = fh.read()
        except OSError:
            continue
        fields = raw[raw.rfind(b")") + 2 :].split()
        with contextlib.suppress(IndexError, ValueError):
            table[int(entry.name)] = (
                int(fields[1]),
                int(fields[11]) + int(fields[12]),
                int(fields[21]),
            )
    return table


class ChildSampler:
    """CPU time and RSS of each child process tree of this process, sampled from /proc.

    The launched gateway's PID is only known from the step's result, so every
    direct child's tree (the child plus its descendants: a gateway's worker
    processes count) is sampled, and :meth:`usage` picks the gateway's afterwards.
    The scan runs in a thread so the harness's event loop is not held up by it.
    """

    def __init__(self, interval_s: float = 0.5) -> None:
        self.interval_s = interval_s
        self.samples: dict[int, list[tuple[float, int, int]]] = {}
        self._tick_hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

    def sample(self) -> None:
        now = time.monotonic()
        try:
            table = _proc_table()
        except OSError:  # no /proc: no figures, never a failed step
            return
        kids: dict[int, list[int]] = {}
        for pid, (ppid, _, _) in table.items():
            kids.setdefault(ppid, []).append(pid)
        for root in kids.get(os.getpid(), []):
            ticks = rss = 0
            todo, seen = [root], set()
            while todo:
                pid = todo.pop()
                if pid in seen or pid not in table:
                    continue
                seen.add(pid)
                ticks += table[pid][1]
                rss += table[pid][2]
                todo.extend(kids.get(pid, []))
            self.samples.setdefault(root, []).append((now, ticks, rss))

    async def run(self) -> None:
        while True:
            await asyncio.to_thread(self.sample)
            await asyncio.sleep(self.interval_s)

    def usage(self, pid: int | None, window_s: float) -> dict[str, float | None]:
        """CPU % of one core over the last ``window_s`` the tree was seen, and its peak RSS."""
        rows = self.samples.get(pid or -1, [])
        if len(rows) < 2:
            return {"cpu_percent": None, "rss_mb": None}
        t_end = rows[-1][0]
        window = [r for r in rows if r[0] >= t_end - window_s] or rows[-2:]
        if len(window) < 2:
            window = rows[-2:]
        (t0, c0, _), (t1, c1, _) = window[0], window[-1]
        cpu = 100.0 * (c1 - c0) / self._tick_hz / (t1 - t0) if t1 > t0 else None
        rss = max(r[2] for r in window) * self._page / 1e6
        return {
            "cpu_percent": round(cpu, 1) if cpu is not None else None,
            "rss_mb": round(rss, 1),
        }


# ------------------------------------------------------------------ running


def step_profile(profile: Profile, mode: Mode, value: float) -> Profile:
    """One step's profile: closed loop with ``value`` workers, or open loop at ``value`` req/s."""
    if mode == "concurrency":
        load = profile.load.model_copy(update={"concurrency": int(value), "rate": None})
    else:
        load = profile.load.model_copy(update={"rate": float(value), "concurrency": None})
    return profile.model_copy(update={"load": load})


def _step_dir_name(value: float) -> str:
    return f"step-{_fmt(value)}"


async def run_sweep(
    profile: Profile,
    mode: Mode,
    values: Sequence[float] | None,
    policy: SweepPolicy,
    *,
    target: str | None,
    sweep_dir: Path,
    on_step: Callable[[Mapping[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run the steps :func:`plan_next` asks for; return the sweep's result data."""
    from loadgate.pipeline.run import RunOptions, run_profile
    from loadgate.rundir import write_run_directory

    started_at = datetime.now(UTC)
    t0 = time.monotonic()
    await asyncio.to_thread(sweep_dir.mkdir, parents=True, exist_ok=True)
    if mode == "rate" and values is None and policy.start is None:
        policy = dataclasses.replace(policy, start=profile.load.rate or 8.0)
    steps: list[dict[str, Any]] = []
    stopped: str | None = None
    while (value := plan_next(steps, policy, values, integer=mode == "concurrency")) is not None:
        value = int(value) if mode == "concurrency" else value
        step_dir = sweep_dir / _step_dir_name(value)
        sampler = ChildSampler()
        sampling = asyncio.create_task(sampler.run())
        try:
            result = await run_profile(
                step_profile(profile, mode, value), RunOptions(target=target, run_dir=step_dir)
            )
            await asyncio.to_thread(write_run_directory, result, step_dir)
        except DepDownError as exc:
            if not steps:
                raise
            stopped = f"target unreachable before step {_fmt(value)}: {exc}"
            break
        finally:
            sampling.cancel()
            await asyncio.gather(sampling, return_exceptions=True)
        pid = result.gateway.pid
        usage = sampler.usage(pid, profile.load.duration_s) if pid else None
        step = summarize_step(
            value,
            mode,
            as_dict(result),
            usage,
            str((step_dir / "result.json").relative_to(sweep_dir)),
        )
        steps.append(step)
        if on_step is not None:
            on_step(step)
    if stopped is None and values is not None:
        stopped = stop_reason(steps, policy)
    data = sweep_result(
        profile,
        mode,
        steps,
        policy,
        values=values,
        stopped=stopped,
        target=target,
        sweep_dir=sweep_dir,
        started_at=started_at,
        duration_s=time.monotonic() - t0,
    )
    await asyncio.to_thread(write_outputs, sweep_dir, data)
    return data


def sweep_result(
    profile: Profile,
    mode: Mode,
    steps: Sequence[Mapping[str, Any]],
    policy: SweepPolicy,
    *,
    values: Sequence[float] | None,
    stopped: str | None,
    target: str | None,
    sweep_dir: Path,
    started_at: datetime,
    duration_s: float,
) -> dict[str, Any]:
    """The sweep's result data (schema ``loadgate.result/1``, ``kind = "sweep"``)."""
    done = {_value(s) for s in steps}
    skipped = [int(v) if mode == "concurrency" else v for v in values or () if v not in done]
    knee = find_knee(steps, mode)
    verdict, reasons, code = sweep_verdict(steps, knee)
    env = collect_environment().model_dump()
    budget = budget_gate(profile.gates)
    return {
        "schema": SCHEMA,
        "kind": "sweep",
        "verdict": verdict,
        "reasons": reasons,
        "exit_code": code,
        "mode": mode,
        "steps": list(steps),
        "skipped": skipped,
        "stopped": stopped,
        "knee": knee,
        "recommendation": recommendation(
            knee,
            mode,
            gateway=_gateway_label(profile, target),
            machine=_machine(env),
            budget=budget,
        ),
        "budget": {"name": "overhead_ms.p99", "op": budget[0], "threshold": budget[1]}
        if budget
        else None,
        "policy": dataclasses.asdict(policy),
        "gates": [],
        "plot": "sweep.svg",
        "csv": "sweep.csv",
        "report": "report.html",
        "profile": profile.redacted(),
        "environment": env,
        "git": None,
        "started_at": started_at.isoformat(),
        "duration_s": round(duration_s, 3),
        "run_dir": str(sweep_dir),
    }


def write_outputs(sweep_dir: Path, data: Mapping[str, Any]) -> None:
    """result.json, sweep.svg, sweep.csv and report.html in ``sweep_dir``.

    The plot and the HTML page are the report's (:mod:`loadgate.report`), fed the
    sweep's step summaries: one knee plot in the product, not two.
    """
    from loadgate.report import render_sweep_html, sweep_svg

    sweep_dir.mkdir(parents=True, exist_ok=True)
    typed = SweepResult.model_validate(data)  # what readers will load must validate
    (sweep_dir / "sweep.svg").write_text(sweep_svg(typed) + "\n", encoding="utf-8")
    (sweep_dir / "sweep.csv").write_text(steps_csv(data["steps"], data["mode"]), encoding="utf-8")
    (sweep_dir / "report.html").write_text(render_sweep_html(typed), encoding="utf-8")
    write_atomic(sweep_dir / "result.json", json.dumps(data, indent=2) + "\n")


def _gateway_label(profile: Profile, target: str | None) -> str:
    if target:
        return target
    gw = profile.gateway
    if gw.kind == "reference":
        return "the reference gateway"
    if gw.kind == "direct":
        return "no gateway (direct: the harness floor)"
    return _command_name(gw.command or "")


def _command_name(command: str) -> str:
    """What a person would call the launched gateway: the script or module, not ``python``."""
    try:
        argv = shlex.split(command)
    except ValueError:
        argv = command.split()
    words = [Path(a).name for a in argv if not a.startswith("-") and "=" not in a]
    launchers = ("python", "node", "uv", "env", "exec", "sh", "bash", "java", "bun", "deno")
    while len(words) > 1 and words[0].startswith(launchers):
        words.pop(0)
        if words and words[0] in ("run", "start", "serve"):  # uv run …, bun run …
            words.pop(0)
    return words[0] if words else "the gateway"


def _machine(env: Mapping[str, Any]) -> str:
    return f"{env.get('host')} ({env.get('cpu_model')}, {env.get('cpus')} CPUs)"


def _sweep_dir(profile: Profile, out: Path | None) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = Path(os.environ.get("LOADGATE_RUNS_DIR", "runs"))
    if out is not None:
        base = out.parent
    return base / f"sweep-{profile.name}-{stamp}-{os.getpid()}"


def _print_step(step: Mapping[str, Any]) -> None:
    def num(v: float | None, spec: str) -> str:
        return "–" if v is None else format(v, spec)

    gw = step.get("gateway") or {}
    sys.stderr.write(
        f"sweep: {step['value']:>6g}  {step['verdict']:<7}  "
        f"{num(_throughput(step), '.1f')} req/s  "
        f"overhead p50 {num(_metric(step, 'overhead_ms', 'p50'), '.2f')} "
        f"p99 {num(_metric(step, 'overhead_ms', 'p99'), '.2f')} ms  "
        f"ttft-ovh p99 {num(_metric(step, 'ttft_overhead_ms', 'p99'), '.2f')} ms  "
        f"errors {num(_error_rate(step), '.2%')}  "
        f"gw cpu {num(gw.get('cpu_percent'), '.0f')} % rss {num(gw.get('rss_mb'), '.0f')} MB\n"
    )
    sys.stderr.flush()


def main(
    profile_ref: str,
    target: str | None,
    concurrency: list[int] | None,
    rates: list[float] | None,
    auto: bool,
    sets: list[str],
    out: Path | None,
) -> int:
    """``loadgate sweep``: run the steps, write the sweep result, print the knee; exit code."""
    policy, profile_sets = policy_from_sets(sets)
    profile = load_profile(profile_ref, profile_sets)
    if concurrency and rates:
        raise UsageError("sweep: give --concurrency or --rates, not both")
    mode: Mode
    values: list[float] | None
    if concurrency:
        mode, values = "concurrency", sorted({float(v) for v in concurrency})
    elif rates:
        mode, values = "rate", sorted({float(v) for v in rates})
    elif auto:
        mode = "concurrency" if profile.load.concurrency is not None else "rate"
        values = None
    else:
        raise UsageError("sweep: give --concurrency N,N,..., --rates R,R,... or --auto")
    sweep_dir = _sweep_dir(profile, out)

    import uvloop

    data = uvloop.run(
        run_sweep(
            profile, mode, values, policy, target=target, sweep_dir=sweep_dir, on_step=_print_step
        )
    )
    if out is not None:
        write_atomic(out, json.dumps(data, indent=2) + "\n")
    if data["stopped"]:
        sys.stderr.write(f"sweep: stopped early: {data['stopped']}\n")
    if data["skipped"]:
        sys.stderr.write(f"sweep: skipped {', '.join(_fmt(v) for v in data['skipped'])}\n")
    knee = data["knee"]
    print(f"knee: {knee['reason']}")
    print(data["recommendation"])
    print(f"sweep: {data['verdict']} — results, plot and CSV in {sweep_dir}")
    code = data["exit_code"]
    assert isinstance(code, int)
    return code
