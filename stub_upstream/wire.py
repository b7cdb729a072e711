"""Provider wire formats (docs/WIRE.md): response bodies, SSE events, errors.

Everything here is a pure function from an :class:`Answer` (what to say) to
bytes. Streams are pre-serialised per request: one ``bytes`` per token (the
fixed prefix and suffix of its event around the token text) plus a preamble and
a tail, so the timer callback only concatenates and writes. Token text is ASCII
without quotes or backslashes (see ``content``), so it is spliced into JSON
unescaped; the model name comes from the client and goes through ``json.dumps``.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

from stub_upstream import content

__all__ = [
    "Answer",
    "anthropic_error",
    "completion_body",
    "embeddings_body",
    "error_body",
    "json_body",
    "midstream_error_event",
    "models_body",
    "openai_error",
    "sse_events",
]


@dataclass(slots=True)
class Answer:
    """One completion to send, whatever the endpoint."""

    endpoint: str  # "chat" | "responses" | "messages"
    cid: int
    tokens: list[str]
    model: str
    prompt_tokens: int
    created: int  # unix seconds
    capped: bool  # stopped by the request's max_tokens, not by the stub
    include_usage: bool = False  # chat streams: stream_options.include_usage

    @property
    def hex(self) -> str:
        return content.format_corr_id(self.cid)

    @property
    def text(self) -> str:
        return "".join(self.tokens)


def _q(s: str) -> str:
    return json.dumps(s)


# --------------------------------------------------------------------- errors


def openai_error(message: str, type_: str, code: str | None, param: str | None = None) -> bytes:
    err = {"message": message, "type": type_, "param": param, "code": code}
    return json.dumps({"error": err}).encode()


def anthropic_error(type_: str, message: str) -> bytes:
    return json.dumps({"type": "error", "error": {"type": type_, "message": message}}).encode()


_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    431: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    529: "overloaded_error",
}
_OPENAI_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "unknown_url"),
    405: ("invalid_request_error", "method_not_allowed"),
    413: ("invalid_request_error", "request_too_large"),
    431: ("invalid_request_error", "request_header_too_large"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", "overloaded"),
}


def error_body(anthropic: bool, status: int, message: str, param: str | None = None) -> bytes:
    """A provider-shaped error body for ``status``."""
    if anthropic:
        return anthropic_error(_ANTHROPIC_TYPES.get(status, "api_error"), message)
    type_, code = _OPENAI_TYPES.get(status, ("server_error", None))
    return openai_error(message, type_, code, param)


def midstream_error_event(endpoint: str, seq: int) -> bytes:
    """The error event a provider sends when a stream fails half-way."""
    if endpoint == "messages":
        return (
            b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error",'
            b'"message":"Overloaded"}}\n\n'
        )
    if endpoint == "responses":
        return (
            b'event: error\ndata: {"type":"error","code":"server_error","message":'
            b'"The server had an error while processing your request.","param":null,'
            b'"sequence_number":' + str(seq).encode() + b"}\n\n"
        )
    return (
        b'data: {"error":{"message":"The server had an error while processing your request.",'
        b'"type":"server_error","param":null,"code":null}}\n\n'
    )


# ------------------------------------------------------------ non-streaming


def json_body(a: Answer) -> bytes:
    """The non-streaming response body of a chat, responses or messages call."""
    return completion_body(
        a.endpoint, a.cid, a.text.encode(), len(a.tokens), a.model, a.prompt_tokens,
        a.created, a.capped,
    )  # fmt: skip


@functools.lru_cache(maxsize=256)
def _q_bytes(model: str) -> bytes:
    """``model`` as a JSON string. Clients send a handful of names, so the cache
    holds them all; a client cycling through names only costs the dumps again."""
    return json.dumps(model).encode()


# bytes %-templates of the non-streaming bodies: one C call fills in the variable
# parts (every answer's hot path), no str building and no encode.
_CHAT_BODY = (
    b'{"id":"chatcmpl-%s","object":"chat.completion","created":%d,"model":%s,'
    b'"system_fingerprint":"fp_loadgate","choices":[{"index":0,"message":{"role":"assistant",'
    b'"content":"%s","refusal":null},"logprobs":null,"finish_reason":"%s"}],'
    b'"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}'
)
_MESSAGES_BODY = (
    b'{"id":"msg_%s","type":"message","role":"assistant","model":%s,'
    b'"content":[{"type":"text","text":"%s"}],"stop_reason":"%s",'
    b'"stop_sequence":null,"usage":{"input_tokens":%d,"output_tokens":%d}}'
)


def completion_body(
    endpoint: str, cid: int, text: bytes, n: int, model: str, prompt_tokens: int,
    created: int, capped: bool,
) -> bytes:  # fmt: skip
    """:func:`json_body` from its parts; ``text`` is ``content.text_bytes(cid, n)``."""
    h = b"%016x" % cid
    p = prompt_tokens
    if endpoint == "chat":
        finish = b"length" if capped else b"stop"
        return _CHAT_BODY % (h, created, _q_bytes(model), text, finish, p, n, p + n)
    if endpoint == "messages":
        stop = b"max_tokens" if capped else b"end_turn"
        return _MESSAGES_BODY % (h, _q_bytes(model), text, stop, p, n)
    a = Answer(endpoint, cid, [], model, p, created, capped)
    t = text.decode()
    return _response_object(a, "completed", _message_item(a, "completed", t), n).encode()


def _message_item(a: Answer, status: str, text: str | None) -> str:
    parts = "" if text is None else f'{{"type":"output_text","text":"{text}","annotations":[]}}'
    return (
        f'{{"type":"message","id":"msg_{a.hex}","status":"{status}","role":"assistant",'
        f'"content":[{parts}]}}'
    )


def _response_object(a: Answer, status: str, item: str | None, n: int | None = None) -> str:
    p = a.prompt_tokens
    if n is None:
        n = len(a.tokens)
    usage = (
        f'{{"input_tokens":{p},"input_tokens_details":{{"cached_tokens":0}},'
        f'"output_tokens":{n},"output_tokens_details":{{"reasoning_tokens":0}},'
        f'"total_tokens":{p + n}}}'
        if status == "completed"
        else "null"
    )
    return (
        f'{{"id":"resp_{a.hex}","object":"response","created_at":{a.created},'
        f'"status":"{status}","error":null,"incomplete_details":null,'
        f'"instructions":null,"max_output_tokens":null,"model":{_q(a.model)},'
        f'"output":[{item or ""}],"parallel_tool_calls":true,"previous_response_id":null,'
        f'"reasoning":{{"effort":null,"summary":null}},"store":false,"temperature":1.0,'
        f'"text":{{"format":{{"type":"text"}}}},"tool_choice":"auto","tools":[],"top_p":1.0,'
        f'"truncation":"disabled","usage":{usage},"user":null,"metadata":{{}}}}'
    )


def embeddings_body(embeddings: list[str], model: str, prompt_tokens: int) -> bytes:
    """The embeddings answer around each vector's JSON text (see ``vectors.encode``)."""
    items = [
        f'{{"object":"embedding","index":{i},"embedding":{emb}}}'
        for i, emb in enumerate(embeddings)
    ]
    return (
        f'{{"object":"list","data":[{",".join(items)}],"model":{_q(model)},'
        f'"usage":{{"prompt_tokens":{prompt_tokens},"total_tokens":{prompt_tokens}}}}}'
    ).encode()


