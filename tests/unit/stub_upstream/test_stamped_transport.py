"""The stamped transport over real sockets: arrival stamps (kernel and user mode),
write buffering and flow control, half-close, close/abort, connection_lost once.

AF_UNIX socketpairs carry no kernel stamps (their reads count as ``user_reads``);
the tests about stamps use a loopback TCP pair.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from stub_upstream import stamped
from stub_upstream.stamped import StampedTransport

pytestmark = pytest.mark.timeout(30)

MS = 1_000_000


class Recorder(asyncio.Protocol):
    """Records every callback; ``keep_open`` is what eof_received answers."""

    def __init__(self, keep_open: bool = False) -> None:
        self.keep_open = keep_open
        self.reads: list[tuple[bytes, int]] = []
        self.events: list[str] = []
        self.lost: list[Exception | None] = []
        self.transport: StampedTransport | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self.got_data = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, StampedTransport)
        self.transport = transport
        self.events.append("made")

    def stamped_data_received(self, data: bytes, t_ns: int) -> None:
        self.reads.append((data, t_ns))
        self.got_data.set()

    def eof_received(self) -> bool:
        self.events.append("eof")
        return self.keep_open

    def pause_writing(self) -> None:
        self.events.append("pause")

    def resume_writing(self) -> None:
        self.events.append("resume")

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append("lost")
        self.lost.append(exc)
        if not self.closed.done():
            self.closed.set_result(None)

    @property
    def data(self) -> bytes:
        return b"".join(d for d, _ in self.reads)


class Plain(asyncio.Protocol):
    def __init__(self) -> None:
        self.data = b""

    def data_received(self, data: bytes) -> None:
        self.data += data


@contextlib.contextmanager
def tcp_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(ours, peer): ours has receive stamps on from before the connection exists."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stamped.enable_rx_timestamps(listener)
    assert stamped.hold_stamping_on()  # the kernel stamps from the first segment on
    peer = socket.create_connection(listener.getsockname())
    peer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ours, _ = listener.accept()
    listener.close()
    try:
        yield ours, peer
    finally:
        peer.close()
        ours.close()


@pytest.fixture
def unix_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, peer = socket.socketpair()
    yield ours, peer
    peer.close()
    ours.close()


async def until(cond: Callable[[], object], timeout_s: float = 5.0) -> None:
    """Poll ``cond`` every millisecond; fail after ``timeout_s``."""
    for _ in range(int(timeout_s * 1000)):
        if cond():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition not met in time")


def block_loop(seconds: float) -> None:
    """Hold the event loop (and the whole thread), as a busy handler would."""
    time.sleep(seconds)


# ------------------------------------------------------------------ stamps


@pytest.mark.parametrize("force_user", [False, True])
async def test_a_read_is_stamped_with_its_arrival_not_its_read(force_user: bool) -> None:
    with tcp_pair() as (ours, peer):
        proto = Recorder()
        t = stamped.open_transport(ours, proto, force_user=force_user)
        assert t.mode == ("user" if force_user else "kernel")
        t_send = time.monotonic_ns()
        peer.sendall(b"ping")
        block_loop(0.2)  # the read comes >= 200 ms after the send
        await until(lambda: proto.reads)
        t_read = time.monotonic_ns()
        (data, t_ns), *_ = proto.reads
        assert data == b"ping" and t_read - t_send >= 200 * MS
        if force_user:  # declared: stamped when read
            assert t_ns - t_send >= 200 * MS and t.user_reads == t.reads == 1
        else:
            # The kernel's arrival stamp: near the send, whatever the loop did. Lopsided
            # bounds (a loaded machine may deschedule this thread between the clock read
            # and the send; the clock bridge may be off by microseconds).
            assert -1 * MS <= t_ns - t_send < 100 * MS and t_read - t_ns >= 100 * MS
            assert t.user_reads == 0 and t.reads == 1
        t.close()


async def test_the_environment_variable_forces_user_stamps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(stamped.FORCE_USER_ENV, "user")
    with tcp_pair() as (ours, _peer):
        t = stamped.open_transport(ours, Recorder())
        assert t.mode == "user" and t.get_extra_info("stamp_mode") == "user"
        t.abort()


async def test_reads_without_a_stamp_are_counted(unix_pair: tuple[socket.socket, ...]) -> None:
    ours, peer = unix_pair
    proto = Recorder()
    t = stamped.open_transport(ours, proto)  # the option is accepted, AF_UNIX never stamps
    peer.sendall(b"a")
    await until(lambda: proto.reads)
    before = time.monotonic_ns()
    peer.sendall(b"b")
    await until(lambda: len(proto.reads) == 2)
    assert proto.reads[1][1] >= before  # stamped at read time
    assert t.reads == t.user_reads == 2
    t.close()


async def test_a_protocol_without_the_stamped_method_gets_data_received(
    unix_pair: tuple[socket.socket, ...],
) -> None:
    ours, peer = unix_pair
    proto = Plain()
    t = stamped.open_transport(ours, proto)
    peer.sendall(b"hello")
    await until(lambda: proto.data == b"hello")
    t.close()


async def test_accepted_connections_inherit_stamps_from_the_listener() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    server_side: list[Recorder] = []

    def factory() -> Recorder:
        server_side.append(Recorder())
        return server_side[-1]

    srv = stamped.serve(listener, factory)
    try:
        port = listener.getsockname()[1]
        t, client = await stamped.connect("127.0.0.1", port, Recorder, connect_timeout_s=5)
        assert t.mode == "kernel" and srv.mode == "kernel"
        await until(lambda: server_side and server_side[0].transport is not None)
        st = server_side[0].transport
        assert st is not None and st.mode == "kernel"
        assert stamped.rx_timestamps_enabled(st.get_extra_info("socket"))
        assert st.get_extra_info("peername") == t.get_extra_info("sockname")
        t.write(b"over")
        await until(lambda: server_side[0].data == b"over")
        assert st.user_reads == 0  # the kernel stamped it
        st.write(b"back")
        await until(lambda: client.data == b"back")
        t.close()
        await asyncio.wait_for(server_side[0].closed, 5)
    finally:
        srv.close()
    assert not srv.is_serving() and srv.accepted == 1


async def test_connect_to_a_closed_port_raises() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: refused
    with pytest.raises(OSError):
        await stamped.connect("127.0.0.1", port, Recorder, connect_timeout_s=5)


# ----------------------------------------------------------------- writing


@pytest.fixture
async def slow_reader(
    unix_pair: tuple[socket.socket, socket.socket],
) -> AsyncIterator[tuple[StampedTransport, Recorder, socket.socket]]:
    ours, peer = unix_pair
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    peer.setblocking(False)
    proto = Recorder()
    t = stamped.open_transport(ours, proto)
    yield t, proto, peer
    t.abort()


def drain(peer: socket.socket, into: bytearray) -> None:
    with contextlib.suppress(BlockingIOError):
        while chunk := peer.recv(65536):
            into += chunk


async def read_until_lost(peer: socket.socket, proto: Recorder) -> bytes:
    """Everything the peer receives until our side's connection_lost (bounded)."""
    got = bytearray()
    async with asyncio.timeout(10):
        while not proto.closed.done():
            drain(peer, got)
            await asyncio.sleep(0.001)
    drain(peer, got)
    return bytes(got)


