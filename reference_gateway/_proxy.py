"""What the gateway does with a request: route, authenticate, delay, forward, count.

:meth:`Proxy.handle` runs in the event-loop callback that parsed the request. A request
whose key is in the auth cache and that has no ``--delay-ms`` to sleep is forwarded on
an idle upstream connection right there, with no task; a cache miss, a delay or a new
upstream connection each take one task (:meth:`Proxy._admit`, :meth:`Proxy._connect`).
With several ``--upstream`` URLs each forwarded request takes the next
:class:`Upstream` in turn (one counter: round-robin per request, not per client), each
with its own pool; with one, the turn stays 0 and the path is what it was.

The upstream head and body are built in one place, :meth:`Proxy.upstream_request`:
the client's key headers are always dropped (``--upstream-key`` is sent instead, if
given), ``--directive`` is injected into the body (:mod:`._directive`), ``x-agent-id``
is added when the client sent none (``--agent-id``), and ``content-length`` is always
computed from the body actually sent.

Tenant scoping: a key whose verdict is a :class:`Principal` may only name agents of its
own tenant in ``--agent-header`` (a missing or foreign agent is 403, never forwarded).
Revocation: ``POST /admin/keys/revoke`` (``--admin-key``) hands the key to
``revoke_hook`` — set by the server: applied locally after ``--revoke-propagation-ms``,
or published to every worker over Redis — and answers once it is handed on.
Trace rows (``--trace-dsn``): :meth:`Proxy.finished` runs exactly once per proxied
request with its route and final status and appends to the batch writer's queue
(:mod:`reference_gateway._traces`); ``GET /admin/traces?corr_id=…`` reads them back,
ClickHouse-style (tab-separated rows, an empty body when there are none).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any
from urllib.parse import parse_qs, urlsplit

from reference_gateway._auth import AuthCache, Principal, Verdict
from reference_gateway._config import Config
from reference_gateway._directive import DirectiveInjector
from reference_gateway._downstream import ClientConnection, Request
from reference_gateway._metrics import CONTENT_TYPE_LATEST, Metrics
from reference_gateway._relay import Relay
from reference_gateway._traces import TraceRow, TraceWriter
from reference_gateway._upstream import UpstreamConnection, UpstreamPool
from reference_gateway._wire import Headers, error_body, filter_headers, header_block

__all__ = ["ROUTES", "Proxy", "Upstream", "client_key"]

ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/v1/chat/completions"): "chat",
    ("POST", "/v1/responses"): "responses",
    ("POST", "/v1/messages"): "messages",
    ("POST", "/v1/embeddings"): "embeddings",
    ("GET", "/v1/models"): "models",
}

_AUTH = frozenset({b"authorization", b"x-api-key", b"api-key"})
_HEALTH_OK = json.dumps({"status": "ok"}).encode()
_HEALTH_DRAINING = json.dumps({"status": "draining"}).encode()
_METRICS_TYPE = CONTENT_TYPE_LATEST.encode()
_REVOKE_PATH = "/admin/keys/revoke"
_TSV = b"text/tab-separated-values; charset=utf-8"
#: the client's correlation id, propagated into the trace row
CORR_HEADER = b"x-loadgate-id"


def client_key(req: Request) -> str | None:
    """The client's key from ``Authorization: Bearer``, ``x-api-key`` or ``api-key``."""
    auth = req.header(b"authorization")
    if auth is not None:
        scheme, _, value = auth.partition(b" ")
        if scheme.lower() == b"bearer" and value.strip():
            return value.strip().decode("latin-1")
    for name in (b"x-api-key", b"api-key"):
        raw = req.header(name)
        if raw and raw.strip():
            return raw.strip().decode("latin-1")
    return None


class Upstream:
    """One ``--upstream``: where to connect, what to prefix, its pool and its request count."""

    __slots__ = ("host", "host_line", "label", "pool", "port", "prefix", "sent")

    def __init__(self, url: str, pool_size: int) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"--upstream must be an http:// URL, got {url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/").encode()
        self.host_line = b"host: %s\r\n" % parts.netloc.encode()
        #: the metrics label: host:port (bounded by the flags, never by traffic)
        self.label = f"{self.host}:{self.port}"
        self.pool = UpstreamPool(self.host, self.port, pool_size)
        self.sent = 0  # requests written to this upstream


