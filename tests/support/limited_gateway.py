"""A test gateway with a known capacity: it serves at most K requests at once.

Every request (except ``/health``) takes a slot of an ``asyncio.Semaphore(K)`` for
its whole exchange with the upstream — request, and the response streamed back
chunk by chunk — and the rest queue for a slot. So a closed-loop load above K
waits about one upstream service time per request: the proxy overhead jumps from
the pass-through cost to the stub's service time, and a sweep's knee is K.

Run it as the gateway under test (``gateway.kind = "command"``)::

    python tests/support/limited_gateway.py --upstream {stub_url} --port {port} --limit 4

It prints ``limited_gateway listening on <url>`` when ready and, on SIGTERM,
``limited_gateway max_inflight=<n> served=<n>``: the most requests it ever had in
service at once, which a test can check against K.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import AsyncIterator, Sequence

import aiohttp
from aiohttp import web

__all__ = ["main", "make_app", "serve"]

# Hop-by-hop headers (RFC 9110 §7.6.1) and the framing ones aiohttp recomputes.
_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)

_SESSION = web.AppKey("session", aiohttp.ClientSession)


class _Stats:
    def __init__(self, limit: int) -> None:
        self.slots = asyncio.Semaphore(limit)
        self.inflight = 0
        self.max_inflight = 0
        self.served = 0


def make_app(upstream: str, limit: int) -> web.Application:
    """The proxy app: forwards every path to ``upstream``, ``limit`` exchanges at a time."""
    upstream = upstream.rstrip("/")
    stats = _Stats(limit)
    app = web.Application()

    async def session_ctx(app: web.Application) -> AsyncIterator[None]:
        app[_SESSION] = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=120),
            auto_decompress=False,
        )
        yield
        await app[_SESSION].close()
        print(
            f"limited_gateway max_inflight={stats.max_inflight} served={stats.served}",
            flush=True,
        )

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def proxy(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        async with stats.slots:
            stats.inflight += 1
            stats.max_inflight = max(stats.max_inflight, stats.inflight)
            try:
                async with app[_SESSION].request(
                    request.method, upstream + request.path_qs, headers=headers, data=body
                ) as up:
                    resp = web.StreamResponse(
                        status=up.status,
                        headers={k: v for k, v in up.headers.items() if k.lower() not in _HOP},
                    )
                    await resp.prepare(request)
                    async for chunk in up.content.iter_any():
                        await resp.write(chunk)
                    await resp.write_eof()
                    stats.served += 1
                    return resp
            finally:
                stats.inflight -= 1

    app.cleanup_ctx.append(session_ctx)
    app.router.add_get("/health", health)
    app.router.add_route("*", "/{tail:.*}", proxy)
    return app


async def serve(upstream: str, port: int, limit: int) -> None:
    """Serve until SIGTERM/SIGINT, then finish the requests in flight (5 s at most)."""
    runner = web.AppRunner(make_app(upstream, limit), access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    host, bound = runner.addresses[0][:2]
    print(f"limited_gateway listening on http://{host}:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A gateway that serves K requests at once.")
    parser.add_argument("--upstream", required=True, help="the stub's base URL")
    parser.add_argument("--port", type=int, default=0, help="port to bind (0: any free port)")
    parser.add_argument("--limit", type=int, required=True, help="K: requests served at once")
    args = parser.parse_args(argv)
    if args.limit < 1:
        parser.error("--limit must be at least 1")
    asyncio.run(serve(args.upstream, args.port, args.limit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
