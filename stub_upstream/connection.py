"""One client connection: an ``asyncio.Protocol`` feeding :mod:`stub_upstream.h1`
and running the worker's handler for each request, strictly in order.

Why not aiohttp's server: its parser, request object and per-request task cost
more than the stub's whole answer. Here the transport is a
:class:`~stub_upstream.stamped.StampedTransport`: each read arrives in
``stamped_data_received`` with the kernel's arrival stamp, which becomes the
``t_recv`` of the requests that read completed, and the handler coroutine is
stepped directly (no task): an answer that is due at once is made before the
callback returns (and sent at the end of the loop turn: ``flush``, below). A
handler that waits (a deadline, a stream) resumes from its future's
done-callback. Only ``asyncio.Future`` awaits are supported in the
handler (it uses nothing else; ``current_task()`` is ``None`` inside it).

Read timeouts (:class:`Limits`, checked by the worker's sweep through
:meth:`Connection.check_timeouts`): while the connection waits for its client,
a head must complete within ``head_timeout_ns`` of its first byte and a body
within ``body_timeout_ns`` of its head (else 408, then close), and an idle
keep-alive connection is closed after ``idle_timeout_ns``. The clock does not
run while the stub itself is answering.

``flush``: the handler may hold a keep-alive answer until the end of the loop
turn (``Worker.flush`` says why); the connection calls it before anything it
writes or closes itself, so bytes leave in order and no held answer is dropped.

Pipelined requests queue and are answered one after the other. Writing follows
the transport's flow control: while it is paused no next request starts and a
stream holds its due events (they go out in one write on resume).
"""

from __future__ import annotations

import asyncio
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, cast

from stub_upstream import wire
from stub_upstream.h1 import BODY, HEAD, IDLE, Request, RequestParser
from stub_upstream.rawhttp import Written, head
from stub_upstream.ticker import Ticker, Timed

__all__ = ["Connection", "Handler", "Limits"]

Handler = Callable[[Request], Coroutine[Any, Any, Written]]