class Proxy:
    """The dispatcher the client connections call, with the in-flight count the drain waits on."""

    def __init__(self, cfg: Config, metrics: Metrics, cache: AuthCache) -> None:
        self.cfg = cfg
        self.metrics = metrics
        self._cache = cache
        #: every ``--upstream``, in the order given; requests take them in turn
        self.upstreams = [Upstream(url, cfg.pool_size) for url in cfg.upstreams]
        self._turn = 0
        self._delay_s = cfg.delay_ms / 1000.0
        self._timeout_s = cfg.upstream_timeout_s
        # The client's own key never goes upstream: the provider's key is the gateway's.
        self._drop = _AUTH
        self._directive = DirectiveInjector(cfg.directive, cfg.defect_skip_directive)
        self._agent = b"x-agent-id: %s\r\n" % cfg.agent_id.encode() if cfg.agent_id else b""
        self._count_keys = cfg.defect_bad_metric
        key = (cfg.upstream_key or "").encode("latin-1")
        self._key_openai = b"authorization: Bearer %s\r\n" % key if cfg.upstream_key else b""
        self._key_anthropic = b"x-api-key: %s\r\n" % key if cfg.upstream_key else b""
        self._tasks: set[asyncio.Task[None]] = set()
        #: the trace-row writer (``--trace-dsn``), set by the server once it is connected
        self.traces: TraceWriter | None = None
        # Upstream deadlines, checked by one coarse timer instead of a timer per request
        # (a TimerHandle per request costs more than the rest of a cached-key forward).
        self._deadlines: dict[Relay, float] = {}
        self._watchdog: asyncio.TimerHandle | None = None
        self.draining = False
        self._agent_header = cfg.agent_header.encode("latin-1")
        self._leak_share = cfg.tenant_leak_share
        self._cross_tenant = 0  # cross-tenant requests seen, for the leak defect's share
        self._admin = f"Bearer {cfg.admin_key}".encode("latin-1") if cfg.admin_key else None
        #: hands a revoked key on (set by the server); None: the admin endpoint is off
        self.revoke_hook: Callable[[str], Awaitable[None]] | None = None
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    # -- Dispatcher -------------------------------------------------------------------

    def handle(self, req: Request, conn: ClientConnection) -> None:
        route = ROUTES.get((req.method, req.path))
        if route is None:
            self._control(req, conn)
            return
        self.in_flight += 1
        self._idle.clear()
        relay = Relay(self, conn, route)
        conn.exchange = relay
        if self.traces is not None:
            corr = req.header(CORR_HEADER)
            relay.corr = corr.decode("latin-1") if corr is not None else None
            relay.started = time.time()
        key = client_key(req)
        if key is None:
            relay.reject(401, "missing API key")
            return
        if self._count_keys:
            self.metrics.count_key(key)
        verdict = self._cache.lookup(key)
        if verdict is None or self._delay_s > 0:
            self._spawn(self._admit(req, relay, key, verdict))
        elif not verdict:
            relay.reject(401, "invalid API key")
        elif verdict is not True and not self._agent_allowed(req, verdict):
            relay.reject(403, "agent not in the key's tenant")
        else:
            self._forward(req, relay)

    def bad_request(self, conn: ClientConnection, status: int, message: str) -> None:
        self.metrics.count_request("other", status)
        conn.respond(status, error_body("other", status, message))

    def finished(self, relay: Relay, status: int) -> None:
        """Exactly once per proxied request, when its answer is complete or abandoned."""
        self.metrics.count_request(relay.route, status)
        if self.traces is not None:
            self.traces.add(relay.corr, relay.route, status, relay.started)
        self._deadlines.pop(relay, None)
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    def start_watchdog(self) -> None:
        """Check upstream deadlines every ``timeout / 4`` (at most 1 s): that is the lateness."""
        if self._timeout_s <= 0:
            return
        loop = asyncio.get_running_loop()
        tick = min(1.0, self._timeout_s / 4)

        def check() -> None:
            now = loop.time()
            for relay in [r for r, t in self._deadlines.items() if t <= now]:
                self._deadlines.pop(relay, None)
                relay.timed_out()
            self._watchdog = loop.call_later(tick, check)

        self._watchdog = loop.call_later(tick, check)

    def stop_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    async def wait_idle(self, timeout_s: float) -> bool:
        """True when no proxied request is in flight within ``timeout_s``."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    # -- the request's way ------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _agent_allowed(self, req: Request, principal: Principal) -> bool:
        agent = req.header(self._agent_header)
        if agent is not None and agent in principal.agents:
            return True
        if self._leak_share > 0:
            # The defect: every 1/share-th cross-tenant request is admitted (deterministic).
            n = self._cross_tenant = self._cross_tenant + 1
            return int(n * self._leak_share) > int((n - 1) * self._leak_share)
        return False

    async def _admit(self, req: Request, relay: Relay, key: str, verdict: Verdict | None) -> None:
        if verdict is None:
            verdict = await self._cache.resolve(key)
        if relay.gone:
            return
        if not verdict:
            relay.reject(401, "invalid API key")
            return
        if verdict is not True and not self._agent_allowed(req, verdict):
            relay.reject(403, "agent not in the key's tenant")
            return
        if self._delay_s > 0:
            t0 = time.monotonic()
            await asyncio.sleep(self._delay_s)
            self.metrics.added_delay_s += time.monotonic() - t0
            self.metrics.added_delay_count += 1
            if relay.gone:
                return
        self._forward(req, relay)

    def upstream_request(
        self, req: Request, route: str, upstream: Upstream | None = None
    ) -> tuple[bytes, bytes]:
        """The head and body for ``req`` sent to ``upstream`` (default: the first)."""
        up = upstream or self.upstreams[0]
        body = self._directive.apply(route, req.body) if self._directive.text else req.body
        headers: Headers = filter_headers(req.headers, self._drop)
        key = self._key_anthropic if route == "messages" else self._key_openai
        if self._agent and req.header(b"x-agent-id") is None:
            key += self._agent
        length = b"content-length: %d\r\n" % len(body) if body or req.method == "POST" else b""
        head = b"%s %s%s HTTP/1.1\r\n%s%s%s%s\r\n" % (
            req.method.encode(),
            up.prefix,
            req.target,
            up.host_line,
            header_block(headers),
            key,
            length,
        )
        return head, body

    def _forward(self, req: Request, relay: Relay) -> None:
        # Round-robin per request: with one upstream the turn stays 0.
        turn = self._turn
        target = self.upstreams[turn]
        self._turn = turn + 1 if turn + 1 < len(self.upstreams) else 0
        head, body = self.upstream_request(req, relay.route, target)
        up = target.pool.take()
        if up is None:
            self._spawn(self._connect(head, body, relay, target))
        else:
            self._send(relay, up, head, body, target)

    def _send(
        self, relay: Relay, up: UpstreamConnection, head: bytes, body: bytes, target: Upstream
    ) -> None:
        if self._timeout_s > 0:
            self._deadlines[relay] = asyncio.get_running_loop().time() + self._timeout_s
        target.sent += 1
        relay.send(up, head, body)

    async def _connect(self, head: bytes, body: bytes, relay: Relay, target: Upstream) -> None:
        try:
            up = await target.pool.acquire()
        except TimeoutError:
            self.metrics.count_upstream_error(relay.route, "TimeoutError")
            relay.reject(504, "upstream connect timed out")
            return
        except OSError as exc:
            reason = type(exc).__name__
            self.metrics.count_upstream_error(relay.route, reason)
            relay.reject(502, f"upstream unavailable: {reason}")
            return
        if relay.gone:
            target.pool.release(up)
            return
        self._send(relay, up, head, body, target)

    # -- the gateway's own endpoints --------------------------------------------------

    def _control(self, req: Request, conn: ClientConnection) -> None:
        if req.method == "GET" and req.path == "/health":
            if self.draining:
                conn.respond(503, _HEALTH_DRAINING)
            else:
                conn.respond(200, _HEALTH_OK)
            return
        if req.method == "GET" and req.path == "/metrics":
            conn.respond(200, self.metrics.exposition(), _METRICS_TYPE)
            return
        if req.method == "POST" and req.path == _REVOKE_PATH and self.revoke_hook is not None:
            self._spawn(self._revoke(req, conn, self.revoke_hook))
            return
        if req.method == "GET" and req.path == "/admin/traces" and self.traces is not None:
            self._spawn(self._trace_rows(req, conn, self.traces))
            return
        self.metrics.count_request("other", 404)
        conn.respond(404, error_body("other", 404, f"no route for {req.method} {req.path}"))

    async def _revoke(
        self, req: Request, conn: ClientConnection, hook: Callable[[str], Awaitable[None]]
    ) -> None:
        if self._admin is None or req.header(b"authorization") != self._admin:
            self.metrics.count_request("admin", 401)
            conn.respond(401, error_body("other", 401, "admin key required"))
            return
        try:
            key = json.loads(req.body)["key"]
        except (ValueError, KeyError, TypeError):
            key = None
        if not isinstance(key, str) or not key:
            self.metrics.count_request("admin", 400)
            conn.respond(400, error_body("other", 400, 'body must be {"key": "<key>"}'))
            return
        await hook(key)
        self.metrics.count_request("admin", 200)
        conn.respond(200, json.dumps({"revoked": True}).encode())

    async def _trace_rows(self, req: Request, conn: ClientConnection, traces: TraceWriter) -> None:
        """``GET /admin/traces?corr_id=…``: the rows, one tab-separated line each."""
        query = parse_qs(req.target.partition(b"?")[2].decode("latin-1"))
        ids = query.get("corr_id")
        if not ids:
            conn.respond(400, error_body("other", 400, "corr_id query parameter required"))
            return
        try:
            rows = await traces.lookup(ids[0])
        except Exception as exc:  # the database's failure is the answer, not a crash
            conn.respond(503, error_body("other", 503, f"trace store: {type(exc).__name__}"))
            return
        conn.respond(200, b"".join(_tsv_line(r) for r in rows), _TSV)


def _tsv_line(row: TraceRow) -> bytes:
    corr, route, status, started, finished = row
    cells = (corr or "", route, str(status), started.isoformat(), finished.isoformat())
    return ("\t".join(cells) + "\n").encode()
