"""validate.parse: what the stub accepts, what it refuses (and names), and its limits."""

from __future__ import annotations

import json
from typing import Any

import pytest

from loadgate.client.observation import RequestSpec
from loadgate.load.bodies import build_request
from stub_upstream import validate
from stub_upstream.validate import (
    MAX_EMBEDDING_INPUTS,
    MAX_EMBEDDING_TOKENS,
    MAX_EMBEDDING_VALUES,
    BadRequest,
    ChatBody,
    EmbeddingsBody,
    MessagesBody,
    ResponsesBody,
    embedding_items,
    parse,
)

DIMS = 16
USER = [{"role": "user", "content": "hi"}]


def ok(endpoint: str, body: Any, dims: int = DIMS) -> validate.Body:
    return parse(json.dumps(body).encode(), endpoint, dims)


def refused(endpoint: str, raw: bytes | Any, dims: int = DIMS) -> BadRequest:
    data = raw if isinstance(raw, bytes) else json.dumps(raw).encode()
    with pytest.raises(BadRequest) as ei:
        parse(data, endpoint, dims)
    assert ei.value.status == 400
    return ei.value


@pytest.mark.parametrize("endpoint", ["chat", "responses", "messages", "embeddings"])
@pytest.mark.parametrize("stream", [False, True])
def test_what_loadgate_sends_is_accepted(endpoint: str, stream: bool) -> None:
    if endpoint == "embeddings" and stream:
        return
    spec = RequestSpec(
        corr=0xABC, endpoint=endpoint, stream=stream, model="gpt-4o-mini",
        prompt_tokens=32, max_tokens=7, expect_tokens=7,
    )  # fmt: skip
    body = parse(build_request(spec).body, endpoint, DIMS)
    assert body.model == "gpt-4o-mini"
    assert bool(body.stream) is stream
    assert body.output_cap == (None if endpoint == "embeddings" else 7)
    assert body.include_usage is (stream and endpoint == "chat")


def test_sdk_shaped_bodies_are_accepted() -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    chat = ok(
        "chat",
        {
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "hi"},
                                             {"type": "image_url", "image_url": {"url": "x"}}]},
                {"role": "assistant", "content": None,
                 "tool_calls": [{"id": "c", "type": "function"}]},
                {"role": "tool", "tool_call_id": "c", "content": "42"},
            ],
            "tools": [tool], "tool_choice": "auto", "temperature": 0, "top_p": 1, "n": 1,
            "stop": ["\n"], "seed": -5, "max_completion_tokens": 9, "max_tokens": 20,
            "stream": None, "stream_options": None, "response_format": {"type": "json_object"},
            "logit_bias": {"50256": -100}, "user": "u", "metadata": {"k": "v"},
        },
    )  # fmt: skip
    assert isinstance(chat, ChatBody) and chat.output_cap == 9 and not chat.stream
    msg = ok(
        "messages",
        {
            "model": "claude-sonnet-4-20250514", "max_tokens": 1024,
            "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f",
                                                   "input": {"a": [1, {"b": None}]}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
                                              "content": [{"type": "text", "text": "ok"}]}]},
            ],
            "tools": [{"name": "f", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "any"}, "temperature": 1, "top_k": 40,
            "stop_sequences": ["END"], "thinking": {"type": "enabled", "budget_tokens": 1024},
        },
    )  # fmt: skip
    assert isinstance(msg, MessagesBody) and msg.output_cap == 1024
    resp = ok(
        "responses",
        {
            "model": "gpt-4o-mini",
            "input": [
                {"role": "user", "content": [{"type": "input_text", "text": "hi"}]},
                {"type": "function_call_output", "call_id": "c", "output": "42"},
            ],
            "instructions": "brief", "reasoning": {"effort": "low"}, "store": False,
            "text": {"format": {"type": "text"}}, "include": ["reasoning.encrypted_content"],
        },
    )  # fmt: skip
    assert isinstance(resp, ResponsesBody) and resp.output_cap is None
    for inp in ("x", ["a", "b"], [1, 2, 3], [[1, 2], [3]]):
        emb = ok("embeddings", {"model": "e", "input": inp, "encoding_format": "base64"})
        assert isinstance(emb, EmbeddingsBody) and emb.items()


