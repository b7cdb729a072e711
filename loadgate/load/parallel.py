"""Several load processes for one run, merged losslessly (issue 3 §8).

Python's one-core-per-process limit is the harness's first bottleneck: past a
few thousand req/s a single event loop queues its own reads, and that queueing
would be reported as gateway overhead. ``load.workers = N`` splits the load
across N spawned processes (spawn, not fork: forking a process with a running
event loop is unsafe). Each runs an :class:`~loadgate.load.generator.Engine`
with its own nonce and share, starting at one shared absolute instant; the
parent merges their outcomes (:meth:`~loadgate.load.outcome.EngineOutcome.merge`:
histogram buckets and counters add). Outcomes cross the pipe pickled (the
recorder pickles as its own lossless encoding).
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import signal
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import Any

from loadgate.load.generator import Engine, WorkerPlan
from loadgate.load.outcome import EngineOutcome, merge_outcomes

__all__ = ["run_workers"]


class _Failed:
    """What a worker sends instead of an outcome when it failed."""

    def __init__(self, error: str) -> None:
        self.error = error


def _child(plan: WorkerPlan, conn: Connection) -> None:
    import uvloop

    async def main() -> EngineOutcome:
        engine = Engine(plan)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, engine.stop, sig.name)
        return await engine.run()

    try:
        conn.send(uvloop.run(main()))
    except BaseException as exc:  # report, never hang the parent
        conn.send(_Failed(f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


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
        elif isinstance(r, _Failed):
            errors.append(r.error)
        else:
            outs.append(r)
    for proc, conn in procs:
        proc.join(timeout=5)
        conn.close()
    if not outs:
        raise RuntimeError("every load worker failed: " + "; ".join(errors))
    merged = merge_outcomes(outs)
    merged.upstream.worker_errors += errors
    return merged
