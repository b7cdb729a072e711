"""``--workers N``: N gateway processes sharing one port (SO_REUSEPORT), supervised.

The supervisor binds the port first (with SO_REUSEPORT, never listening, so the kernel
hands it no connections) to learn it when ``--port 0``, starts N workers as
``python -m reference_gateway <same flags> --port P --workers 1 --reuse-port`` one after
the other (each once the previous announced itself: their start-ups never race), then
announces the port itself. The workers stay in the
supervisor's process group (a signal to the group, as loadgate sends, reaches each; the
supervisor forwards SIGTERM / SIGINT too, a second one changes nothing); each drains as
a single gateway does, and the supervisor exits 0 when all did. Each worker keeps its
own auth cache and counters (its ``/metrics`` is its own): what they share is the
revocations, over Redis (``--redis-url``).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys

from reference_gateway._config import Config

__all__ = ["supervise"]

log = logging.getLogger("reference_gateway")
_READY_TIMEOUT_S = 30.0


async def supervise(cfg: Config) -> int:
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind((cfg.host, cfg.port))
    port = int(holder.getsockname()[1])
    workers: list[asyncio.subprocess.Process] = []
    try:
        # One after the other: each worker's start-up (its trace table DDL, its Redis
        # subscription) is done before the next begins, so they never race each other.
        for _ in range(cfg.workers):
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "reference_gateway",
                *cfg.worker_argv(port),
                stdout=asyncio.subprocess.PIPE,
            )
            workers.append(proc)
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), _READY_TIMEOUT_S)
            if b"listening on" not in line:
                log.error("worker %d did not start (%r)", proc.pid, line)
                await _stop_all(workers)
                return 1
    except TimeoutError:
        log.error("a worker did not announce itself within %g s", _READY_TIMEOUT_S)
        await _stop_all(workers)
        return 1
    finally:
        holder.close()
    shown = "127.0.0.1" if cfg.host in ("0.0.0.0", "") else cfg.host
    print(f"reference_gateway listening on http://{shown}:{port}", flush=True)
    log.info("%d workers on port %d: %s", len(workers), port, [p.pid for p in workers])
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # One worker dying ends the gateway (exit 1): a port served by fewer workers than
    # asked for is not the gateway under test.
    waits = [asyncio.ensure_future(p.wait()) for p in workers]
    died = asyncio.ensure_future(asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED))
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait([died, stopping], return_when=asyncio.FIRST_COMPLETED)
    for p in workers:
        if p.returncode is None:
            p.send_signal(signal.SIGTERM)
    codes = [await p.wait() for p in workers]
    stopping.cancel()
    log.info("workers exited %s", codes)
    return 0 if stop.is_set() and all(c == 0 for c in codes) else 1


async def _stop_all(workers: list[asyncio.subprocess.Process]) -> None:
    for p in workers:
        if p.returncode is None:
            p.terminate()
    for p in workers:
        await p.wait()
