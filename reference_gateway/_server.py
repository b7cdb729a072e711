"""Process lifecycle: bind, announce the port, serve, drain on SIGTERM, exit 0.

Drain order: stop accepting (close the listener), mark responses
``Connection: close`` and ``/health`` 503, wait for in-flight requests (streams
included) up to ``--drain-timeout-s``, then close the remaining connections and
the upstream pool. Every step is logged on stderr.

Single process by design: the counters live in this process, so one ``/metrics``
scrape sees every request (a multi-worker variant would share the auth-cache
revocations over Redis pub/sub and sum the counters per worker).
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
from reference_gateway._proxy import Proxy, Upstream
from reference_gateway._upstream import UpstreamPool

__all__ = ["main", "serve"]

log = logging.getLogger("reference_gateway")

#: Idle keep-alive connections (either side) are closed after this many idle sweeps.
_SWEEP_S = 25.0
_IDLE_SWEEPS = 3  # 50-75 s, about aiohttp's and nginx's keep-alive timeouts


async def serve(cfg: Config) -> int:
    loop = asyncio.get_running_loop()
    validator = KeyValidator(cfg.key_prefix, cfg.keys_file)
    cache = AuthCache(cfg.cache_size, cfg.miss_cost_ms / 1000.0, validator)
    up = Upstream(cfg.upstream)
    pool = UpstreamPool(up.host, up.port, cfg.pool_size)
    metrics = Metrics(
        cache_hits=lambda: cache.hits,
        cache_misses=lambda: cache.misses,
        cache_entries=lambda: len(cache),
    )
    proxy = Proxy(cfg, metrics, cache, pool)
    metrics.in_flight = lambda: proxy.in_flight
    connections: set[ClientConnection] = set()
    listener = await loop.create_server(
        lambda: ClientConnection(proxy, connections),
        cfg.host,
        cfg.port,
        backlog=cfg.backlog,
        reuse_address=True,
    )
    port = listener.sockets[0].getsockname()[1]
    shown = "127.0.0.1" if cfg.host in ("0.0.0.0", "") else cfg.host
    print(f"reference_gateway listening on http://{shown}:{port}", flush=True)
    log.info(
        "upstream %s, cache %d keys, miss cost %g ms, delay %g ms",
        cfg.upstream,
        cfg.cache_size,
        cfg.miss_cost_ms,
        cfg.delay_ms,
    )

    def sweep() -> None:
        for conn in list(connections):
            if conn.idle:
                conn.idle_marks += 1
                if conn.idle_marks >= _IDLE_SWEEPS:
                    conn.close()
        pool.sweep(_IDLE_SWEEPS)
        timer[0] = loop.call_later(_SWEEP_S, sweep)

    timer = [loop.call_later(_SWEEP_S, sweep)]
    stop = asyncio.Event()
    received: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig.name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        await stop.wait()
        at_term = proxy.in_flight
        log.info(
            "%s: listener closed, draining %d in-flight request(s) (timeout %g s)",
            received[0],
            at_term,
            cfg.drain_timeout_s,
        )
        proxy.draining = True
        listener.close()
        t0 = loop.time()
        drained = await proxy.wait_idle(cfg.drain_timeout_s)
        left = proxy.in_flight
        # Idle keep-alive connections close now; a request still running is cut.
        for conn in list(connections):
            conn.close(abort=not conn.idle)
        await asyncio.sleep(0)  # let the transports report connection_lost
        log.info(
            "drain %s in %.3f s: %d request(s) in flight at %s, %d abandoned; exiting 0",
            "complete" if drained else "timed out",
            loop.time() - t0,
            at_term,
            received[0],
            left,
        )
    finally:
        timer[0].cancel()
        pool.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s reference_gateway %(levelname)s %(message)s",
    )
    import uvloop

    loop_factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(serve(cfg))
