"""Capacity sweep (``loadgate sweep``): one run per load step, and the sweep directory.

This module owns running a sweep; its decisions (next step, stop, knee, verdict,
recommendation, CSV) are the pure functions of :mod:`loadgate.analysis.knee`.

* :func:`run_sweep` runs the steps :func:`~loadgate.analysis.knee.plan_next` asks
  for, each a full :func:`loadgate.pipeline.run.run_profile` in
  ``<sweep dir>/step-<value>/``, while :class:`ChildSampler` samples the launched
  gateway's CPU and RSS (psutil), and returns the typed
  :class:`~loadgate.result.model.SweepResult`.
* The sweep owns its directory, so :func:`run_sweep` writes it: each step's run
  directory as soon as the step ends (an interrupted sweep keeps the steps it
  finished, and no step's histograms stay in memory for the rest of the sweep),
  then the sweep's own files (:func:`write_sweep_directory`): ``sweep.svg``,
  ``sweep.csv``, ``report.html`` and, last, ``result.json`` — every one whole
  (:func:`loadgate.result.io.write_atomic`), so a reader that finds
  ``result.json`` finds the rest.

It prints nothing: each finished step goes to the ``on_step`` callback
(:func:`step_line` is the CLI's text for it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import shlex
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import psutil

from loadgate.analysis.frontier import (
    find_frontier,
    frontier_line,
    frontier_next,
    frontier_verdict,
)
from loadgate.analysis.knee import (
    GatewayUsage,
    Mode,
    SweepPolicy,
    budget_gate,
    find_knee,
    fmt_value,
    plan_next,
    recommendation,
    steps_csv,
    stop_reason,
    summarize_step,
    sweep_verdict,
)
from loadgate.errors import DepDownError
from loadgate.pipeline.stopping import StopRequest
from loadgate.profile import Profile
from loadgate.result.environment import collect_environment
from loadgate.result.io import write_atomic, write_result
from loadgate.result.model import Environment, SweepBudget, SweepResult, SweepStep

__all__ = [
    "ChildSampler",
    "build_sweep_result",
    "plan_mode",
    "run_sweep",
    "step_line",
    "step_profile",
    "write_sweep_directory",
]


# ------------------------------------------------------------------ gateway CPU / RSS


class ChildSampler:
    """CPU time and RSS of each child process tree of this process (psutil).

    The launched gateway's PID is only known from the step's result, so every
    direct child's tree (the child plus its descendants: a gateway's worker
    processes count) is sampled, and :meth:`usage` picks the gateway's afterwards.
    The scan runs in a thread so the harness's event loop is not held up by it.
    """

    def __init__(self, interval_s: float = 0.5) -> None:
        self.interval_s = interval_s
        #: root pid → [(monotonic s, CPU seconds user+system, RSS bytes)] of its tree
        self.samples: dict[int, list[tuple[float, float, int]]] = {}

    def sample(self) -> None:
        now = time.monotonic()
        try:
            roots = psutil.Process().children(recursive=False)
        except psutil.Error:  # no process table to read: no figures, never a failed step
            return
        for root in roots:
            cpu, rss, seen = 0.0, 0, False
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:  # the child is gone (or not ours to read)
                continue
            for proc in tree:
                try:
                    with proc.oneshot():
                        times = proc.cpu_times()
                        mem = proc.memory_info()
                except psutil.Error:  # a worker that exited between the scan and now
                    continue
                cpu += times.user + times.system
                rss += mem.rss
                seen = True
            if seen:
                self.samples.setdefault(root.pid, []).append((now, cpu, rss))

    async def run(self) -> None:
        while True:
            await asyncio.to_thread(self.sample)
            await asyncio.sleep(self.interval_s)

    def usage(self, pid: int | None, window_s: float) -> GatewayUsage:
        """CPU % of one core over the last ``window_s`` the tree was seen, and its peak RSS."""
        rows = self.samples.get(pid or -1, [])
        if len(rows) < 2:
            return GatewayUsage()
        t_end = rows[-1][0]
        window = [r for r in rows if r[0] >= t_end - window_s]
        if len(window) < 2:
            window = rows[-2:]
        (t0, c0, _), (t1, c1, _) = window[0], window[-1]
        cpu = 100.0 * (c1 - c0) / (t1 - t0) if t1 > t0 else None
        rss = max(r[2] for r in window) / 1e6
        return GatewayUsage(
            cpu_percent=round(cpu, 1) if cpu is not None else None, rss_mb=round(rss, 1)
        )


# ------------------------------------------------------------------ running


def plan_mode(
    profile: Profile, concurrency: Sequence[int] | None, rates: Sequence[float] | None
) -> tuple[Mode, list[float] | None]:
    """``(mode, explicit step values or None for the automatic search)``.

    The automatic search follows the profile's load model.
    """
    if concurrency:
        return "concurrency", sorted({float(v) for v in concurrency})
    if rates:
        return "rate", sorted({float(v) for v in rates})
    return ("concurrency" if profile.load.concurrency is not None else "rate"), None


def step_profile(profile: Profile, mode: Mode, value: float) -> Profile:
    """One step's profile: closed loop with ``value`` workers, or open loop at ``value`` req/s."""
    if mode == "concurrency":
        load = profile.load.model_copy(update={"concurrency": int(value), "rate": None})
    else:
        load = profile.load.model_copy(update={"rate": float(value), "concurrency": None})
    return profile.model_copy(update={"load": load})


