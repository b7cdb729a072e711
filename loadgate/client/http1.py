"""The harness's socket transport: HTTP/1.1 over kernel-timestamped connections.

Owns connections to the target, the requests' framing, and the timestamps every
latency is made from. The bytes are framed by ``httptools`` (llhttp, the C parser
uvicorn and Node use); this module does what no library does for a load
generator: it stamps every read with the time the *kernel* received it, and hands
each body piece to the request's decoder from inside the read, with that stamp.

Design points:

* **Arrival times from the kernel.** Plain ``http://`` connections are opened with
  :func:`stub_upstream.stamped.connect`: each read comes with the kernel's
  receive stamp of its last segment (``SO_TIMESTAMPNS``, converted to
  ``time.monotonic_ns``), so first byte, head, every body piece and the last byte
  are when the bytes arrived, not when the event loop got round to them
  (docs/timestamps.md). ``https://`` goes through the event loop's own TLS
  transport, stamped at read time (``"user"``): :attr:`ConnectionPool.user_reads`
  counts every read not stamped by the kernel, so the result can say so.
* Body pieces go to a :class:`ResponseSink` from llhttp's body callback, each
  with its read's arrival stamp, so a decoder needs no task switch and the read
  path does no more per chunk than that call (the decoders only queue: the
  stamps, not the moment of decoding, are what the figures are made of).
  Without a sink the body is collected into :attr:`Response.body`.
* One connection per in-flight request (no pipelining); idle connections are
  reused last-in first-out (the warmest socket first). The pool opens up to
  ``limit`` connections; requests beyond that wait for one to come free.
* **Retry rule** (as browsers do): if a request went out on a *reused*
  keep-alive connection and the connection closed before a single response byte
  arrived, the server most likely closed the idle connection as we wrote. The
  request is then sent once more on a fresh connection; nothing else is ever
  retried (a byte received means the server saw the request). The retry may
  exceed ``limit`` by one connection for a moment. :attr:`Response.retried`
  tells the caller; ``t_send`` is the retry's send time.
* Bytes after a complete response (nothing was asked for) poison the connection:
  it is closed, never reused. Informational answers (``100 Continue``) are
  skipped; a body that ends with the connection (no length, not chunked) is
  complete at EOF; a response head over 64 KiB is a protocol error.
* Responses are requested with ``accept-encoding: identity``: content must be
  compared byte for byte, and decompression would be harness work.

It implements :class:`loadgate.client.transport.Transport`; errors are that
module's :class:`HTTPError` subclasses carrying the partial :class:`Response`.

One module (over the house's 400 lines) because the pool, the connection
protocol and the retry rule share one state machine per connection; the framing
itself is httptools'.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ssl
import time
from collections.abc import Callable, Sequence
from typing import cast
from urllib.parse import urlsplit

import httptools

from loadgate.client.transport import (
    ConnectError,
    HTTPError,
    ProtocolError,
    RequestTimeout,
    ResetError,
    Response,
    ResponseSink,
)
from stub_upstream import stamped

__all__ = ["ConnectionPool"]

Clock = Callable[[], int]

_MAX_HEAD = 64 * 1024


class _StaleConnection(ResetError):
    """A reused connection closed before any response byte: retryable once."""


class _Conn(asyncio.Protocol):
    """One connection; serves one request at a time, framed by llhttp."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool
        self.clock = pool.clock
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.uses = 0
        self.resp: Response | None = None
        self.sink: ResponseSink | None = None
        self.fut: asyncio.Future[Response] | None = None
        self.deadline: float | None = None  # loop time; the pool's sweep enforces it
        self.no_body = False
        self.keep_alive = True
        self.pieces: list[bytes] = []
        self._parser = httptools.HttpResponseParser(self)
        self._t = 0  # arrival of the read being parsed
        self._head_bytes = 0  # bytes read before the head was complete
        self._head_done = False
        self._eof_body = False  # the body ends with the connection
        self._done = False  # the response completed during this read
        self._extra = False  # bytes came after the response
        self._on_piece: Callable[[bytes, int], None] = self._collect
        self._raw_headers: list[tuple[bytes, bytes]] = []

    # -- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        resp = self.resp
        if resp is not None:
            if self._head_done and self._eof_body:
                self._finish(self.clock())  # close-delimited body: the close is the end
            elif resp.bytes_in == 0 and self.uses > 0:
                self._fail(_StaleConnection("reused connection closed before the response", resp))
            else:
                what = "before the response" if resp.bytes_in == 0 else "mid-response"
                self._fail(ResetError(f"connection closed {what} ({exc or 'EOF'})", resp))
        self.pool._discard(self)

    def data_received(self, data: bytes) -> None:
        # Only a transport that cannot stamp (TLS) calls this: stamp it now.
        self.pool.user_reads += 1
        self.stamped_data_received(data, self.clock())

    def stamped_data_received(self, data: bytes, t: int) -> None:
        resp = self.resp
        if resp is None:
            if not data:
                return
            # Bytes nobody asked for: the connection's framing is lost.
            self.keep_alive = False
            if self.transport is not None:
                self.transport.abort()
            return
        resp.bytes_in += len(data)
        if not resp.t_first_byte:
            resp.t_first_byte = t
        self._t = t
        if not self._head_done:
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            bug = exc.__context__  # a callback's own exception: the sink's, unless ours
            if isinstance(exc, httptools.HttpParserCallbackError) and not isinstance(
                bug, httptools.HttpParserError | None
            ):
                self._fail(HTTPError(f"response sink raised {bug!r}", resp))
                return
            if not self._done:
                self._fail(ProtocolError(f"unparseable response: {exc}", resp))
                return
            self._extra = True  # the response was whole; what followed was not
        except Exception as exc:  # a sink bug must fail the request, not the event loop
            self._fail(HTTPError(f"response sink raised {exc!r}", resp))
            return
        if not self._head_done and self._head_bytes > _MAX_HEAD:
            self._fail(ProtocolError("response head too large", resp))
            return
        if self._done:
            self._finish(t)

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost decides what EOF meant

    # -- llhttp callbacks (called from feed_data) --------------------------------

    def on_message_begin(self) -> None:
        if self._done:
            self._extra = True  # a second response nobody asked for

    def on_header(self, name: bytes, value: bytes) -> None:
        # Kept raw: the dict is built once the head is complete (one pass, no
        # per-header decoding in a callback that runs ~13 times per response).
        self._raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        resp = self.resp
        raw = self._raw_headers
        self._raw_headers = []
        if resp is None or self._done:
            return
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            return  # informational: the real head follows
        headers: dict[str, str] = {}
        for name, value in raw:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1").strip()
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        te = headers.get("transfer-encoding", "").lower()
        if te and not te.endswith("chunked"):
            raise httptools.HttpParserError(f"unsupported transfer-encoding {te!r}")
        resp.status = status
        resp.headers = headers
        resp.t_head = self._t
        self._head_done = True
        if not self._parser.should_keep_alive():
            self.keep_alive = False
        no_body = self.no_body or status in (204, 304)
        self._eof_body = not no_body and not te and "content-length" not in headers
        if self._eof_body:
            self.keep_alive = False
        if self.sink is not None:
            self.sink.on_head(status, headers, self._t)
            self._on_piece = self.sink.on_body
        else:
            self._on_piece = self._collect
        if no_body:
            # llhttp cannot be told a HEAD answer has no body: end it here, and
            # start the next response on a fresh parser.
            self._done = True
            self._parser = httptools.HttpResponseParser(self)

    def on_body(self, body: bytes) -> None:
        if self._head_done and not self._done:
            self._on_piece(body, self._t)

    def _collect(self, body: bytes, _t: int) -> None:
        self.pieces.append(body)

    def on_message_complete(self) -> None:
        if self._head_done:
            self._done = True

    # -- request ------------------------------------------------------------------

    def send(
        self,
        wire: bytes,
        resp: Response,
        sink: ResponseSink | None,
        deadline: float | None,
        no_body: bool,
    ) -> asyncio.Future[Response]:
        loop = self.pool._loop()
        fut: asyncio.Future[Response] = loop.create_future()
        resp.reused = self.uses > 0
        if self.lost or self.transport is None or self.transport.is_closing():
            exc_type = _StaleConnection if self.uses > 0 else ResetError
            fut.set_exception(exc_type("connection closed before the request was sent", resp))
            return fut
        self.fut = fut
        self.resp = resp
        self.sink = sink
        self.no_body = no_body
        self.keep_alive = True
        self.pieces = []
        self._head_bytes = 0
        self._raw_headers = []
        self._head_done = self._done = self._extra = self._eof_body = False
        if deadline is not None:
            self.deadline = deadline
            self.pool._watch(self, deadline)
        resp.t_send = self.clock()
        self.transport.write(wire)
        return fut

    def _on_timeout(self) -> None:
        resp = self.resp
        if resp is not None:
            self._fail(RequestTimeout("request timed out", resp))

    # -- completion ---------------------------------------------------------------

    def _finish(self, t: int) -> None:
        resp, fut = self.resp, self.fut
        assert resp is not None and fut is not None
        resp.t_last_byte = t
        if self.sink is None:
            resp.body = b"".join(self.pieces)
        if self._extra:
            self.keep_alive = False  # bytes past the message: framing can't be trusted
        self._clear()
        self.uses += 1
        if not fut.done():
            fut.set_result(resp)
        if self.keep_alive and not self.lost:
            self.pool._release(self)
        elif self.transport is not None:
            self.transport.close()

    def _fail(self, exc: HTTPError) -> None:
        fut = self.fut
        self._clear()
        self.keep_alive = False
        if fut is not None and not fut.done():
            fut.set_exception(exc)
        if self.transport is not None and not self.lost:
            self.transport.abort()

    def _clear(self) -> None:
        if self.deadline is not None:
            self.deadline = None
            self.pool._timed.discard(self)
        self.resp = None
        self.sink = None
        self.fut = None
        self.pieces = []
        self._on_piece = self._collect


