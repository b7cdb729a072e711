"""One client connection: an ``asyncio.Protocol`` feeding :mod:`stub_upstream.h1`
and running the worker's handler for each request, strictly in order.

Why not aiohttp's server: its parser, request object and per-request task cost
more than the stub's whole answer, and they sit between the bytes arriving and
the ``t_recv`` stamp. Here ``t_recv`` is taken in ``data_received`` and the
handler coroutine is stepped directly (no task): an answer that is due at once
is written before ``data_received`` returns. A handler that waits (a deadline,
a stream) resumes from its future's done-callback. Only ``asyncio.Future``
awaits are supported in the handler (it uses nothing else; ``current_task()``
is ``None`` inside it).

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
from typing import Any, cast

from stub_upstream import wire
from stub_upstream.h1 import Request, RequestParser
from stub_upstream.rawhttp import Written, head
from stub_upstream.ticker import Ticker, Timed

__all__ = ["Connection", "Handler"]

Handler = Callable[[Request], Coroutine[Any, Any, Written]]

_LINGER_S = 2.0  # after an error answer: how long to drain the client's input
_QUEUE_HIGH = 64  # pipelined requests waiting before reading pauses
_QUEUE_LOW = 8
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class Connection(asyncio.Protocol):
    """Per-connection protocol; ``conns`` tracks live ones for shutdown."""

    def __init__(
        self, handler: Handler, ticker: Ticker, max_body: int, conns: set[Connection]
    ) -> None:
        self._handler = handler
        self._ticker = ticker
        self._max_body = max_body
        self._conns = conns
        self._transport: asyncio.Transport | None = None
        self._parser: RequestParser | None = None
        self._queue: deque[Request] = deque()
        self._busy = False
        self._closed = False
        self._eof = False
        self._reading_paused = False
        self._linger: asyncio.TimerHandle | None = None
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
        self._parser = RequestParser(transport, self._max_body)
        self._conns.add(self)

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        assert parser is not None
        reqs = parser.feed(data)
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
        if not self._busy and not self._closed:
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
        if not transport.is_closing():
            transport.write(_CONTINUE)

    def _close(self) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
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
        if not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        self._eof = True
        self._linger = asyncio.get_running_loop().call_later(_LINGER_S, transport.close)

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