def _step_dir_name(value: float) -> str:
    return f"step-{fmt_value(value)}"


async def run_sweep(
    profile: Profile,
    mode: Mode,
    values: Sequence[float] | None,
    policy: SweepPolicy,
    *,
    target: str | None,
    sweep_dir: Path,
    on_step: Callable[[SweepStep], None] | None = None,
    stop: StopRequest | None = None,
    frontier: Sequence[float] | None = None,
) -> SweepResult:
    """Run the steps :func:`plan_next` asks for, write the sweep directory, return the result.

    ``frontier`` (p99 overhead bounds, ms; ``mode`` must be ``"rate"``): the steps
    are :func:`~loadgate.analysis.frontier.frontier_next`'s search instead, and the
    result carries the frontier.
    """
    if frontier is not None and mode != "rate":
        raise ValueError("the frontier is searched over rate (open loop)")
    from loadgate.pipeline.run import RunOptions, run_profile
    from loadgate.rundir import write_run_directory

    started_at = datetime.now(UTC)
    t0 = time.monotonic()
    await asyncio.to_thread(sweep_dir.mkdir, parents=True, exist_ok=True)
    if mode == "rate" and values is None and policy.start is None:
        policy = dataclasses.replace(policy, start=profile.load.rate or 8.0)
    steps: list[SweepStep] = []
    stopped: str | None = None

    def next_value() -> float | None:
        if frontier is not None:
            return frontier_next(steps, frontier, policy)
        return plan_next(steps, policy, values, integer=mode == "concurrency")

    while (value := next_value()) is not None:
        value = int(value) if mode == "concurrency" else value
        step_dir = sweep_dir / _step_dir_name(value)
        sampler = ChildSampler()
        sampling = asyncio.create_task(sampler.run())
        try:
            result = await run_profile(
                step_profile(profile, mode, value),
                RunOptions(target=target, run_dir=step_dir, stop=stop),
            )
        except DepDownError as exc:
            if not steps:
                raise
            stopped = f"target unreachable before step {fmt_value(value)}: {exc}"
            break
        finally:
            sampling.cancel()
            await asyncio.gather(sampling, return_exceptions=True)
        await asyncio.to_thread(write_run_directory, result, step_dir)
        pid = result.gateway.pid
        usage = sampler.usage(pid, profile.load.duration_s) if pid else None
        step = summarize_step(
            value, mode, result, usage, str((step_dir / "result.json").relative_to(sweep_dir))
        )
        steps.append(step)
        if on_step is not None:
            on_step(step)
    if stopped is None and values is not None:
        stopped = stop_reason(steps, policy)
    sweep = build_sweep_result(
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
        frontier=frontier,
    )
    await asyncio.to_thread(write_sweep_directory, sweep, sweep_dir)
    return sweep


