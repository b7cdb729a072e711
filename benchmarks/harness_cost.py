#!/usr/bin/env python3
"""What does one request cost the harness and the stub in CPU? (issue 13 §4)

Runs the phase2-gate mix (100 concurrent, half streams, 16 tokens, chat) straight
at a stub this script starts (no gateway: the gateway's CPU is not the question),
for ``--duration`` seconds, and prints, from the same run:

* harness CPU µs per request: the load generator's process CPU over its run
  (``time.process_time``: user + system, every part of the request path: building,
  sending, reading, SSE, decoding, integrity, join, histograms) / requests done;
* stub CPU µs per request: the stub process's CPU over the same interval (psutil);
* requests/s, and each side's share of a core.

Target: harness ≤ 250 µs per request. Pinning (``--pin``, default with ≥ 2 CPUs):
harness on CPU 0, stub on CPU 1, so neither's figure includes the other's stalls.
``--profile FILE`` also writes a cProfile of the harness (read with ``python -m pstats``).

    .venv/bin/python benchmarks/harness_cost.py [--duration 20] [--no-pin] [--profile out.prof]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import time

import psutil

from loadgate.load.generator import Engine, WorkerPlan, new_nonce
from loadgate.profile import load_profile
from stub_upstream import StubConfig, StubProcess


async def measure(duration_s: float, pin: bool, profile_to: str | None) -> dict[str, float]:
    profile = load_profile(
        "phase2-gate",
        [f"load.duration={duration_s}s", "load.warmup=2s", "stub.port=0", "auth.header=none"],
    )
    s = profile.stub
    cfg = StubConfig(port=0, ttft_ms=s.ttft_ms, itl_ms=s.itl_ms, output_tokens=s.output_tokens)
    async with StubProcess(cfg) as stub:
        stub_proc = psutil.Process(stub.pid)
        if pin:
            stub_proc.cpu_affinity([1])
            psutil.Process().cpu_affinity([0])
        plan = WorkerPlan(
            profile, stub.url, stub.url, time.monotonic_ns() + 200_000_000, new_nonce()
        )
        engine = Engine(plan)
        stub0 = sum(stub_proc.cpu_times()[:2])
        me0 = psutil.Process().cpu_times()
        prof = cProfile.Profile() if profile_to else None
        if prof is not None:
            prof.enable()
        out = await engine.run()
        if prof is not None:
            prof.disable()
            prof.dump_stats(profile_to)
        stub_cpu = sum(stub_proc.cpu_times()[:2]) - stub0
        me1 = psutil.Process().cpu_times()
    done = out.sent + out.warmup_excluded + out.cooldown_excluded
    return {
        "requests": float(done),
        "wall_s": out.wall_s,
        "harness_cpu_s": out.cpu_s,
        "harness_user_s": me1.user - me0.user,
        "harness_system_s": me1.system - me0.system,
        "stub_cpu_s": stub_cpu,
        "errors": float(out.failed),
        "violations": float(sum(out.violations.values())),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--no-pin", action="store_true")
    ap.add_argument("--profile", default=None, help="write a cProfile of the harness here")
    args = ap.parse_args()
    pin = not args.no_pin and (os.cpu_count() or 1) >= 2
    import uvloop

    runner = asyncio.run if os.environ.get("HC_LOOP") == "asyncio" else uvloop.run
    m = runner(measure(args.duration, pin, args.profile))
    n = max(1.0, m["requests"])
    print(f"phase2-gate mix, no gateway, {args.duration:g} s measured, pinned: {pin}")
    print(f"  requests            {m['requests']:.0f} ({m['requests'] / m['wall_s']:.0f} req/s)")
    print(f"  errors / violations {m['errors']:.0f} / {m['violations']:.0f}")
    print(
        f"  harness CPU         {1e6 * m['harness_cpu_s'] / n:7.1f} µs/request "
        f"({100 * m['harness_cpu_s'] / m['wall_s']:.0f} % of a core)  target ≤ 250"
    )
    print(
        f"    of which user {1e6 * m['harness_user_s'] / n:.1f}, "
        f"kernel {1e6 * m['harness_system_s'] / n:.1f} µs/request"
    )
    print(
        f"  stub CPU            {1e6 * m['stub_cpu_s'] / n:7.1f} µs/request "
        f"({100 * m['stub_cpu_s'] / m['wall_s']:.0f} % of a core)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
