"""Request bodies and headers per endpoint, with the correlation id in both.

Owns the wire shape of what the harness sends (WIRE.md, ARCHITECTURE
"Correlation id"): the marker ``[loadgate:<hex>]`` ends the last user message
(chat, messages) or the ``input`` text (responses, embeddings), where gateways
pass it through untouched; ``x-loadgate-id`` repeats it as a header.

Everything but the marker is constant for a given (endpoint, stream, model,
prompt size, max tokens), so the JSON around it is serialised once into a
prefix and a suffix and each request costs one ``bytes.join``. The marker is
plain ASCII with nothing to escape, so splicing it into the JSON text is exact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from loadgate.client.observation import RequestSpec
from stub_upstream import content

__all__ = [
    "ANTHROPIC_VERSION",
    "PATHS",
    "SYSTEM_PROMPT",
    "HttpRequest",
    "build_request",
    "prompt_text",
]

ANTHROPIC_VERSION = "2023-06-01"
PATHS = {
    "chat": "/v1/chat/completions",
    "responses": "/v1/responses",
    "messages": "/v1/messages",
    "embeddings": "/v1/embeddings",
}
_SYSTEM = "You are a load test. Answer briefly."
SYSTEM_PROMPT = _SYSTEM
_SYSTEM_WORDS = len(_SYSTEM.split())
_WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")
_SLOT = "\x00MARKER\x00"  # stands for the marker while the constant JSON is built


@dataclass(slots=True, frozen=True)
class HttpRequest:
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


def prompt_text(words: int) -> str:
    """Filler of ``words`` words (at least one), followed by a space for the marker."""
    n = max(1, words)
    return " ".join(_WORDS[i % len(_WORDS)] for i in range(n)) + " "


def _payload(endpoint: str, stream: bool, model: str, prompt: int, max_tokens: int) -> Any:
    if endpoint == "chat":
        body: dict[str, Any] = {
            "model": model,
            "messages": [
                {"role": "system", "content": _SYSTEM},
                {"role": "user", "content": prompt_text(prompt - _SYSTEM_WORDS) + _SLOT},
            ],
            "max_tokens": max_tokens,
        }
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body
    if endpoint == "responses":
        body = {
            "model": model,
            "input": prompt_text(prompt) + _SLOT,
            "max_output_tokens": max_tokens,
        }
        if stream:
            body["stream"] = True
        return body
    if endpoint == "messages":
        body = {
            "model": model,
            "max_tokens": max_tokens,
            "system": _SYSTEM,
            "messages": [
                {"role": "user", "content": prompt_text(prompt - _SYSTEM_WORDS) + _SLOT},
            ],
        }
        if stream:
            body["stream"] = True
        return body
    if endpoint == "embeddings":
        return {"model": model, "input": prompt_text(prompt) + _SLOT, "encoding_format": "float"}
    raise ValueError(f"unknown endpoint {endpoint!r}")


@lru_cache(maxsize=256)
def _template(
    endpoint: str, stream: bool, model: str, prompt: int, max_tokens: int
) -> tuple[bytes, bytes]:
    text = json.dumps(_payload(endpoint, stream, model, prompt, max_tokens), separators=(",", ":"))
    slot = json.dumps(_SLOT)[1:-1]  # the slot as it appears inside a JSON string
    prefix, suffix = text.split(slot)
    return prefix.encode(), suffix.encode()


def _conversation(spec: RequestSpec) -> bytes:
    """The body of a request that carries its own messages (trace replay, sessions).

    Built afresh each time: the text differs per request, so no template would be reused.
    """
    msgs = [list(m) for m in spec.messages]
    msgs[-1][1] += content.marker(spec.corr)
    system = [text for role, text in msgs if role == "system"]
    turns = [{"role": role, "content": text} for role, text in msgs if role != "system"]
    body: dict[str, Any]
    if spec.endpoint == "chat":
        body = {
            "model": spec.model,
            "messages": [{"role": "system", "content": t} for t in system] + turns,
            "max_tokens": spec.max_tokens,
        }
        if spec.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
    elif spec.endpoint == "messages":
        body = {"model": spec.model, "max_tokens": spec.max_tokens, "messages": turns}
        if system:
            body["system"] = system[0]
        if spec.stream:
            body["stream"] = True
    elif spec.endpoint == "responses":
        only = len(turns) == 1 and not system
        body = {
            "model": spec.model,
            "input": turns[0]["content"] if only else turns,
            "max_output_tokens": spec.max_tokens,
        }
        if system:
            body["instructions"] = system[0]
        if spec.stream:
            body["stream"] = True
    else:
        raise ValueError(f"endpoint {spec.endpoint!r} takes no conversation")
    return json.dumps(body, separators=(",", ":")).encode()


def build_request(spec: RequestSpec) -> HttpRequest:
    """Path, headers and body for ``spec`` (method is always POST)."""
    if spec.messages:
        body = _conversation(spec)
    else:
        prefix, suffix = _template(
            spec.endpoint, spec.stream, spec.model, spec.prompt_tokens, spec.max_tokens
        )
        body = b"".join((prefix, content.marker(spec.corr).encode(), suffix))
    headers: list[tuple[str, str]] = [
        ("content-type", "application/json"),
        (content.CORR_HEADER, content.format_corr_id(spec.corr)),
    ]
    if spec.stream:
        headers.append(("accept", "text/event-stream"))
    if spec.endpoint == "messages":
        headers.append(("anthropic-version", ANTHROPIC_VERSION))
    if spec.auth is not None:
        headers.append(spec.auth)
    headers.extend(spec.extra_headers)
    return HttpRequest(PATHS[spec.endpoint], tuple(headers), body)