MODELS = (
    ("gpt-4o-mini", "openai"),
    ("gpt-4o", "openai"),
    ("text-embedding-3-small", "openai"),
    ("claude-3-5-haiku-20241022", "anthropic"),
    ("claude-sonnet-4-20250514", "anthropic"),
)


def models_body() -> bytes:
    data = [{"id": m, "object": "model", "created": 1700000000, "owned_by": o} for m, o in MODELS]
    return json.dumps({"object": "list", "data": data}).encode()


# ----------------------------------------------------------------- streams


def _sse(event: str | None, data: str) -> bytes:
    if event is None:
        return f"data: {data}\n\n".encode()
    return f"event: {event}\ndata: {data}\n\n".encode()


def sse_events(a: Answer) -> tuple[list[bytes], bytes]:
    """(per-token events with the preamble glued to token 0, tail).

    The preamble goes out with the first token so ``t_first_write`` is the first
    token's write; the tail (finish, usage, terminator) goes with the last one.
    """
    if a.endpoint == "chat":
        return _chat_events(a)
    if a.endpoint == "messages":
        return _messages_events(a)
    return _responses_events(a)


def _chat_events(a: Answer) -> tuple[list[bytes], bytes]:
    usage_null = ',"usage":null' if a.include_usage else ""
    head = (
        f'data: {{"id":"chatcmpl-{a.hex}","object":"chat.completion.chunk",'
        f'"created":{a.created},"model":{_q(a.model)},"system_fingerprint":"fp_loadgate",'
        f'"choices":[{{"index":0,"delta":'
    )
    tok_pre = (head + '{"content":"').encode()
    tok_post = ('"},"logprobs":null,"finish_reason":null}]' + usage_null + "}\n\n").encode()
    role = (
        head + '{"role":"assistant","content":"","refusal":null},"logprobs":null,'
        '"finish_reason":null}]' + usage_null + "}\n\n"
    ).encode()
    events = [tok_pre + t.encode() + tok_post for t in a.tokens]
    events[0] = role + events[0]
    finish = "length" if a.capped else "stop"
    tail = head + f'{{}},"logprobs":null,"finish_reason":"{finish}"}}]' + usage_null + "}\n\n"
    if a.include_usage:
        n, p = len(a.tokens), a.prompt_tokens
        tail += (
            f'data: {{"id":"chatcmpl-{a.hex}","object":"chat.completion.chunk",'
            f'"created":{a.created},"model":{_q(a.model)},"system_fingerprint":"fp_loadgate",'
            f'"choices":[],"usage":{{"prompt_tokens":{p},"completion_tokens":{n},'
            f'"total_tokens":{p + n}}}}}\n\n'
        )
    tail += "data: [DONE]\n\n"
    return events, tail.encode()


