"""Request building: valid JSON per endpoint, marker in the right place, headers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from loadgate.client.observation import RequestSpec
from loadgate.load.bodies import ANTHROPIC_VERSION, build_request
from stub_upstream import content

CID = 0x1234ABCD00000009


def spec(endpoint: str, stream: bool = False, **kw: object) -> RequestSpec:
    base: dict[str, object] = dict(
        corr=CID,
        endpoint=endpoint,
        stream=stream,
        model="m-1",
        prompt_tokens=64,
        max_tokens=16,
        expect_tokens=16,
    )
    base.update(kw)
    return RequestSpec(**base)  # type: ignore[arg-type]


def body_of(s: RequestSpec) -> dict[str, Any]:
    obj = json.loads(build_request(s).body)
    assert isinstance(obj, dict)
    return obj


def test_chat_body_stream_and_marker_ends_the_user_message() -> None:
    req = build_request(spec("chat", True))
    assert req.path == "/v1/chat/completions"
    obj = json.loads(req.body)
    assert obj["model"] == "m-1" and obj["max_tokens"] == 16
    assert obj["stream"] is True and obj["stream_options"] == {"include_usage": True}
    system, user = obj["messages"]
    assert system["role"] == "system" and user["role"] == "user"
    assert user["content"].endswith(content.marker(CID))
    words = len(system["content"].split()) + len(user["content"].split()) - 1
    assert words == 64
    assert content.find_corr_id(req.body) == CID


def test_non_stream_has_no_stream_keys() -> None:
    for endpoint in ("chat", "responses", "messages"):
        obj = body_of(spec(endpoint))
        assert "stream" not in obj and "stream_options" not in obj


def test_responses_body() -> None:
    req = build_request(spec("responses", True))
    obj = json.loads(req.body)
    assert req.path == "/v1/responses"
    assert obj["input"].endswith(content.marker(CID))
    assert obj["max_output_tokens"] == 16 and obj["stream"] is True


def test_messages_body_and_headers() -> None:
    req = build_request(spec("messages", True, auth=("x-api-key", "sk-1")))
    obj = json.loads(req.body)
    assert req.path == "/v1/messages"
    assert obj["max_tokens"] == 16 and obj["stream"] is True
    assert obj["messages"][-1]["role"] == "user"
    assert obj["messages"][-1]["content"].endswith(content.marker(CID))
    headers = dict(req.headers)
    assert headers["anthropic-version"] == ANTHROPIC_VERSION
    assert headers["x-api-key"] == "sk-1"


def test_embeddings_body() -> None:
    req = build_request(spec("embeddings"))
    obj = json.loads(req.body)
    assert req.path == "/v1/embeddings"
    assert obj["encoding_format"] == "float"
    assert obj["input"].endswith(content.marker(CID))


def test_headers_carry_corr_id_auth_and_extras() -> None:
    s = spec("chat", auth=("authorization", "Bearer k"), extra_headers=(("x-a", "1"),))
    headers = build_request(s).headers
    assert (content.CORR_HEADER, content.format_corr_id(CID)) in headers
    assert ("authorization", "Bearer k") in headers
    assert ("content-type", "application/json") in headers
    assert headers[-1] == ("x-a", "1")


@pytest.mark.parametrize("endpoint", ["chat", "responses", "messages", "embeddings"])
def test_each_request_differs_only_by_its_marker(endpoint: str) -> None:
    a = build_request(spec(endpoint, corr=1)).body
    b = build_request(spec(endpoint, corr=2)).body
    assert a.replace(content.marker(1).encode(), b"") == b.replace(content.marker(2).encode(), b"")
    assert content.find_corr_id(a) == 1 and content.find_corr_id(b) == 2


def test_tiny_prompt_still_has_text_before_the_marker() -> None:
    obj = body_of(spec("chat", prompt_tokens=1))
    assert obj["messages"][1]["content"].split()[-1] == content.marker(CID)
    assert len(obj["messages"][1]["content"].split()) == 2


def test_unknown_endpoint_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown endpoint"):
        build_request(spec("images"))
