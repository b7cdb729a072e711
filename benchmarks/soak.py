#!/usr/bin/env python3
"""Does anything grow? A soak of the phase2-gate mix against the stub (issue 15 §6).

Runs the phase2-gate load (100 concurrent, half streams) straight at a stub this
script starts, for ``--minutes`` (default 10), and samples the resident memory of
the harness process and of the stub process every 10 s (psutil). Prints RSS at
minute 1 and at the end, and the growth between them for each: the target is
< 10 MB each. Also prints requests, errors and integrity violations, so a soak
that "held" by failing is not mistaken for one that held.

Pinning (default with ≥ 2 CPUs): harness on CPU 0, stub on CPU 1. The stub's
ledger ring is 16 Ki records here (see LEDGER_RECORDS): the default ring's pages
are touched as it fills, which is growth up to its fixed size, not a leak.

    .venv/bin/python benchmarks/soak.py [--minutes 10] [--no-pin]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import psutil

from loadgate.load.generator import Engine, WorkerPlan, new_nonce
from loadgate.profile import load_profile
from stub_upstream import StubConfig, StubProcess

SAMPLE_S = 10.0
LEDGER_RECORDS = 16_384


async def soak(minutes: float, pin: bool) -> dict[str, object]:
    profile = load_profile(
        "phase2-gate",
        [f"load.duration={minutes * 60:g}s", "load.warmup=0s", "stub.port=0", "auth.header=none"],
    )
    s = profile.stub
    # A small ledger ring: the stub's RSS grows by 80 B a request until its ring is
    # full (84 MB at the default 1 Mi records), by design. 16 Ki records fill in
    # ~35 s at this load, before the minute-1 sample, so growth after it is a leak.
    cfg = StubConfig(
        port=0,
        ttft_ms=s.ttft_ms,
        itl_ms=s.itl_ms,
        output_tokens=s.output_tokens,
        ledger_capacity=LEDGER_RECORDS,
    )
    me = psutil.Process()
    samples: list[tuple[float, int, int]] = []  # (s since start, harness rss, stub rss)
    async with StubProcess(cfg) as stub:
        stub_proc = psutil.Process(stub.pid)
        if pin:
            stub_proc.cpu_affinity([1])
            me.cpu_affinity([0])
        start = time.monotonic_ns() + 200_000_000
        engine = Engine(WorkerPlan(profile, stub.url, stub.url, start, new_nonce()))

        async def sample() -> None:
            t0 = time.monotonic()
            while True:
                samples.append(
                    (time.monotonic() - t0, me.memory_info().rss, stub_proc.memory_info().rss)
                )
                await asyncio.sleep(SAMPLE_S)

        sampler = asyncio.create_task(sample())
        out = await engine.run()
        sampler.cancel()
    return {
        "samples": samples,
        "requests": out.sent,
        "errors": out.failed,
        "violations": sum(out.violations.values()),
    }


def _at(samples: list[tuple[float, int, int]], t_s: float) -> tuple[int, int]:
    best = min(samples, key=lambda s: abs(s[0] - t_s))
    return best[1], best[2]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--no-pin", action="store_true")
    args = ap.parse_args()
    pin = not args.no_pin and (os.cpu_count() or 1) >= 2
    import uvloop

    r = uvloop.run(soak(args.minutes, pin))
    samples = r["samples"]
    assert isinstance(samples, list)
    h1, s1 = _at(samples, 60.0)
    h2, s2 = samples[-1][1], samples[-1][2]
    mb = 1024 * 1024
    print(f"soak: phase2-gate mix, no gateway, {args.minutes:g} min, pinned: {pin}")
    print(f"  requests {r['requests']}, errors {r['errors']}, violations {r['violations']}")
    for name, a, b in (("harness", h1, h2), ("stub", s1, s2)):
        print(
            f"  {name:<8} RSS minute 1 {a / mb:6.1f} MB, end {b / mb:6.1f} MB, "
            f"growth {(b - a) / mb:+.1f} MB  (target < 10 MB)"
        )
    print("  RSS every 10 s (harness, stub MB):")
    print("   " + " ".join(f"{h / mb:.0f}/{s / mb:.0f}" for _, h, s in samples))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