async def test_unsent_data_is_queued_in_order_with_pause_and_resume(
    slow_reader: tuple[StampedTransport, Recorder, socket.socket],
) -> None:
    t, proto, peer = slow_reader
    t.set_write_buffer_limits(high=8192)
    assert t.get_write_buffer_limits() == (2048, 8192)
    payload = bytes(range(256)) * 1024  # 256 KiB: far more than the socket takes
    for i in range(0, len(payload), 4096):
        t.write(bytearray(payload[i : i + 4096]))  # a mutable buffer: copied when queued
    assert t.get_write_buffer_size() > 8192
    assert proto.events == ["made", "pause"]  # once, however many writes followed
    got = bytearray()
    async with asyncio.timeout(10):
        while len(got) < len(payload):
            drain(peer, got)
            await asyncio.sleep(0.001)
    assert bytes(got) == payload
    await until(lambda: t.get_write_buffer_size() == 0)
    assert proto.events == ["made", "pause", "resume"]


async def test_close_flushes_the_queue_then_loses_the_connection_once(
    slow_reader: tuple[StampedTransport, Recorder, socket.socket],
) -> None:
    t, proto, peer = slow_reader
    payload = b"x" * 100_000
    t.write(payload)
    t.close()
    t.close()
    assert t.is_closing() and proto.lost == []
    t.write(b"dropped")  # after close: ignored, as asyncio's transports do, and counted
    assert t.dropped_writes == 1
    got = await read_until_lost(peer, proto)
    assert got == payload and proto.lost == [None]
    t.abort()
    await asyncio.sleep(0.01)
    assert proto.events.count("lost") == 1