def build_sweep_result(
    profile: Profile,
    mode: Mode,
    steps: Sequence[SweepStep],
    policy: SweepPolicy,
    *,
    values: Sequence[float] | None,
    stopped: str | None,
    target: str | None,
    sweep_dir: Path,
    started_at: datetime,
    duration_s: float,
    environment: Environment | None = None,
    frontier: Sequence[float] | None = None,
) -> SweepResult:
    """The sweep's result (schema ``loadgate.result/1``, ``kind = "sweep"``).

    With ``frontier`` bounds it carries the frontier, whose verdict is the
    measurement's (:func:`~loadgate.analysis.frontier.frontier_verdict`), not the
    gates', and whose table lines are the recommendation.
    """
    done = {s.value for s in steps}
    skipped = [float(v) for v in values or () if v not in done]
    knee = find_knee(steps, mode)
    verdict, reasons, code = sweep_verdict(steps, knee)
    env = environment if environment is not None else collect_environment()
    budget = budget_gate(profile.gates)
    gateway, machine = _gateway_label(profile, target), _machine(env)
    found = find_frontier(steps, frontier, policy) if frontier is not None else None
    if found is not None:
        verdict, reasons, code = frontier_verdict(steps)
        line = frontier_line(found, gateway=gateway, machine=machine)
    else:
        line = recommendation(knee, mode, gateway=gateway, machine=machine, budget=budget)
    return SweepResult(
        verdict=verdict,
        reasons=reasons,
        exit_code=code,
        mode=mode,
        steps=list(steps),
        skipped=skipped,
        stopped=stopped,
        knee=knee,
        frontier=found,
        recommendation=line,
        budget=SweepBudget(name="overhead_ms.p99", op=budget[0], threshold=budget[1])
        if budget
        else None,
        policy=dataclasses.asdict(policy),
        gates=[],
        profile=profile.redacted(),
        environment=env,
        git=None,
        started_at=started_at.isoformat(),
        duration_s=round(duration_s, 3),
        run_dir=str(sweep_dir),
    )


def write_sweep_directory(sweep: SweepResult, sweep_dir: Path) -> None:
    """sweep.svg, sweep.csv, report.html, then result.json in ``sweep_dir``, each whole.

    The plot and the HTML page are the report's (:mod:`loadgate.report`), fed the
    sweep's step summaries: one knee plot in the product, not two. ``result.json``
    goes last: a reader that finds it finds the rest.
    """
    from loadgate.report import render_sweep_html, sweep_svg

    write_atomic(sweep_dir / "sweep.svg", sweep_svg(sweep) + "\n")
    write_atomic(sweep_dir / "sweep.csv", steps_csv(sweep.steps, sweep.mode))
    if sweep.frontier is not None and sweep.frontier.plot:
        from loadgate.report import frontier_svg

        write_atomic(sweep_dir / sweep.frontier.plot, frontier_svg(sweep) + "\n")
    write_atomic(sweep_dir / "report.html", render_sweep_html(sweep))
    write_result(sweep, sweep_dir / "result.json")


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


def _machine(env: Environment) -> str:
    return f"{env.host} ({env.cpu_model}, {env.cpus} CPUs)"


def step_line(step: SweepStep) -> str:
    """One finished step as the CLI prints it (stderr, while the sweep runs)."""

    def num(v: float | None, spec: str) -> str:
        return "–" if v is None else format(v, spec)

    gw = step.gateway
    floor = step.harness.control_overhead_p99_ms
    # The control group's p99 beside the step's: the floor the overhead stands on.
    control = f" (control p99 {floor:.2f})" if floor is not None else ""
    good = step.goodput_ratio
    goodput = f"  goodput {100 * good:.2f}%" if good is not None else ""
    return (
        f"sweep: {step.value:>6g}  {step.verdict:<7}  "
        f"{num(step.requests.throughput_rps, '.1f')} req/s  "
        f"overhead p50 {num(step.metric('overhead_ms', 'p50'), '.2f')} "
        f"p99 {num(step.metric('overhead_ms', 'p99'), '.2f')}{control} ms  "
        f"ttft-ovh p99 {num(step.metric('ttft_overhead_ms', 'p99'), '.2f')} ms  "
        f"errors {num(step.requests.error_rate, '.2%')}  "
        f"gw cpu {num(gw.cpu_percent, '.0f')} % rss {num(gw.rss_mb, '.0f')} MB{goodput}"
    )
