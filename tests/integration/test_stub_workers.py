"""Two workers on one port: any worker answers control calls for all of them."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
import pytest_asyncio

from stub_upstream import StubConfig, StubProcess, content
from stub_upstream.ledger_format import LEDGER_DTYPE

pytestmark = pytest.mark.asyncio(loop_scope="module")


class Conn:
    """One keep-alive HTTP/1.1 connection (so we know which worker it is on)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def call(
        self, method: str, path: str, body: bytes = b""
    ) -> tuple[int, dict[str, str], bytes]:
        head = f"{method} {path} HTTP/1.1\r\nHost: stub\r\nContent-Length: {len(body)}\r\n"
        head += "x-stub-ttft-ms: 0\r\nx-stub-itl-ms: 0\r\n\r\n"
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        headers: dict[str, str] = {}
        while (line := await self.reader.readline()) != b"\r\n":
            k, _, v = line.decode().partition(":")
            headers[k.strip().lower()] = v.strip()
        data = await self.reader.readexactly(int(headers["content-length"]))
        return int(status_line.split()[1]), headers, data

    def close(self) -> None:
        self.writer.close()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stub2() -> AsyncIterator[StubProcess]:
    cfg = StubConfig(port=0, ttft_ms=0.0, itl_ms=0.0, output_tokens=4, workers=2)
    async with StubProcess(cfg) as s:
        yield s


async def _conn_per_worker(stub: StubProcess) -> dict[int, Conn]:
    """Open connections until each worker holds one (bounded: 200 tries)."""
    found: dict[int, Conn] = {}
    for _ in range(200):
        c = Conn(*await asyncio.open_connection("127.0.0.1", stub.port))
        _, _, body = await c.call("GET", "/_loadgate/info")
        w = json.loads(body)["worker"]
        if w in found:
            c.close()
        else:
            found[w] = c
        if len(found) == 2:
            return found
    raise AssertionError("the kernel never spread 200 connections over both workers")


def _chat(cid: int) -> bytes:
    msgs = [{"role": "user", "content": content.marker(cid)}]
    return json.dumps({"model": "m", "messages": msgs}).encode()


def _recs(body: bytes) -> Any:
    return np.frombuffer(body, dtype=LEDGER_DTYPE)


async def test_ledger_cursor_and_reset_across_workers(stub2: StubProcess) -> None:
    conns = await _conn_per_worker(stub2)
    try:
        st, _, _ = await conns[0].call("POST", "/_loadgate/reset")
        assert st == 200
        for w, c in conns.items():
            for i in range(3):
                st, _, body = await c.call("POST", "/v1/chat/completions", _chat(0x100 * w + i))
                assert st == 200
                assert json.loads(body)["id"] == f"chatcmpl-{0x100 * w + i:016x}"
        # Every worker answers with every worker's records.
        cursors = {}
        for w, c in conns.items():
            _, h, body = await c.call("GET", "/_loadgate/ledger?cursor=")
            recs = _recs(body)
            assert sorted(recs["corr"].tolist()) == [0, 1, 2, 0x100, 0x101, 0x102]
            assert {int(r["worker"]) for r in recs} == {0, 1}
            assert all(r["worker"] == r["corr"] >> 8 for r in recs)
            assert h["x-loadgate-lost"] == "0"
            cursors[w] = h["x-loadgate-cursor"]
        assert cursors[0] == cursors[1]
        # A cursor from worker 0 continues on worker 1.
        await conns[0].call("POST", "/v1/chat/completions", _chat(0x7))
        _, h, body = await conns[1].call("GET", "/_loadgate/ledger?cursor=" + cursors[0])
        assert _recs(body)["corr"].tolist() == [0x7]
        # A reset through worker 1 empties worker 0's ring too.
        st, _, _ = await conns[1].call("POST", "/_loadgate/reset")
        assert st == 200
        _, _, body = await conns[0].call("GET", "/_loadgate/ledger?cursor=")
        assert len(body) == 0
        _, _, info = await conns[1].call("GET", "/_loadgate/info")
        assert json.loads(info)["workers"] == 2
        _, _, metrics = await conns[1].call("GET", "/metrics")
        assert b'stub_requests_total{endpoint="chat",status="200"} 7.0' in metrics
    finally:
        for c in conns.values():
            c.close()


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            out += [int(x) for x in f.read().split()]
    return out


async def test_sigterm_stops_every_worker() -> None:
    cfg = StubConfig(port=0, workers=2)
    stub = StubProcess(cfg)
    await stub.start()
    workers = _children(stub.pid)
    assert len(workers) == 2
    assert await stub.stop() == 0
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def test_a_dead_worker_takes_the_stub_down() -> None:
    stub = StubProcess(StubConfig(port=0, workers=2))
    await stub.start()
    try:
        w0, w1 = _children(stub.pid)
        os.kill(w0, signal.SIGKILL)
        code = await asyncio.wait_for(stub.wait(), 30)
        assert code == 1
        with pytest.raises(ProcessLookupError):
            os.kill(w1, 0)
    finally:
        await stub.stop()