def test_unknown_fields_and_models_are_fine() -> None:
    body = ok("chat", {"model": "no-such-model", "messages": USER, "x-junk": [[{}]], "NaN": 1})
    assert body.model == "no-such-model"


@pytest.mark.parametrize(
    ("endpoint", "body", "param"),
    [
        ("chat", {"model": "m", "messages": "hi"}, "messages"),
        ("chat", {"model": "m", "messages": []}, "messages"),
        ("chat", {"model": "m", "messages": [{}]}, "messages[0].role"),
        ("chat", {"model": "m", "messages": [{"role": "user", "content": 5}]},
         "messages[0].content"),
        ("chat", {"model": "m", "messages": [{"role": "user", "content": [{}]}]},
         "messages[0].content[0].type"),
        ("chat", {"model": "m", "messages": USER, "tools": [1]}, "tools[0]"),
        ("chat", {"model": "m", "messages": USER, "tools": {"type": "function"}}, "tools"),
        ("chat", {"model": "m", "messages": USER, "max_tokens": "8"}, "max_tokens"),
        ("chat", {"model": "m", "messages": USER, "max_tokens": 0}, "max_tokens"),
        ("chat", {"model": "m", "messages": USER, "max_tokens": 2**31}, "max_tokens"),
        ("chat", {"model": "m", "messages": USER, "max_tokens": 10**40}, "max_tokens"),
        ("chat", {"model": "m", "messages": USER, "max_tokens": True}, "max_tokens"),
        ("chat", {"model": "m", "messages": USER, "max_tokens": 8.0}, "max_tokens"),
        ("chat", {"model": "m", "messages": USER, "n": 0}, "n"),
        ("chat", {"model": "m", "messages": USER, "n": 129}, "n"),
        ("chat", {"model": "m", "messages": USER, "temperature": 2.5}, "temperature"),
        ("chat", {"model": "m", "messages": USER, "temperature": "hot"}, "temperature"),
        ("chat", {"model": "m", "messages": USER, "stream": "yes"}, "stream"),
        ("chat", {"model": "m", "messages": USER, "stream": 1}, "stream"),
        ("chat", {"model": "m", "messages": USER, "stream_options": [1]}, "stream_options"),
        ("chat", {"model": "m", "messages": USER, "seed": 2**64}, "seed"),
        ("chat", {"model": 5, "messages": USER}, "model"),
        ("chat", {"model": "m" * 257, "messages": USER}, "model"),
        ("chat", {"messages": USER}, "model"),
        ("responses", {"model": "m"}, "input"),
        ("responses", {"model": "m", "input": ""}, "input"),
        ("responses", {"model": "m", "input": [5]}, "input[0]"),
        ("responses", {"model": "m", "input": "x", "max_output_tokens": -1}, "max_output_tokens"),
        ("messages", {"model": "m", "messages": USER}, "max_tokens"),
        ("messages", {"model": "m", "max_tokens": 8}, "messages"),
        ("messages", {"model": "m", "max_tokens": 8, "messages": [{"role": "user"}]},
         "messages[0].content"),
        ("messages", {"model": "m", "max_tokens": 8, "messages": USER, "temperature": 1.5},
         "temperature"),
        ("messages", {"model": "m", "max_tokens": 8, "messages": USER, "tool_choice": "auto"},
         "tool_choice"),
        ("embeddings", {"model": "m"}, "input"),
        ("embeddings", {"model": "m", "input": []}, "input"),
        ("embeddings", {"model": "m", "input": ["a", 5, None]}, "input[2]"),
        ("embeddings", {"model": "m", "input": ["a", 5]}, "input"),
        ("embeddings", {"model": "m", "input": [[]]}, "input[0]"),
        ("embeddings", {"model": "m", "input": [-1]}, "input[0]"),
        ("embeddings", {"model": "m", "input": "x", "encoding_format": "hex"}, "encoding_format"),
        ("embeddings", {"model": "m", "input": "x", "dimensions": 0}, "dimensions"),
        ("embeddings", {"model": "m", "input": "x", "dimensions": 10**9}, "dimensions"),
    ],
)  # fmt: skip
def test_bad_fields_are_400_naming_the_field(endpoint: str, body: Any, param: str) -> None:
    assert refused(endpoint, body).param == param


