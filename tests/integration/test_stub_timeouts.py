"""Read timeouts and shutdown: no client can pin a stub connection, and SIGTERM
stops the stub whatever it is doing.

Timeouts here are 0.2-0.4 s; every wait for the stub's reaction is bounded by
10 s, and what must *not* happen is checked against streams far longer than
the timeouts (lopsided values, never a tolerance).
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from stub_upstream import StubConfig, StubProcess, content

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(60)]

CHAT = "/v1/chat/completions"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stub() -> AsyncIterator[StubProcess]:
    cfg = StubConfig(
        port=0, ttft_ms=0.0, itl_ms=0.0, output_tokens=4,
        head_timeout_s=0.2, body_timeout_s=0.3, keepalive_timeout_s=0.4,
    )  # fmt: skip
    async with StubProcess(cfg) as s:
        yield s


def chat(cid: int, stream: bool = False, extra: str = "") -> bytes:
    body = json.dumps(
        {
            "model": "m",
            "messages": [{"role": "user", "content": f"hi {content.marker(cid)}"}],
            "stream": stream,
        }
    ).encode()
    return (
        f"POST {CHAT} HTTP/1.1\r\nHost: x\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def everything(reader: asyncio.StreamReader) -> bytes:
    """All the stub sends until it closes (bounded)."""
    return await asyncio.wait_for(reader.read(), 10)


@pytest.mark.parametrize(
    "partial",
    [
        b"GET /health HTTP/1.1\r\nHost: x",  # a head without its end
        b"GET / HTTP/1.1\r\nX-Garbage: " + b"a" * 100,  # garbage with no terminator
        b"POST " + CHAT.encode() + b' HTTP/1.1\r\nContent-Length: 100\r\n\r\n{"model"',
    ],
    ids=["head", "garbage", "body"],
)
async def test_an_incomplete_request_gets_408_then_close(stub: StubProcess, partial: bytes) -> None:
    reader, writer = await connect(stub.port)
    try:
        writer.write(partial)
        got = await everything(reader)
    finally:
        writer.close()
    assert got.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"connection: close\r\n" in got


async def test_a_trickling_head_is_not_given_more_time(stub: StubProcess) -> None:
    """A byte every 30 ms keeps the connection busy, but the head's clock runs on."""
    reader, writer = await connect(stub.port)
    head = b"GET /health HTTP/1.1\r\nX-Slow: " + b"s" * 200
    t0 = time.monotonic()
    answer = asyncio.ensure_future(everything(reader))
    try:
        for b in head:
            if answer.done():
                break
            writer.write(bytes([b]))
            await asyncio.sleep(0.03)
        got = await answer
    finally:
        writer.close()
    assert got.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - t0 < 5  # cut long before the 6 s the trickle would take


async def test_bare_lf_is_a_bad_request_at_once(stub: StubProcess) -> None:
    reader, writer = await connect(stub.port)
    try:
        writer.write(b"GET /health HTTP/1.1\nHost: x\n\n")
        got = await everything(reader)
    finally:
        writer.close()
    assert got.startswith(b"HTTP/1.1 400 ")


async def test_an_idle_keep_alive_connection_is_closed_without_an_answer(
    stub: StubProcess,
) -> None:
    reader, writer = await connect(stub.port)
    try:
        writer.write(b"GET /health HTTP/1.1\r\n\r\n")
        await reader.readuntil(b'{"status":"ok"}')
        assert await everything(reader) == b""  # closed once idle past 0.4 s
    finally:
        writer.close()


async def test_timeouts_do_not_cut_an_answer_in_progress(stub: StubProcess) -> None:
    """A stream 4 x longer than every timeout arrives whole."""
    reader, writer = await connect(stub.port)
    try:
        writer.write(chat(0x7105, stream=True, extra="x-stub-itl-ms: 400\r\nx-stub-tokens: 4\r\n"))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        body = await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), 10)
    finally:
        writer.close()
    assert head.startswith(b"HTTP/1.1 200 ") and b"data: [DONE]" in body


@pytest.mark.parametrize("workers", [1, 2])
async def test_sigterm_stops_the_stub_whatever_it_is_doing(workers: int) -> None:
    cfg = StubConfig(port=0, ttft_ms=0.0, itl_ms=100.0, output_tokens=600, workers=workers)
    stub = StubProcess(cfg, stop_timeout_s=30)
    await stub.start()
    conns = []
    try:
        for i in range(4):  # streams of 60 s each, on every worker with luck
            r, w = await connect(stub.port)
            w.write(chat(0x5160 + i, stream=True))
            await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 10)
            conns.append(w)
        r, w = await connect(stub.port)
        w.write(b"GET /health HTTP/1.1\r\nX-Half: ")  # a head in progress
        conns.append(w)
        _r, w = await connect(stub.port)  # and an idle connection
        conns.append(w)
        await asyncio.sleep(0.1)
        t0 = time.monotonic()
        stub._proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        code = await asyncio.wait_for(stub.wait(), 30)
        took = time.monotonic() - t0
    finally:
        for w in conns:
            w.close()
        await stub.stop()
    assert code == 0
    assert took < 10  # the streams had ~60 s to go: it did not wait for them
