"""The upstream side: a keep-alive pool of ``asyncio.Protocol`` connections parsed by httptools.

One request at a time per connection (no upstream pipelining). The response is not
read into a buffer: ``httptools.HttpResponseParser`` calls back per head and per body
piece, and those calls go straight to the request's :class:`ResponseSink`, which writes
them to the client; ``on_read`` marks the end of one upstream read, the moment to
flush. No task is woken per chunk: a streamed token costs one parse and one write.

A connection goes back to the pool when its response completed and both sides allow
keep-alive; one the upstream closes while idle leaves the pool in ``connection_lost``.
Requests are never retried (a POST the upstream may have seen is not ours to repeat):
a connection lost before the response head is the request's 502.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol, cast

import httptools

from reference_gateway._wire import Headers

__all__ = ["ResponseSink", "UpstreamConnection", "UpstreamPool"]


class ResponseSink(Protocol):
    """Where one upstream response goes (the relay to the client)."""

    def on_head(self, status: int, reason: bytes, headers: Headers, length: int | None) -> None: ...
    def on_body(self, data: bytes) -> None: ...
    def on_read(self) -> None: ...
    def on_end(self) -> None: ...
    def on_fail(self, reason: str, after_head: bool) -> None: ...


class UpstreamConnection(asyncio.Protocol):
    """One keep-alive connection to the upstream, relaying one response at a time."""

    def __init__(self, pool: UpstreamPool) -> None:
        self._pool = pool
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.sink: ResponseSink | None = None
        self.idle_marks = 0
        self._reason = b""
        self._headers: Headers = []
        self._head_done = False
        self._interim = False
        self._complete = False
        self._eof_body = False  # body ends when the upstream closes
        self._reusable = True

    # -- use --------------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        t = self.transport
        return t is not None and not t.is_closing() and self._reusable

    def request(self, head: bytes, body: bytes, sink: ResponseSink) -> None:
        """Send one request; the response goes to ``sink``."""
        assert self.transport is not None
        self.sink = sink
        self._head_done = self._complete = self._eof_body = False
        self.idle_marks = 0
        if len(body) < 16384:
            self.transport.write(head + body)  # one segment for the common small body
        else:
            self.transport.writelines([head, body])

    def detach(self) -> None:
        """Forget the response in progress and close (the client went away or timed out)."""
        self.sink = None
        self._reusable = False
        if self.transport is not None:
            self.transport.close()

    def pause_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def close(self) -> None:
        self._reusable = False
        if self.transport is not None:
            self.transport.close()

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(
            asyncio.Transport, transport
        )  # TCP_NODELAY: uvloop and asyncio set it already

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._pool.lost(self)
        sink, self.sink = self.sink, None
        if sink is None:
            return
        if self._head_done and self._eof_body and not self._complete:
            sink.on_read()
            sink.on_end()
        else:
            sink.on_fail(type(exc).__name__ if exc else "UpstreamClosed", self._head_done)

    def data_received(self, data: bytes) -> None:
        sink = self.sink
        if sink is None:  # bytes nobody asked for: this connection cannot be trusted
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self.sink = None
            self.close()
            sink.on_read()
            sink.on_fail("HttpParserError", self._head_done)
            return
        if self._complete:
            self.sink = None
            self._pool.release(self)
            sink.on_end()
        else:
            sink.on_read()

    # -- httptools callbacks ----------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._complete:  # a second response to one request
            self._reusable = False
        self._headers = []
        self._reason = b""

    def on_status(self, reason: bytes) -> None:
        self._reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self._complete or self.sink is None:
            return
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # interim (100 Continue, 103 Early Hints): not relayed
            self._interim = True
            return
        length: int | None = None
        chunked = False
        for name, value in self._headers:
            low = name.lower()
            if low == b"content-length" and value.strip().isdigit():
                length = int(value)
            elif low == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            length = None
        elif length is None and status not in (204, 304):
            self._eof_body = True
        if not self._parser.should_keep_alive():
            self._reusable = False
        self._head_done = True
        self.sink.on_head(status, self._reason, self._headers, length)

    def on_body(self, body: bytes) -> None:
        if self.sink is not None and not self._complete:
            self.sink.on_body(body)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self._complete = True


class UpstreamPool:
    """Up to ``size`` connections to ``host:port``; idle ones are reused newest first."""

    def __init__(self, host: str, port: int, size: int, connect_timeout_s: float = 10.0) -> None:
        self._host = host
        self._port = port
        self._size = size
        self._connect_timeout_s = connect_timeout_s
        self._idle: list[UpstreamConnection] = []
        self._open = 0  # open or being opened
        self._waiters: deque[asyncio.Future[UpstreamConnection | None]] = deque()
        self._closed = False

    @property
    def open_connections(self) -> int:
        return self._open

    @property
    def idle_connections(self) -> int:
        return len(self._idle)

    def take(self) -> UpstreamConnection | None:
        """An idle connection now, or None (then :meth:`acquire`)."""
        while self._idle:
            conn = self._idle.pop()
            if conn.usable:
                return conn
        return None

    async def acquire(self) -> UpstreamConnection:
        """An idle connection, a new one, or the next one released when ``size`` are busy."""
        loop = asyncio.get_running_loop()
        while True:
            conn = self.take()
            if conn is not None:
                return conn
            if self._closed:
                raise ConnectionAbortedError("upstream pool closed")
            if self._open < self._size:
                self._open += 1
                try:
                    _, fresh = await asyncio.wait_for(
                        loop.create_connection(
                            lambda: UpstreamConnection(self), self._host, self._port
                        ),
                        self._connect_timeout_s,
                    )
                except BaseException:
                    self._open -= 1
                    self._wake(None)
                    raise
                return fresh
            waiter: asyncio.Future[UpstreamConnection | None] = loop.create_future()
            self._waiters.append(waiter)
            conn = await waiter
            if conn is not None and conn.usable:
                return conn

    def release(self, conn: UpstreamConnection) -> None:
        """The response on ``conn`` completed: keep it for the next request, or close it."""
        if not conn.usable or self._closed:
            conn.close()
        elif not self._wake(conn):
            self._idle.append(conn)

    def lost(self, conn: UpstreamConnection) -> None:
        self._open -= 1
        if conn in self._idle:
            self._idle.remove(conn)
        self._wake(None)  # a slot is free: a waiter may open a new connection

    def _wake(self, conn: UpstreamConnection | None) -> bool:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return True
        return False

    def sweep(self, max_marks: int) -> None:
        """Close connections idle through ``max_marks`` consecutive sweeps."""
        for conn in list(self._idle):
            conn.idle_marks += 1
            if conn.idle_marks >= max_marks:
                self._idle.remove(conn)
                conn.close()

    def close(self) -> None:
        self._closed = True
        for conn in self._idle:
            conn.close()
        self._idle.clear()
        while self._waiters:
            w = self._waiters.popleft()
            if not w.done():
                w.set_exception(ConnectionAbortedError("upstream pool closed"))
