"""Faults, bad input, auth and the ledger over real loopback HTTP.

Timing assertions are one-sided lower bounds the stub guarantees by design (it
never writes before a deadline), never upper bounds or tolerances.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import numpy as np
import openai
import pytest
import pytest_asyncio

from stub_upstream import StubConfig, StubProcess, content
from stub_upstream.faults import FaultPicker
from stub_upstream.ledger_format import ENDPOINT_CODES, FAULT_CODES, LEDGER_DTYPE

pytestmark = pytest.mark.asyncio(loop_scope="module")

FAST = {"x-stub-ttft-ms": "0", "x-stub-itl-ms": "0"}
CHAT = "/v1/chat/completions"
MS = 1_000_000


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stub() -> AsyncIterator[StubProcess]:
    cfg = StubConfig(port=0, ttft_ms=0.0, itl_ms=0.0, output_tokens=8, retry_after_s=2.0)
    async with StubProcess(cfg) as s:
        yield s


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def strict() -> AsyncIterator[StubProcess]:
    """Seeded 500s, no-retry, auth keys, a tiny body limit and a tiny ledger."""
    cfg = StubConfig(
        port=0, ttft_ms=0.0, itl_ms=0.0, output_tokens=4, seed=3, faults={"500": 0.5},
        no_retry=True, expected_keys=["sk-good", "sk-other"], max_body_bytes=1024,
        ledger_capacity=4,
    )  # fmt: skip
    async with StubProcess(cfg) as s:
        yield s


@pytest_asyncio.fixture(loop_scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def chat_body(cid: int, stream: bool = False, **extra: Any) -> dict[str, Any]:
    msgs = [{"role": "user", "content": f"hi {content.marker(cid)}"}]
    body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": msgs, **extra}
    if stream:
        body["stream"] = True
    return body


def msg_body(cid: int, stream: bool = False) -> dict[str, Any]:
    return {**chat_body(cid, stream), "model": "claude-stub-1", "max_tokens": 8}


async def ledger(
    http: aiohttp.ClientSession, stub: StubProcess, cursor: str = ""
) -> tuple[np.ndarray[Any, Any], str, int]:
    async with http.get(stub.url + "/_loadgate/ledger", params={"cursor": cursor}) as r:
        assert r.status == 200
        body = await r.read()
        return (
            np.frombuffer(body, dtype=LEDGER_DTYPE),
            r.headers["x-loadgate-cursor"],
            int(r.headers["x-loadgate-lost"]),
        )


async def records_for(http: aiohttp.ClientSession, stub: StubProcess, cid: int) -> Any:
    recs, _, _ = await ledger(http, stub)
    return recs[recs["corr"] == cid]


# ------------------------------------------------------------------ faults


@pytest.mark.parametrize(
    ("path", "body", "status", "etype"),
    [
        (CHAT, chat_body(0x4291), 429, "requests"),
        ("/v1/messages", msg_body(0x4292), 429, "rate_limit_error"),
    ],
)
async def test_429_has_retry_after_and_ratelimit_headers(
    http: aiohttp.ClientSession,
    stub: StubProcess,
    path: str,
    body: dict[str, Any],
    status: int,
    etype: str,
) -> None:
    headers = {**FAST, "x-stub-fault": "429"}
    async with http.post(stub.url + path, json=body, headers=headers) as r:
        assert r.status == 429
        assert r.headers["retry-after"] == "2"
        assert r.headers["x-ratelimit-remaining-requests"] == "0"
        assert "x-should-retry" not in r.headers  # only with no_retry
        err = await r.json()
    if path == CHAT:
        assert err["error"]["type"] == etype and err["error"]["code"] == "rate_limit_exceeded"
        assert set(err["error"]) == {"message", "type", "param", "code"}
    else:
        assert err == {
            "type": "error",
            "error": {"type": etype, "message": err["error"]["message"]},
        }
    cid = content.find_corr_id(json.dumps(body).encode())
    assert cid is not None
    (rec,) = await records_for(http, stub, cid)
    assert rec["status"] == 429 and rec["fault"] == FAULT_CODES["429"]


async def test_error_faults_through_the_sdks(stub: StubProcess) -> None:
    oa = openai.AsyncOpenAI(base_url=stub.url + "/v1", api_key="k", max_retries=0)
    an = anthropic.AsyncAnthropic(base_url=stub.url, api_key="k", max_retries=0)
    async with oa, an:
        for fault, exc in (("500", openai.InternalServerError), ("503", openai.APIStatusError)):
            with pytest.raises(exc) as ei:
                await oa.chat.completions.create(
                    **chat_body(1), extra_headers={"x-stub-fault": fault}
                )
            assert ei.value.status_code == int(fault)
        # OpenAI has no 529: its overload answer is a 503 with code "overloaded".
        with pytest.raises(openai.APIStatusError) as ei:
            await oa.chat.completions.create(**chat_body(1), extra_headers={"x-stub-fault": "529"})
        assert ei.value.status_code == 503 and ei.value.code == "overloaded"
        with pytest.raises(anthropic.OverloadedError) as ai:
            await an.messages.create(**msg_body(2), extra_headers={"x-stub-fault": "529"})
        assert ai.value.status_code == 529
        with pytest.raises(anthropic.InternalServerError) as ai2:
            await an.messages.create(**msg_body(2), extra_headers={"x-stub-fault": "500"})
        assert ai2.value.body == {
            "type": "error",
            "error": {"type": "api_error", "message": ai2.value.body["error"]["message"]},  # type: ignore[index]
        }


async def test_midstream_error_openai_sdk_raises_after_half(stub: StubProcess) -> None:
    cid = 0x51D1
    oa = openai.AsyncOpenAI(base_url=stub.url + "/v1", api_key="k", max_retries=0)
    got: list[str] = []
    async with oa:
        stream = await oa.chat.completions.create(
            **chat_body(cid, stream=True), extra_headers={"x-stub-fault": "midstream_error"}
        )
        with pytest.raises(openai.APIError):
            async for chunk in stream:
                if chunk.choices:
                    got.append(chunk.choices[0].delta.content or "")
    assert "".join(got) == content.expected_text(cid, 4)  # 8 tokens, error after 4


async def test_midstream_error_anthropic_sdk_raises(stub: StubProcess) -> None:
    an = anthropic.AsyncAnthropic(base_url=stub.url, api_key="k", max_retries=0)
    async with an:
        with pytest.raises(anthropic.APIStatusError) as ei:
            async with an.messages.stream(
                **msg_body(0x51D2), extra_headers={"x-stub-fault": "midstream_error"}
            ) as s:
                async for _ in s:
                    pass
    assert "overloaded_error" in str(ei.value.body)


async def test_midstream_error_responses_and_non_stream(
    http: aiohttp.ClientSession, stub: StubProcess
) -> None:
    body = {"model": "m", "input": f"x {content.marker(0x51D3)}", "stream": True}
    hdr = {**FAST, "x-stub-fault": "midstream_error"}
    async with http.post(stub.url + "/v1/responses", json=body, headers=hdr) as r:
        text = (await r.read()).decode()
    assert r.status == 200
    assert "event: error\n" in text and "response.completed" not in text
    assert text.count("response.output_text.delta\n") == 4
    async with http.post(stub.url + CHAT, json=chat_body(0x51D4), headers=hdr) as r:
        assert r.status == 500
    (rec,) = await records_for(http, stub, 0x51D4)
    assert rec["fault"] == FAULT_CODES["midstream_error"] and rec["status"] == 500


async def test_stall_pauses_half_way(http: aiohttp.ClientSession, stub: StubProcess) -> None:
    cid = 0x57A1
    hdr = {**FAST, "x-stub-fault": "stall", "x-stub-stall-ms": "60"}
    async with http.post(stub.url + CHAT, json=chat_body(cid, True), headers=hdr) as r:
        text = (await r.read()).decode()
    assert text.endswith("data: [DONE]\n\n")
    (rec,) = await records_for(http, stub, cid)
    assert rec["fault"] == FAULT_CODES["stall"] and rec["tokens"] == 8
    assert rec["t_last_write"] - rec["t_sched_first"] >= 60 * MS  # never early


async def test_slow_headers_delays_everything(
    http: aiohttp.ClientSession, stub: StubProcess
) -> None:
    cid = 0x510E
    hdr = {**FAST, "x-stub-fault": "slow_headers", "x-stub-stall-ms": "40"}
    async with http.post(stub.url + CHAT, json=chat_body(cid), headers=hdr) as r:
        got = await r.json()
    assert got["choices"][0]["message"]["content"] == content.expected_text(cid, 8)
    (rec,) = await records_for(http, stub, cid)
    assert rec["fault"] == FAULT_CODES["slow_headers"]
    assert rec["t_sched_first"] - rec["t_recv"] == 40 * MS
    assert rec["t_first_write"] >= rec["t_sched_first"]


@pytest.mark.parametrize("stream", [True, False])
async def test_reset_aborts_mid_response(
    http: aiohttp.ClientSession, stub: StubProcess, stream: bool
) -> None:
    cid = 0x2E5E7 + stream
    hdr = {**FAST, "x-stub-fault": "reset"}
    with pytest.raises((aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError)):
        async with http.post(stub.url + CHAT, json=chat_body(cid, stream), headers=hdr) as r:
            await r.read()
    (rec,) = await records_for(http, stub, cid)
    assert rec["fault"] == FAULT_CODES["reset"] and rec["stream"] == int(stream)
    assert rec["tokens"] == (4 if stream else 0)
    # The stub still serves after a reset.
    async with http.post(stub.url + CHAT, json=chat_body(1), headers=FAST) as r:
        assert r.status == 200


async def test_seeded_fault_draws_and_no_retry(
    http: aiohttp.ClientSession, strict: StubProcess
) -> None:
    expect = FaultPicker({"500": 0.5}, seed=3, worker=0)
    statuses = []
    for i in range(20):
        hdr = {"authorization": "Bearer sk-good"}
        async with http.post(strict.url + CHAT, json=chat_body(100 + i), headers=hdr) as r:
            statuses.append(r.status)
            if r.status == 500:
                assert r.headers["x-should-retry"] == "false"
            await r.read()
    predicted = [500 if expect.draw() == "500" else 200 for _ in range(20)]
    assert statuses == predicted
    assert 0 < statuses.count(500) < 20


# ------------------------------------------------------------------ auth


@pytest.mark.parametrize(
    ("headers", "ok"),
    [
        ({"authorization": "Bearer sk-good"}, True),
        ({"x-api-key": "sk-other"}, True),
        ({"api-key": "sk-good"}, True),
        ({"authorization": "Bearer sk-bad"}, False),
        ({}, False),
    ],
)
async def test_expected_keys(
    http: aiohttp.ClientSession, strict: StubProcess, headers: dict[str, str], ok: bool
) -> None:
    hdr = {**headers, "x-stub-fault": "none"}
    async with http.post(strict.url + CHAT, json=chat_body(7), headers=hdr) as r:
        assert r.status == (200 if ok else 401)
        body = await r.json()
    if not ok:
        assert body["error"]["code"] == "invalid_api_key"
    async with http.post(strict.url + "/v1/messages", json=msg_body(7), headers=hdr) as r:
        assert r.status == (200 if ok else 401)
        body = await r.json()
    if not ok:
        assert body["error"]["type"] == "authentication_error"
    recs, _, _ = await ledger(http, strict)
    last = recs[-1]
    assert last["fault"] == (0 if ok else FAULT_CODES["auth"])
    value = next(iter(headers.values()), "")
    expect_hash = (
        int.from_bytes(hashlib.blake2b(value.encode()).digest()[:8], "little") if value else 0
    )
    assert last["auth_hash"] == expect_hash


# ------------------------------------------------------------- bad input


BAD = [
    ("POST", CHAT, b"{not json", 400, False),
    ("POST", CHAT, b"[1, 2]", 400, False),
    ("POST", CHAT, b"[" * 100_000, 400, False),  # nesting deeper than the parser's stack
    ("POST", CHAT, b'{"model": "m", "messages": [{}]}\xff', 400, False),
    ("POST", CHAT, b'{"model": "m"}', 400, False),  # no messages
    ("POST", CHAT, b'{"messages": [{"role": "user", "content": "x"}]}', 400, False),  # no model
    ("POST", CHAT, b'{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":"8"}',
     400, False),
    ("POST", "/v1/messages", b'{"model":"m","messages":[{"role":"user","content":"x"}]}', 400,
     True),  # Anthropic requires max_tokens
    ("POST", "/v1/messages", b'{"model":"m","max_tokens":8}', 400, True),
    ("POST", "/v1/responses", b'{"model":"m"}', 400, False),
    ("POST", "/v1/embeddings", b'{"model":"m"}', 400, False),
    ("POST", "/v1/embeddings", b'{"model":"m","input":"x","encoding_format":"hex"}', 400, False),
    ("GET", CHAT, b"", 405, False),
    ("POST", "/v1/models", b"{}", 405, False),
    ("GET", "/v1/messages", b"", 405, True),
    ("GET", "/v2/nothing", b"", 404, False),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "raw", "status", "anthropic_shape"), BAD)
async def test_bad_input_is_a_provider_shaped_4xx(
    http: aiohttp.ClientSession,
    stub: StubProcess,
    method: str,
    path: str,
    raw: bytes,
    status: int,
    anthropic_shape: bool,
) -> None:
    _, cursor, _ = await ledger(http, stub)
    hdr = {"content-type": "application/json", content.CORR_HEADER: "00000000000bad00"}
    async with http.request(method, stub.url + path, data=raw, headers=hdr) as r:
        assert r.status == status
        body = await r.json()
    if anthropic_shape:
        assert body["type"] == "error" and set(body["error"]) == {"type", "message"}
    else:
        assert set(body["error"]) == {"message", "type", "param", "code"}
    recs, _, _ = await ledger(http, stub, cursor)
    assert len(recs) == 1
    assert recs[0]["status"] == status and recs[0]["fault"] == FAULT_CODES["bad_request"]
    assert recs[0]["corr"] == 0xBAD00


async def test_bad_override_header(http: aiohttp.ClientSession, stub: StubProcess) -> None:
    bad: list[dict[str, str]] = [
        {"x-stub-ttft-ms": "soon"},
        {"x-stub-itl-ms": "inf"},
        {"x-stub-stall-ms": "nan"},
        {"x-stub-ttft-ms": "-1"},
        {"x-stub-fault": "gremlins"},
        {"x-stub-tokens": "0"},
        {"x-stub-tokens": "2.5"},
        {"x-stub-tokens": "1e9"},
    ]
    for hdr in bad:
        async with http.post(stub.url + CHAT, json=chat_body(3), headers=hdr) as r:
            assert r.status == 400


async def _raw_exchange(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await reader.read(65536)
    finally:
        writer.close()


async def test_huge_body_declared_length_is_413_without_reading(stub: StubProcess) -> None:
    req = (
        f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {5 * 1024 * 1024}\r\n\r\n{{"
    ).encode()
    head = await _raw_exchange(stub.port, req)
    assert head.startswith(b"HTTP/1.1 413 ")
    assert b'"code": "request_too_large"' in head


async def test_huge_chunked_body_is_413(http: aiohttp.ClientSession, strict: StubProcess) -> None:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b" " * 512

    hdr = {"authorization": "Bearer sk-good", "x-loadgate-id": "0000000000000413"}
    async with http.post(strict.url + "/v1/messages", data=body(), headers=hdr) as r:
        assert r.status == 413
        got = await r.json()
    assert got["error"]["type"] == "request_too_large"


async def test_http10_stream_without_chunking(stub: StubProcess) -> None:
    payload = json.dumps(chat_body(0x10, stream=True)).encode()
    req = (
        f"POST {CHAT} HTTP/1.0\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload
    reader, writer = await asyncio.open_connection("127.0.0.1", stub.port)
    writer.write(req)
    data = await reader.read()  # the stub closes: HTTP/1.0 has no chunking
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head.lower()
    assert body.endswith(b"data: [DONE]\n\n")


# ------------------------------------------------------------------ ledger


async def test_ledger_records_values_and_order(
    http: aiohttp.ClientSession, stub: StubProcess
) -> None:
    cids = {"chat": 0x1ED1, "messages": 0x1ED2, "responses": 0x1ED3, "embeddings": 0x1ED4}
    hdr = {**FAST, "authorization": "Bearer sk-led"}
    sizes: dict[int, int] = {}
    kinds: dict[int, tuple[str, bool]] = {}
    for stream in (False, True):
        for ep, cid in cids.items():
            c = cid + 0x100 * stream
            if ep == "chat":
                path, body = CHAT, chat_body(c, stream)
            elif ep == "messages":
                path, body = "/v1/messages", msg_body(c, stream)
            else:
                path = "/v1/" + ep
                body = {"model": "gpt-4o-mini", "input": content.marker(c)}
                if ep == "responses":
                    body["stream"] = stream
                elif stream:
                    continue
            async with http.post(stub.url + path, json=body, headers=hdr) as r:
                assert r.status == 200
                sizes[c] = len(await r.read())
                kinds[c] = (ep, stream)
    recs, _, _ = await ledger(http, stub)
    want_hash = int.from_bytes(hashlib.blake2b(b"Bearer sk-led").digest()[:8], "little")
    for c, size in sizes.items():
        (rec,) = recs[recs["corr"] == c]
        ep, stream = kinds[c]
        assert rec["endpoint"] == ENDPOINT_CODES[ep]
        assert rec["stream"] == int(stream)
        assert rec["status"] == 200 and rec["fault"] == 0 and rec["worker"] == 0
        assert rec["auth_hash"] == want_hash
        assert rec["tokens"] == (0 if ep == "embeddings" else 8)
        assert rec["bytes"] == size  # unframed body bytes
        assert rec["model"].startswith(b"gpt-4o-mini" if ep != "messages" else b"claude-stub-1")
        assert 0 < rec["t_recv"] <= rec["t_sched_first"] <= rec["t_first_write"]
        assert rec["t_first_write"] <= rec["t_last_write"]


async def test_ledger_cursor_and_reset(http: aiohttp.ClientSession, stub: StubProcess) -> None:
    _, cursor, _ = await ledger(http, stub)
    for i in range(3):
        async with http.post(stub.url + CHAT, json=chat_body(0xC0 + i), headers=FAST) as r:
            await r.read()
    recs, cursor2, lost = await ledger(http, stub, cursor)
    assert sorted(recs["corr"].tolist()) == [0xC0, 0xC1, 0xC2] and lost == 0
    again, cursor3, _ = await ledger(http, stub, cursor2)
    assert len(again) == 0 and cursor3 == cursor2
    async with http.post(stub.url + "/_loadgate/reset") as r:
        assert r.status == 200
    after, _, _ = await ledger(http, stub)
    assert len(after) == 0
    stale, _, _ = await ledger(http, stub, cursor)  # a pre-reset cursor reads from the reset
    assert len(stale) == 0


async def test_ledger_counts_lost_records(http: aiohttp.ClientSession, strict: StubProcess) -> None:
    async with http.post(strict.url + "/_loadgate/reset") as r:
        assert r.status == 200
    hdr = {"authorization": "Bearer sk-good", "x-stub-fault": "none"}
    for i in range(10):
        async with http.post(strict.url + CHAT, json=chat_body(0xD0 + i), headers=hdr) as r:
            await r.read()
    recs, _, lost = await ledger(http, strict)  # capacity 4
    assert recs["corr"].tolist() == [0xD6, 0xD7, 0xD8, 0xD9] and lost == 6


async def test_metrics_and_info(http: aiohttp.ClientSession, stub: StubProcess) -> None:
    async with http.post(stub.url + CHAT, json=chat_body(5), headers=FAST) as r:
        await r.read()
    async with http.get(stub.url + "/metrics") as r:
        text = await r.text()
    assert 'stub_requests_total{endpoint="chat",status="200"}' in text
    assert "stub_in_flight 0.0" in text
    assert "stub_timer_lateness_seconds_count" in text
    async with http.get(stub.url + "/_loadgate/info") as r:
        info = await r.json()
    assert info["workers"] == 1 and info["capacity"] == 1_048_576
    assert info["config"]["output_tokens"] == 8


async def test_client_gone_mid_stream_is_recorded(
    http: aiohttp.ClientSession, stub: StubProcess
) -> None:
    cid = 0x60E
    payload = json.dumps(chat_body(cid, stream=True)).encode()
    req = (
        f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"x-stub-ttft-ms: 0\r\nx-stub-itl-ms: 40\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload
    reader, writer = await asyncio.open_connection("127.0.0.1", stub.port)
    writer.write(req)
    await reader.readuntil(b'"content":"[')  # the first token arrived
    writer.close()
    for _ in range(500):  # bounded: the stub notices on its next tick (<= 40 ms)
        recs = await records_for(http, stub, cid)
        if len(recs):
            break
        await asyncio.sleep(0.01)
    (rec,) = recs
    assert rec["status"] == 200 and 1 <= rec["tokens"] < 8
    assert rec["fault"] == 0


async def test_override_tokens_and_latency_headers(
    http: aiohttp.ClientSession, stub: StubProcess
) -> None:
    cid = 0x70C
    hdr = {"x-stub-tokens": "3", "x-stub-ttft-ms": "30", "x-stub-itl-ms": "5"}
    async with http.post(stub.url + CHAT, json=chat_body(cid), headers=hdr) as r:
        got = await r.json()
    assert got["choices"][0]["message"]["content"] == content.expected_text(cid, 3)
    (rec,) = await records_for(http, stub, cid)
    # Non-streaming answers are due at ttft + (n - 1) * itl, exactly.
    assert rec["t_sched_first"] - rec["t_recv"] == (30 + 2 * 5) * MS
    assert rec["t_first_write"] >= rec["t_sched_first"] and rec["tokens"] == 3


async def test_jitter_is_seeded_and_bounded(http: aiohttp.ClientSession) -> None:
    import random

    cfg = StubConfig(port=0, ttft_ms=0.0, itl_ms=0.0, output_tokens=2, jitter_ms=3.0, seed=11)
    async with StubProcess(cfg) as s:
        for i in range(5):
            async with http.post(s.url + CHAT, json=chat_body(0x717 + i)) as r:
                assert r.status == 200
        recs, _, _ = await ledger(http, s)
    rng = random.Random("jitter:11:0")  # the stub's documented per-worker stream
    expect = [int(rng.random() * 3.0 * MS) for _ in range(5)]
    assert (recs["t_sched_first"] - recs["t_recv"]).tolist() == expect


async def test_expect_100_continue(stub: StubProcess) -> None:
    payload = json.dumps(chat_body(0x100C)).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", stub.port)
    try:
        writer.write(
            f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Expect: 100-continue\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
        )
        assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(payload)
        assert (await reader.readline()).startswith(b"HTTP/1.1 200 ")
    finally:
        writer.close()
