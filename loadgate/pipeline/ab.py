"""Interleaved A/B runs of one profile against two gateway builds (issue 5).

This module owns ``loadgate ab``'s core, :func:`run_ab`: it plans the run
order, rewrites the profile for each side, runs the rounds, files each run and
hands the paired results to :func:`loadgate.analysis.compare.compare_results`
with ``paired=True``. It prints nothing: progress lines go to the callback the
caller passes; rendering the comparison is the caller's.

Order: rounds alternate which side goes first (A B, B A, A B, …). Plain
A B A B leaves every B later than its A, so a machine that warms up or slows
down during the session biases B by half a run's worth of drift; swapping the
order every round cancels a linear drift over each pair of rounds, and the
paired test then removes what a round's two runs share.

Files (the A/B directory, :func:`loadgate.rundir.new_run_dir` with
``kind="ab"``, so ``$LOADGATE_RUNS_DIR`` is honoured, or the caller's):
``a-<i>.json`` / ``b-<i>.json`` (what ``compare --base a-*.json --cand b-*.json``
reads again) and each run's full directory ``a-<i>/`` / ``b-<i>/`` (result,
report, logs, .hlog files). They are written as each run ends, so an
interrupted session keeps the rounds it finished.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from loadgate.analysis.compare import Comparison, compare_results
from loadgate.errors import UsageError
from loadgate.result.io import write_result
from loadgate.result.model import Result
from loadgate.rundir import new_run_dir, write_run_directory

if TYPE_CHECKING:
    from loadgate.pipeline.run import RunOptions
    from loadgate.pipeline.stopping import StopRequest
    from loadgate.profile import Profile

__all__ = [
    "AbOutcome",
    "AbSide",
    "Runner",
    "SideSpec",
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
    its first round). ``invalid`` counts runs whose verdict was ``invalid``.
    """

    out_dir: Path
    a: AbSide
    b: AbSide
    comparison: Comparison | None
    invalid: int
    rounds_planned: int
    stopped: str | None = None

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


def run_ab(
    profile: Profile,
    a: SideSpec,
    b: SideSpec,
    rounds: int = 5,
    *,
    threshold_pct: float = 5.0,
    out_dir: Path | None = None,
    on_progress: Callable[[str], None] | None = None,
    runner: Runner | None = None,
    stop: StopRequest | None = None,
) -> AbOutcome:
    """Run ``rounds`` interleaved rounds of A and B; compare A (base) with B (candidate).

    ``out_dir`` None: a fresh ``ab-<profile>-…`` directory under ``$LOADGATE_RUNS_DIR``.
    A run stopped by the user (SIGINT/SIGTERM) ends the session; the comparison
    then covers the rounds that completed.
    """
    from loadgate.pipeline.run import RunOptions

    run_one = runner or _default_runner
    say = on_progress or (lambda _line: None)
    plan = plan_rounds(rounds)
    out_dir = out_dir if out_dir is not None else new_run_dir(profile.name, kind="ab")
    out_dir.mkdir(parents=True, exist_ok=True)
    sides = {"a": a, "b": b}
    done: dict[str, AbSide] = {"a": AbSide([], []), "b": AbSide([], [])}
    invalid = 0
    stopped: str | None = None
    for step, side in enumerate(plan):
        i = step // 2 + 1
        prof, target = profile_for_side(profile, sides[side])
        path = result_path(out_dir, side, i)
        say(f"ab: round {i}/{rounds}, {side.upper()} → {path}")
        run_dir = out_dir / path.stem
        res = run_one(prof, RunOptions(target=target, run_dir=run_dir, stop=stop))
        for warning in write_run_directory(res, run_dir):
            say(f"ab: warning: {warning}")
        write_result(res, path)
        invalid += res.verdict == "invalid"
        done[side].results.append(res)
        done[side].paths.append(path)
        if res.interrupted in _USER_STOPS:
            stopped = f"{res.interrupted} in round {i} ({side.upper()})"
            break

    n = min(len(done["a"].results), len(done["b"].results))
    comparison = None
    if n:
        comparison = compare_results(
            done["a"].results[:n],
            done["b"].results[:n],
            threshold_pct,
            labels=([str(p) for p in done["a"].paths[:n]], [str(p) for p in done["b"].paths[:n]]),
            paired=True,
        )
    return AbOutcome(out_dir, done["a"], done["b"], comparison, invalid, rounds, stopped)
