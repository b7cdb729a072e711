"""Wire formats as bytes: every SSE event parses, content splices exactly."""

from __future__ import annotations

import base64
import json
import struct

import pytest

from stub_upstream import content, rawhttp, vectors, wire
from stub_upstream.streaming import frame


def _answer(endpoint: str, n: int = 3, **kw: object) -> wire.Answer:
    return wire.Answer(
        endpoint=endpoint, cid=0xAB, tokens=content.tokens(0xAB, n), model='m"q',
        prompt_tokens=5, created=1700000000, capped=False, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def _events(raw: bytes) -> list[tuple[str | None, str]]:
    out = []
    for block in raw.decode().split("\n\n"):
        if not block:
            continue
        event, data = None, ""
        for line in block.split("\n"):
            key, _, value = line.partition(": ")
            if key == "event":
                event = value
            else:
                assert key == "data"
                data = value
        out.append((event, data))
    return out


@pytest.mark.parametrize("endpoint", ["chat", "messages", "responses"])
def test_stream_events_are_valid_json_and_carry_the_text(endpoint: str) -> None:
    a = _answer(endpoint, include_usage=True)
    events, tail = wire.sse_events(a)
    assert len(events) == 3
    evs = _events(b"".join(events) + tail)
    texts = []
    for name, data in evs:
        if data == "[DONE]":
            continue
        obj = json.loads(data)
        if endpoint != "chat":
            assert name == obj["type"]  # every event named, as the SDKs need
        if endpoint == "chat" and obj["choices"]:
            texts.append(obj["choices"][0]["delta"].get("content", ""))
        elif obj.get("type") == "content_block_delta":
            texts.append(obj["delta"]["text"])
        elif obj.get("type") == "response.output_text.delta":
            texts.append(obj["delta"])
    assert "".join(texts) == content.expected_text(0xAB, 3)
    assert '"m\\"q"' in evs[0][1] or endpoint == "responses"  # model JSON-escaped


def test_responses_sequence_numbers_count_from_zero() -> None:
    events, tail = wire.sse_events(_answer("responses", 4))
    seqs = [json.loads(d)["sequence_number"] for _, d in _events(b"".join(events) + tail)]
    assert seqs == list(range(len(seqs)))


def test_chat_usage_chunk_only_with_include_usage() -> None:
    _, tail = wire.sse_events(_answer("chat"))
    assert b'"usage"' not in tail and tail.endswith(b"data: [DONE]\n\n")
    _, tail = wire.sse_events(_answer("chat", include_usage=True))
    usage = json.loads(_events(tail)[-2][1])
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] == 3


@pytest.mark.parametrize("endpoint", ["chat", "messages", "responses"])
def test_json_bodies_parse_and_echo_the_corr_id(endpoint: str) -> None:
    body = json.loads(wire.json_body(_answer(endpoint)))
    prefix = {"chat": "chatcmpl-", "messages": "msg_", "responses": "resp_"}[endpoint]
    assert body["id"] == prefix + "00000000000000ab"
    assert content.expected_text(0xAB, 3) in json.dumps(body)


def test_embeddings_base64_is_little_endian_float32() -> None:
    vec = content.embedding(9, 4)
    body = json.loads(wire.embeddings_body(vectors.encode([9], 4, True), "e", 3))
    raw = base64.b64decode(body["data"][0]["embedding"])
    assert list(struct.unpack("<4f", raw)) == vec
    flt = wire.embeddings_body(vectors.encode([9], 4, False), "e", 3)
    assert json.loads(flt)["data"][0]["embedding"] == vec


def test_error_shapes() -> None:
    oa = json.loads(wire.error_body(False, 429, "slow down"))
    assert oa == {"error": {"message": "slow down", "type": "requests", "param": None,
                            "code": "rate_limit_exceeded"}}  # fmt: skip
    an = json.loads(wire.error_body(True, 529, "Overloaded"))
    assert an == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    mid = _events(wire.midstream_error_event("messages", 0))
    assert mid[0][0] == "error" and json.loads(mid[0][1])["error"]["type"] == "overloaded_error"
    assert "error" in json.loads(_events(wire.midstream_error_event("chat", 0))[0][1])


def test_chunk_framing() -> None:
    assert frame(b"hello", True) == b"5\r\nhello\r\n"
    assert frame(b"x" * 26, True).startswith(b"1a\r\n")
    assert frame(b"hello", False) == b"hello"


@pytest.mark.parametrize("endpoint", ["chat", "responses", "messages"])
@pytest.mark.parametrize("capped", [False, True])
def test_completion_body_is_json_body_of_the_same_answer(endpoint: str, capped: bool) -> None:
    """The bytes-template path and the Answer path give the same bytes."""
    for cid, n in [(0, 1), (0xAB, 7), (2**64 - 1, 16), (0x1234, 40)]:
        a = wire.Answer(endpoint, cid, content.tokens(cid, n), 'm"é', 9, 1700000000, capped)
        body = wire.completion_body(
            endpoint, cid, content.text_bytes(cid, n), n, 'm"é', 9, 1700000000, capped
        )
        assert body == wire.json_body(a)
        parsed = json.loads(body)
        assert parsed["model"] == 'm"é'
        assert content.expected_text(cid, n) in body.decode()


def test_text_bytes_is_the_expected_text() -> None:
    for n in (0, 1, 2, 7, 8, 9, 16, 100):
        for cid in (0, 1, 0xDEADBEEF, 2**64 - 1):
            assert content.text_bytes(cid, n) == content.expected_text(cid, n).encode()


@pytest.mark.parametrize("anthropic", [False, True])
@pytest.mark.parametrize(("keep_alive", "http10"), [(True, False), (True, True), (False, False)])
def test_json_ok_head_is_head_with_its_headers(
    anthropic: bool, keep_alive: bool, http10: bool
) -> None:
    rid = rawhttp.request_id(0xAB, 3, 0x1_0000_0001)
    assert rid == "req_00000000000000ab03100000001"
    headers = {"x-request-id": rid, "openai-processing-ms": "12"}
    if anthropic:
        headers["request-id"] = rid
    headers["content-type"] = "application/json"
    want = rawhttp.head(200, headers, length=456, keep_alive=keep_alive, http10=http10)
    got = rawhttp.json_ok_head(0xAB, 3, 0x1_0000_0001, anthropic, 12, 456, keep_alive, http10)
    # the date line may tick between the two calls
    assert got.split(b"date:")[0] == want.split(b"date:")[0]
    assert got.endswith(b"server: stub_upstream\r\n\r\n")
