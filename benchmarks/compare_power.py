"""How often does ``loadgate ab`` cry wolf, and how often does it catch a wolf?

Each trial is one ``loadgate ab`` session, run by ab's own core
(:func:`loadgate.pipeline.ab.run_ab`, with every setting the CLI leaves at its
default: rounds, threshold, paired comparison, exit code), on this machine,
with the bundled reference gateway started as each side's command:

* an **A/A** trial (``--kind aa``): both sides ``python -m reference_gateway``;
  a false alarm is ab exiting 1 (target ≤ 5 %);
* a **+1 ms** trial (``--kind ab``): side B adds ``--delay-ms 1``; detected is
  the all-modes ``overhead_ms.p99`` row saying "regression" (target ≥ 90 %),
  and separately ab exiting 1 (any gating row, p50 included).

Each trial appends one JSON line to ``<out-dir>/trials.jsonl`` (ab's exit
code, the p99 row, the per-round p99 differences, the rounds ab planned and
ran, its power plan when it made one), so trials can be run one at a time and
summed later. ``run`` takes the benchmark lock (``--lock``, default
/work/bench.lock when it exists) around each trial only, so other users of the
machine get it between trials; every run is bounded (the profile's duration,
set here) and so is the number of trials.

    python benchmarks/compare_power.py run --trials 4            # alternating aa, ab
    python benchmarks/compare_power.py run --trials 1 --kind ab  # one +1 ms trial
    python benchmarks/compare_power.py summary                   # the table so far
    python benchmarks/compare_power.py replay    # ab's power plan on fixed-round trials

``replay`` feeds trials recorded with fixed rounds (before ab planned its rounds, it
ran 5) back through ab's core at today's defaults; a plan asking for more rounds than
were recorded is counted as such, never guessed.

Figures: benchmarks/README.md, "Regression detection".
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from loadgate.pipeline.ab import AbOutcome, parse_side, run_ab  # noqa: E402
from loadgate.pipeline.run import RunOptions  # noqa: E402
from loadgate.profile import Profile, load_profile  # noqa: E402
from loadgate.result import Result, load_run_result  # noqa: E402

P99 = "overhead_ms.p99"
DEFAULT_LOCK = Path("/work/bench.lock")


@contextlib.contextmanager
def bench_lock(path: Path | None) -> Iterator[None]:
    """Hold ``flock(path)`` for one trial (as ``flock /work/bench.lock …`` would)."""
    if path is None:
        yield
        return
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def gateway_command(delay_ms: float) -> str:
    cmd = f"{sys.executable} -m reference_gateway --upstream {{stub_url}} --port {{port}}"
    return cmd + (f" --delay-ms {delay_ms:g}" if delay_ms else "")


def per_round_p99(outcome: AbOutcome) -> list[float]:
    """cand − base overhead p99 (ms) of each completed round, from the results."""
    out = []
    for ra, rb in zip(outcome.a.results, outcome.b.results, strict=False):
        ma, mb = ra.metrics.get("overhead_ms"), rb.metrics.get("overhead_ms")
        if ma is not None and mb is not None and ma.p99 is not None and mb.p99 is not None:
            out.append(round(mb.p99 - ma.p99, 4))
    return out


def trial(args: argparse.Namespace, kind: str, index: int) -> dict[str, Any]:
    sets = [
        "stub.port=0",
        f"load.duration={args.duration}",
        f"load.warmup={args.warmup}",
        *args.set,
    ]
    profile = load_profile(args.profile, sets)
    a = parse_side(gateway_command(0.0), "--a")
    b = parse_side(gateway_command(args.delay_ms if kind == "ab" else 0.0), "--b")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    out_dir = args.out_dir / f"{kind}-{stamp}-{index}"
    t0 = time.monotonic()
    # Exactly what `loadgate ab` runs with its defaults: only the sides and out_dir given
    # (and --rounds when asked, to measure a fixed count such as the former default 5).
    outcome = run_ab(profile, a, b, args.rounds, out_dir=out_dir, on_progress=None)
    wall = time.monotonic() - t0
    c = outcome.comparison
    row = None
    if c is not None:
        row = next((r for r in c.rows if r.name == P99 and r.mode == "all"), None)
    plan = outcome.plan
    rec: dict[str, Any] = {
        "kind": kind,
        "delay_ms": args.delay_ms if kind == "ab" else 0.0,
        "profile": args.profile,
        "duration": args.duration,
        "warmup": args.warmup,
        "exit_code": outcome.exit_code,
        "compare_exit_code": c.exit_code if c is not None else None,
        "rounds_fixed": args.rounds,
        "rounds_planned": outcome.rounds_planned,
        "rounds_done": outcome.rounds_done,
        "invalid_runs": outcome.invalid,
        "set_aside": outcome.set_aside,
        "tests": c.tests if c is not None else None,
        "p99_verdict": row.verdict if row else None,
        "p99_change": row.change if row else None,
        "p99_ci": [row.ci_low, row.ci_high] if row else None,
        "p99_round_diffs": per_round_p99(outcome),
        "gating_flagged": [f"{r.name}/{r.mode}" for r in c.regressions] if c else [],
        "plan": plan.to_dict() if plan is not None else None,
        "reached": outcome.reached.to_dict() if outcome.reached is not None else None,
        "wall_s": round(wall, 1),
        "at": stamp,
        "out_dir": str(out_dir),
    }
    return rec


def cmd_run(args: argparse.Namespace) -> int:
    args.out_dir.mkdir(parents=True, exist_ok=True)
    lock = None if args.no_lock else args.lock
    if lock is not None and not lock.exists():
        lock = None
    log = args.out_dir / "trials.jsonl"
    kinds = [args.kind] * args.trials if args.kind else ["aa", "ab"] * ((args.trials + 1) // 2)
    for i, kind in enumerate(kinds[: args.trials]):
        with bench_lock(lock):
            rec = trial(args, kind, i)
        with log.open("a") as fh:
            fh.write(json.dumps(rec) + "\n")
        if lock is not None and i + 1 < args.trials:
            # flock is not fair: a process that relocks at once can starve the others
            # waiting for the machine, so give them the lock between trials.
            time.sleep(args.pause)
        ci = rec["p99_ci"] or [None, None]
        print(
            f"{kind}: exit {rec['exit_code']}, {rec['rounds_done']}/{rec['rounds_planned']} "
            f"rounds, p99 {rec['p99_verdict']} {rec['p99_change']} [{ci[0]}, {ci[1]}] ms, "
            f"invalid runs {rec['invalid_runs']}, {rec['wall_s']} s",
            flush=True,
        )
    return 0


def _rate(k: int, n: int) -> str:
    return f"{k}/{n} = {k / n:.0%}" if n else "—"


def _mean(values: list[float | None]) -> float | None:
    xs = [v for v in values if v is not None]
    return round(statistics.fmean(xs), 4) if xs else None


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 4) if values else None


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    aa = [r for r in records if r["kind"] == "aa"]
    ab = [r for r in records if r["kind"] == "ab"]

    def sds(rs: list[dict[str, Any]]) -> list[float]:
        return [statistics.stdev(r["p99_round_diffs"]) for r in rs if len(r["p99_round_diffs"]) > 1]

    out: dict[str, Any] = {
        "aa_trials": len(aa),
        "aa_exit1": sum(r["exit_code"] == 1 for r in aa),
        "aa_exit3": sum(r["exit_code"] == 3 for r in aa),
        # The comparison's own verdict (exit 1 = a regression), whatever the runs'
        # validity: ab's exit 3 for an invalid run would otherwise hide a false alarm.
        "aa_compare_exit1": sum(r.get("compare_exit_code") == 1 for r in aa),
        "aa_p99_flagged": sum(r["p99_verdict"] == "regression" for r in aa),
        "ab_trials": len(ab),
        "ab_p99_regression": sum(r["p99_verdict"] == "regression" for r in ab),
        "ab_exit1": sum(r["exit_code"] == 1 for r in ab),
        "ab_exit3": sum(r["exit_code"] == 3 for r in ab),
        "ab_compare_exit1": sum(r.get("compare_exit_code") == 1 for r in ab),
        "ab_p99_change_mean": _mean([r["p99_change"] for r in ab]),
        "ab_ci_covers": sum(
            r["p99_ci"] is not None
            and None not in r["p99_ci"]
            and r["p99_ci"][0] <= r["delay_ms"] <= r["p99_ci"][1]
            for r in ab
        ),
        "rounds_done": sorted(r["rounds_done"] for r in records),
        "reached_mde_ms_median": _median(
            [r["reached"]["mde_ms"] for r in records if r.get("reached")]
        ),
        "planned_rounds_needed": sorted(
            r["plan"]["needed"] for r in records if r.get("plan") and r["plan"]["needed"]
        ),
        "aa_round_diff_sd_median": _median(sds(aa)),
        "ab_round_diff_sd_median": _median(sds(ab)),
        "round_diff_sd_max": round(max(sds(records)), 4) if sds(records) else None,
        "invalid_runs": sum(r["invalid_runs"] for r in records),
        "runs": sum(2 * r["rounds_done"] for r in records),
        "invalid_runs_today": sum(v for r in records if (v := rejudged_invalid(r)) is not None),
        "wall_s_median": statistics.median(r["wall_s"] for r in records) if records else None,
    }
    return out


def rejudged_invalid(rec: dict[str, Any]) -> int | None:
    """Runs of a recorded trial that today's rules call ``invalid`` (None: files gone).

    The verdict is a pure function of a result and its profile
    (:func:`loadgate.judge.verdict.judge`), so trials recorded under older rules can
    be judged again without rerunning them.
    """
    from loadgate.judge.verdict import judge

    paths = sorted(Path(rec["out_dir"]).glob("[ab]-*.json"))
    if not paths:
        return None
    sets = [f"load.duration={rec['duration']}", f"load.warmup={rec['warmup']}"]
    profile = load_profile(rec["profile"], sets)
    invalid = 0
    for path in paths:
        res = load_run_result(path)
        res.harness.warnings = []
        verdict, _ = judge(res, profile.harness, profile.gates,
                           stop_reason=res.interrupted, gateway_died_with=None)  # fmt: skip
        invalid += verdict.verdict == "invalid"
    return invalid


class _Unrecorded(Exception):
    """The replayed session asked for a round the recorded trial did not run."""


def replay(rec: dict[str, Any]) -> dict[str, Any]:
    """Re-run ab's core (default settings: the power plan) on a recorded trial's results.

    The runner hands back the recorded run for each ``a-<i>`` / ``b-<i>`` ab asks
    for, so the rounds, plan and verdict are exactly what a planned session would
    have produced had the machine given it those runs; a plan that wants more
    rounds than were recorded is reported as such ("beyond").
    """
    src = Path(rec["out_dir"])
    recorded = {p.stem: p for p in src.glob("[ab]-*.json")}
    plans: list[Any] = []

    def runner(_profile: Profile, options: RunOptions) -> Result:
        assert options.run_dir is not None
        path = recorded.get(options.run_dir.name)
        if path is None:
            raise _Unrecorded(options.run_dir.name)
        return load_run_result(path)

    profile = load_profile(rec["profile"], [f"load.duration={rec['duration']}"])
    side = parse_side(gateway_command(0.0))
    out = {"kind": rec["kind"], "source": str(src), "recorded_rounds": rec["rounds_done"]}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            outcome = run_ab(profile, side, side, out_dir=Path(tmp), runner=runner,
                             on_plan=lambda plan, _first: plans.append(plan))  # fmt: skip
        except _Unrecorded:
            last = plans[-1]
            return {**out, "beyond": True, "rounds_needed": last.needed, "rounds": last.rounds}
    c = outcome.comparison
    row = next((r for r in c.rows if r.name == P99 and r.mode == "all"), None) if c else None
    return {
        **out,
        "beyond": False,
        "exit_code": outcome.exit_code,
        "rounds_done": outcome.rounds_done,
        "rounds_needed": outcome.plan.needed if outcome.plan else None,
        "first_plan": plans[0].rounds if plans else None,
        "p99_verdict": row.verdict if row else None,
        "p99_ci": [row.ci_low, row.ci_high] if row else None,
        "mde_ms": outcome.reached.mde_ms if outcome.reached else None,
    }


def cmd_replay(args: argparse.Namespace) -> int:
    log = args.out_dir / "trials.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    records = [r for r in records if r["at"] >= args.since and r.get("plan") is None]
    records = [r for r in records if r.get("rounds_fixed", 5) is not None]
    out = [replay(r) for r in records]
    for r in out:
        print(json.dumps(r))
    for kind in ("aa", "ab"):
        rs = [r for r in out if r["kind"] == kind]
        done = [r for r in rs if not r["beyond"]]
        print(
            f"{kind}: {len(rs)} replayed, {len(rs) - len(done)} wanted more rounds than recorded; "
            f"of the rest: exit 1 in {sum(r['exit_code'] == 1 for r in done)}, p99 regression "
            f"in {sum(r['p99_verdict'] == 'regression' for r in done)}; rounds "
            f"{sorted(r['rounds_done'] for r in done)}"
        )
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    log = args.out_dir / "trials.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    if args.since:
        records = [r for r in records if r["at"] >= args.since]
    s = summarise(records)
    print(json.dumps(s, indent=2))
    na, nb = s["aa_trials"], s["ab_trials"]
    print(f"A/A false alarms (ab exit 1):       {_rate(s['aa_exit1'], na)}  (target ≤ 5 %)")
    print(f"A/A compare says regression:        {_rate(s['aa_compare_exit1'], na)}  (any row)")
    print(f"A/A invalid (ab exit 3):            {_rate(s['aa_exit3'], na)}")
    print(f"+1 ms detected (p99 row regression): {_rate(s['ab_p99_regression'], nb)}  (≥ 90 %)")
    print(f"+1 ms: ab exit 1 (any gating row):   {_rate(s['ab_exit1'], nb)}")
    print(f"+1 ms: compare says regression:      {_rate(s['ab_compare_exit1'], nb)}  (any row)")
    print(f"+1 ms: ab exit 3 (a run invalid):    {_rate(s['ab_exit3'], nb)}")
    print(
        f"per-round p99 difference sd, median: A/A {s['aa_round_diff_sd_median']} ms, "
        f"+1 ms {s['ab_round_diff_sd_median']} ms; largest {s['round_diff_sd_max']} ms"
    )
    print(
        f"invalid runs: {s['invalid_runs']} of {s['runs']} as recorded, "
        f"{s['invalid_runs_today']} under today's rules (judged again from the files)"
    )
    n = min(na, nb) or 1
    if n < 20:
        print(f"note: {n} trials resolve rates only to ±{math.ceil(100 / n)} points")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run trials (each one `loadgate ab` session)")
    run.add_argument("--trials", type=int, default=2)
    run.add_argument("--kind", choices=("aa", "ab"), default=None, help="default: alternate")
    run.add_argument("--profile", default="phase2-gate")
    run.add_argument("--duration", default="10s")
    run.add_argument("--warmup", default="3s")
    run.add_argument("--delay-ms", type=float, default=1.0)
    run.add_argument("--rounds", type=int, default=None, help="fixed rounds (default: ab's)")
    run.add_argument("--pause", type=float, default=15.0, help="s without the lock between")
    run.add_argument("--set", action="append", default=[], help="extra profile override")
    run.add_argument("--lock", type=Path, default=DEFAULT_LOCK)
    run.add_argument("--no-lock", action="store_true")
    summ = sub.add_parser("summary", help="sum up trials.jsonl")
    rep = sub.add_parser("replay", help="ab's power plan replayed on fixed-round trials")
    for p in (summ, rep):
        p.add_argument("--since", default="", help="only trials at or after this UTC stamp")
    for p in (run, summ, rep):
        p.add_argument(
            "--out-dir", type=Path, default=REPO / "benchmarks" / "out" / "compare_power"
        )
    args = ap.parse_args()
    if args.cmd == "run":
        if not 1 <= args.trials <= 40:
            ap.error("--trials must be in 1..40")
        return cmd_run(args)
    return cmd_replay(args) if args.cmd == "replay" else cmd_summary(args)


if __name__ == "__main__":
    raise SystemExit(main())
