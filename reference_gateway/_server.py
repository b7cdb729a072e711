"""Process lifecycle: bind, announce the port, serve, drain on SIGTERM, exit 0.

Drain order: stop accepting (close the listener), mark responses
``Connection: close`` and ``/health`` 503, wait for in-flight requests (streams
included) up to ``--drain-timeout-s``, then close the remaining connections and
the upstream pool. Every step is logged on stderr.

Single process by design: Prometheus counters live in this process, so one
``/metrics`` scrape sees every request; a multi-process variant would need
prometheus-client's multiprocess mode and is not needed to saturate loopback tests.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Sequence

import aiohttp
from aiohttp import web

from reference_gateway._auth import AuthCache, KeyValidator
from reference_gateway._config import Config, parse_args
from reference_gateway._metrics import Metrics
from reference_gateway._proxy import Proxy

__all__ = ["main", "serve"]

log = logging.getLogger("reference_gateway")


def _upstream_session(cfg: Config) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=cfg.pool_size, limit_per_host=0, keepalive_timeout=75.0, ttl_dns_cache=300
    )
    return aiohttp.ClientSession(
        connector=connector,
        # Pass-through: never decode bodies, never add headers the client did not send.
        auto_decompress=False,
        skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=cfg.upstream_timeout_s, sock_connect=10.0),
        trust_env=False,
    )


async def serve(cfg: Config) -> int:
    loop = asyncio.get_running_loop()
    metrics = Metrics()
    cache = AuthCache(
        cfg.cache_size,
        cfg.miss_cost_ms / 1000.0,
        KeyValidator(cfg.key_prefix, cfg.keys_file),
        on_hit=metrics.cache_hits.inc,
        on_miss=metrics.cache_misses.inc,
    )
    session = _upstream_session(cfg)
    proxy = Proxy(cfg, metrics, session, cache)
    server = web.Server(proxy.handle, access_log=None)
    listener = await loop.create_server(
        server, cfg.host, cfg.port, backlog=cfg.backlog, reuse_address=True
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
        # Idle keep-alive connections close now; a handler still running is cancelled.
        await server.shutdown(timeout=1.0)
        log.info(
            "drain %s in %.3f s: %d request(s) in flight at %s, %d abandoned; exiting 0",
            "complete" if drained else "timed out",
            loop.time() - t0,
            at_term,
            received[0],
            left,
        )
    finally:
        await session.close()
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
