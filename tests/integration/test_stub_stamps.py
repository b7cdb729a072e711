"""The stub's t_recv is when the request arrived, not when the stub read it.

The stub process is stopped (SIGSTOP) while a request arrives: its event loop
cannot run for >= 50 ms. With kernel stamps the ledger's t_recv is still within
5 ms of the client's send; with user stamps forced (LOADGATE_RX_STAMPS=user) it
is >= 50 ms late. Both ends use time.monotonic_ns(), the clock the ledger holds.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import numpy as np
import pytest

from stub_upstream import StubConfig, StubProcess, content
from stub_upstream.ledger_format import LEDGER_DTYPE
from stub_upstream.stamped import FORCE_USER_ENV

pytestmark = pytest.mark.timeout(60)

MS = 1_000_000


def chat(cid: int) -> bytes:
    body = json.dumps(
        {"model": "m", "messages": [{"role": "user", "content": f"hi {content.marker(cid)}"}]}
    ).encode()
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%b" % (len(body), body)
    )


async def read_answer(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return await reader.readexactly(length)


async def stopped_while_it_arrives(stub: StubProcess, cid: int) -> tuple[int, np.void]:
    """Send a request while the stub is stopped for >= 250 ms; (t_send, its ledger record)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", stub.port)
    try:
        writer.write(b"GET /health HTTP/1.1\r\n\r\n")  # the connection is accepted and served
        await read_answer(reader)
        os.kill(stub.pid, signal.SIGSTOP)
        try:
            t_send = time.monotonic_ns()
            writer.write(chat(cid))
            await writer.drain()
            await asyncio.sleep(0.25)
        finally:
            os.kill(stub.pid, signal.SIGCONT)
        await asyncio.wait_for(read_answer(reader), 10)
        writer.write(b"GET /_loadgate/ledger HTTP/1.1\r\n\r\n")
        ledger = await asyncio.wait_for(read_answer(reader), 10)
    finally:
        writer.close()
    recs = np.frombuffer(ledger, dtype=LEDGER_DTYPE)
    (rec,) = recs[recs["corr"] == cid]
    return t_send, rec


@pytest.mark.parametrize("forced_user", [False, True], ids=["kernel", "user"])
async def test_t_recv_is_the_arrival_even_when_the_stub_cannot_run(
    forced_user: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if forced_user:
        monkeypatch.setenv(FORCE_USER_ENV, "user")  # inherited by the stub process
    else:
        monkeypatch.delenv(FORCE_USER_ENV, raising=False)
    cfg = StubConfig(port=0, ttft_ms=0.0, itl_ms=0.0, output_tokens=4)
    async with StubProcess(cfg) as stub:
        t_send, rec = await stopped_while_it_arrives(stub, 0x57A3)
    # The stub could not even look at the bytes for 250 ms: its answer is that late.
    assert int(rec["t_first_write"]) - t_send >= 250 * MS
    lag = int(rec["t_recv"]) - t_send
    if forced_user:
        assert lag >= 250 * MS  # declared fallback: stamped when read
    else:
        # The kernel's arrival stamp: near the send (lopsided bounds, a loaded machine may
        # deschedule the sender; the clock bridge may be off by microseconds).
        assert -1 * MS <= lag < 100 * MS
