"""HTTP/1.1 framing and timestamps, driven read by read through the protocol.

The connection protocol is fed bytes directly (a recording transport stands in
for the socket), so every split of a response can be tried and the clock is a
counter: assertions are exact. Real-socket behaviour (reuse, stale retry, reset,
refused, timeout) is in tests/integration/test_exchange.py.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadgate.client.http1 import ConnectionPool, _Conn, _StaleConnection
from loadgate.client.transport import ProtocolError, RequestTimeout, ResetError, Response

CHUNKED = b"5;ext=1\r\nhello\r\n1\r\n \r\nB\r\nworld-12345\r\n0\r\nx-trailer: 1\r\n\r\n"
CHUNKED_BODY = b"hello world-12345"


# -- the connection protocol -------------------------------------------------------


class RecordingTransport(asyncio.Transport):
    def __init__(self, proto: _Conn) -> None:
        super().__init__()
        self.proto = proto
        self.written: list[bytes] = []
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self._lose()

    def abort(self) -> None:
        self._lose()

    def _lose(self) -> None:
        if not self.closing:
            self.closing = True
            asyncio.get_running_loop().call_soon(self.proto.connection_lost, None)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


class Sink:
    def __init__(self) -> None:
        self.head: tuple[int, dict[str, str], int] | None = None
        self.pieces: list[tuple[bytes, int]] = []

    def on_head(self, status: int, headers: dict[str, str], t: int) -> None:
        self.head = (status, headers, t)

    def on_body(self, data: bytes, t: int) -> None:
        self.pieces.append((data, t))


def new_conn(uses: int = 0) -> tuple[ConnectionPool, _Conn, RecordingTransport]:
    pool = ConnectionPool(
        "http://127.0.0.1:9/prefix",
        limit=4,
        connect_timeout_s=1.0,
        clock=itertools.count(1000).__next__,
    )
    conn = _Conn(pool)
    transport = RecordingTransport(conn)
    conn.connection_made(transport)
    pool._conns.add(conn)
    pool._slots += 1
    conn.uses = uses
    return pool, conn, transport


async def run(
    reads: list[bytes], *, sink: Sink | None = None, eof: bool = False, uses: int = 0
) -> tuple[Response, _Conn, ConnectionPool, RecordingTransport]:
    pool, conn, transport = new_conn(uses)
    fut = conn.send(b"GET / HTTP/1.1\r\n\r\n", Response(), sink, None, no_body=False)
    for r in reads:
        conn.data_received(r)
    if eof:
        transport.close()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    return await fut, conn, pool, transport


LENGTH_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-A: 1\r\nx-a: 2\r\n\r\nhello world"


async def test_content_length_at_every_split_and_connection_reused() -> None:
    for cut in range(len(LENGTH_RESPONSE) + 1):
        resp, conn, pool, tr = await run([LENGTH_RESPONSE[:cut], LENGTH_RESPONSE[cut:]])
        assert resp.status == 200 and resp.body == b"hello world", cut
        assert resp.headers["x-a"] == "1, 2"
        assert resp.bytes_in == len(LENGTH_RESPONSE)
        assert pool._idle == [conn] and not tr.closing


async def test_request_line_carries_prefix_host_and_identity() -> None:
    pool, conn, tr = new_conn()
    wire_holder: list[bytes] = []

    async def go() -> None:
        fut = asyncio.ensure_future(
            pool.request("POST", "/v1/x", [("a", "b")], b"{}", timeout_s=None)
        )
        await asyncio.sleep(0)
        wire_holder.extend(tr.written)
        conn.data_received(b"HTTP/1.1 204 No Content\r\n\r\n")
        resp = await fut
        assert resp.status == 204 and resp.reused is False

    pool._idle.append(conn)
    await go()
    assert wire_holder == [
        b"POST /prefix/v1/x HTTP/1.1\r\nhost: 127.0.0.1:9\r\naccept-encoding: identity\r\n"
        b"content-length: 2\r\na: b\r\n\r\n{}"
    ]


async def test_chunked_response_with_sink_and_timestamps() -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    sink = Sink()
    resp, conn, pool, _ = await run([head[:10], head[10:] + CHUNKED[:12], CHUNKED[12:]], sink=sink)
    # clock: 1000 = t_send, then one tick per read
    assert resp.t_send == 1000
    assert resp.t_first_byte == 1001 and resp.t_head == 1002 and resp.t_last_byte == 1003
    assert sink.head is not None and sink.head[0] == 200 and sink.head[2] == 1002
    assert b"".join(p for p, _ in sink.pieces) == CHUNKED_BODY
    # one call per chunk (llhttp's body callback), each stamped with the arrival
    # of the read that brought it: the first piece came with the head
    stamps = [t for _, t in sink.pieces]
    assert stamps[0] == 1002 and len(stamps) > 2 and set(stamps[1:]) == {1003}
    assert resp.body == b""  # a sink got the body
    assert pool._idle == [conn]


async def test_close_delimited_body_ends_at_eof_and_is_not_reused() -> None:
    reads = [b"HTTP/1.1 200 OK\r\n\r\nabc", b"def"]
    resp, conn, pool, tr = await run(reads, eof=True)
    assert resp.body == b"abcdef"
    assert tr.closing and pool._idle == [] and conn not in pool._conns


async def test_connection_close_header_closes_after_response() -> None:
    resp, _conn, pool, tr = await run(
        [b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"]
    )
    assert resp.status == 200 and tr.closing and pool._idle == []


async def test_bytes_after_the_message_poison_the_connection() -> None:
    resp, _, pool, tr = await run([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA"])
    assert resp.body == b"ok" and tr.closing and pool._idle == []


async def test_informational_response_is_skipped() -> None:
    resp, *_ = await run(
        [b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx"]
    )
    assert resp.status == 201 and resp.body == b"x"


@pytest.mark.parametrize(
    "reads",
    [
        [b"garbage\r\n\r\n"],
        [b"HTTP/1.1 2000 OK\r\n\r\n"],
        [b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"],
        [b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"],
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"],
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"],
        [b"HTTP/1.1 200 OK\r\n" + b"x-pad: " + b"a" * 70000],
    ],
)
async def test_unparseable_responses_are_protocol_errors(reads: list[bytes]) -> None:
    with pytest.raises(ProtocolError) as info:
        await run(reads)
    assert info.value.response.bytes_in == sum(map(len, reads))


async def test_eof_mid_body_is_a_reset_with_partial_timing() -> None:
    with pytest.raises(ResetError) as info:
        await run([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"], eof=True)
    assert not isinstance(info.value, _StaleConnection)
    partial = info.value.response
    assert partial.status == 200 and partial.t_first_byte == 1001 and partial.t_last_byte == 0


async def test_eof_before_any_byte_is_stale_only_on_a_reused_connection() -> None:
    with pytest.raises(_StaleConnection):
        await run([], eof=True, uses=1)
    with pytest.raises(ResetError) as info:
        await run([], eof=True, uses=0)
    assert not isinstance(info.value, _StaleConnection)


async def test_sink_exception_fails_the_request_not_the_loop() -> None:
    class Boom(Sink):
        def on_body(self, data: bytes, t: int) -> None:
            raise RuntimeError("boom")

    with pytest.raises(Exception, match="boom"):
        await run([LENGTH_RESPONSE], sink=Boom())


# -- chunked framing (llhttp): the split-point suites, through the connection --------

CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


async def test_chunked_at_every_split_point() -> None:
    wire = CHUNKED_HEAD + CHUNKED
    for cut in range(len(wire) + 1):
        resp, conn, pool, tr = await run([wire[:cut], wire[cut:]])
        assert resp.body == CHUNKED_BODY and pool._idle == [conn] and not tr.closing, cut


async def test_chunked_at_every_pair_of_split_points() -> None:
    for a, b in itertools.combinations(range(len(CHUNKED) + 1), 2):
        reads = [CHUNKED_HEAD + CHUNKED[:a], CHUNKED[a:b], CHUNKED[b:]]
        resp, *_ = await run(reads)
        assert resp.body == CHUNKED_BODY, (a, b)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=300), max_size=12), st.data())
async def test_chunked_round_trip_any_chunking(chunks: list[bytes], data: st.DataObject) -> None:
    wire = CHUNKED_HEAD + b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=20)))
    points = [0, *cuts, len(wire)]
    resp, conn, pool, tr = await run([wire[x:y] for x, y in itertools.pairwise(points)])
    assert resp.body == b"".join(chunks)
    assert pool._idle == [conn] and not tr.closing


async def test_bytes_after_a_chunked_message_poison_the_connection() -> None:
    resp, _, pool, tr = await run([CHUNKED_HEAD + CHUNKED + b"NEXT"])
    assert resp.body == CHUNKED_BODY and tr.closing and pool._idle == []


@pytest.mark.parametrize("bad", [b"zz\r\n", b"-1\r\n", b"\r\n", b"5\r\nhelloXX\r\n"])
async def test_chunked_bad_framing_is_a_protocol_error(bad: bytes) -> None:
    with pytest.raises(ProtocolError):
        await run([CHUNKED_HEAD + bad])


async def test_a_head_answer_has_no_body_and_the_connection_is_reused() -> None:
    pool, conn, _ = new_conn()
    fut = conn.send(b"HEAD / HTTP/1.1\r\n\r\n", Response(), None, None, no_body=True)
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n")
    resp = await fut
    assert resp.status == 200 and resp.body == b"" and pool._idle == [conn]
    fut = conn.send(b"GET / HTTP/1.1\r\n\r\n", Response(), None, None, no_body=False)
    conn.data_received(LENGTH_RESPONSE)
    assert (await fut).body == b"hello world"  # the next answer parses on a fresh parser


async def test_kernel_stamps_are_the_reads_own() -> None:
    # A stamped read carries its arrival: the connection keeps it, whatever the clock says.
    sink = Sink()
    pool, conn, _ = new_conn()
    fut = conn.send(b"GET / HTTP/1.1\r\n\r\n", Response(), sink, None, no_body=False)
    conn.stamped_data_received(LENGTH_RESPONSE[:40], 5_000)
    conn.stamped_data_received(LENGTH_RESPONSE[40:], 7_000)
    resp = await fut
    assert (resp.t_first_byte, resp.t_last_byte) == (5_000, 7_000)
    assert [t for _, t in sink.pieces] == [7_000] and pool.user_reads == 0


def _extra_conn(pool: ConnectionPool) -> _Conn:
    conn = _Conn(pool)
    conn.connection_made(RecordingTransport(conn))
    pool._conns.add(conn)
    return conn


async def test_one_pool_timer_times_out_each_request_at_its_own_deadline() -> None:
    pool, slow, _ = new_conn()
    early, done = _extra_conn(pool), _extra_conn(pool)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    f_slow = slow.send(b"x", Response(), None, t0 + 0.3, no_body=False)
    f_done = done.send(b"x", Response(), None, t0 + 60.0, no_body=False)
    assert pool._sweep_at == t0 + 0.3
    # An earlier deadline than the armed one re-arms the pool's timer for it.
    f_early = early.send(b"x", Response(), None, t0 + 0.05, no_body=False)
    assert pool._sweep_at == t0 + 0.05 and len(pool._timed) == 3
    done.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert (await f_done).status == 200 and done not in pool._timed
    with pytest.raises(RequestTimeout):
        await asyncio.wait_for(f_early, 5)
    assert not f_slow.done()  # 0.25 s to go: the timer re-armed for it, not fired it
    assert pool._timed == {slow} and pool._sweep_at == t0 + 0.3
    with pytest.raises(RequestTimeout):
        await asyncio.wait_for(f_slow, 5)
    assert loop.time() >= t0 + 0.3 - 0.002  # uvloop's ms clock may fire a hair early
    assert pool._timed == set() and pool._sweep is None
