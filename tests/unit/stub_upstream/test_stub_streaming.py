"""SseStream under write flow control: a paused connection holds the stream's
events; once woken, everything due goes out in one write, records stamped then.
"""

from __future__ import annotations

import asyncio

from stub_upstream.streaming import SseStream, frame
from stub_upstream.ticker import Timed


class Sink:
    """The part of a transport a stream uses: is_closing() and write()."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closing = False

    def is_closing(self) -> bool:
        return self.closing

    def write(self, data: bytes) -> None:
        self.writes.append(data)


class Flow:
    def __init__(self) -> None:
        self.paused = False
        self.blocked: Timed | None = None


async def test_paused_stream_parks_then_writes_all_due_at_once() -> None:
    sink, flow = Sink(), Flow()
    events = [b"data: %d\n\n" % i for i in range(4)]
    framed = [frame(e, True) for e in events]
    items: list[bytes | None] = list(framed)
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    ended: list[SseStream] = []
    s = SseStream(
        sink,  # type: ignore[arg-type]
        items, [len(e) for e in events], [1, 2, 3, 4], [10, 20, 30, 40], done, ended.append, flow,
    )  # fmt: skip
    assert s.fire(10) == 20 and sink.writes == [framed[0]]
    flow.paused = True
    assert s.fire(20) is None and flow.blocked is s  # parked, nothing written
    assert len(sink.writes) == 1 and s.tokens == 1
    flow.paused = False
    flow.blocked = None
    assert s.fire(35) == 40  # woken late: events 1 and 2 in one write
    assert sink.writes[1] == framed[1] + framed[2] and s.tokens == 3
    assert s.fire(40) is None and ended == [s] and done.done()
    assert s.tokens == 4 and s.nbytes == sum(len(e) for e in events)


async def test_paused_stream_of_a_closed_connection_ends() -> None:
    sink, flow = Sink(), Flow()
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    ended: list[SseStream] = []
    s = SseStream(sink, [b"a", b"b"], [1, 1], [1, 2], [1, 2], done, ended.append, flow)  # type: ignore[arg-type]
    flow.paused = True
    assert s.fire(5) is None and flow.blocked is s
    sink.closing = True  # connection_lost wakes it: it sees the closed transport
    assert s.fire(6) is None and s.client_gone and ended == [s] and sink.writes == []
