"""How often does ``loadgate compare`` cry wolf, and how often does it catch a wolf?

Measures, on this machine, with the bundled reference gateway:

* the **false-alarm rate** of A/A comparisons (same gateway, same settings):
  how often ``compare`` exits 1 (target ≤ 5 %), and how often it reports any
  significant change at all;
* the **detection rate** of a +1 ms overhead regression made by the reference
  gateway's own ``gateway.reference.delay_ms`` (target ≥ 90 %): how often the
  all-modes ``overhead_ms.p99`` row says "regression", and how often compare
  exits 1; plus the mean estimated p99 change and how often its interval holds
  the true +1 ms.

Each trial runs A (delay 0), B (delay +1 ms) and A' (delay 0), interleaved, with
``--runs-per-side`` runs each; A vs A' is the A/A trial and A vs B the
detection trial. Every run is bounded (``--duration``), and so is the number of
runs (3 × trials × runs-per-side). Needs ``python -m loadgate run`` to work.

    python benchmarks/compare_power.py --trials 10 --duration 10s
    python benchmarks/compare_power.py --trials 6 --runs-per-side 3 --paired

Figures go to stdout and ``<out-dir>/summary.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from loadgate.analysis.compare import REGRESSION, Comparison, compare_results  # noqa: E402
from loadgate.result import Result, load_run_result  # noqa: E402

P99 = "overhead_ms.p99"


# smoke relaxes the harness limits (it gates correctness only, on busy CI runners); a
# comparison of latencies needs the real ones, so the runs here use the defaults.
STRICT_HARNESS = (
    "harness.max_loop_lag_p99_ms=5",
    "harness.max_stub_lateness_p99_ms=5",
    "harness.max_cpu_percent=95",
)


def run_valid(args: argparse.Namespace, delay_ms: float, out: Path) -> tuple[Result, int]:
    """Run until the harness calls the run valid (as a CI job reruns an invalid gate),
    at most ``1 + --retries`` times; returns the last result and how many were invalid."""
    invalid = 0
    for _ in range(1 + args.retries):
        data = run_once(args, delay_ms, out)
        if data.verdict != "invalid":
            break
        invalid += 1
    return data, invalid


def run_once(args: argparse.Namespace, delay_ms: float, out: Path) -> Result:
    cmd = [
        sys.executable, "-m", "loadgate", "run", args.profile,
        "--set", "stub.port=0",
        "--set", f"load.duration={args.duration}",
        "--set", f"load.warmup={args.warmup}",
        "--set", f"gateway.reference.delay_ms={delay_ms}",
        "--out", str(out),
    ]  # fmt: skip
    for s in STRICT_HARNESS:
        cmd += ["--set", s]
    for s in args.set:
        cmd += ["--set", s]
    t0 = time.monotonic()
    proc = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=args.run_timeout, check=False
    )
    if proc.returncode not in (0, 1, 3) or not out.exists():
        sys.exit(f"run failed (exit {proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    data = load_run_result(out)
    overhead = data.metrics.get("overhead_ms")
    p99 = overhead.p99 if overhead is not None else None
    print(
        f"  {out.name}: delay {delay_ms} ms, exit {proc.returncode}, verdict "
        f"{data.verdict}, overhead p99 {p99} ms, {time.monotonic() - t0:.1f} s",
        flush=True,
    )
    return data


def p99_row(c: Comparison) -> Any:
    rows = [r for r in c.rows if r.name == P99 and r.mode == "all"]
    return rows[0] if rows else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--runs-per-side", type=int, default=1)
    ap.add_argument("--duration", default="10s")
    ap.add_argument("--warmup", default="2s")
    ap.add_argument("--delay-ms", type=float, default=1.0)
    ap.add_argument("--threshold", type=float, default=5.0)
    ap.add_argument("--paired", action="store_true", help="paired test (as loadgate ab)")
    ap.add_argument("--set", action="append", default=[], help="extra profile override")
    ap.add_argument("--run-timeout", type=float, default=300.0)
    ap.add_argument("--retries", type=int, default=2, help="reruns of an invalid run")
    ap.add_argument("--out-dir", type=Path, default=REPO / "benchmarks" / "out" / "compare_power")
    args = ap.parse_args()
    if args.trials < 1 or args.runs_per_side < 1:
        ap.error("--trials and --runs-per-side must be at least 1")
    args.out_dir.mkdir(parents=True, exist_ok=True)

    k = args.runs_per_side
    aa_exit = aa_any = det_row = det_exit = covered = invalid = still_invalid = 0
    changes: list[float] = []
    t_start = time.monotonic()
    for t in range(args.trials):
        print(f"trial {t + 1}/{args.trials}", flush=True)
        sides: dict[str, list[Result]] = {"a": [], "b": [], "a2": []}
        for j in range(k):
            # Interleaved so that drift during the trial hits all three sides.
            for side, delay in (("a", 0.0), ("b", args.delay_ms), ("a2", 0.0)):
                data, bad = run_valid(args, delay, args.out_dir / f"t{t}-{side}-{j}.json")
                invalid += bad
                still_invalid += data.verdict == "invalid"
                sides[side].append(data)
        paired = args.paired and k > 1
        aa = compare_results(sides["a"], sides["a2"], args.threshold, paired=paired)
        ab = compare_results(sides["a"], sides["b"], args.threshold, paired=paired)
        aa_exit += aa.exit_code
        aa_any += any(r.verdict in ("regression", "improvement") for r in aa.rows if r.gating)
        det_exit += ab.exit_code
        row = p99_row(ab)
        if row is not None:
            det_row += row.verdict == REGRESSION
            if row.change is not None:
                changes.append(row.change)
            if row.ci_low is not None and row.ci_high is not None:
                covered += row.ci_low <= args.delay_ms <= row.ci_high
        print(
            f"  A/A: {aa.verdict} (exit {aa.exit_code}); "
            f"A/B: {ab.verdict} (exit {ab.exit_code}), p99 row: "
            f"{row.verdict if row else 'absent'} "
            f"{'' if row is None or row.change is None else f'{row.change:+.3f} ms'}",
            flush=True,
        )

    n = args.trials
    summary = {
        "profile": args.profile,
        "trials": n,
        "runs_per_side": k,
        "duration": args.duration,
        "delay_ms": args.delay_ms,
        "threshold_pct": args.threshold,
        "paired": args.paired and k > 1,
        "aa_false_alarm_rate": aa_exit / n,
        "aa_any_significant_rate": aa_any / n,
        "detection_rate_p99_row": det_row / n,
        "detection_rate_exit_code": det_exit / n,
        "p99_change_mean_ms": statistics.fmean(changes) if changes else None,
        "p99_ci_covers_true_shift": covered / n,
        "invalid_runs_rerun": invalid,
        "invalid_runs_kept": still_invalid,
        "wall_s": round(time.monotonic() - t_start, 1),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    (args.out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print()
    print(f"A/A false alarms (compare exit 1): {aa_exit}/{n} = {aa_exit / n:.0%}  (target ≤ 5 %)")
    print(f"A/A any significant change:        {aa_any}/{n} = {aa_any / n:.0%}")
    print(
        f"+{args.delay_ms:g} ms detected (p99 row):        {det_row}/{n} = {det_row / n:.0%}"
        "  (target ≥ 90 %)"
    )
    print(f"+{args.delay_ms:g} ms detected (exit code):      {det_exit}/{n} = {det_exit / n:.0%}")
    if changes:
        print(
            f"estimated p99 change: mean {statistics.fmean(changes):+.3f} ms; interval holds "
            f"+{args.delay_ms:g} ms in {covered}/{n}"
        )
    if invalid:
        print(f"note: {invalid} run(s) were invalid (harness short of CPU) and were rerun")
    if still_invalid:
        print(f"warning: {still_invalid} run(s) still invalid after {args.retries} reruns: kept")
    if n < 20:
        print(f"note: {n} trials resolve rates only to ±{100 / n:.0f} points; use more to tighten")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
