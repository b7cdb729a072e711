"""Interleaved A/B runs of one profile against two gateway builds (issue 5).

This module owns ``loadgate ab``'s core, :func:`run_ab`: it plans the run
order, rewrites the profile for each side, runs the rounds, files each run and
hands the paired results to :func:`loadgate.analysis.compare.compare_results`
with ``paired=True``. It prints nothing: progress lines and power plans go to
the callbacks the caller passes; rendering the comparison is the caller's.

How many rounds: unless the caller fixes ``rounds``, a pilot of
``PowerSpec.pilot_rounds`` rounds measures the per-round spread of the paired
difference of the metric to detect (default +1 ms on ``overhead_ms.p99``), and
:func:`loadgate.analysis.power.make_plan` says how many rounds detect that
change at 90 % power under the comparison's own Bonferroni level; the plan is
remade after each later round, capped at ``max_rounds`` (docs/compare.md,
"Power: how many rounds"). Re-planning looks at the spread only, never at the
difference's sign or size, so it does not bias the verdict towards "regression"
(an internal pilot, Wittes & Brittain 1990).

Order: rounds alternate which side goes first (A B, B A, A B, …). Plain
A B A B leaves every B later than its A, so a machine that warms up or slows
down during the session biases B by half a run's worth of drift; swapping the
order every round cancels a linear drift over each pair of rounds, and the
paired test then removes what a round's two runs share.

A round the harness spoilt (a run ``invalid`` by its own figures: send lag, stub
lateness, control floor — :func:`harness_spoilt`) proves nothing about either
side, so both its runs are set aside and the round runs again, up to
:data:`ROUND_RETRIES` times, as one would by hand; what decides is the harness's
figures only, never the gateways' difference, so rerunning cannot steer the
verdict. A round still spoilt after that is kept, and the session exits 3.

Files (the A/B directory, :func:`loadgate.rundir.new_run_dir` with
``kind="ab"``, so ``$LOADGATE_RUNS_DIR`` is honoured, or the caller's):
``a-<i>.json`` / ``b-<i>.json`` (what ``compare --base a-*.json --cand b-*.json``
reads again) and each run's full directory ``a-<i>/`` / ``b-<i>/`` (result,
report, logs, .hlog files), ``power.json``: the plan and the change the
rounds reached, and ``set-aside/``: the spoilt rounds' runs (``a-<i>.<k>.json``).
Runs are written as each ends, so an interrupted session keeps the rounds it
finished.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from loadgate.analysis.compare import Comparison, compare_results
from loadgate.analysis.power import Plan, Target, make_plan, paired_spread, parse_target
from loadgate.errors import UsageError
from loadgate.judge.validity import control_reasons, invalid_reasons
from loadgate.result.io import write_atomic, write_result
from loadgate.result.model import Result
from loadgate.rundir import new_run_dir, write_run_directory

if TYPE_CHECKING:
    from loadgate.pipeline.run import RunOptions
    from loadgate.pipeline.stopping import StopRequest
    from loadgate.profile import Profile

__all__ = [
    "DEFAULT_DETECT",
    "FALLBACK_ROUNDS",
    "ROUND_RETRIES",
    "SET_ASIDE_DIR",
    "AbOutcome",
    "AbSide",
    "PowerSpec",
    "Runner",
    "SideSpec",
    "default_power",
    "harness_spoilt",
    "parse_side",
    "plan_rounds",
    "profile_for_side",
    "result_path",
    "run_ab",
]

#: runs one profile; :func:`loadgate.pipeline.run.run` unless a test passes its own
Runner = Callable[["Profile", "RunOptions"], Result]

#: a run stopped by the user (or cancelled) ends the session: the rounds left would be too
_USER_STOPS = ("SIGINT", "SIGTERM", "cancelled")


@dataclass(frozen=True, slots=True)
class SideSpec:
    """One side of the comparison: an already running gateway, or a command."""

    kind: str  # "target" | "command"
    value: str


def parse_side(spec: str, option: str = "--a") -> SideSpec:
    """``http(s)://…`` is a running gateway (``--target``); anything else a command.

    A command is started per run by the harness (``gateway.kind = "command"``),
    with ``{stub_url}`` and ``{port}`` substituted.
    """
    text = spec.strip()
    if not text:
        raise UsageError(f"{option}: empty; give a gateway URL or a command")
    if text.startswith(("http://", "https://")):
        return SideSpec("target", text)
    if "{stub_url}" not in text and "{port}" not in text:
        raise UsageError(
            f"{option}: {text!r} is neither a URL (http://…) nor a command using "
            "{stub_url} or {port}; a command must be told where the stub listens"
        )
    return SideSpec("command", text)


def plan_rounds(rounds: int) -> list[str]:
    """Run order for ``rounds`` A/B rounds: A B, B A, A B, … (counterbalanced)."""
    if rounds < 1:
        raise UsageError(f"--rounds must be at least 1, got {rounds}")
    order: list[str] = []
    for i in range(rounds):
        order += ["a", "b"] if i % 2 == 0 else ["b", "a"]
    return order


def profile_for_side(profile: Profile, side: SideSpec) -> tuple[Profile, str | None]:
    """(profile to run, ``--target`` URL or None) for one side."""
    if side.kind == "target":
        return profile, side.value
    gateway = profile.gateway.model_copy(update={"kind": "command", "command": side.value})
    return profile.model_copy(update={"gateway": gateway}), None


def result_path(out_dir: Path, side: str, round_index: int) -> Path:
    """``out_dir/a-<i>.json`` / ``b-<i>.json``, rounds counted from 1."""
    return out_dir / f"{side}-{round_index}.json"


@dataclass(frozen=True, slots=True)
class AbSide:
    """One side's runs, round by round, and the files they were written to."""

    results: list[Result]
    paths: list[Path]


