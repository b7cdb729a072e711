"""An asyncio transport over a non-blocking TCP socket that stamps every read.

Why not the event loop's own transport: neither asyncio's nor uvloop's hands
the protocol anything but the bytes, so the only arrival time a protocol could
take was "when the loop got round to it" - late by whatever else the loop was
doing. This transport reads with ``recvmsg`` and delivers each read with the
kernel's arrival stamp of its last segment, converted to ``time.monotonic_ns()``
(see ``_socket`` and ``_clock``). It is driven by ``loop.add_reader`` /
``loop.add_writer`` only, so it works on uvloop and on the default loop alike.

Delivery interface: if the protocol has ``stamped_data_received(data, t_ns)``
it gets every read that way (``t_ns``: arrival, CLOCK_MONOTONIC ns); otherwise
plain ``data_received(data)``. In ``"user"`` mode (kernel stamps refused or
forced off) and for a read that carried no stamp, ``t_ns`` is
``time.monotonic_ns()`` taken right after the read returned; ``user_reads``
counts the latter so a caller can tell a declared fallback from a silent one.

Writing: ``write`` sends at once when nothing is queued (no extra loop turn);
what the kernel does not take is queued and flushed from a writer callback,
with ``pause_writing`` / ``resume_writing`` at the high / low water marks.
``connection_lost`` is called exactly once, from a loop callback.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import struct
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from stub_upstream.stamped._clock import ClockBridge, clock_bridge
from stub_upstream.stamped._socket import ANCILLARY_BUFSIZE, SO_TIMESTAMPNS, StampMode

__all__ = ["READ_SIZE", "StampedReceiver", "StampedTransport"]

#: Bytes asked for per read. Not more: CPython allocates the whole size per
#: call, and from 128 KiB on glibc maps fresh pages every time (9.8 instead of
#: 1.4 us a read here, docs/timestamps.md).
READ_SIZE = 65_536
_HIGH_WATER = 64 * 1024
_TIMESPEC = struct.Struct("@ll")
_monotonic_ns = time.monotonic_ns
_SOL_SOCKET = socket.SOL_SOCKET


class StampedReceiver(Protocol):
    """The stamped-delivery interface: a protocol with this method gets arrival stamps."""

    def stamped_data_received(self, data: bytes, t_ns: int) -> None:
        """``data`` from one read; ``t_ns``: arrival of its last segment (monotonic ns)."""


class StampedTransport(asyncio.Transport):
    """One TCP connection; see the module docstring. Start it with :meth:`start`."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol: asyncio.BaseProtocol,
        *,
        mode: StampMode,
        peername: Any = None,
        bridge: ClockBridge | None = None,
    ) -> None:
        super().__init__()
        self._loop = loop
        self._sock = sock
        self._fd = sock.fileno()
        self._peername = peername
        #: ``"kernel"`` or ``"user"``: where this transport's arrival stamps come from.
        self.mode: StampMode = mode
        self._bridge = bridge if bridge is not None else clock_bridge()
        #: Reads that returned data; of them, reads stamped in user space.
        self.reads = 0
        self.user_reads = 0
        self._protocol = protocol
        self._deliver = self._delivery(protocol)
        self._kernel = mode == "kernel"
        self._buffer: collections.deque[bytes | memoryview] = collections.deque()
        self._buffered = 0
        self._high = _HIGH_WATER
        self._low = _HIGH_WATER // 4
        self._protocol_paused = False
        self._reading = False
        self._started = False
        self._closing = False
        self._eof_asked = False
        self._lost = False
        self.dropped_writes = 0  # write() after close() or write_eof(): ignored, counted

    @staticmethod
    def _delivery(protocol: asyncio.BaseProtocol) -> Callable[[bytes, int], None]:
        stamped = getattr(protocol, "stamped_data_received", None)
        if stamped is not None:
            return stamped  # type: ignore[no-any-return]
        plain = protocol.data_received  # type: ignore[attr-defined]
        return lambda data, _t: plain(data)

    def start(self) -> None:
        """``connection_made`` now, then reading from the next loop turn."""
        if self._started:
            return
        self._started = True
        self._protocol.connection_made(self)
        if not self._closing:
            self.resume_reading()

    # -------------------------------------------------------------- reading

    def _read(self) -> None:
        try:
            if self._kernel:
                data, anc, _flags, _addr = self._sock.recvmsg(READ_SIZE, ANCILLARY_BUFSIZE)
            else:  # user mode: no control message to ask for (0.3 us cheaper)
                data, anc = self._sock.recv(READ_SIZE), None
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fatal(exc)
            return
        now = _monotonic_ns()
        if not data:
            self._on_eof()
            return
        self.reads += 1
        if anc and anc[0][1] == SO_TIMESTAMPNS and anc[0][0] == _SOL_SOCKET:
            sec, nsec = _TIMESPEC.unpack_from(anc[0][2])
            real = sec * 1_000_000_000 + nsec
            bridge = self._bridge
            t = real - bridge.offset_ns
            # ClockBridge.to_monotonic, inlined for the common case (this runs per read)
            if t > now or now >= bridge.next_sample_ns:
                t = bridge.to_monotonic(real, now)
        else:  # user mode, or a segment that came before stamping was on
            t = now
            self.user_reads += 1
        self._deliver(data, t)

    def _on_eof(self) -> None:
        self._stop_reading()
        keep_open = self._protocol.eof_received()  # type: ignore[attr-defined]
        if not keep_open:
            self.close()

    def _stop_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self._fd)

    def pause_reading(self) -> None:
        self._stop_reading()

    def resume_reading(self) -> None:
        if self._reading or self._closing:
            return
        self._reading = True
        self._loop.add_reader(self._fd, self._read)

    def is_reading(self) -> bool:
        return self._reading

    # -------------------------------------------------------------- writing

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if self._closing or self._eof_asked:
            self.dropped_writes += 1
            return
        if not self._buffer:
            try:
                n = self._sock.send(data)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError as exc:
                self._fatal(exc)
                return
            if n == len(data):
                return
            self._loop.add_writer(self._fd, self._write_ready)
            data = memoryview(data)[n:] if isinstance(data, bytes) else bytes(data[n:])
        elif not isinstance(data, bytes):
            data = bytes(data)  # the caller may reuse its buffer
        self._buffer.append(data)
        self._buffered += len(data)
        if not self._protocol_paused and self._buffered > self._high:
            self._protocol_paused = True
            self._protocol.pause_writing()

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        self.write(b"".join(list_of_data))

    def _write_ready(self) -> None:
        buf = self._buffer
        while buf:
            chunk = buf[0]
            try:
                n = self._sock.send(chunk)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._fatal(exc)
                return
            self._buffered -= n
            if n < len(chunk):
                buf[0] = memoryview(chunk)[n:]
                break
            buf.popleft()
        if self._protocol_paused and self._buffered <= self._low:
            self._protocol_paused = False
            self._protocol.resume_writing()
        if buf:
            return
        self._loop.remove_writer(self._fd)
        if self._closing:
            self._schedule_lost(None)
        elif self._eof_asked:
            self._shutdown_write()

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self._closing or self._eof_asked:
            return
        self._eof_asked = True
        if not self._buffer:
            self._shutdown_write()

    def _shutdown_write(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            self._fatal(exc)

    def get_write_buffer_size(self) -> int:
        return self._buffered

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self._low, self._high)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = _HIGH_WATER if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high, self._low = high, low
        if not self._protocol_paused and self._buffered > high:
            self._protocol_paused = True
            self._protocol.pause_writing()

    # -------------------------------------------------------------- closing

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Stop reading; flush what is queued, then close (``connection_lost(None)``)."""
        if self._closing:
            return
        self._closing = True
        self._stop_reading()
        if not self._buffer:
            self._schedule_lost(None)

    def abort(self) -> None:
        """Close now, dropping anything queued."""
        self._force_close(None)

    def _fatal(self, exc: Exception) -> None:
        self._force_close(exc)

    def _force_close(self, exc: Exception | None) -> None:
        if self._lost:
            return
        if self._buffer:
            self._buffer.clear()
            self._buffered = 0
            self._loop.remove_writer(self._fd)
        self._closing = True
        self._stop_reading()
        self._schedule_lost(exc)

    def _schedule_lost(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._loop.call_soon(self._connection_lost, exc)

    def _connection_lost(self, exc: Exception | None) -> None:
        try:
            if self._started:
                self._protocol.connection_lost(exc)
        finally:
            self._sock.close()

    # ----------------------------------------------------------- the rest

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol
        self._deliver = self._delivery(protocol)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "socket":
            return self._sock
        try:
            if name == "peername":
                if self._peername is None:
                    self._peername = self._sock.getpeername()
                return self._peername
            if name == "sockname":
                return self._sock.getsockname()
        except OSError:
            return default
        if name == "stamp_mode":
            return self.mode
        return super().get_extra_info(name, default)

    def __repr__(self) -> str:
        state = "closing" if self._closing else "open"
        return f"<StampedTransport fd={self._fd} {self.mode} {state}>"
