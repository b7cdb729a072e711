#!/usr/bin/env python3
"""Where should command A put the harness, the stub and the gateway on a small box?

Runs ``phase2-gate`` (the bundled reference gateway) under several CPU layouts,
interleaved round by round so that drift on a shared machine lands on every layout
alike, and prints per layout the median and range over rounds of the figures a
layout can move: the gated ``overhead_ms.p99``, the control group's p99 (the harness's
floor beside the load), and the validity figures with limits (stub timer lateness,
harness loop lag, send lag), plus the harness's CPU share.

Layouts (``--set`` overrides of the profile's ``[cpus]``), on the CPUs this
script may use (the last one is "the gateway's"):

- ``halves``: the gateway on the upper half of the CPUs, the harness and the stub
  sharing the rest (the default from three CPUs on; spelt out as lists here);
- ``stub-free``: the gateway and the harness as in ``halves``, the stub on every
  CPU (the scheduler moves it to whichever core is idle);
- ``unpinned``: nothing pinned (``cpus.auto = false``; the default on two CPUs).

    flock /work/bench.lock .venv/bin/python benchmarks/placement.py [--rounds 3] [--duration 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

from harness_floor import loadgate  # the same subprocess run and result read


def layouts() -> dict[str, list[str]]:
    cpus = sorted(os.sched_getaffinity(0))
    upper = cpus[len(cpus) - max(1, len(cpus) // 2) :]
    lower = [c for c in cpus if c not in upper] or cpus

    def listed(c: list[int]) -> str:
        return "[" + ",".join(map(str, c)) + "]"

    halves = [f"cpus.gateway={listed(upper)}", f"cpus.harness={listed(lower)}"]
    return {
        "halves": [*halves, f"cpus.stub={listed(lower)}"],
        "stub-free": [*halves, f"cpus.stub={listed(cpus)}"],
        "unpinned": ["cpus.auto=false"],
    }


#: (label, how to read it from a result, its limit or None)
FIGURES: list[tuple[str, Any, float | None]] = [
    ("overhead p99", lambda d: d["metrics"]["overhead_ms"]["p99"], 20.0),
    ("control p99", lambda d: d["harness"]["control"]["metrics"]["overhead_ms"]["p99"], None),
    ("stub lateness p99", lambda d: d["harness"]["stub_timer_lateness_ms"]["p99"], 5.0),
    ("loop lag p99", lambda d: d["harness"]["loop_lag_ms"]["p99"], 5.0),
    ("send lag p99", lambda d: d["harness"]["send_lag_ms"]["p99"], None),
    ("harness CPU %", lambda d: d["harness"]["cpu_percent"], None),
]


def run(sets: list[str], duration: int, out: Path) -> dict[str, Any]:
    warmup = max(3, duration // 4)
    timing = [f"load.duration={duration}s", f"load.warmup={warmup}s"]
    return loadgate("phase2-gate", [*timing, *sets], False, out)  # not under taskset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=20, help="seconds of load per run")
    args = ap.parse_args()
    plans = layouts()
    seen: dict[str, list[dict[str, Any]]] = {name: [] for name in plans}
    with tempfile.TemporaryDirectory(prefix="placement-") as tmp:
        for r in range(args.rounds):
            # Rotate the order each round so no layout always runs first.
            names = list(plans)[r % len(plans) :] + list(plans)[: r % len(plans)]
            for name in names:
                data = run(plans[name], args.duration, Path(tmp) / f"{name}-{r}.json")
                seen[name].append(data)
                p = data["harness"]["placement"]
                print(
                    f"round {r + 1} {name:9s} {data['verdict']:7s} "
                    f"harness {p['harness']} stub {p['stub']} gateway {p['gateway']}: "
                    + ", ".join(f"{label} {get(data):.2f}" for label, get, _ in FIGURES),
                    flush=True,
                )
    print()
    print(
        "| layout | verdicts | "
        + " | ".join(f"{lab} (ms)" if "%" not in lab else lab for lab, _, _ in FIGURES)
        + " |"
    )
    print("|---|---|" + "---:|" * len(FIGURES))
    for name, runs in seen.items():
        verdicts = ", ".join(sorted({d["verdict"] for d in runs}))
        cells = []
        for _label, get, limit in FIGURES:
            vals = [float(get(d)) for d in runs]
            cell = f"{statistics.median(vals):.2f} ({min(vals):.2f}–{max(vals):.2f})"
            if limit is not None:
                cell += f", {100 * max(vals) / limit:.0f} % of limit at worst"
            cells.append(cell)
        print(f"| {name} | {verdicts} | " + " | ".join(cells) + " |")
    print("\nmedian (min–max) over rounds; limits: overhead 20 ms (the gate), 5 ms (validity)")


if __name__ == "__main__":
    main()
