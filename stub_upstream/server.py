"""Serving: sockets, worker processes, the event loop, shutdown.

``run_stub(config)`` blocks until SIGTERM/SIGINT. With one worker the calling
process serves; with ``workers = N`` it binds N SO_REUSEPORT sockets on one port
(so the kernel spreads connections), forks one worker per socket and only
supervises: it forwards SIGTERM/SIGINT, and if a worker dies the others are
stopped too (a half-dead stub would skew every figure). The ledger rings and
metric slots are mapped before the fork, so every worker sees all of them.

Each worker serves HTTP/1.1 with :class:`~stub_upstream.connection.Connection`
(an ``asyncio.Protocol`` on uvloop), not aiohttp, over kernel-timestamped
transports (:mod:`stub_upstream.stamped`): ``t_recv`` is when the bytes arrived,
not when the loop read them. A sweep every ``_sweep_s`` enforces the read
timeouts.

Shutdown: on SIGTERM/SIGINT a worker stops accepting, closes idle connections,
gives answers in progress ``_SHUTDOWN_GRACE_S`` and then aborts what is left, so
the stub is gone within a second whatever it was doing. The supervisor of N
workers kills a worker that is still there ``_KILL_AFTER_S`` after the signal.

Readiness: once every worker accepts, the bound port is written to
``ready_file`` (atomically) and a ``listening on`` line is printed to stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import os
import secrets
import select
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from stub_upstream import stamped
from stub_upstream.config import StubConfig
from stub_upstream.connection import Connection, Limits
from stub_upstream.handler import Worker
from stub_upstream.ledger import LedgerRing
from stub_upstream.metrics import WorkerMetrics
from stub_upstream.ticker import Ticker

__all__ = ["WorkerServer", "bind_sockets", "run_stub"]

_PR_SET_PDEATHSIG = 1
_SHUTDOWN_GRACE_S = 0.5
_KILL_AFTER_S = 0.9
_GC_FULL_S = 60.0
_S = 1_000_000_000


def _die_with_parent() -> None:
    """Ask the kernel to SIGTERM us when our parent dies (Linux only)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def bind_sockets(host: str, port: int, n: int) -> list[socket.socket]:
    """``n`` listening SO_REUSEPORT sockets on one port (port 0 = pick one).

    A fixed port is first probed without SO_REUSEPORT: otherwise a second stub
    started on a busy port would silently share it with the first.
    """
    family, _, _, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    if port:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # SO_REUSEADDR: TIME_WAIT leftovers of a previous run are no conflict;
            # a live listener still is.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(addr)
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket(family, socket.SOCK_STREAM)
            socks.append(s)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            s.bind(addr)
            addr = s.getsockname()  # port 0 resolved by the first bind
            s.listen(4096)
            s.setblocking(False)
    except OSError:
        for s in socks:
            s.close()
        raise
    return socks


class WorkerServer:
    """One worker serving one listening socket in the running loop."""

    def __init__(
        self,
        cfg: StubConfig,
        index: int,
        rings: list[LedgerRing],
        metrics: list[WorkerMetrics],
        instance: str,
        sock: socket.socket,
    ) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self.ticker = Ticker(loop)
        self.worker = Worker(cfg, index, rings, metrics, instance, self.ticker)
        limits = Limits(
            max_body=cfg.max_body_bytes,
            head_timeout_ns=int(cfg.head_timeout_s * _S),
            body_timeout_ns=int(cfg.body_timeout_s * _S),
            idle_timeout_ns=int(cfg.keepalive_timeout_s * _S),
        )
        self.conns: set[Connection] = set()
        conns, handle, ticker, flush = (
            self.conns,
            self.worker.handle,
            self.ticker,
            self.worker.flush,
        )
        self.server = stamped.serve(sock, lambda: Connection(handle, ticker, limits, conns, flush))
        self.worker.stamp_mode = self.server.mode
        shortest = min(cfg.head_timeout_s, cfg.body_timeout_s, cfg.keepalive_timeout_s)
        self._sweep_s = min(1.0, max(shortest / 4, 0.01))
        self._sweeper = loop.call_later(self._sweep_s, self._sweep)

    def _sweep(self) -> None:
        now = time.monotonic_ns()
        for c in list(self.conns):
            c.check_timeouts(now)
        self._sweeper = self._loop.call_later(self._sweep_s, self._sweep)

    async def close(self, grace_s: float = _SHUTDOWN_GRACE_S) -> None:
        """Stop accepting, let answers in progress finish for ``grace_s``, abort the rest."""
        self._sweeper.cancel()
        self.server.close()
        await _drain(self.conns, grace_s)
        self.ticker.close()


async def _serve(
    cfg: StubConfig,
    index: int,
    rings: list[LedgerRing],
    metrics: list[WorkerMetrics],
    instance: str,
    sock: socket.socket,
    on_ready: Callable[[], None],
) -> None:
    loop = asyncio.get_running_loop()
    srv = WorkerServer(cfg, index, rings, metrics, instance, sock)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    pacer = _GcPacer(loop)
    on_ready()
    await stop.wait()
    pacer.close()
    await srv.close()