@pytest.mark.parametrize(
    "raw",
    [
        b"", b"{", b"{not json", b"[1, 2]", b'"x"', b"null",
        b'{"model": "m", "messages": [{"role": "user", "content": "x"}]} trailing',
        b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "t": NaN}',
        b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "t": Infinity}',
        b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "x": "\xff"}',
        b'{"model": "m\xc3", "messages": [{"role": "user", "content": "x"}]}',
        b'{"model": "\\ud800", "messages": [{"role": "user", "content": "x"}]}',
        b"\xef\xbb\xbf{}",
        b"[" * 100_000,
        b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "x": '
        + b"[" * 5000 + b"]" * 5000 + b"}",
    ],
)  # fmt: skip
def test_unparseable_bodies_are_400(raw: bytes) -> None:
    refused("chat", raw)


def test_huge_numbers_in_undeclared_fields_cost_nothing() -> None:
    body = b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "x": ' + b"9" * 5000
    assert parse(body + b"}", "chat", DIMS).model == "m"


def test_embedding_items() -> None:
    assert embedding_items("x") == ["x"]
    assert embedding_items(["a", "b"]) == ["a", "b"]
    assert embedding_items([1, 2]) == [[1, 2]]
    assert embedding_items([[1], [2, 3]]) == [[1], [2, 3]]
    with pytest.raises(BadRequest):
        embedding_items(["a", [1]])
    with pytest.raises(BadRequest):
        embedding_items([[1], 2])


def test_embedding_limits() -> None:
    most = ["x"] * MAX_EMBEDDING_INPUTS
    ok("embeddings", {"model": "m", "input": most}, dims=MAX_EMBEDDING_VALUES // len(most))
    assert refused("embeddings", {"model": "m", "input": [*most, "x"]}, dims=1).param == "input"
    # inputs x dims: the request's dimensions are named, or the input when the default applies
    ok("embeddings", {"model": "m", "input": "x", "dimensions": MAX_EMBEDDING_VALUES})
    big = {"model": "m", "input": ["x", "y"], "dimensions": MAX_EMBEDDING_VALUES // 2 + 1}
    assert refused("embeddings", big).param == "dimensions"
    many = {"model": "m", "input": ["x"] * 5}
    assert refused("embeddings", many, dims=MAX_EMBEDDING_VALUES // 4).param == "input"
    # a configured size above the limit still answers one input of it
    ok("embeddings", {"model": "m", "input": "x"}, dims=2 * MAX_EMBEDDING_VALUES)
    refused("embeddings", {"model": "m", "input": ["x", "y"]}, dims=2 * MAX_EMBEDDING_VALUES)
    # token ids: at most MAX_EMBEDDING_TOKENS per input, flat or nested
    ok("embeddings", {"model": "m", "input": [1] * MAX_EMBEDDING_TOKENS})
    refused("embeddings", {"model": "m", "input": [1] * (MAX_EMBEDDING_TOKENS + 1)})
    refused("embeddings", {"model": "m", "input": [[1], [1] * (MAX_EMBEDDING_TOKENS + 1)]})


def test_the_empty_body_of_models() -> None:
    assert validate.NO_BODY.model == "" and validate.NO_BODY.output_cap is None
    assert not validate.NO_BODY.stream and not validate.NO_BODY.include_usage