@dataclass(frozen=True, slots=True)
class AbOutcome:
    """What ``loadgate ab`` found.

    ``comparison`` is None when no round completed (the session was stopped in
    its first round). ``invalid`` counts the runs kept whose verdict was ``invalid``;
    ``set_aside`` the runs of rounds the harness spoilt, moved under ``set-aside/``
    and run again (at most :data:`ROUND_RETRIES` times a round).
    ``plan``: the last power plan made, the one in force when the session ended
    (None with ``--rounds`` or when none could be made); ``reached``: the same
    calculation over every round run, whose ``mde_ms`` is the change this
    session could detect (None below two rounds).
    """

    out_dir: Path
    a: AbSide
    b: AbSide
    comparison: Comparison | None
    invalid: int
    rounds_planned: int
    stopped: str | None = None
    plan: Plan | None = None
    reached: Plan | None = None
    set_aside: int = 0

    @property
    def rounds_done(self) -> int:
        return min(len(self.a.results), len(self.b.results))

    @property
    def exit_code(self) -> int:
        """3 when a run was invalid or no round completed (no verdict can be trusted),
        else 1 when B is a significant regression over A, else 0."""
        if self.invalid or self.comparison is None:
            return 3
        return self.comparison.exit_code


def _default_runner(profile: Profile, options: RunOptions) -> Result:
    from loadgate.pipeline.run import run

    return run(profile, options)


@dataclass(frozen=True, slots=True)
class PowerSpec:
    """What ``ab`` plans its rounds for: detect ``target`` with probability ``power``.

    The first ``pilot_rounds`` rounds measure the spread; the plan is made then and
    remade after every later round (more rounds, a better variance), never beyond
    ``max_rounds``.
    """

    target: Target
    power: float = 0.9
    pilot_rounds: int = 3
    max_rounds: int = 20


#: the change ``ab`` plans for by default: the issue's +1 ms at overhead p99
DEFAULT_DETECT = ("overhead_ms.p99", "1ms")
#: rounds run when no plan can be made (the target's histogram is missing or untestable)
FALLBACK_ROUNDS = 5
#: a round whose run the harness spoilt runs again this many times at most
ROUND_RETRIES = 2
#: where the spoilt rounds' files go (outside the a-*.json / b-*.json globs)
SET_ASIDE_DIR = "set-aside"


