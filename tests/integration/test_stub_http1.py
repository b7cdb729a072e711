"""The stub's own HTTP/1.1 server over raw loopback sockets: pipelining, chunked
request bodies, HTTP/1.0 keep-alive, half-close, malformed and oversized input.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
import pytest_asyncio

from stub_upstream import StubConfig, StubProcess, content
from stub_upstream.h1 import MAX_HEAD_BYTES
from stub_upstream.ledger_format import LEDGER_DTYPE

pytestmark = pytest.mark.asyncio(loop_scope="module")

CHAT = "/v1/chat/completions"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stub() -> AsyncIterator[StubProcess]:
    cfg = StubConfig(port=0, ttft_ms=0.0, itl_ms=0.0, output_tokens=4, max_body_bytes=4096)
    async with StubProcess(cfg) as s:
        yield s


def chat(cid: int, stream: bool = False, extra: str = "") -> bytes:
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": f"hi {content.marker(cid)}"}],
        "stream": stream,
    }
    raw = json.dumps(body).encode()
    return (
        f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{extra}"
        f"Content-Length: {len(raw)}\r\n\r\n"
    ).encode() + raw


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        if line:
            k, _, v = line.partition(":")
            headers[k.lower()] = v.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n"))[:-2], 16)
            data = await reader.readexactly(size + 2)
            if size == 0:
                break
            parts.append(data[:-2])
        body = b"".join(parts)
    else:
        body = await reader.read()
    return status, headers, body


async def connect(stub: StubProcess) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", stub.port)


async def test_pipelined_requests_are_answered_in_order(stub: StubProcess) -> None:
    reader, writer = await connect(stub)
    try:
        slow = chat(0xA1, extra="x-stub-ttft-ms: 30\r\n")  # due last, answered first
        writer.write(slow + chat(0xA2, stream=True) + b"GET /health HTTP/1.1\r\n\r\n" + chat(0xA3))
        got = [await read_response(reader) for _ in range(4)]
    finally:
        writer.close()
    assert [s for s, _, _ in got] == [200, 200, 200, 200]
    first = json.loads(got[0][2])
    assert first["choices"][0]["message"]["content"] == content.expected_text(0xA1, 4)
    assert got[1][1]["content-type"].startswith("text/event-stream")
    assert got[1][2].endswith(b"data: [DONE]\n\n") and b"[00000000000000a2]" in got[1][2]
    assert got[2][2] == b'{"status":"ok"}'
    assert json.loads(got[3][2])["id"] == "chatcmpl-00000000000000a3"


async def test_chunked_request_body_and_ledger_t_recv(stub: StubProcess) -> None:
    cid = 0xC4C
    raw = chat(cid)
    head, _, body = raw.partition(b"\r\n\r\n")
    head = head.replace(f"Content-Length: {len(body)}".encode(), b"Transfer-Encoding: chunked")
    pieces = [body[i : i + 7] for i in range(0, len(body), 7)]
    chunked = b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in pieces)
    reader, writer = await connect(stub)
    try:
        writer.write(head + b"\r\n\r\n" + chunked[:20])
        await writer.drain()
        writer.write(chunked[20:] + b"0\r\n\r\n")
        status, _, got = await read_response(reader)
        writer.write(b"GET /_loadgate/ledger HTTP/1.1\r\n\r\n")
        _, _, ledger = await read_response(reader)
    finally:
        writer.close()
    assert status == 200
    assert json.loads(got)["choices"][0]["message"]["content"] == content.expected_text(cid, 4)
    recs = np.frombuffer(ledger, dtype=LEDGER_DTYPE)
    (rec,) = recs[recs["corr"] == cid]
    assert 0 < rec["t_recv"] <= rec["t_first_write"]


async def test_http10_keep_alive(stub: StubProcess) -> None:
    reader, writer = await connect(stub)
    try:
        for _ in range(2):
            writer.write(b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            status, headers, _body = await read_response(reader)
            assert status == 200 and headers["connection"] == "keep-alive"
        writer.write(b"GET /health HTTP/1.0\r\n\r\n")
        status, headers, _ = await read_response(reader)
        assert headers["connection"] == "close"
        assert await reader.read() == b""  # and it closes
    finally:
        writer.close()


async def test_head_answer_has_no_body(stub: StubProcess) -> None:
    reader, writer = await connect(stub)
    try:
        writer.write(b"HEAD /health HTTP/1.1\r\n\r\nGET /health HTTP/1.1\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ") and b"content-length: 15\r\n" in head
        status, _, body = await read_response(reader)  # would misparse after a stray body
        assert status == 200 and body == b'{"status":"ok"}'
    finally:
        writer.close()


async def test_half_closed_client_still_gets_its_answers(stub: StubProcess) -> None:
    reader, writer = await connect(stub)
    try:
        writer.write(chat(0xE0F, extra="x-stub-ttft-ms: 20\r\n") + b"GET /health HTTP/1.1\r\n\r\n")
        writer.write_eof()
        s1, _, _ = await read_response(reader)
        s2, _, _ = await read_response(reader)
        assert (s1, s2) == (200, 200)
        assert await reader.read() == b""
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("request_bytes", "status", "anthropic_shape"),
    [
        (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n", 400, False),
        (b"POST /v1/messages HTTP/1.1\r\nContent-Length: nope\r\n\r\n", 400, True),
        (b"POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n", 400,
         False),
        (b"GET / HTTP/1.1\r\nX-Big: " + b"a" * (MAX_HEAD_BYTES + 10) + b"\r\n\r\n", 431, False),
    ],
)  # fmt: skip
async def test_malformed_is_a_provider_shaped_error_then_close(
    stub: StubProcess, request_bytes: bytes, status: int, anthropic_shape: bool
) -> None:
    reader, writer = await connect(stub)
    try:
        writer.write(b"GET /health HTTP/1.1\r\n\r\n" + request_bytes)
        ok, _, _ = await read_response(reader)
        got, headers, body = await read_response(reader)
        assert await reader.read() == b""
    finally:
        writer.close()
    assert ok == 200 and got == status and headers["connection"] == "close"
    err: Any = json.loads(body)
    if anthropic_shape:
        assert err["type"] == "error" and err["error"]["type"] == "invalid_request_error"
    else:
        assert set(err["error"]) == {"message", "type", "param", "code"}


async def test_chunked_body_over_limit_is_413_and_closes(stub: StubProcess) -> None:
    reader, writer = await connect(stub)
    try:
        writer.write(
            f"POST {CHAT} HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
            f"x-loadgate-id: 0000000000000413\r\n\r\n".encode()
        )
        for _ in range(5):  # 5 KiB > 4 KiB limit, sent as the client pleases
            writer.write(b"400\r\n" + b" " * 1024 + b"\r\n")
        status, _, body = await read_response(reader)
        assert await reader.read() == b""
    finally:
        writer.close()
    assert status == 413 and json.loads(body)["error"]["code"] == "request_too_large"


async def test_expect_continue_waits_for_the_answer_ahead(stub: StubProcess) -> None:
    """A 100 Continue never overtakes the answer to an earlier pipelined request."""
    raw = chat(0x100D)
    head, _, body = raw.partition(b"\r\n\r\n")
    reader, writer = await connect(stub)
    try:
        writer.write(chat(0x100E, extra="x-stub-ttft-ms: 30\r\n"))
        writer.write(head + b"\r\nExpect: 100-continue\r\n\r\n")
        first, _, _ = await read_response(reader)
        assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(body)
        second, _, got = await read_response(reader)
    finally:
        writer.close()
    assert (first, second) == (200, 200)
    assert json.loads(got)["id"] == "chatcmpl-000000000000100d"
