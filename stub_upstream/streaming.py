"""SSE delivery: a pre-serialised stream written by the worker's ticker.

After ``prepare()`` (which sends the headers at once) the stream's bytes bypass
aiohttp's writer: each due batch of events is one ``transport.write`` from the
ticker callback, framed as HTTP/1.1 chunks here, with the terminating chunk
glued to the last event. So the client's last byte leaves in the same write as
the last token, and ``t_last_write`` is exactly that write.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time

from aiohttp import web

__all__ = ["RESET", "RawStreamResponse", "SseStream", "abort_with_rst", "frame"]

#: Marker item: reset the connection instead of writing.
RESET = None

_LINGER_RST = struct.pack("ii", 1, 0)


class RawStreamResponse(web.StreamResponse):
    """A StreamResponse whose body framing we do ourselves.

    ``_length_check = False`` (what aiohttp's WebSocketResponse does) stops
    aiohttp from adding its own chunked framing or length accounting, so raw
    transport writes and a final no-op ``write_eof()`` keep the connection
    reusable.
    """

    _length_check = False


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
    it is out. ``done`` resolves when the stream ended (completed, reset, or the
    client went away).
    """

    __slots__ = (
        "client_gone",
        "deadlines",
        "done",
        "i",
        "items",
        "nbytes",
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
    ) -> None:
        self.transport = transport
        self.items = items
        self.sizes = sizes
        self.tokens_at = tokens_at
        self.deadlines = deadlines
        self.done = done
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
        if i > start:
            data = items[start] if i - start == 1 else b"".join(items[start:i])  # type: ignore[arg-type]
            assert data is not None
            transport.write(data)
            t = time.monotonic_ns()
            if self.t_first == 0:
                self.t_first = t
            self.t_last = t
            self.nbytes += sum(self.sizes[start:i])
            self.tokens = self.tokens_at[i - 1]
            self.i = i
        if reset:
            abort_with_rst(transport)
            self._end()
            return None
        if i >= n:
            self._end()
            return None
        return deadlines[i]

    def _end(self) -> None:
        if not self.done.done():
            self.done.set_result(None)
        return None
