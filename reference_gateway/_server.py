"""Process lifecycle: bind, announce the port, serve, drain on SIGTERM, exit 0.

Drain order: stop accepting (close the listener), mark responses
``Connection: close`` and ``/health`` 503, wait for in-flight requests (streams
included) up to ``--drain-timeout-s``, then close the remaining connections and
the upstream pool. Every step is logged on stderr.

One process by default: the counters live in this process, so one ``/metrics`` scrape
sees every request. ``--workers N`` runs N such processes on one port
(:mod:`reference_gateway._workers`); revocations then reach each over Redis pub/sub,
and each worker's ``/metrics`` is its own.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Sequence

from reference_gateway._auth import AuthCache, KeyValidator
from reference_gateway._config import Config, parse_args
from reference_gateway._downstream import ClientConnection
from reference_gateway._metrics import Metrics
from reference_gateway._proxy import Proxy
from reference_gateway._revocations import Revocations
from reference_gateway._traces import TraceWriter
from reference_gateway._upstream import UpstreamPool

__all__ = ["GatewayServer", "main", "serve"]

log = logging.getLogger("reference_gateway")

#: Idle keep-alive connections (either side) are closed after this many idle sweeps.
_SWEEP_S = 25.0
_IDLE_SWEEPS = 3  # 50-75 s, about aiohttp's and nginx's keep-alive timeouts


class GatewayServer:
    """The gateway as an object: :meth:`start` binds, :meth:`drain` and :meth:`close` end it.

    ``serve`` (the CLI) wraps it with the ready line and the signal handlers; tests run
    it in their own event loop.
    """

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.validator = validator = KeyValidator(cfg.key_prefix, cfg.keys_file)
        self.cache = cache = AuthCache(cfg.cache_size, cfg.miss_cost_ms / 1000.0, validator)
        self.metrics = Metrics(
            cache_hits=lambda: cache.hits,
            cache_misses=lambda: cache.misses,
            cache_entries=lambda: len(cache),
        )
        self.proxy = proxy = Proxy(cfg, self.metrics, cache)
        #: one keep-alive pool per upstream, in ``--upstream`` order
        self.pools: list[UpstreamPool] = [u.pool for u in proxy.upstreams]
        self.metrics.in_flight = lambda: proxy.in_flight
        self.revocations = Revocations(
            self.apply_revocation, cfg.revoke_propagation_ms / 1000.0, cfg.redis_url
        )
        if cfg.admin_key:
            proxy.revoke_hook = self.revocations.revoke
        self.metrics.upstream_sent = lambda: [(u.label, u.sent) for u in proxy.upstreams]
        self.connections: set[ClientConnection] = set()
        self._listener: asyncio.Server | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.port = 0

    async def start(self) -> int:
        """Bind and start accepting; returns the bound port.

        With ``--trace-dsn`` the database is connected first: a gateway that cannot
        write its traces does not start.
        """
        loop = asyncio.get_running_loop()
        await self.revocations.start()  # subscribed before the first request
        cfg = self.cfg
        if cfg.trace_dsn is not None:
            traces = TraceWriter(
                cfg.trace_dsn,
                flush_ms=cfg.trace_flush_ms,
                batch_rows=cfg.trace_batch_rows,
                queue_rows=cfg.trace_queue_rows,
                delay_ms=cfg.trace_delay_ms,
                drop_share=cfg.trace_drop_share,
            )
            await traces.start()
            self.proxy.traces = self.metrics.traces = traces
        self._listener = await loop.create_server(
            lambda: ClientConnection(self.proxy, self.connections),
            self.cfg.host,
            self.cfg.port,
            backlog=self.cfg.backlog,
            reuse_address=True,
            reuse_port=self.cfg.reuse_port or None,
        )
        self.port = int(self._listener.sockets[0].getsockname()[1])
        self._timer = loop.call_later(_SWEEP_S, self._sweep)
        self.proxy.start_watchdog()
        return self.port

    def apply_revocation(self, key: str) -> None:
        """The revocation reaches this process's auth check: the key's next request is 401."""
        self.validator.revoke(key)
        self.cache.evict(key)
        log.info("key revoked: %s…", key[:12])

    def _sweep(self) -> None:
        for conn in list(self.connections):
            if conn.idle:
                conn.idle_marks += 1
                if conn.idle_marks >= _IDLE_SWEEPS:
                    conn.close()
        for pool in self.pools:
            pool.sweep(_IDLE_SWEEPS)
        self._timer = asyncio.get_running_loop().call_later(_SWEEP_S, self._sweep)

    async def drain(self, timeout_s: float) -> tuple[bool, int]:
        """Stop accepting, answer with ``Connection: close``, wait for in-flight requests.

        Returns (drained within ``timeout_s``, requests still in flight). The caller
        then calls :meth:`close`.
        """
        self.proxy.draining = True
        if self._listener is not None:
            self._listener.close()
        drained = await self.proxy.wait_idle(timeout_s)
        return drained, self.proxy.in_flight

    async def close(self) -> None:
        """Close every connection (a request still running is cut) and the upstream pool."""
        if self._listener is not None:
            self._listener.close()
        for conn in list(self.connections):
            conn.close(abort=not conn.idle)
        if self._timer is not None:
            self._timer.cancel()
        self.proxy.stop_watchdog()
        await self.revocations.close()
        for pool in self.pools:
            pool.close()
        if self.proxy.traces is not None:
            # After the drain: every finished request's row is queued by now.
            await self.proxy.traces.close()
        await asyncio.sleep(0)  # let the transports report connection_lost


async def serve(cfg: Config) -> int:
    loop = asyncio.get_running_loop()
    server = GatewayServer(cfg)
    port = await server.start()
    shown = "127.0.0.1" if cfg.host in ("0.0.0.0", "") else cfg.host
    print(f"reference_gateway listening on http://{shown}:{port}", flush=True)
    log.info(
        "upstream(s) %s (round-robin), cache %d keys, miss cost %g ms, delay %g ms",
        ", ".join(cfg.upstreams),
        cfg.cache_size,
        cfg.miss_cost_ms,
        cfg.delay_ms,
    )
    if cfg.trace_dsn is not None:
        log.info(
            "trace rows to PostgreSQL: flush %g ms / %d rows, queue %d, defects: delay %g ms,"
            " drop share %g",
            cfg.trace_flush_ms,
            cfg.trace_batch_rows,
            cfg.trace_queue_rows,
            cfg.trace_delay_ms,
            cfg.trace_drop_share,
        )
    stop = asyncio.Event()
    received: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig.name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        await stop.wait()
        at_term = server.proxy.in_flight
        log.info(
            "%s: listener closed, draining %d in-flight request(s) (timeout %g s)",
            received[0],
            at_term,
            cfg.drain_timeout_s,
        )
        t0 = loop.time()
        drained, left = await server.drain(cfg.drain_timeout_s)
        log.info(
            "drain %s in %.3f s: %d request(s) in flight at %s, %d abandoned; exiting 0",
            "complete" if drained else "timed out",
            loop.time() - t0,
            at_term,
            received[0],
            left,
        )
    finally:
        await server.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s reference_gateway %(levelname)s %(message)s",
    )
    if cfg.workers > 1:
        from reference_gateway._workers import supervise

        return asyncio.run(supervise(cfg))
    import uvloop

    loop_factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(serve(cfg))