async def test_abort_drops_the_queue(
    slow_reader: tuple[StampedTransport, Recorder, socket.socket],
) -> None:
    t, proto, peer = slow_reader
    t.write(b"y" * 100_000)
    assert t.get_write_buffer_size() > 0
    t.abort()
    assert t.get_write_buffer_size() == 0 and t.is_closing()
    await asyncio.wait_for(proto.closed, 5)
    assert proto.lost == [None]
    got = bytearray()
    drain(peer, got)
    assert len(got) < 100_000


async def test_write_eof_after_the_queue_then_the_peer_can_still_answer(
    slow_reader: tuple[StampedTransport, Recorder, socket.socket],
) -> None:
    t, proto, peer = slow_reader
    assert t.can_write_eof()
    t.write(b"z" * 50_000)
    t.write_eof()
    got = bytearray()
    async with asyncio.timeout(10):
        while True:
            try:
                chunk = peer.recv(65536)
            except BlockingIOError:
                await asyncio.sleep(0.001)
                continue
            if not chunk:
                break  # EOF, after every queued byte
            got += chunk
    assert bytes(got) == b"z" * 50_000
    peer.sendall(b"still open")
    await until(lambda: proto.data == b"still open")
    assert not t.is_closing()


@pytest.mark.parametrize("keep_open", [False, True])
async def test_peer_eof(unix_pair: tuple[socket.socket, ...], keep_open: bool) -> None:
    ours, peer = unix_pair
    proto = Recorder(keep_open=keep_open)
    t = stamped.open_transport(ours, proto)
    peer.shutdown(socket.SHUT_WR)
    await until(lambda: "eof" in proto.events)
    assert not t.is_reading()
    if keep_open:  # a half-closed client still gets its answer
        t.write(b"answer")
        assert peer.recv(100) == b"answer"
        assert not t.is_closing()
        t.close()
    await asyncio.wait_for(proto.closed, 5)
    assert proto.events[-2:] == ["eof", "lost"] and proto.lost == [None]


async def test_a_reset_loses_the_connection_with_the_error() -> None:
    with tcp_pair() as (ours, peer):
        proto = Recorder()
        t = stamped.open_transport(ours, proto)
        t.write(b"unread by the peer")
        await asyncio.sleep(0.01)
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.close()  # RST
        await asyncio.wait_for(proto.closed, 5)
        assert isinstance(proto.lost[0], ConnectionResetError)
        assert proto.events.count("lost") == 1 and t.is_closing()


async def test_pause_reading_holds_delivery(unix_pair: tuple[socket.socket, ...]) -> None:
    ours, peer = unix_pair
    proto = Recorder()
    t = stamped.open_transport(ours, proto)
    t.pause_reading()
    assert not t.is_reading()
    peer.sendall(b"held")
    await asyncio.sleep(0.05)
    assert proto.reads == []
    t.resume_reading()
    await until(lambda: proto.data == b"held")
    assert t.is_reading()
    t.close()


async def test_extra_info(unix_pair: tuple[socket.socket, ...]) -> None:
    ours, _peer = unix_pair
    t = stamped.open_transport(ours, Recorder())
    assert t.get_extra_info("socket") is ours
    assert t.get_extra_info("nothing", 7) == 7
    assert isinstance(t.get_protocol(), Recorder)
    t.abort()


def test_the_same_on_uvloop() -> None:
    """Stamps, queued writes and close also hold on uvloop (the stub's loop)."""
    import uvloop

    async def scenario() -> None:
        with tcp_pair() as (ours, peer):
            ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            proto = Recorder()
            t = stamped.open_transport(ours, proto)
            t_send = time.monotonic_ns()
            peer.sendall(b"ping")
            block_loop(0.2)
            await until(lambda: proto.reads)
            lag = proto.reads[0][1] - t_send
            assert lag < 100 * MS and t.user_reads == 0, (
                lag,
                t.user_reads,
                stamped.clock_bridge().stats(),
            )
            t.write(b"q" * 1_000_000)
            assert t.get_write_buffer_size() > 0
            t.close()
            peer.setblocking(False)
            got = await read_until_lost(peer, proto)
            assert len(got) == 1_000_000 and proto.lost == [None]

    uvloop.run(scenario())
