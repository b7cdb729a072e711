"""The client side: one ``asyncio.Protocol`` per client connection, parsed by httptools.

``data_received`` only feeds ``httptools.HttpRequestParser``; the parser's callbacks
collect a :class:`Request` (the body is buffered whole — LLM request bodies are small,
and a gateway that rewrites them needs them whole) and hand it to the dispatcher
(``Proxy.handle``) when the message completes. Answers go back through the methods of
:class:`ClientConnection`: :meth:`~ClientConnection.respond` for a complete local answer,
or :meth:`~ClientConnection.begin` / :meth:`~ClientConnection.send` /
:meth:`~ClientConnection.end` for a relayed one, which queue bytes until
:meth:`~ClientConnection.flush` so one upstream read becomes one client write.

HTTP/1.1 keep-alive and pipelining are supported: a request that completes while an
earlier one is still being answered waits in a queue (reading pauses meanwhile), so
answers leave in request order. HTTP/1.0 clients get close-delimited bodies when the
length is unknown. ``Expect: 100-continue`` is answered at once.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from typing import Protocol, cast

import httptools

from reference_gateway._wire import Headers, chunk, header_block, status_line

__all__ = ["MAX_BODY_BYTES", "MAX_HEAD_BYTES", "ClientConnection", "Dispatcher", "Request"]

#: Request bodies above this are answered 413 (and the connection closed).
MAX_BODY_BYTES = 32 * 1024 * 1024
#: Request line + headers above this are answered 431.
MAX_HEAD_BYTES = 64 * 1024

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_JSON = b"application/json"


class Request:
    """One complete client request as the proxy sees it."""

    __slots__ = ("body", "headers", "http10", "index", "keep_alive", "method", "path", "target")

    def __init__(
        self,
        method: str,
        target: bytes,
        headers: Headers,
        index: dict[bytes, bytes],
        body: bytes,
        keep_alive: bool,
        http10: bool,
    ) -> None:
        self.method = method
        self.target = target  # raw request-target: path and query as sent
        self.path = target.partition(b"?")[0].decode("latin-1")
        self.headers = headers  # as sent: names keep their spelling, order kept
        self.index = index  # lower-case name -> value (first occurrence)
        self.body = body
        self.keep_alive = keep_alive
        self.http10 = http10

    def header(self, name: bytes) -> bytes | None:
        """The value of header ``name`` (lower case), or None."""
        return self.index.get(name)


class Exchange(Protocol):
    """What the connection tells the request it is answering."""

    def client_gone(self) -> None: ...
    def pause_upstream(self) -> None: ...
    def resume_upstream(self) -> None: ...


class Dispatcher(Protocol):
    draining: bool

    def handle(self, request: Request, conn: ClientConnection) -> None: ...
    def bad_request(self, conn: ClientConnection, status: int, message: str) -> None: ...


class ClientConnection(asyncio.Protocol):
    """One client connection: parse, dispatch in order, frame the answers."""

    def __init__(self, dispatcher: Dispatcher, registry: set[ClientConnection]) -> None:
        self._dispatcher = dispatcher
        self._registry = registry
        self._parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.exchange: Exchange | None = None  # set by the proxy while it relays
        self._queue: deque[Request] = deque()
        self._busy = False  # a request is being answered
        self._keep_alive = True  # of the request being answered
        self._http10 = False
        self._chunked = False  # framing of the response being sent
        self._out: list[bytes] = []
        self._paused_reading = False
        self._dead = False  # parser error or oversize body: discard further input
        self._pending_error: tuple[int, str] | None = None
        self.idle_marks = 0  # incremented by the server's idle sweep, reset by traffic
        # Message being parsed.
        self._url = b""
        self._headers: Headers = []
        self._index: dict[bytes, bytes] = {}
        self._body: list[bytes] = []
        self._size = 0
        self._head_size = 0

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)
        self._registry.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._registry.discard(self)
        self.transport = None
        self._queue.clear()
        ex, self.exchange = self.exchange, None
        if ex is not None:
            ex.client_gone()

    def eof_received(self) -> bool:
        # A client's EOF ends the connection, even mid-request (as nginx and aiohttp):
        # a client that went away must not keep the upstream generating for nobody.
        return False

    def data_received(self, data: bytes) -> None:
        if self._dead:
            return
        self.idle_marks = 0
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, "protocol upgrades are not supported")
        except httptools.HttpParserError as exc:
            if not self._dead:  # a callback may have failed it already
                self._fail(400, f"malformed request: {exc}")

    def pause_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.pause_upstream()

    def resume_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.resume_upstream()

    # -- httptools callbacks ----------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._index = {}
        self._body = []
        self._size = 0
        self._head_size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        if self._head_size > MAX_HEAD_BYTES:
            self._fail(431, "request head too large")
            raise httptools.HttpParserError("head too large")
        self._headers.append((name, value))
        self._index.setdefault(name.lower(), value)

    def on_headers_complete(self) -> None:
        length = self._index.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
            self._fail(413, f"request body over {MAX_BODY_BYTES} bytes")
            raise httptools.HttpParserError("body too large")
        expect = self._index.get(b"expect")
        if (
            expect is not None
            and expect.lower() == b"100-continue"
            and not self._busy
            and self.transport is not None
        ):
            self.transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > MAX_BODY_BYTES:
            self._fail(413, f"request body over {MAX_BODY_BYTES} bytes")
            raise httptools.HttpParserError("body too large")
        self._body.append(body)

    def on_message_complete(self) -> None:
        p = self._parser
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        req = Request(
            p.get_method().decode("latin-1"),
            self._url,
            self._headers,
            self._index,
            body,
            p.should_keep_alive(),
            p.get_http_version() == "1.0",
        )
        if self._busy:
            self._queue.append(req)
            self._pause_reading()
        else:
            self._dispatch(req)

    # -- dispatch ---------------------------------------------------------------------

    def _dispatch(self, req: Request) -> None:
        self._busy = True
        self._keep_alive = req.keep_alive
        self._http10 = req.http10
        self._dispatcher.handle(req, self)

    def _fail(self, status: int, message: str) -> None:
        """Stop parsing; answer ``status`` after the requests before it, then close."""
        self._dead = True
        self._pause_reading()
        if self._busy or self._queue:
            self._pending_error = (status, message)
        else:
            self._busy = True
            self._keep_alive = False
            self._dispatcher.bad_request(self, status, message)

    def _pause_reading(self) -> None:
        if not self._paused_reading and self.transport is not None:
            self._paused_reading = True
            self.transport.pause_reading()

    def _done(self) -> None:
        """The current response is out: close, or go on with the next request."""
        self._busy = False
        self.exchange = None
        t = self.transport
        if t is None:
            return
        if not self._keep_alive:
            t.close()
            return
        if self._queue:
            # Not inline: a long pipeline of instant answers must not recurse.
            asyncio.get_running_loop().call_soon(self._next)
        elif self._pending_error is not None:
            asyncio.get_running_loop().call_soon(self._next)
        elif self._paused_reading:
            self._paused_reading = False
            t.resume_reading()

    def _next(self) -> None:
        if self.transport is None or self._busy:
            return
        if self._queue:
            self._dispatch(self._queue.popleft())
            return
        if self._pending_error is not None:
            status, message = self._pending_error
            self._pending_error = None
            self._busy = True
            self._keep_alive = False
            self._dispatcher.bad_request(self, status, message)
            return
        if self._paused_reading and not self._dead:
            self._paused_reading = False
            self.transport.resume_reading()

    # -- answering --------------------------------------------------------------------

    @property
    def closing(self) -> bool:
        """True when this response is the connection's last."""
        return not self._keep_alive or self._dispatcher.draining

    def _connection_header(self) -> bytes:
        if self.closing:
            self._keep_alive = False
            return b"connection: close\r\n"
        return b"connection: keep-alive\r\n" if self._http10 else b""

    def respond(
        self,
        status: int,
        body: bytes,
        content_type: bytes = _JSON,
        extra: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        """A complete answer the gateway makes itself (errors, health, metrics)."""
        head = b"%scontent-type: %s\r\ncontent-length: %d\r\n%s%s\r\n" % (
            status_line(status),
            content_type,
            len(body),
            header_block(extra),
            self._connection_header(),
        )
        if self.transport is not None:
            self.transport.write(head + body)
        self._done()

    def begin(self, status: int, reason: bytes, headers: Headers, length: int | None) -> None:
        """Start a relayed answer; ``length`` None = unknown (chunked, or close-delimited)."""
        framing = b""
        self._chunked = False
        if length is not None:
            framing = b"content-length: %d\r\n" % length
        elif status >= 200 and status not in (204, 304):
            if self._http10:
                self._keep_alive = False  # the end of the body is the end of the connection
            else:
                self._chunked = True
                framing = b"transfer-encoding: chunked\r\n"
        self._out.append(
            b"%s%s%s%s\r\n"
            % (
                status_line(status, reason),
                header_block(headers),
                framing,
                self._connection_header(),
            )
        )

    def send(self, data: bytes) -> None:
        """Queue body bytes (framed for the client) until :meth:`flush`."""
        if self._chunked:
            self._out.extend(chunk(data))
        else:
            self._out.append(data)

    def flush(self) -> None:
        if self._out:
            out, self._out = self._out, []
            if self.transport is not None:
                self.transport.writelines(out)

    def end(self) -> None:
        """The relayed body is complete: finish framing, write, go on."""
        if self._chunked:
            self._out.append(b"0\r\n\r\n")
        self.flush()
        self._done()

    def cut(self) -> None:
        """Abort the answer mid-body: what was relayed arrives, then the connection ends."""
        self.flush()
        self.exchange = None
        if self.transport is not None:
            self.transport.close()

    def close(self, abort: bool = False) -> None:
        if self.transport is not None:
            if abort:
                self.transport.abort()
            else:
                self.transport.close()

    @property
    def idle(self) -> bool:
        return not self._busy and not self._queue