_LINGER_S = 2.0  # after an error answer: how long to drain the client's input
_QUEUE_HIGH = 64  # pipelined requests waiting before reading pauses
_QUEUE_LOW = 8
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-connection input limits (from StubConfig)."""

    max_body: int
    head_timeout_ns: int = 10 * _S
    body_timeout_ns: int = 30 * _S
    idle_timeout_ns: int = 75 * _S


class Connection(asyncio.Protocol):
    """Per-connection protocol; ``conns`` tracks live ones for shutdown and timeouts."""

    def __init__(
        self,
        handler: Handler,
        ticker: Ticker,
        limits: Limits,
        conns: set[Connection],
        flush: Callable[[], None] = lambda: None,
    ) -> None:
        self._handler = handler
        self._flush = flush
        self._ticker = ticker
        self._limits = limits
        self._conns = conns
        self._transport: asyncio.Transport | None = None
        self._parser: RequestParser | None = None
        self._queue: deque[Request] = deque()
        self._busy = False
        self._closed = False
        self._eof = False
        self._reading_paused = False
        self._linger: asyncio.TimerHandle | None = None
        self._ready_since = 0  # when it last began waiting for its client (monotonic ns)
        #: True while the transport's write buffer is over its high-water mark.
        self.paused = False
        #: A stream that held its events while writing was paused.
        self.blocked: Timed | None = None

    @property
    def busy(self) -> bool:
        return self._busy or bool(self._queue)

    # ------------------------------------------------------- asyncio hooks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport implements asyncio.Transport without subclassing it.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        self._parser = RequestParser(transport, self._limits.max_body)
        self._ready_since = time.monotonic_ns()
        self._conns.add(self)

    def data_received(self, data: bytes) -> None:
        """A transport without arrival stamps: the read time is the best there is."""
        self.stamped_data_received(data, time.monotonic_ns())

    def stamped_data_received(self, data: bytes, t_ns: int) -> None:
        parser = self._parser
        assert parser is not None
        reqs = parser.feed(data, t_ns)
        if reqs:
            self._queue.extend(reqs)
            if len(self._queue) > _QUEUE_HIGH and not self._reading_paused:
                self._reading_paused = True
                assert self._transport is not None
                self._transport.pause_reading()
            if not self._busy:
                self._run_queue()
        elif parser.want_continue and not self._busy and not self._queue:
            self._send_continue()

    def eof_received(self) -> bool:
        self._eof = True
        self._flush()  # an answer the handler held back goes out before any close
        # Keep the write side open for answers still being produced.
        return self.busy

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._wake_blocked()
        if not self._busy and self._queue:
            self._run_queue()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._queue.clear()
        self._conns.discard(self)
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        self._wake_blocked()  # it notices the closed transport and ends

    # --------------------------------------------------------- processing

    def _wake_blocked(self) -> None:
        stream = self.blocked
        if stream is not None:
            self.blocked = None
            self._ticker.add(time.monotonic_ns(), stream)

    def _run_queue(self) -> None:
        queue = self._queue
        transport = self._transport
        assert transport is not None
        while queue and not self._busy:
            if self._closed or transport.is_closing():
                queue.clear()
                return
            if self.paused:
                return  # resume_writing continues
            req = queue.popleft()
            if self._reading_paused and len(queue) <= _QUEUE_LOW:
                self._reading_paused = False
                transport.resume_reading()
            self._busy = True
            self._step(self._handler(req))
        if not self._busy and not self._closed and self._linger is None:
            self._ready_since = time.monotonic_ns()
            parser = self._parser
            assert parser is not None
            if self._eof:
                self._close()
            elif parser.want_continue:
                self._send_continue()

    def _step(self, coro: Coroutine[Any, Any, Written]) -> None:
        try:
            fut = coro.send(None)
        except StopIteration as stop:
            self._finish(stop.value)
            return
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # incl. CancelledError: the answer cannot complete
            self._crashed()
            return
        if fut is None:  # a bare yield (asyncio.sleep(0))
            asyncio.get_running_loop().call_soon(self._resume, coro, None)
            return
        # What asyncio.Task does with an awaited future: clear the flag, wait on it.
        fut._asyncio_future_blocking = False
        fut.add_done_callback(lambda _f: self._resume(coro, _f))

    def _resume(self, coro: Coroutine[Any, Any, Written], _fut: object) -> None:
        self._step(coro)
        if not self._busy:
            self._run_queue()

    def _finish(self, written: Written) -> None:
        self._busy = False
        transport = self._transport
        assert transport is not None
        if self._closed or transport.is_closing():
            self._queue.clear()
            return
        if not written.keep_alive:
            self._queue.clear()
            parser = self._parser
            assert parser is not None
            if parser.dead:
                self._close_lingering()
            else:
                self._close()

    def _crashed(self) -> None:
        """A handler bug: log it, answer 500 if nothing was written yet, close."""
        traceback.print_exc(file=sys.stderr)
        self._flush()
        self._busy = False
        self._queue.clear()
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        body = wire.error_body(False, 500, "internal stub error")
        transport.write(
            head(500, {"content-type": "application/json"}, length=len(body), keep_alive=False)
            + body
        )
        self._close()

    def _send_continue(self) -> None:
        parser = self._parser
        transport = self._transport
        assert parser is not None and transport is not None
        parser.want_continue = False
        self._flush()
        if not transport.is_closing():
            transport.write(_CONTINUE)

    def _close(self) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            self._flush()
            transport.close()

    def _close_lingering(self) -> None:
        """Close after an error answer without risking an RST that eats it.

        The client may still be sending (a body we refused); closing with unread
        input would reset the connection and the client could lose our answer.
        So: send FIN after the answer, discard input until the client closes
        (the parser is dead), and close for good after a grace period.
        """
        transport = self._transport
        assert transport is not None
        if transport.is_closing():
            return
        self._flush()
        if not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        self._linger = asyncio.get_running_loop().call_later(_LINGER_S, transport.close)

    def check_timeouts(self, now_ns: int) -> None:
        """The worker's periodic sweep: enforce the read timeouts (module docstring)."""
        parser = self._parser
        if parser is None or self._closed or self._busy or self._queue:
            return
        phase = parser.phase
        limits = self._limits
        if phase == IDLE:
            limit = limits.idle_timeout_ns
        elif phase == HEAD:
            limit = limits.head_timeout_ns
        elif phase == BODY:
            limit = limits.body_timeout_ns
        else:
            return  # dead: its answer is out or going out, then it closes
        if now_ns - max(parser.since, self._ready_since) <= limit:
            return
        if phase == IDLE:
            self._close()
            return
        timed_out = parser.expire(now_ns)
        assert timed_out is not None
        self._queue.append(timed_out)
        self._run_queue()

    def close_idle(self) -> bool:
        """Shutdown: close now if no request is in progress; True if closed."""
        if self.busy or self._closed:
            return self._closed
        self._close()
        return True

    def abort(self) -> None:
        transport = self._transport
        if transport is not None and not self._closed:
            transport.abort()
