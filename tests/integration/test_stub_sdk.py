"""The official SDKs are the acceptance test of the stub's wire formats (WIRE.md)."""

from __future__ import annotations

import base64
import struct
from collections.abc import AsyncIterator

import anthropic
import openai
import pytest
import pytest_asyncio
from anthropic.types import MessageParam
from openai.types.chat import ChatCompletionMessageParam

from stub_upstream import StubConfig, StubProcess, content

pytestmark = pytest.mark.asyncio(loop_scope="module")

CID = 0x00C0FFEE00000001
TOKENS = 16


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stub() -> AsyncIterator[StubProcess]:
    cfg = StubConfig(port=0, ttft_ms=0.0, itl_ms=0.0, output_tokens=TOKENS, embedding_dims=8)
    async with StubProcess(cfg) as s:
        yield s


def _oa(stub: StubProcess) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=stub.url + "/v1", api_key="sk-test", max_retries=0)


def _an(stub: StubProcess) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=stub.url, api_key="sk-ant-test", max_retries=0)


def _msgs(cid: int = CID) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": f"Say something. {content.marker(cid)}"}]


def _amsgs(cid: int = CID) -> list[MessageParam]:
    return [{"role": "user", "content": f"Say something. {content.marker(cid)}"}]


async def test_chat_non_streaming(stub: StubProcess) -> None:
    async with _oa(stub) as client:
        r = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=_msgs(),
            max_tokens=TOKENS,
        )
    assert r.id == f"chatcmpl-{content.format_corr_id(CID)}"
    assert r.choices[0].message.content == content.expected_text(CID, TOKENS)
    assert r.choices[0].finish_reason == "stop"
    assert r.usage is not None and r.usage.completion_tokens == TOKENS


async def test_chat_max_tokens_caps_the_answer(stub: StubProcess) -> None:
    async with _oa(stub) as client:
        r = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=_msgs(),
            max_tokens=5,
        )
    assert r.choices[0].message.content == content.expected_text(CID, 5)
    assert r.choices[0].finish_reason == "length"


async def test_chat_streaming_with_usage(stub: StubProcess) -> None:
    async with _oa(stub) as client:
        stream = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=_msgs(),
            max_tokens=TOKENS,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == content.expected_text(CID, TOKENS)
    assert {c.id for c in chunks} == {f"chatcmpl-{content.format_corr_id(CID)}"}
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == TOKENS
    assert all(c.usage is None for c in chunks[:-1])


async def test_responses_non_streaming(stub: StubProcess) -> None:
    async with _oa(stub) as client:
        r = await client.responses.create(
            model="gpt-4o-mini", input=f"hi {content.marker(CID)}", max_output_tokens=TOKENS
        )
    assert r.id == f"resp_{content.format_corr_id(CID)}"
    assert r.output_text == content.expected_text(CID, TOKENS)
    assert r.usage is not None and r.usage.output_tokens == TOKENS


async def test_responses_streaming(stub: StubProcess) -> None:
    async with _oa(stub) as client:
        stream = await client.responses.create(
            model="gpt-4o-mini", input=f"hi {content.marker(CID)}", stream=True
        )
        events = [e async for e in stream]
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == content.expected_text(CID, TOKENS)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].type == "response.created"
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == content.expected_text(CID, TOKENS)


async def test_responses_stream_helper(stub: StubProcess) -> None:
    async with (
        _oa(stub) as client,
        client.responses.stream(model="gpt-4o-mini", input=f"hi {content.marker(CID)}") as stream,
    ):
        async for _ in stream:
            pass
        final = await stream.get_final_response()
    assert final.output_text == content.expected_text(CID, TOKENS)


async def test_messages_non_streaming(stub: StubProcess) -> None:
    async with _an(stub) as client:
        m = await client.messages.create(
            model="claude-stub-1",
            max_tokens=TOKENS,
            messages=_amsgs(),
        )
    assert m.id == f"msg_{content.format_corr_id(CID)}"
    assert m.content[0].type == "text"
    assert m.content[0].text == content.expected_text(CID, TOKENS)
    assert m.stop_reason == "end_turn"
    assert m.usage.output_tokens == TOKENS


async def test_messages_stream_helper_and_final_message(stub: StubProcess) -> None:
    async with (
        _an(stub) as client,
        client.messages.stream(
            model="claude-stub-1",
            max_tokens=TOKENS,
            messages=_amsgs(),
        ) as stream,
    ):
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == content.expected_text(CID, TOKENS)
    assert final.id == f"msg_{content.format_corr_id(CID)}"
    assert final.content[0].type == "text"
    assert final.content[0].text == content.expected_text(CID, TOKENS)
    assert final.usage.output_tokens == TOKENS


async def test_messages_raw_stream_event_order(stub: StubProcess) -> None:
    async with _an(stub) as client:
        stream = await client.messages.create(
            model="claude-stub-1",
            max_tokens=3,
            messages=_amsgs(),
            stream=True,
        )
        types = [e.type async for e in stream]
    assert types == [
        "message_start", "content_block_start",
        "content_block_delta", "content_block_delta", "content_block_delta",
        "content_block_stop", "message_delta", "message_stop",
    ]  # fmt: skip


async def test_embeddings_sdk_default_base64(stub: StubProcess) -> None:
    async with _oa(stub) as client:
        r = await client.embeddings.create(
            model="text-embedding-3-small", input=[content.marker(CID), content.marker(CID + 1)]
        )
    assert [d.embedding for d in r.data] == [
        content.embedding(CID, 8),
        content.embedding(CID + 1, 8),
    ]


async def test_embeddings_float_and_base64_agree(stub: StubProcess) -> None:
    async with _oa(stub) as client:
        flt = await client.embeddings.create(
            model="text-embedding-3-small", input=content.marker(CID), encoding_format="float"
        )
        raw = await client.embeddings.with_raw_response.create(
            model="text-embedding-3-small", input=content.marker(CID), encoding_format="base64"
        )
    b64 = raw.http_response.json()["data"][0]["embedding"]
    decoded = list(struct.unpack("<8f", base64.b64decode(b64)))
    assert flt.data[0].embedding == decoded == content.embedding(CID, 8)


async def test_models_list(stub: StubProcess) -> None:
    async with _oa(stub) as client:
        ids = [m.id async for m in client.models.list()]
    assert "gpt-4o-mini" in ids and "claude-3-5-haiku-20241022" in ids


async def test_header_corr_id_when_the_body_has_none(stub: StubProcess) -> None:
    async with _oa(stub) as client:
        r = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "no marker"}],
            max_tokens=3,
            extra_headers={content.CORR_HEADER: content.format_corr_id(77)},
        )
    assert r.choices[0].message.content == content.expected_text(77, 3)