def default_power() -> PowerSpec:
    return PowerSpec(parse_target(*DEFAULT_DETECT))


def _plan(
    done: dict[str, AbSide],
    spec: PowerSpec,
    profile: Profile,
    threshold_pct: float,
    n: int,
    comparison: Comparison | None = None,
) -> tuple[Plan | None, str]:
    """The plan from the first ``n`` rounds (``comparison``: theirs, if made), or None and why."""
    bases, cands = done["a"].results[:n], done["b"].results[:n]
    spread = paired_spread(bases, cands, spec.target)
    if spread is None:
        return None, f"no {spec.target.name} in every run"
    c = comparison or compare_results(bases, cands, threshold_pct, paired=True)
    row = next((r for r in c.rows if (r.mode, r.name) == _row_key(spec.target)), None)
    if row is None or not row.gating:
        return None, (row.note if row is not None and row.note else f"{spec.target.name} untested")
    plan = make_plan(
        spread,
        spec.target,
        tests=c.tests,
        duration_s=profile.load.duration_s,
        confidence=c.confidence,
        power=spec.power,
        threshold_pct=threshold_pct,
        min_rounds=spec.pilot_rounds,
        max_rounds=spec.max_rounds,
    )
    return plan, ""


def _row_key(target: Target) -> tuple[str, str]:
    name = target.name
    return (target.mode, name if target.mode == "all" else name.split(".", 1)[1])


