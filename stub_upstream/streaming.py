"""SSE delivery: a pre-serialised stream written by the worker's ticker.

The handler writes the headers at once (see rawhttp); then each due batch of
events is one ``transport.write`` from the ticker callback, framed as HTTP/1.1
chunks here, with the terminating chunk glued to the last event. So the client's
last byte leaves in the same write as the last token. Every write is stamped
immediately before ``transport.write`` (``t_first_write``/``t_last_write``), and
the ledger record is published before the final write.

Each write also updates ``dev_max``: how far the write trailed the nominal
schedule ``deadlines[0] + k * itl_ns`` of the earliest token ``k`` in it (timer
lateness, jitter and stalls alike). From it the harness knows every token's
write time to within ``dev_max`` without the stub recording each one
(docs/checks.md, "Real-time streams").
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import Callable
from typing import Protocol

from stub_upstream.ticker import Timed

__all__ = ["RESET", "Flow", "SseStream", "abort_with_rst", "frame"]

#: Marker item: reset the connection instead of writing.
RESET = None

_LINGER_RST = struct.pack("ii", 1, 0)


class Flow(Protocol):
    """The connection's write flow control, as a stream sees it."""

    #: The transport's buffer is over its high-water mark: hold writes.
    paused: bool
    #: Where a held stream parks itself; the connection re-adds it on resume.
    blocked: Timed | None


def frame(payload: bytes, chunked: bool) -> bytes:
    if not chunked:
        return payload
    return b"%x\r\n%b\r\n" % (len(payload), payload)


def abort_with_rst(transport: asyncio.Transport) -> None:
    """Close with a TCP RST (SO_LINGER 0), the way a crashed upstream looks."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
    transport.abort()


class SseStream:
    """One stream's items on absolute deadlines; a ticker :class:`Timed` item.

    ``items[i]`` is framed bytes (or :data:`RESET`), due at ``deadlines[i]``;
    ``sizes[i]`` its unframed body size, ``tokens_at[i]`` the tokens written once
    it is out. While ``flow.paused`` the stream parks in ``flow.blocked`` instead
    of writing; events due meanwhile go out in one write once it is woken. When
    the stream ends (completed, reset, or the client went away) ``on_end`` runs
    once - before the final write - and then ``done`` resolves.
    """

    __slots__ = (
        "client_gone",
        "deadlines",
        "dev_max",
        "done",
        "flow",
        "i",
        "items",
        "itl_ns",
        "nbytes",
        "on_end",
        "sizes",
        "t_first",
        "t_last",
        "tokens",
        "tokens_at",
        "transport",
    )

    def __init__(
        self,
        transport: asyncio.Transport,
        items: list[bytes | None],
        sizes: list[int],
        tokens_at: list[int],
        deadlines: list[int],
        done: asyncio.Future[None],
        on_end: Callable[[SseStream], None],
        flow: Flow | None = None,
        itl_ns: int = 0,
    ) -> None:
        self.transport = transport
        self.itl_ns = itl_ns
        self.dev_max = 0
        self.flow = flow
        self.items = items
        self.sizes = sizes
        self.tokens_at = tokens_at
        self.deadlines = deadlines
        self.done = done
        self.on_end = on_end
        self.i = 0
        self.t_first = 0
        self.t_last = 0
        self.nbytes = 0
        self.tokens = 0
        self.client_gone = False

    def fire(self, now_ns: int) -> int | None:
        items, deadlines = self.items, self.deadlines
        n = len(items)
        i = start = self.i
        reset = False
        while i < n and deadlines[i] <= now_ns:
            if items[i] is RESET:
                reset = True
                break
            i += 1
        transport = self.transport
        if transport.is_closing():
            self.client_gone = True
            self._end()
            return None
        flow = self.flow
        if flow is not None and flow.paused:
            flow.blocked = self
            return None
        if i > start:
            data = items[start] if i - start == 1 else b"".join(items[start:i])  # type: ignore[arg-type]
            assert data is not None
            # Stamp, then write: the ledger record must exist before the client
            # can read the last byte (the harness's join relies on it).
            t = time.monotonic_ns()
            if self.t_first == 0:
                self.t_first = t
            self.t_last = t
            dev = t - deadlines[0] - start * self.itl_ns
            if dev > self.dev_max:
                self.dev_max = dev
            self.nbytes += sum(self.sizes[start:i])
            self.tokens = self.tokens_at[i - 1]
            self.i = i
            if i >= n:
                self._end()
            transport.write(data)
            if i >= n:
                return None
        if reset:
            self._end()
            abort_with_rst(transport)
            return None
        return deadlines[i]

    def _end(self) -> None:
        if not self.done.done():
            self.on_end(self)
            self.done.set_result(None)
