"""A small in-process reverse proxy that injects one known defect.

Integration tests put it between the client and an upstream (the stub) to check
that each defect is reported in its class and nothing else is:

* ``none``     — plain pass-through;
* ``delay``    — wait ``delay_ms`` before forwarding each request (a gateway's
  known overhead);
* ``drop``     — drop the SSE event carrying content token 2 of each stream
  (→ ``missing_tokens``);
* ``truncate`` — end each stream cleanly, but before its terminator event; cut
  non-stream bodies in half with a matching Content-Length (→ ``truncated``);
* ``swap``     — give the first two requests that overlap each other's
  response (→ ``cross_talk`` on both), then pass through;
* ``history``  — drop the last word of the first assistant message a request
  resends (a multi-turn session's history; → ``history_mismatch``).

Streams are re-framed (the proxy's own chunked encoding), as real gateways do.
Binds 127.0.0.1 port 0; use as ``async with DefectProxy(upstream, mode) as p:``.
"""

from __future__ import annotations

import asyncio
import json
import re
from types import TracebackType

import aiohttp
from aiohttp import web

from stub_upstream import content

__all__ = ["MODES", "DefectProxy"]

MODES = ("none", "delay", "drop", "truncate", "swap", "history")
_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "host",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
}
_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")
_TERMINATORS = (b"[DONE]", b'"type":"message_stop"', b'"type":"response.completed"')


class DefectProxy:
    def __init__(self, upstream: str, mode: str = "none", *, delay_ms: float = 0.0) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        self.upstream = upstream.rstrip("/")
        self.mode = mode
        self.delay_s = delay_ms / 1000.0
        self.url = ""
        self.dropped = 0  # events dropped (drop mode)
        self.truncated = 0  # responses cut (truncate mode)
        self.swapped = 0  # responses given to the wrong request (swap mode)
        self.rewritten = 0  # requests whose history was cut (history mode)
        self._swap_pending: tuple[asyncio.Future[_Full], _Full] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.ServerRunner | None = None

    async def __aenter__(self) -> DefectProxy:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        server = web.Server(self._handle)
        self._runner = web.ServerRunner(server, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    # -- handling -----------------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        body = await request.read()
        if self.mode == "history":
            body = self._cut_history(body)
        if self.mode == "delay":
            await asyncio.sleep(self.delay_s)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        assert self._session is not None
        async with self._session.request(
            request.method, self.upstream + request.path_qs, headers=headers, data=body
        ) as up:
            out_headers = {k: v for k, v in up.headers.items() if k.lower() not in _HOP}
            is_sse = up.headers.get("content-type", "").startswith("text/event-stream")
            if self.mode == "swap" and self.swapped < 2:
                other = await self._swap(_Full(up.status, out_headers, await up.read()))
                return web.Response(status=other.status, headers=other.headers, body=other.body)
            if not is_sse:
                data = await up.read()
                if self.mode == "truncate" and up.status == 200:
                    self.truncated += 1
                    data = data[: len(data) // 2]
                return web.Response(status=up.status, headers=out_headers, body=data)
            resp = web.StreamResponse(status=up.status, headers=out_headers)
            await resp.prepare(request)
            drop = None
            if self.mode == "drop":
                cid = content.find_corr_id(body)
                if cid is not None:
                    drop = json.dumps(content.token(cid, 2)).encode()
            buf = b""
            async for piece in up.content.iter_any():
                buf += piece
                events = _EVENT_END.split(buf)
                seps = _EVENT_END.findall(buf)
                buf = events.pop()
                for ev, sep in zip(events, seps, strict=True):
                    if drop is not None and drop in ev:
                        drop = None
                        self.dropped += 1
                        continue
                    if self.mode == "truncate" and any(t in ev for t in _TERMINATORS):
                        self.truncated += 1
                        await resp.write_eof()
                        return resp
                    await resp.write(ev + sep)
            if buf:
                await resp.write(buf)
            await resp.write_eof()
            return resp

    def _cut_history(self, body: bytes) -> bytes:
        try:
            doc = json.loads(body)
        except ValueError:
            return body
        for msg in doc.get("messages", []) if isinstance(doc, dict) else []:
            if msg.get("role") == "assistant" and isinstance(msg.get("content"), str):
                msg["content"] = msg["content"].rsplit(" ", 1)[0]
                self.rewritten += 1
                return json.dumps(doc).encode()
        return body

    async def _swap(self, mine: _Full) -> _Full:
        """Pair this response with the next one to arrive; each gets the other's."""
        if self._swap_pending is None:
            fut: asyncio.Future[_Full] = asyncio.get_running_loop().create_future()
            self._swap_pending = (fut, mine)
            return await fut
        fut, other = self._swap_pending
        self._swap_pending = None
        self.swapped += 2
        fut.set_result(mine)
        return other


class _Full:
    """A fully read upstream response (swap mode re-sends it elsewhere)."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body
