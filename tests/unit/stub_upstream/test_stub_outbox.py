"""Answers held until the end of the loop turn (``Worker.flush``): each is stamped and
recorded just before its own write, in order, and nothing held is lost to a close."""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest

from stub_upstream import content
from stub_upstream.config import StubConfig
from stub_upstream.connection import Connection, Limits
from stub_upstream.handler import Worker
from stub_upstream.ledger import LedgerRing
from stub_upstream.ledger_format import LEDGER_DTYPE
from stub_upstream.metrics import WorkerMetrics
from stub_upstream.ticker import Ticker

pytestmark = pytest.mark.timeout(30)


class FakeTransport:
    """What Connection and Worker use of a transport; stamps every write."""

    def __init__(self) -> None:
        self.writes: list[tuple[int, bytes]] = []
        self.closed = False
        self.closed_after = -1  # writes seen when close() was called

    def is_closing(self) -> bool:
        return self.closed

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        self.writes.append((time.monotonic_ns(), bytes(data)))

    def close(self) -> None:
        self.closed = True
        self.closed_after = len(self.writes)

    def get_protocol(self) -> None:
        return None

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return False


def chat(cid: int, extra: str = "") -> bytes:
    body = json.dumps(
        {"model": "m", "messages": [{"role": "user", "content": content.marker(cid)}]}
    ).encode()
    return (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def setup(ring: LedgerRing) -> tuple[Worker, Connection, FakeTransport]:
    cfg = StubConfig(port=0, ttft_ms=0.0, itl_ms=0.0, output_tokens=4, ledger_capacity=64)
    loop = asyncio.get_running_loop()
    worker = Worker(cfg, 0, [ring], [WorkerMetrics()], "test", Ticker(loop, use_timerfd=False))
    conn = Connection(worker.handle, worker.ticker, Limits(max_body=65536), set(), worker.flush)
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    return worker, conn, transport


def records(ring: LedgerRing) -> np.ndarray:
    return np.frombuffer(ring.copy(0, ring.seq), dtype=LEDGER_DTYPE)


def cids_of(transport: FakeTransport) -> list[int]:
    out = []
    for _, data in transport.writes:
        body = json.loads(data.partition(b"\r\n\r\n")[2])
        out.append(int(body["id"].removeprefix("chatcmpl-"), 16))
    return out


async def test_answers_go_out_at_the_end_of_the_turn_stamped_at_their_write() -> None:
    ring = LedgerRing(64)
    worker, conn, transport = setup(ring)
    conn.stamped_data_received(chat(1), time.monotonic_ns())
    other = Connection(worker.handle, worker.ticker, Limits(max_body=65536), set(), worker.flush)
    t2 = FakeTransport()
    other.connection_made(t2)  # type: ignore[arg-type]
    other.stamped_data_received(chat(2), time.monotonic_ns())
    # Both answers are made, none is sent or recorded yet.
    assert transport.writes == [] and t2.writes == [] and ring.seq == 0
    before_flush = time.monotonic_ns()
    await asyncio.sleep(0)
    assert cids_of(transport) == [1] and cids_of(t2) == [2]
    recs = records(ring)
    assert list(recs["corr"]) == [1, 2]
    for rec, (t_write, _) in zip(recs, [transport.writes[0], t2.writes[0]], strict=True):
        # stamped at the flush, immediately before its own write
        assert before_flush <= rec["t_first_write"] == rec["t_last_write"] <= t_write
        assert rec["t_recv"] <= before_flush


async def test_pipelined_answers_of_one_connection_keep_their_order() -> None:
    ring = LedgerRing(64)
    _, conn, transport = setup(ring)
    conn.stamped_data_received(chat(5) + chat(6) + chat(7), time.monotonic_ns())
    await asyncio.sleep(0)
    assert cids_of(transport) == [5, 6, 7]
    assert list(records(ring)["corr"]) == [5, 6, 7]


async def test_a_held_answer_is_sent_before_the_close_that_follows_it() -> None:
    """EOF in the same turn as the request: the held answer goes out, then the close."""
    ring = LedgerRing(64)
    _, conn, transport = setup(ring)
    conn.stamped_data_received(chat(9), time.monotonic_ns())
    keep_open = conn.eof_received()
    assert not keep_open  # nothing left to produce: the transport may close now
    assert cids_of(transport) == [9]
    assert list(records(ring)["corr"]) == [9]


async def test_a_closing_answer_flushes_what_was_held_before_it() -> None:
    ring = LedgerRing(64)
    _, conn, transport = setup(ring)
    conn.stamped_data_received(chat(3) + chat(4, "Connection: close\r\n"), time.monotonic_ns())
    assert cids_of(transport) == [3, 4]  # no loop turn needed: the close wrote both
    assert transport.closed and transport.closed_after == 2
    assert list(records(ring)["corr"]) == [3, 4]


async def test_an_answer_whose_connection_closed_while_held_is_recorded_unwritten() -> None:
    ring = LedgerRing(64)
    _, conn, transport = setup(ring)
    conn.stamped_data_received(chat(8), time.monotonic_ns())
    transport.closed = True  # the client went away before the end of the turn
    await asyncio.sleep(0)
    assert transport.writes == []
    (rec,) = records(ring)
    assert rec["corr"] == 8 and rec["t_first_write"] == 0 and rec["bytes"] == 0
