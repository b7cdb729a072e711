"""Interleaved A/B runs of one profile against two gateway builds (issue 5).

This module owns ``loadgate ab``: it plans the run order, rewrites the profile
for each side, runs the rounds and hands the paired results to
:func:`loadgate.analysis.compare.compare_results` with ``paired=True``.

Order: rounds alternate which side goes first (A B, B A, A B, …). Plain
A B A B leaves every B later than its A, so a machine that warms up or slows
down during the session biases B by half a run's worth of drift; swapping the
order every round cancels a linear drift over each pair of rounds, and the
paired test then removes what a round's two runs share.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadgate.errors import UsageError

if TYPE_CHECKING:
    from loadgate.profile import Profile

__all__ = ["SideSpec", "main", "parse_side", "plan_rounds", "profile_for_side", "result_path"]


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


def _default_out_dir(profile_name: str) -> Path:
    from datetime import UTC, datetime

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path("runs") / f"ab-{profile_name}-{stamp}"


def main(
    profile_ref: str,
    a: str,
    b: str,
    rounds: int,
    sets: list[str],
    out_dir: Path | None,
    threshold_pct: float = 5.0,
    fmt: str = "table",
) -> int:
    """``loadgate ab``: run the rounds, compare A (base) with B (candidate).

    Exit code: 3 when a run was invalid (the harness, not the gateway, was the
    bottleneck, so no verdict can be trusted), else 1 when B is a significant
    regression over A, else 0.
    """
    from loadgate.analysis.compare import compare_results, render
    from loadgate.pipeline.run import RunOptions, run
    from loadgate.profile import load_profile
    from loadgate.result import write_result
    from loadgate.result.legacy import as_dict
    from loadgate.rundir import new_run_dir, write_run_directory

    profile = load_profile(profile_ref, sets)
    sides = {"a": parse_side(a, "--a"), "b": parse_side(b, "--b")}
    plan = plan_rounds(rounds)
    out_dir = out_dir or _default_out_dir(profile.name)
    out_dir.mkdir(parents=True, exist_ok=True)

    results: dict[str, list[dict[str, Any]]] = {"a": [], "b": []}
    paths: dict[str, list[str]] = {"a": [], "b": []}
    invalid = 0
    for step, side in enumerate(plan):
        i = step // 2 + 1
        prof, target = profile_for_side(profile, sides[side])
        path = result_path(out_dir, side, i)
        print(f"ab: round {i}/{rounds}, {side.upper()} → {path}", file=sys.stderr)
        run_dir = new_run_dir(prof.name, out=path)
        res = run(prof, RunOptions(target=target, run_dir=run_dir))
        write_run_directory(res, run_dir)
        write_result(res, path)
        data = as_dict(res)
        if data.get("verdict") == "invalid":
            invalid += 1
        results[side].append(data)
        paths[side].append(str(path))

    c = compare_results(
        results["a"],
        results["b"],
        threshold_pct,
        labels=(paths["a"], paths["b"]),
        paired=True,
    )
    sys.stdout.write(render(c, fmt))
    if invalid:
        print(
            f"ab: {invalid} run(s) invalid: the verdict above is not trustworthy", file=sys.stderr
        )
        return 3
    return c.exit_code
