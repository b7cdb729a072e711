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

* the peer, in the same run (when ``wrk`` is installed: ``apt-get install wrk``): wrk
  driving the same mix (``peers/chat_mix.lua``: 100 connections, every other request
  streamed) at a fresh stub with the same settings, pinned the same way, its CPU from
  ``wait4``'s rusage / requests it completed. wrk makes the same sends and the same
  reads (one per streamed token: the stub writes each on its own) and decodes nothing,
  so its figure is this machine's floor for the mix: the kernel's receive path and ACK
  per read, the wake-ups, the send. ``harness − wrk`` is what loadgate's own work costs.

Target: harness ≤ 250 µs per request (issue 13). Pinning (``--pin``, default with ≥ 2
CPUs): harness on CPU 0, stub on CPU 1, so neither's figure includes the other's stalls.
``--profile FILE`` also writes a cProfile of the harness (read with ``python -m pstats``).

    .venv/bin/python benchmarks/harness_cost.py [--duration 20] [--no-pin] [--no-peer]
                                                [--profile out.prof]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

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
            prof.dump_stats(str(profile_to))
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


PEER_SCRIPT = Path(__file__).resolve().parent / "peers" / "chat_mix.lua"


def _run_wrk(argv: list[str], pin: bool) -> tuple[int, str, Any]:
    """Run wrk to the end; its exit code, output and rusage (``wait4``: its own CPU)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if pin:
        psutil.Process(proc.pid).cpu_affinity([0])
    assert proc.stdout is not None
    out = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, out, usage


async def measure_wrk(duration_s: float, pin: bool) -> dict[str, float]:
    """wrk on the same mix at a fresh stub with the phase2-gate settings (module doc)."""
    s = load_profile("phase2-gate", ["stub.port=0"]).stub
    cfg = StubConfig(port=0, ttft_ms=s.ttft_ms, itl_ms=s.itl_ms, output_tokens=s.output_tokens)
    async with StubProcess(cfg) as stub:
        if pin:
            psutil.Process(stub.pid).cpu_affinity([1])
        argv = ["wrk", "-t1", "-c100", f"-d{max(1, round(duration_s))}s", "-s", str(PEER_SCRIPT)]
        code, out, usage = await asyncio.to_thread(
            _run_wrk, [*argv, stub.url + "/v1/chat/completions"], pin
        )
    done = re.search(r"(\d+) requests in ([\d.]+)s", out)
    if code != 0 or done is None:
        raise SystemExit(f"wrk failed (exit {code}):\n{out}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "requests": float(done.group(1)),
        "wall_s": float(done.group(2)),
        "user_s": usage.ru_utime,
        "system_s": usage.ru_stime,
        "errors": float(bad.group(1)) if bad else 0.0,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--no-pin", action="store_true")
    ap.add_argument("--profile", default=None, help="write a cProfile of the harness here")
    ap.add_argument("--no-peer", action="store_true", help="skip the wrk run")
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
    if args.no_peer:
        return 0
    if shutil.which("wrk") is None:
        print("  peer: wrk not installed (apt-get install wrk), no floor measured")
        return 0
    w = runner(measure_wrk(args.duration, pin))
    wn = max(1.0, w["requests"])
    wrk_us = 1e6 * (w["user_s"] + w["system_s"]) / wn
    mine_us = 1e6 * m["harness_cpu_s"] / n
    print(
        f"peer: wrk, same mix and stub settings, {w['wall_s']:g} s: {w['requests']:.0f} requests "
        f"({w['requests'] / w['wall_s']:.0f} req/s), {w['errors']:.0f} non-2xx"
    )
    print(
        f"  wrk CPU             {wrk_us:7.1f} µs/request (user {1e6 * w['user_s'] / wn:.1f}, "
        f"kernel {1e6 * w['system_s'] / wn:.1f}): this machine's floor for the mix"
    )
    print(
        f"  harness / wrk       {mine_us / wrk_us:7.2f}×; loadgate's own work "
        f"{mine_us - wrk_us:.1f} µs/request above the floor"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