class ConnectionPool:
    """Keep-alive connections to one origin (``http://`` or ``https://``)."""

    def __init__(
        self,
        base_url: str,
        *,
        limit: int,
        connect_timeout_s: float,
        clock: Clock = time.monotonic_ns,
        ssl_context: ssl.SSLContext | None = None,
        force_user_stamps: bool | None = None,
    ) -> None:
        """``force_user_stamps``: stamp reads in user space even where the kernel can
        (tests of the fallback); None follows ``LOADGATE_RX_STAMPS``."""
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.host = url.hostname
        self.port = url.port or (443 if url.scheme == "https" else 80)
        default_port = self.port == (443 if url.scheme == "https" else 80)
        host_text = f"[{self.host}]" if ":" in self.host else self.host
        self._host_header = host_text if default_port else f"{host_text}:{self.port}"
        self._prefix = url.path.rstrip("/")
        self._ssl: ssl.SSLContext | None = None
        if url.scheme == "https":
            self._ssl = ssl_context or ssl.create_default_context()
        self.limit = limit
        self.connect_timeout_s = connect_timeout_s
        self.clock = clock
        self._slots = 0  # connections open, opening, or promised to a waiter
        self._conns: set[_Conn] = set()
        self._idle: list[_Conn] = []
        self._waiters: collections.deque[asyncio.Future[_Conn | None]] = collections.deque()
        self._closed = False
        self.opened = 0  # connections ever opened (diagnostics)
        self.retries = 0  # stale keep-alive retries done
        self._force_user = force_user_stamps
        # Request deadlines: one timer per pool, armed at the earliest deadline in
        # flight, instead of a timer per request (2.9 µs to arm and cancel on uvloop).
        self._timed: set[_Conn] = set()
        self._sweep: asyncio.TimerHandle | None = None
        self._sweep_at = 0.0
        #: connections whose reads are stamped in user space (TLS, or no kernel stamps)
        self.user_connections = 0
        #: reads stamped in user space on connections that could not stamp
        self.user_reads = 0

    @property
    def stamps(self) -> str:
        """``"kernel"`` when every connection so far was kernel-stamped, else ``"user"``."""
        return "user" if self.user_connections else "kernel"

    @property
    def open_connections(self) -> int:
        return len(self._conns)

    def _loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    async def request(
        self,
        method: str,
        path: str,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        *,
        sink: ResponseSink | None = None,
        timeout_s: float | None = None,
    ) -> Response:
        """Send one request and wait for its complete response.

        ``path`` is appended to the base URL's path. ``host``,
        ``content-length`` and ``accept-encoding: identity`` are added here.
        Raises :class:`ConnectError`, :class:`RequestTimeout`,
        :class:`ResetError` or :class:`ProtocolError`; any status is a response.
        """
        if self._closed:
            raise ConnectError("connection pool is closed")
        loop = self._loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        lines = "".join([f"{k}: {v}\r\n" for k, v in headers])
        wire = (
            f"{method} {self._prefix}{path} HTTP/1.1\r\nhost: {self._host_header}\r\n"
            f"accept-encoding: identity\r\ncontent-length: {len(body)}\r\n{lines}\r\n"
        ).encode("latin-1") + body
        no_body = method == "HEAD"
        conn = self._take_idle() or await self._acquire(deadline, fresh=False)
        resp = Response()
        try:
            return await conn.send(wire, resp, sink, deadline, no_body)
        except _StaleConnection:
            pass
        self.retries += 1
        conn = await self._acquire(deadline, fresh=True)
        resp = Response()
        resp.retried = True
        try:
            return await conn.send(wire, resp, sink, deadline, no_body)
        except _StaleConnection as exc:  # cannot happen on a fresh connection; be explicit
            raise ResetError(str(exc), exc.response) from None

    async def close(self) -> None:
        """Close every connection; requests in flight fail with :class:`ResetError`."""
        self._closed = True
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        while self._waiters:
            w = self._waiters.popleft()
            if not w.done():
                w.set_exception(ConnectError("connection pool closed"))
        for conn in list(self._conns):
            if conn.transport is not None:
                conn.transport.abort()
        self._idle.clear()
        await asyncio.sleep(0)  # let connection_lost callbacks run

    # -- request deadlines -----------------------------------------------------------

    def _watch(self, conn: _Conn, deadline: float) -> None:
        """``conn`` has a request in flight until ``deadline`` (loop time)."""
        self._timed.add(conn)
        if self._sweep is None or deadline < self._sweep_at:
            if self._sweep is not None:
                self._sweep.cancel()
            self._arm(deadline)

    def _arm(self, at: float) -> None:
        self._sweep_at = at
        self._sweep = self._loop().call_at(at, self._on_sweep)

    def _on_sweep(self) -> None:
        """Time out every request whose deadline has come; re-arm for the next one.

        The timer was armed for ``_sweep_at``: what was due then is due now, even
        if the loop's clock fires a timer a little early (as a per-request timer
        would have fired).
        """
        self._sweep = None
        due = max(self._sweep_at, self._loop().time())
        for conn in [c for c in self._timed if c.deadline is not None and c.deadline <= due]:
            conn._on_timeout()  # fails the request, which stops watching it
            conn.deadline = None
            self._timed.discard(conn)
        if self._timed:
            self._arm(min(c.deadline or 0.0 for c in self._timed))

    # -- slots and connections ----------------------------------------------------

    def _take_idle(self) -> _Conn | None:
        """The warmest idle connection, if any (no coroutine on the common path)."""
        idle = self._idle
        while idle:
            conn = idle.pop()
            if not conn.lost:
                return conn
        return None

    async def _acquire(self, deadline: float | None, *, fresh: bool) -> _Conn:
        if not fresh and (conn := self._take_idle()) is not None:
            return conn
        if self._slots < self.limit or fresh:
            self._slots += 1
            return await self._open(deadline)
        fut: asyncio.Future[_Conn | None] = self._loop().create_future()
        self._waiters.append(fut)
        try:
            async with asyncio.timeout_at(deadline):
                got = await fut
        except TimeoutError:
            self._unwait(fut)
            raise RequestTimeout("timed out waiting for a free connection") from None
        except BaseException:
            self._unwait(fut)
            raise
        if got is not None:
            return got
        return await self._open(deadline)  # the slot was handed over with the None

    def _unwait(self, fut: asyncio.Future[_Conn | None]) -> None:
        """Undo a wait that ended without taking what it was handed."""
        if fut.done() and not fut.cancelled() and fut.exception() is None:
            got = fut.result()
            if got is None:
                self._free_slot()
            else:
                self._release(got)
        else:
            fut.cancel()
            with contextlib.suppress(ValueError):
                self._waiters.remove(fut)

    async def _open(self, deadline: float | None) -> _Conn:
        """Open a connection in a slot the caller holds (freed again on failure)."""
        loop = self._loop()
        budget = self.connect_timeout_s
        request_limited = False
        if deadline is not None and deadline - loop.time() < budget:
            budget = max(0.0, deadline - loop.time())
            request_limited = True
        try:
            async with asyncio.timeout(budget):
                if self._ssl is None:
                    transport, proto = await stamped.connect(
                        self.host, self.port, lambda: _Conn(self), force_user=self._force_user
                    )
                    if transport.mode != "kernel":
                        self.user_connections += 1
                else:
                    _, proto = await loop.create_connection(
                        lambda: _Conn(self),
                        self.host,
                        self.port,
                        ssl=self._ssl,
                        server_hostname=self.host,
                    )
                    self.user_connections += 1
        except TimeoutError:
            self._free_slot()
            if request_limited:
                raise RequestTimeout("timed out while connecting") from None
            raise ConnectError(f"connect to {self.host}:{self.port} timed out") from None
        except (OSError, ssl.SSLError) as exc:
            self._free_slot()
            raise ConnectError(f"connect to {self.host}:{self.port}: {exc}") from None
        except BaseException:
            self._free_slot()
            raise
        conn = proto
        if self._closed:
            if conn.transport is not None:
                conn.transport.abort()
            self._free_slot()
            raise ConnectError("connection pool closed")
        self._conns.add(conn)
        self.opened += 1
        return conn

    def _release(self, conn: _Conn) -> None:
        """A connection finished a response and can serve another."""
        while self._waiters:
            w = self._waiters.popleft()
            if not w.done():
                w.set_result(conn)
                return
        self._idle.append(conn)

    def _discard(self, conn: _Conn) -> None:
        """A connection closed (called from ``connection_lost``)."""
        if conn in self._conns:
            self._conns.discard(conn)
            if conn in self._idle:
                self._idle.remove(conn)
            self._free_slot()

    def _free_slot(self) -> None:
        while self._waiters:
            w = self._waiters.popleft()
            if not w.done():
                w.set_result(None)  # the slot passes to the waiter
                return
        self._slots -= 1
