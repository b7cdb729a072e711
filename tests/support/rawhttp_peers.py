"""Byte-level HTTP/1.1 peers for the reference gateway's tests: a scripted upstream, a raw client.

The gateway's framing is what is under test, so neither side uses an HTTP library:
the upstream reads requests with ``asyncio`` streams and writes whatever a test
scripts (chunks, early closes, no framing at all); the client sends exact bytes and
reads responses with :func:`read_response`, which reports the framing it saw.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

__all__ = [
    "RawRequest",
    "RawResponse",
    "RawUpstream",
    "chunked",
    "raw_request",
    "read_request",
    "read_response",
    "upstream",
]


@dataclass
class RawRequest:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n.lower() == name), None)

    def names(self) -> set[str]:
        return {n.lower() for n, _ in self.headers}


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    framing: str  # "length" | "chunked" | "close" | "none"
    complete: bool = True  # False: the connection ended before the framing said so

    def header(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n.lower() == name), None)


def _head(raw: bytes) -> tuple[str, list[tuple[str, str]]]:
    lines = raw.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    return lines[0], headers


async def read_request(reader: asyncio.StreamReader) -> RawRequest | None:
    """The next request (Content-Length bodies only: the gateway always sends one), or None."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    line, headers = _head(raw)
    method, target, _ = line.split(" ", 2)
    length = next((int(v) for n, v in headers if n.lower() == "content-length"), 0)
    body = await reader.readexactly(length) if length else b""
    return RawRequest(method, target, headers, body)


async def read_response(reader: asyncio.StreamReader, head_only: bool = False) -> RawResponse:
    """One response; interim 1xx responses are skipped."""
    while True:
        line, headers = _head(await reader.readuntil(b"\r\n\r\n"))
        status = int(line.split(" ", 2)[1])
        if not 100 <= status < 200:
            break
    resp = RawResponse(status, headers, b"", "none")
    te = (resp.header("transfer-encoding") or "").lower()
    length = resp.header("content-length")
    if head_only:
        resp.framing = "chunked" if "chunked" in te else ("length" if length else "close")
        return resp
    try:
        if "chunked" in te:
            resp.framing = "chunked"
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                data = await reader.readexactly(size + 2)
                if size == 0:
                    break
                resp.body += data[:-2]
        elif length is not None:
            resp.framing = "length"
            resp.body = await reader.readexactly(int(length))
        elif status not in (204, 304):
            resp.framing = "close"
            resp.body = await reader.read()
    except asyncio.IncompleteReadError as exc:
        resp.body += exc.partial
        resp.complete = False
    return resp


async def read_chunk(reader: asyncio.StreamReader) -> bytes:
    """The next chunk of a chunked body (b"" for the last)."""
    size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
    return (await reader.readexactly(size + 2))[:-2]


def chunked(*parts: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


def raw_request(
    method: str,
    target: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    version: str = "1.1",
) -> bytes:
    h = {"Host": "gw", "Authorization": "Bearer sk-lg-test", **(headers or {})}
    if body or method == "POST":
        h.setdefault("Content-Length", str(len(body)))
    lines = "".join(f"{k}: {v}\r\n" for k, v in h.items())
    return f"{method} {target} HTTP/{version}\r\n{lines}\r\n".encode() + body


Handler = Callable[[RawRequest, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]


async def echo(req: RawRequest, _r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
    """200 with the request body as the response body (Content-Length framing)."""
    w.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Up: 1\r\n\r\n" % len(req.body) + req.body)
    await w.drain()
    return True


@dataclass
class RawUpstream:
    """A scripted upstream: ``handler`` answers each request; False ends the connection."""

    handler: Handler = echo
    port: int = 0
    accepted: int = 0
    requests: list[RawRequest] = field(default_factory=list)
    closed_by_peer: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    open_now: int = 0
    max_open: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.open_now += 1
        self.max_open = max(self.max_open, self.open_now)
        try:
            while (req := await read_request(reader)) is not None:
                self.requests.append(req)
                if not await self.handler(req, reader, writer):
                    break
            else:
                self.closed_by_peer.set()
        except ConnectionError:
            self.closed_by_peer.set()
        finally:
            self.open_now -= 1
            writer.close()


@asynccontextmanager
async def upstream(handler: Handler = echo) -> AsyncIterator[RawUpstream]:
    up = RawUpstream(handler)
    server = await asyncio.start_server(up.serve, "127.0.0.1", 0)
    up.port = server.sockets[0].getsockname()[1]
    try:
        yield up
    finally:
        up.release.set()
        server.close()
