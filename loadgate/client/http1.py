"""A lean HTTP/1.1 client on ``asyncio.Protocol``: the harness's socket transport.

Owns connections to the target, request framing and response framing
(Content-Length, chunked, close-delimited), and the timestamps every latency is
made from. A general-purpose client (aiohttp) costs about a millisecond per
request of task wake-ups and buffering; the harness floor must be far below the
gateway overhead it measures (issue 3), hence this module.

Design points:

* **Timestamps are taken in ``data_received``**, before any parsing: first
  byte, head complete, every body piece and the last byte. That is the closest
  user space gets to the kernel's arrival time; a timestamp taken after the
  awaiting task wakes up would add the event loop's scheduling delay.
* Body pieces go to a :class:`ResponseSink` synchronously from
  ``data_received`` (with their arrival time), so an SSE decoder runs without a
  task switch per read. Without a sink the body is collected into
  :attr:`Response.body`.
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
* Responses are requested with ``accept-encoding: identity``: content must be
  compared byte for byte, and decompression would be harness work.

It implements :class:`loadgate.client.transport.Transport`; errors are that
module's :class:`HTTPError` subclasses carrying the partial :class:`Response`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from typing import cast
from urllib.parse import urlsplit

from loadgate.client.transport import (
    ConnectError,
    HTTPError,
    ProtocolError,
    RequestTimeout,
    ResetError,
    Response,
    ResponseSink,
)

__all__ = ["ChunkedDecoder", "ConnectionPool"]

Clock = Callable[[], int]

_MAX_HEAD = 64 * 1024
_MAX_LINE = 8 * 1024

# response framing states
_HEAD, _LENGTH, _CHUNKED, _EOF = range(4)
# chunked decoder states
_SIZE, _DATA, _DATA_END, _TRAILER, _DONE = range(5)


class _StaleConnection(ResetError):
    """A reused connection closed before any response byte: retryable once."""


class ChunkedDecoder:
    """Incremental ``Transfer-Encoding: chunked`` decoder.

    :meth:`feed` returns the data pieces a read contains (slices, no copying of
    the whole stream); ``done`` turns true after the last chunk and trailers, and
    ``extra`` then holds any bytes after the message. Raises ``ValueError`` on
    bad framing.
    """

    __slots__ = ("_left", "_line", "_state", "extra")

    def __init__(self) -> None:
        self._state = _SIZE
        self._line = b""
        self._left = 0
        self.extra = b""

    @property
    def done(self) -> bool:
        return self._state == _DONE

    def feed(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        pos = 0
        n = len(data)
        while pos < n:
            state = self._state
            if state == _DATA:
                take = min(self._left, n - pos)
                out.append(data if take == n else data[pos : pos + take])
                pos += take
                self._left -= take
                if self._left == 0:
                    self._state = _DATA_END
                continue
            if state == _DONE:
                self.extra = data[pos:]
                break
            end = data.find(b"\n", pos)
            if end < 0:
                self._line += data[pos:]
                if len(self._line) > _MAX_LINE:
                    raise ValueError("chunk framing line too long")
                break
            line = self._line + data[pos:end]
            self._line = b""
            pos = end + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if state == _SIZE:
                size_text = line.split(b";", 1)[0].strip()
                if not size_text or size_text.strip(b"0123456789abcdefABCDEF"):
                    raise ValueError(f"bad chunk size {line[:40]!r}")
                size = int(size_text, 16)
                if size == 0:
                    self._state = _TRAILER
                else:
                    self._left = size
                    self._state = _DATA
            elif state == _DATA_END:
                if line:
                    raise ValueError("chunk data not followed by CRLF")
                self._state = _SIZE
            elif not line:  # _TRAILER: an empty line ends the message
                self._state = _DONE
                self.extra = data[pos:]
                break
        return out


class _Conn(asyncio.Protocol):
    """One connection; serves one request at a time."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool
        self.clock = pool.clock
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.uses = 0
        self.resp: Response | None = None
        self.sink: ResponseSink | None = None
        self.fut: asyncio.Future[Response] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.no_body = False
        self.mode = _HEAD
        self.head_buf = b""
        self.remaining = 0
        self.chunked: ChunkedDecoder | None = None
        self.keep_alive = True
        self.pieces: list[bytes] = []

    # -- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Not TCP, or a socket wrapper that cannot set options: nothing to tune.
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        resp = self.resp
        if resp is not None:
            if self.mode == _EOF:
                self._finish(self.clock())  # close-delimited body: the close is the end
            elif resp.bytes_in == 0 and self.uses > 0:
                self._fail(_StaleConnection("reused connection closed before the response", resp))
            else:
                what = "before the response" if resp.bytes_in == 0 else "mid-response"
                self._fail(ResetError(f"connection closed {what} ({exc or 'EOF'})", resp))
        self.pool._discard(self)

    def data_received(self, data: bytes) -> None:
        t = self.clock()
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
        try:
            if self.mode == _HEAD:
                rest = self._read_head(data, t)
                if rest is None or self.resp is None:
                    return
                data = rest
            self._read_body(data, t)
        except ValueError as exc:
            self._fail(ProtocolError(str(exc), resp))
        except Exception as exc:  # a sink bug must fail the request, not the event loop
            self._fail(HTTPError(f"response sink raised {exc!r}", resp))

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost decides what EOF meant

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
        self.mode = _HEAD
        self.keep_alive = True
        self.pieces = []
        if deadline is not None:
            self.timer = loop.call_at(deadline, self._on_timeout)
        resp.t_send = self.clock()
        self.transport.write(wire)
        return fut

    def _on_timeout(self) -> None:
        self.timer = None
        resp = self.resp
        if resp is not None:
            self._fail(RequestTimeout("request timed out", resp))

    # -- response framing ---------------------------------------------------------

    def _read_head(self, data: bytes, t: int) -> bytes | None:
        """Parse the head if complete; return the bytes after it, or None to wait."""
        while True:
            buf = self.head_buf + data if self.head_buf else data
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > _MAX_HEAD:
                    raise ValueError("response head too large")
                self.head_buf = buf
                return None
            self.head_buf = b""
            status = self._parse_head(buf[:end])
            data = buf[end + 4 :]
            if 100 <= status < 200 and status != 101:
                continue  # informational (100 Continue): the real head follows
            assert self.resp is not None
            self.resp.t_head = t
            if self.sink is not None:
                self.sink.on_head(status, self.resp.headers, t)
            if self.mode == _LENGTH and self.remaining == 0:
                self._finish(t, data)
                return None
            return data

    def _parse_head(self, head: bytes) -> int:
        resp = self.resp
        assert resp is not None
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or len(parts[1]) != 3:
            raise ValueError(f"bad status line {lines[0][:60]!r}")
        status = int(parts[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            colon = line.find(b":")
            if colon <= 0:
                raise ValueError(f"bad header line {line[:60]!r}")
            name = line[:colon].strip().lower().decode("latin-1")
            value = line[colon + 1 :].strip().decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        resp.status = status
        resp.headers = headers
        conn_hdr = headers.get("connection", "").lower()
        if parts[0] == b"HTTP/1.0":
            self.keep_alive = "keep-alive" in conn_hdr
        elif "close" in conn_hdr:
            self.keep_alive = False
        te = headers.get("transfer-encoding", "").lower()
        if self.no_body or status in (204, 304) or 100 <= status < 200:
            self.mode, self.remaining = _LENGTH, 0
        elif te:
            if not te.endswith("chunked"):
                raise ValueError(f"unsupported transfer-encoding {te!r}")
            self.mode = _CHUNKED
            self.chunked = ChunkedDecoder()
        elif "content-length" in headers:
            length = int(headers["content-length"].split(",")[0])
            if length < 0:
                raise ValueError("negative content-length")
            self.mode, self.remaining = _LENGTH, length
        else:
            self.mode = _EOF
            self.keep_alive = False
        return status

    def _read_body(self, data: bytes, t: int) -> None:
        if not data:
            return
        mode = self.mode
        if mode == _LENGTH:
            left = self.remaining
            if len(data) >= left:
                self._deliver(data[:left] if len(data) > left else data, t)
                self._finish(t, data[left:])
            else:
                self.remaining = left - len(data)
                self._deliver(data, t)
        elif mode == _CHUNKED:
            dec = self.chunked
            assert dec is not None
            pieces = dec.feed(data)
            if pieces:
                self._deliver(pieces[0] if len(pieces) == 1 else b"".join(pieces), t)
            if dec.done:
                self._finish(t, dec.extra)
        else:
            self._deliver(data, t)

    def _deliver(self, data: bytes, t: int) -> None:
        if not data:
            return
        if self.sink is not None:
            self.sink.on_body(data, t)
        else:
            self.pieces.append(data)

    def _finish(self, t: int, extra: bytes = b"") -> None:
        resp, fut = self.resp, self.fut
        assert resp is not None and fut is not None
        resp.t_last_byte = t
        if self.sink is None:
            resp.body = b"".join(self.pieces)
        self._clear()
        self.uses += 1
        if extra:
            self.keep_alive = False  # bytes past the message: framing can't be trusted
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
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.resp = None
        self.sink = None
        self.fut = None
        self.pieces = []


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
    ) -> None:
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
        conn = await self._acquire(deadline, fresh=False)
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
        while self._waiters:
            w = self._waiters.popleft()
            if not w.done():
                w.set_exception(ConnectError("connection pool closed"))
        for conn in list(self._conns):
            if conn.transport is not None:
                conn.transport.abort()
        self._idle.clear()
        await asyncio.sleep(0)  # let connection_lost callbacks run

    # -- slots and connections ----------------------------------------------------

    async def _acquire(self, deadline: float | None, *, fresh: bool) -> _Conn:
        if not fresh:
            idle = self._idle
            while idle:
                conn = idle.pop()
                if not conn.lost:
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
                _, proto = await loop.create_connection(
                    lambda: _Conn(self),
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self._ssl is not None else None,
                )
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
