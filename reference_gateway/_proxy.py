"""One request through the gateway: route, authenticate, forward, stream back.

Bodies pass through byte for byte in both directions (the upstream session does not
decompress), and each upstream chunk is written to the client as soon as it arrives,
so streaming latency is the upstream's plus one hop, never a buffer's.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from reference_gateway._auth import AuthCache
from reference_gateway._config import Config
from reference_gateway._metrics import CONTENT_TYPE_LATEST, Metrics

__all__ = ["ROUTES", "Proxy", "client_key", "error_response"]

ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/v1/chat/completions"): "chat",
    ("POST", "/v1/responses"): "responses",
    ("POST", "/v1/messages"): "messages",
    ("POST", "/v1/embeddings"): "embeddings",
    ("GET", "/v1/models"): "models",
}

# Hop-by-hop headers (RFC 9110 §7.6.1) plus the ones aiohttp recomputes per hop.
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
_AUTH = frozenset({"authorization", "x-api-key", "api-key"})
_UPSTREAM_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)
# Status label for a client that went away before its response was complete (nginx's).
_CLIENT_GONE = 499


def client_key(h: Mapping[str, str]) -> str | None:
    """The client's key from ``Authorization: Bearer``, ``x-api-key`` or ``api-key``."""
    auth = h.get("authorization")
    if auth is not None:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    for name in ("x-api-key", "api-key"):
        raw = h.get(name)
        if raw:
            return raw.strip()
    return None


_OPENAI_TYPES = {
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "not_found"),
    502: ("server_error", "bad_gateway"),
}
_ANTHROPIC_TYPES = {401: "authentication_error", 404: "not_found_error", 502: "api_error"}


def error_response(route: str, status: int, message: str) -> web.Response:
    """An error body in the shape the route's provider SDK parses (WIRE.md, Errors)."""
    if route == "messages":
        body: dict[str, object] = {
            "type": "error",
            "error": {"type": _ANTHROPIC_TYPES[status], "message": message},
        }
    else:
        etype, code = _OPENAI_TYPES[status]
        body = {"error": {"message": message, "type": etype, "param": None, "code": code}}
    return web.Response(
        status=status, body=json.dumps(body).encode(), content_type="application/json"
    )


class Proxy:
    """The request handler, with the in-flight count the drain waits on."""

    def __init__(
        self, cfg: Config, metrics: Metrics, session: aiohttp.ClientSession, cache: AuthCache
    ) -> None:
        self._cfg = cfg
        self._metrics = metrics
        self._session = session
        self._cache = cache
        self._upstream = cfg.upstream
        self._delay_s = cfg.delay_ms / 1000.0
        self.draining = False
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def wait_idle(self, timeout_s: float) -> bool:
        """True when no proxied request is in flight within ``timeout_s``."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        route = ROUTES.get((request.method, request.path))
        if route is None:
            return self._control(request)
        self.in_flight += 1
        self._idle.clear()
        self._metrics.in_flight.inc()
        status = _CLIENT_GONE
        try:
            resp, status = await self._forward(request, route)
            return resp
        finally:
            self.in_flight -= 1
            self._metrics.in_flight.dec()
            self._metrics.requests.labels(route, str(status)).inc()
            if self.in_flight == 0:
                self._idle.set()

    def _control(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method == "GET" and request.path == "/health":
            if self.draining:
                return web.json_response({"status": "draining"}, status=503)
            return web.json_response({"status": "ok"})
        if request.method == "GET" and request.path == "/metrics":
            self._metrics.auth_cache_size.set(len(self._cache))
            return web.Response(
                body=self._metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
            )
        self._metrics.requests.labels("other", "404").inc()
        return error_response("other", 404, f"no route for {request.method} {request.path}")

    def _upstream_headers(self, request: web.BaseRequest, route: str) -> CIMultiDict[str]:
        key = self._cfg.upstream_key
        out: CIMultiDict[str] = CIMultiDict()
        for name, value in request.headers.items():
            low = name.lower()
            if low in _HOP or (key is not None and low in _AUTH):
                continue
            out.add(name, value)
        if key is not None:
            if route == "messages":
                out["x-api-key"] = key
            else:
                out["Authorization"] = f"Bearer {key}"
        return out

    async def _forward(
        self, request: web.BaseRequest, route: str
    ) -> tuple[web.StreamResponse, int]:
        """The response and the status to count it under (499: client went away)."""
        key = client_key(request.headers)
        if key is None:
            return error_response(route, 401, "missing API key"), 401
        if not await self._cache.check(key):
            return error_response(route, 401, "invalid API key"), 401
        if self._delay_s > 0:
            t0 = time.monotonic()
            await asyncio.sleep(self._delay_s)
            self._metrics.added_delay.inc(time.monotonic() - t0)
            self._metrics.added_delay_count.inc()
        body = await request.read()
        url = URL(self._upstream + request.raw_path, encoded=True)
        try:
            up_cm = self._session.request(
                request.method,
                url,
                data=body if body else None,
                headers=self._upstream_headers(request, route),
                allow_redirects=False,
            )
            up = await up_cm.__aenter__()
        except _UPSTREAM_ERRORS as exc:
            reason = type(exc).__name__
            self._metrics.upstream_errors.labels(route, reason).inc()
            return error_response(route, 502, f"upstream unavailable: {reason}"), 502
        try:
            return await self._relay(request, route, up)
        finally:
            await up_cm.__aexit__(None, None, None)

    async def _relay(
        self, request: web.BaseRequest, route: str, up: aiohttp.ClientResponse
    ) -> tuple[web.StreamResponse, int]:
        resp = web.StreamResponse(status=up.status, reason=up.reason)
        for name, value in up.headers.items():
            low = name.lower()
            # Content-Length is kept: the body is relayed undecoded, so it stays exact.
            if low in _HOP and low != "content-length":
                continue
            resp.headers.add(name, value)
        if self.draining:
            resp.force_close()
        try:
            await resp.prepare(request)
        except ConnectionError:
            return resp, _CLIENT_GONE
        while True:
            try:
                chunk = await up.content.readany()
            except _UPSTREAM_ERRORS as exc:
                # Headers are gone already: the only honest signal left is a cut connection.
                self._metrics.upstream_errors.labels(route, type(exc).__name__).inc()
                if request.transport is not None:
                    request.transport.close()
                return resp, up.status
            if not chunk:
                break
            try:
                await resp.write(chunk)
            except ConnectionError:
                return resp, _CLIENT_GONE
        try:
            await resp.write_eof()
        except ConnectionError:
            return resp, _CLIENT_GONE
        return resp, up.status