async def _drain(conns: set[Connection], grace_s: float) -> None:
    """Close idle connections now, busy ones once their answer is out (or at the grace)."""
    deadline = time.monotonic() + grace_s
    while True:
        for c in list(conns):
            if c.close_idle():
                conns.discard(c)
        if not conns or time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.02)
    for c in list(conns):
        c.abort()
    await asyncio.sleep(0)  # let connection_lost callbacks run


class _GcPacer:
    """Full cyclic-GC collections on a schedule, not on allocation counts.

    With 1000 streams in flight an automatic full collection walks every live
    stream's objects and stalls the loop for tens of ms at unpredictable times
    (benchmarks/stub_sse.py, 1000 streams: TTFT lateness p99 5-9 ms with this
    pacer vs 19-38 ms with the default GC). Young collections stay automatic;
    full ones are taken off the allocation counter and run once a minute, so
    cyclic garbage still cannot pile up.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._saved = gc.get_threshold()
        gc.collect()
        gc.freeze()  # start-up objects stay put: fewer objects to walk
        gc.set_threshold(self._saved[0], self._saved[1], 1 << 30)
        self._handle = loop.call_later(_GC_FULL_S, self._full)

    def _full(self) -> None:
        gc.collect()
        self._handle = self._loop.call_later(_GC_FULL_S, self._full)

    def close(self) -> None:
        self._handle.cancel()
        gc.set_threshold(*self._saved)


def _run_worker(
    cfg: StubConfig,
    index: int,
    rings: list[LedgerRing],
    metrics: list[WorkerMetrics],
    instance: str,
    sock: socket.socket,
    on_ready: Callable[[], None],
) -> None:
    import uvloop

    uvloop.run(_serve(cfg, index, rings, metrics, instance, sock, on_ready))


def _announce(cfg: StubConfig, port: int, ready_file: Path | None) -> None:
    if ready_file is not None:
        tmp = ready_file.with_name(ready_file.name + ".tmp")
        tmp.write_text(f"{port}\n")
        tmp.replace(ready_file)
    print(
        f"stub_upstream: listening on http://{cfg.host}:{port} "
        f"(workers={cfg.workers}, pid={os.getpid()})",
        flush=True,
    )


def run_stub(
    config: StubConfig, *, ready_file: Path | None = None, die_with_parent: bool = False
) -> None:
    """Serve until SIGTERM/SIGINT. Raises ``ValueError`` (bad config) or ``OSError`` (bind)."""
    if die_with_parent:
        _die_with_parent()
    instance = secrets.token_hex(6)
    n = config.workers
    rings = [LedgerRing(config.ledger_capacity) for _ in range(n)]
    metrics = [WorkerMetrics() for _ in range(n)]
    socks = bind_sockets(config.host, config.port, n)
    port = int(socks[0].getsockname()[1])
    if n == 1:
        _run_worker(
            config, 0, rings, metrics, instance, socks[0],
            lambda: _announce(config, port, ready_file),
        )  # fmt: skip
        socks[0].close()
        return
    _supervise(config, rings, metrics, instance, socks, port, ready_file)


def _supervise(
    cfg: StubConfig,
    rings: list[LedgerRing],
    metrics: list[WorkerMetrics],
    instance: str,
    socks: list[socket.socket],
    port: int,
    ready_file: Path | None,
) -> None:
    r, w = os.pipe()
    pids: list[int] = []
    for i, sock in enumerate(socks):
        pid = os.fork()
        if pid == 0:  # worker
            code = 0
            try:
                os.close(r)
                for j, other in enumerate(socks):
                    if j != i:
                        other.close()
                _die_with_parent()
                _run_worker(cfg, i, rings, metrics, instance, sock, lambda: _notify(w))
            except BaseException:
                traceback.print_exc()
                code = 1
            finally:
                sys.stdout.flush()
                os._exit(code)
        pids.append(pid)
    os.close(w)
    for sock in socks:
        sock.close()

    stopping = False
    stop_t = 0.0

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping, stop_t
        if not stopping:
            stop_t = time.monotonic()
        stopping = True
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    ready = 0
    while ready < len(pids) and not stopping:
        try:
            rl, _, _ = select.select([r], [], [], 0.2)
        except InterruptedError:
            continue
        if rl:
            chunk = os.read(r, 64)
            if not chunk:
                break  # every worker closed its end: they died
            ready += len(chunk)
        if _reap(pids):
            break
    os.close(r)
    if ready == len(pids) and not stopping:
        _announce(cfg, port, ready_file)
    failed = ready < len(pids) and not stopping
    killed = False
    while pids:  # polled, not a blocking wait: a worker that hangs must still be killed
        if _reap(pids) and not stopping:
            failed = True
            forward(signal.SIGTERM, None)
        if pids and stopping and not killed and time.monotonic() - stop_t > _KILL_AFTER_S:
            killed = True
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)
    if failed:
        raise SystemExit(1)


def _notify(fd: int) -> None:
    os.write(fd, b".")


def _reap(pids: list[int]) -> bool:
    """Remove exited workers from ``pids`` without waiting; True if any exited."""
    any_dead = False
    while pids:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            pids.clear()
            return True
        except InterruptedError:
            continue
        if pid == 0:
            break
        if pid in pids:
            pids.remove(pid)
            any_dead = True
    return any_dead