def _messages_events(a: Answer) -> tuple[list[bytes], bytes]:
    start = _sse(
        "message_start",
        f'{{"type":"message_start","message":{{"id":"msg_{a.hex}","type":"message",'
        f'"role":"assistant","model":{_q(a.model)},"content":[],"stop_reason":null,'
        f'"stop_sequence":null,"usage":{{"input_tokens":{a.prompt_tokens},"output_tokens":1}}}}}}',
    )
    start += _sse(
        "content_block_start",
        '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
    )
    start += _sse("ping", '{"type":"ping"}')
    pre = (
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":"'
    )
    post = b'"}}\n\n'
    events = [pre + t.encode() + post for t in a.tokens]
    events[0] = start + events[0]
    stop = "max_tokens" if a.capped else "end_turn"
    tail = _sse("content_block_stop", '{"type":"content_block_stop","index":0}')
    tail += _sse(
        "message_delta",
        f'{{"type":"message_delta","delta":{{"stop_reason":"{stop}","stop_sequence":null}},'
        f'"usage":{{"output_tokens":{len(a.tokens)}}}}}',
    )
    tail += _sse("message_stop", '{"type":"message_stop"}')
    return events, tail


def _responses_events(a: Answer) -> tuple[list[bytes], bytes]:
    h, text = a.hex, a.text
    loc = f'"item_id":"msg_{h}","output_index":0,"content_index":0'

    def ev(type_: str, body: str, seq: int) -> bytes:
        return _sse(type_, f'{{"type":"{type_}",{body},"sequence_number":{seq}}}')

    pre = ev("response.created", f'"response":{_response_object(a, "in_progress", None)}', 0)
    pre += ev("response.in_progress", f'"response":{_response_object(a, "in_progress", None)}', 1)
    pre += ev(
        "response.output_item.added",
        f'"output_index":0,"item":{_message_item(a, "in_progress", None)}',
        2,
    )
    pre += ev(
        "response.content_part.added",
        loc + ',"part":{"type":"output_text","text":"","annotations":[]}',
        3,
    )
    d_pre = (
        'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",'
        + loc
        + ',"delta":"'
    ).encode()
    events = [
        d_pre + t.encode() + b'","logprobs":[],"sequence_number":' + str(4 + i).encode() + b"}\n\n"
        for i, t in enumerate(a.tokens)
    ]
    events[0] = pre + events[0]
    seq = 4 + len(a.tokens)
    tail = ev("response.output_text.done", loc + f',"text":"{text}","logprobs":[]', seq)
    tail += ev(
        "response.content_part.done",
        loc + f',"part":{{"type":"output_text","text":"{text}","annotations":[]}}',
        seq + 1,
    )
    item = _message_item(a, "completed", text)
    tail += ev("response.output_item.done", f'"output_index":0,"item":{item}', seq + 2)
    # Always response.completed, even when max_output_tokens capped it (the API
    # would say response.incomplete): the harness's terminator check keys on it.
    body = _response_object(a, "completed", item)
    tail += ev("response.completed", f'"response":{body}', seq + 3)
    return events, tail
