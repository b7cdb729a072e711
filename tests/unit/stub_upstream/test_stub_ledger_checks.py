"""What the checks read from the stub's ledger: rule bits per request, a stream's lag
behind its nominal schedule (``stream_dev_us``)."""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest

from stub_upstream import content
from stub_upstream.assertions import UpstreamRules
from stub_upstream.config import StubConfig
from stub_upstream.connection import Connection, Limits
from stub_upstream.handler import Worker
from stub_upstream.ledger import LedgerRing
from stub_upstream.ledger_format import LEDGER_DTYPE
from stub_upstream.metrics import WorkerMetrics
from stub_upstream.streaming import SseStream
from stub_upstream.ticker import Ticker

pytestmark = pytest.mark.timeout(30)
MS = 1_000_000


class Sink:
    """The transport a Connection or an SseStream writes to."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def is_closing(self) -> bool:
        return False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        pass

    def get_protocol(self) -> None:
        return None

    def get_extra_info(self, name: str) -> None:
        return None

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return False


def request(cid: int, system: str, headers: str = "") -> bytes:
    doc = {
        "model": "m",
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": content.marker(cid)},
        ],
    }
    body = json.dumps(doc).encode()
    head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n{headers}"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


async def test_every_request_carries_its_failed_rules_bits() -> None:
    rules = UpstreamRules(
        require_system="D7", require_headers={"X-Agent-Id": "*"}, forbid_headers=["authorization"]
    )
    cfg = StubConfig(port=0, ttft_ms=0.0, itl_ms=0.0, output_tokens=2, assertions=rules)
    ring = LedgerRing(16)
    loop = asyncio.get_running_loop()
    worker = Worker(cfg, 0, [ring], [WorkerMetrics()], "t", Ticker(loop, use_timerfd=False))
    conn = Connection(worker.handle, worker.ticker, Limits(max_body=65536), set(), worker.flush)
    conn.connection_made(Sink())  # type: ignore[arg-type]
    conn.stamped_data_received(request(1, "be D7", "X-AGENT-ID: a\r\n"), time.monotonic_ns())
    conn.stamped_data_received(request(2, "nothing", "x-agent-id: a\r\n"), time.monotonic_ns())
    conn.stamped_data_received(request(3, "D7", "Authorization: Bearer k\r\n"), time.monotonic_ns())
    for _ in range(50):
        if ring.seq == 3:
            break
        await asyncio.sleep(0.01)
    recs = np.frombuffer(ring.copy(0, ring.seq), dtype=LEDGER_DTYPE)
    assert recs["corr"].tolist() == [1, 2, 3]
    assert recs["checked"].tolist() == [1, 1, 1]
    assert recs["checks_failed"].tolist() == [0, 0b001, 0b110]


def test_a_stream_records_how_far_its_writes_trailed_the_schedule() -> None:
    loop = asyncio.new_event_loop()
    try:
        done: asyncio.Future[None] = loop.create_future()
        now = time.monotonic_ns()
        # Three tokens 10 ms apart, the first due 100 ms ago: all due, written in one go.
        deadlines = [now - 100 * MS + k * 10 * MS for k in range(3)]
        sink = Sink()
        ended: list[SseStream] = []
        stream = SseStream(
            sink,  # type: ignore[arg-type]
            [b"a", b"b", b"c"], [1, 1, 1], [1, 2, 3], deadlines, done, ended.append,
            itl_ns=10 * MS,
        )  # fmt: skip
        assert stream.fire(time.monotonic_ns()) is None
        assert sink.writes == [b"abc"] and ended == [stream]
        # The write carried token 0, due 100 ms before it: the stream's lag is that.
        assert 100 * MS <= stream.dev_max < 100 * MS + 10_000 * MS
    finally:
        loop.close()