def run_ab(
    profile: Profile,
    a: SideSpec,
    b: SideSpec,
    rounds: int | None = None,
    *,
    power: PowerSpec | None = None,
    threshold_pct: float = 5.0,
    out_dir: Path | None = None,
    on_progress: Callable[[str], None] | None = None,
    on_plan: Callable[[Plan, bool], None] | None = None,
    runner: Runner | None = None,
    stop: StopRequest | None = None,
) -> AbOutcome:
    """Run interleaved rounds of A and B; compare A (base) with B (candidate).

    ``rounds`` None: as many as the power plan says (``power``, default
    :func:`default_power`): the pilot rounds run, then :func:`make_plan` decides,
    after every round, how many are needed; ``on_plan(plan, first)`` hears each plan
    that changes the count. ``rounds`` given: exactly that many. Either way the
    outcome says the change the rounds run can detect (``reached``), and
    ``power.json`` in the A/B directory holds both plans.

    ``out_dir`` None: a fresh ``ab-<profile>-…`` directory under ``$LOADGATE_RUNS_DIR``.
    A run stopped by the user (SIGINT/SIGTERM) ends the session; the comparison
    then covers the rounds that completed.
    """
    from loadgate.pipeline.run import RunOptions

    spec = power or default_power()
    if rounds is None and not 2 <= spec.pilot_rounds <= spec.max_rounds:
        raise UsageError(
            f"--pilot-rounds must be at least 2 and at most --max-rounds "
            f"(got {spec.pilot_rounds}, {spec.max_rounds})"
        )
    run_one = runner or _default_runner
    say = on_progress or (lambda _line: None)
    heard = on_plan or (lambda _plan, _first: None)
    target = rounds if rounds is not None else spec.pilot_rounds
    plan_rounds(target)  # validates
    out_dir = out_dir if out_dir is not None else new_run_dir(profile.name, kind="ab")
    out_dir.mkdir(parents=True, exist_ok=True)
    sides = {"a": a, "b": b}
    done: dict[str, AbSide] = {"a": AbSide([], []), "b": AbSide([], [])}
    invalid = 0
    stopped: str | None = None
    plan: Plan | None = None
    set_aside = 0
    i = 0
    decided = rounds is not None
    while i < target and stopped is None:
        i += 1
        label = f"{i}/{target}" if decided else f"{i} (pilot)"
        kept: dict[str, tuple[Result, Path]] = {}
        for attempt in range(ROUND_RETRIES + 1):
            kept = {}
            for side in plan_rounds(i)[-2:]:  # round i's order: A B or B A
                prof, url = profile_for_side(profile, sides[side])
                path = result_path(out_dir, side, i)
                say(f"ab: round {label}, {side.upper()} → {path}")
                run_dir = out_dir / path.stem
                res = run_one(prof, RunOptions(target=url, run_dir=run_dir, stop=stop))
                for warning in write_run_directory(res, run_dir):
                    say(f"ab: warning: {warning}")
                write_result(res, path)
                kept[side] = (res, path)
                if res.interrupted in _USER_STOPS:
                    stopped = f"{res.interrupted} in round {i} ({side.upper()})"
                    break
            spoilt = {s: why for s, (r, _) in kept.items() if (why := harness_spoilt(r, profile))}
            if stopped is not None or not spoilt or attempt == ROUND_RETRIES:
                break
            for _res, path in kept.values():
                _set_aside(out_dir, path, attempt + 1)
            set_aside += len(kept)
            first = next(iter(spoilt.items()))
            say(
                f"ab: round {i}: {'/'.join(s.upper() for s in spoilt)} invalid by the harness "
                f"({first[1]}): both runs set aside, the round runs again "
                f"({attempt + 1}/{ROUND_RETRIES})"
            )
        for side, (res, path) in kept.items():
            invalid += res.verdict == "invalid"
            done[side].results.append(res)
            done[side].paths.append(path)
        if rounds is None and stopped is None and i >= spec.pilot_rounds:
            new, why = _plan(done, spec, profile, threshold_pct, i)
            if new is None:
                if not decided:
                    say(f"ab: no power plan ({why}): running {FALLBACK_ROUNDS} rounds")
                    target, decided = max(FALLBACK_ROUNDS, i), True
                continue
            if plan is None or new.rounds != plan.rounds:
                heard(new, plan is None)
            plan, target, decided = new, max(new.rounds, i), True

    n = min(len(done["a"].results), len(done["b"].results))
    comparison = None
    reached: Plan | None = None
    if n:
        comparison = compare_results(
            done["a"].results[:n],
            done["b"].results[:n],
            threshold_pct,
            labels=([str(p) for p in done["a"].paths[:n]], [str(p) for p in done["b"].paths[:n]]),
            paired=True,
        )
        if n >= 2:
            reached, _ = _plan(done, replace(spec, pilot_rounds=2, max_rounds=max(n, 2)),
                               profile, threshold_pct, n, comparison)  # fmt: skip
    planned = target if rounds is None else rounds
    _write_power(out_dir, plan, reached)
    return AbOutcome(out_dir, done["a"], done["b"], comparison, invalid, planned, stopped,
                     plan, reached, set_aside)  # fmt: skip


def harness_spoilt(result: Result, profile: Profile) -> str:
    """The first reason the harness spoilt this run (its figures past their limits), or "".

    Only those: a run interrupted by the user ends the session, and a gate left
    undecided by the harness's noise is the gateway's figure near its threshold —
    rerunning until it moved away would pick the answer.
    """
    if result.interrupted is not None:
        return ""
    h, limits = result.harness, profile.harness
    reasons = invalid_reasons(h, limits) + control_reasons(result.gates, h, limits)
    return reasons[0].split(":")[0] if reasons else ""


def _set_aside(out_dir: Path, path: Path, attempt: int) -> None:
    """Move a spoilt round's result and run directory under ``set-aside/``."""
    aside = out_dir / SET_ASIDE_DIR
    aside.mkdir(exist_ok=True)
    path.rename(aside / f"{path.stem}.{attempt}.json")
    run_dir = out_dir / path.stem
    if run_dir.is_dir():
        run_dir.rename(aside / f"{path.stem}.{attempt}")


def _write_power(out_dir: Path, plan: Plan | None, reached: Plan | None) -> None:
    doc = {
        "schema": "loadgate.ab-power/1",
        "plan": plan.to_dict() if plan is not None else None,
        "reached": reached.to_dict() if reached is not None else None,
    }
    write_atomic(out_dir / "power.json", json.dumps(doc, indent=2) + "\n")
