"""Several load processes for one run, merged losslessly (issue 3 §8).

Python's one-core-per-process limit is the harness's first bottleneck: past a
few thousand req/s a single event loop queues its own reads, and that queueing
would be reported as gateway overhead. ``load.workers = N`` splits the load
across N spawned processes (spawn, not fork: forking a process with a running
event loop is unsafe). Each runs an :class:`~loadgate.load.generator.Engine` with its
own nonce and share, starting at one shared absolute instant; the parent
merges their histograms bucket by bucket and adds their counters.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import signal
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import Any

from hdrh.histogram import HdrHistogram

from loadgate.histograms.recorder import Recorder
from loadgate.load.generator import Engine, EngineOutcome, ModeCounts, WorkerPlan

__all__ = ["merge_outcomes", "run_workers"]


def _pack(out: EngineOutcome) -> dict[str, Any]:
    d = {k: getattr(out, k) for k in out.__slots__ if k != "recorder"}
    d["by_mode"] = {m: (c.sent, c.ok, c.failed) for m, c in out.by_mode.items()}
    d["recorder"] = out.recorder.to_bytes()
    return d


def _unpack(d: dict[str, Any]) -> EngineOutcome:
    rec = Recorder.from_bytes(d.pop("recorder"))
    by_mode = {m: ModeCounts(*v) for m, v in d.pop("by_mode").items()}
    out = EngineOutcome(rec, by_mode=by_mode)
    for k, v in d.items():
        setattr(out, k, v)
    return out


def _child(plan: WorkerPlan, conn: Connection) -> None:
    import uvloop

    async def main() -> EngineOutcome:
        engine = Engine(plan)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, engine.stop, sig.name)
        return await engine.run()

    try:
        conn.send(_pack(uvloop.run(main())))
    except BaseException as exc:  # report, never hang the parent
        conn.send({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        conn.close()


def _add_hist(a: bytes, b: bytes) -> bytes:
    if not a:
        return b
    if not b:
        return a
    h = HdrHistogram.decode(a)
    h.add(HdrHistogram.decode(b))
    return bytes(h.encode())


def _add_counts(a: dict[Any, int], b: dict[Any, int]) -> dict[Any, int]:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + v
    return out


def merge_outcomes(outs: list[EngineOutcome]) -> EngineOutcome:
    """Lossless merge: histogram buckets and counters add up."""
    first = outs[0]
    for o in outs[1:]:
        first.recorder.merge(o.recorder)
        for name in (
            "sent", "ok", "failed", "checked", "warmup_excluded", "cooldown_excluded",
            "max_inflight_hits", "offered", "tail_in_flight", "tail_failed",
        ):  # fmt: skip
            setattr(first, name, getattr(first, name) + getattr(o, name))
        for name in ("errors", "violations", "per_interval_done", "per_interval_errors"):
            setattr(first, name, _add_counts(getattr(first, name), getattr(o, name)))
        for m, c in o.by_mode.items():
            f = first.by_mode[m]
            f.sent, f.ok, f.failed = f.sent + c.sent, f.ok + c.ok, f.failed + c.failed
        for name in ("loop_lag_us", "send_lag_us", "stub_lateness_us"):
            setattr(first, name, _add_hist(getattr(first, name), getattr(o, name)))
        up = first.upstream
        for k, v in o.upstream.items():
            if isinstance(v, int) and isinstance(up.get(k), int):
                up[k] = up[k] + v
            elif k == "calls_hist":
                up[k] = _add_counts(up.get(k, {}), v)
        # CPU: the busiest worker is the one that limits validity.
        if o.wall_s and first.wall_s and o.cpu_s / o.wall_s > first.cpu_s / first.wall_s:
            first.cpu_s, first.wall_s = o.cpu_s, o.wall_s
        first.stopped_by = first.stopped_by or o.stopped_by
    return first


async def run_workers(plan: WorkerPlan, stop: asyncio.Event) -> EngineOutcome:
    """Run ``plan.workers`` engine processes and merge their outcomes."""
    ctx = mp.get_context("spawn")
    procs: list[tuple[Any, Connection]] = []
    for i in range(plan.workers):
        parent, child = ctx.Pipe(duplex=False)
        sub = replace(plan, worker_index=i, nonce=(plan.nonce + i) & 0x7FFFFFFF or 1)
        proc = ctx.Process(target=_child, args=(sub, child), daemon=True)
        proc.start()
        child.close()
        procs.append((proc, parent))
    loop = asyncio.get_running_loop()
    stopper: asyncio.Future[Any] = loop.create_task(stop.wait())
    waits = [loop.run_in_executor(None, conn.recv) for _, conn in procs]
    gathered: asyncio.Future[list[Any]] = asyncio.gather(*waits, return_exceptions=True)
    done, _ = await asyncio.wait([stopper, gathered], return_when=asyncio.FIRST_COMPLETED)
    if stopper in done:
        for proc, _ in procs:
            if proc.pid is not None and proc.is_alive():
                proc.terminate()  # SIGTERM: the child stops its engine and reports
    results = await gathered
    stopper.cancel()
    outs: list[EngineOutcome] = []
    errors: list[str] = []
    for r in results:
        if isinstance(r, BaseException):
            errors.append(f"{type(r).__name__}: {r}")
        elif "error" in r:
            errors.append(str(r["error"]))
        else:
            outs.append(_unpack(r))
    for proc, conn in procs:
        proc.join(timeout=5)
        conn.close()
    if not outs:
        raise RuntimeError("every load worker failed: " + "; ".join(errors))
    merged = merge_outcomes(outs)
    if errors:
        merged.upstream["worker_errors"] = errors
    return merged
