"""Fuzzing what reaches the stub's request handler, against a real stub process.

Every case is one HTTP/1.1 request with valid framing (``Content-Length``,
``Connection: close``) over a fresh loopback socket: the bodies, values and
override headers are what varies. HTTP framing itself (request lines, headers,
chunked encoding) is the parser's to fuzz, not this file's.

A case passes when the stub answers 2xx or a provider-shaped 4xx (or, for a
request the client abandons mid-body, closes cleanly), never a 5xx and never
late: every read is bounded by a deadline far beyond any accepted request's
cost. After each case the stub must answer ``GET /health``, the ledger must hold
exactly one record for it (``bad_request`` when refused) and its RSS must stay
within a bound; at the end its log must hold no traceback.

Hypothesis runs derandomized (a fixed seed per test) with bounded examples, so a
run is the same on every machine and takes well under a minute. The file runs past
400 lines because every case shares the one stub process, its client and its checks.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stub_upstream import StubConfig, StubProcess, content, validate
from stub_upstream.config import INJECTABLE_FAULTS
from stub_upstream.ledger_format import FAULT_CODES, LEDGER_DTYPE

READ_TIMEOUT_S = 10.0  # any accepted request is answered in milliseconds
RSS_GROWTH_LIMIT = 100 * 1024 * 1024
BODY_LIMIT = 1 << 20
SLOT = "\x00SLOT\x00"  # stands for a raw JSON literal while a body is serialised
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,  # a loaded 2-core runner: no per-example time limit
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

CHAT, RESPONSES, MESSAGES, EMBEDDINGS, MODELS = (
    "/v1/chat/completions", "/v1/responses", "/v1/messages", "/v1/embeddings", "/v1/models",
)  # fmt: skip


@dataclass
class Stub:
    port: int
    process: psutil.Process
    log: Path
    rss0: int
    cursor: str = ""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


@pytest.fixture(scope="module")
def stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stub]:
    """One stub for the whole file, started on a private loop (the tests are sync)."""
    log = tmp_path_factory.mktemp("fuzz") / "stub.log"
    cfg = StubConfig(
        port=0, ttft_ms=0.0, itl_ms=0.0, output_tokens=4, embedding_dims=8,
        max_body_bytes=BODY_LIMIT,
    )  # fmt: skip
    loop = asyncio.new_event_loop()
    proc = StubProcess(cfg, log_path=log, stop_timeout_s=5.0)
    loop.run_until_complete(proc.start())
    try:
        ps = psutil.Process(proc.pid)
        s = Stub(proc.port, ps, log, rss0=0)
        # Warm up every path once so first-use allocations do not count as growth.
        for path, body in VALID.items():
            exchange(s, path, json.dumps(body).encode(), "GET" if path == MODELS else "POST")
        s.rss0 = ps.memory_info().rss
        _, s.cursor = ledger(s)
        yield s
    finally:
        loop.run_until_complete(proc.stop())
        loop.close()


# ------------------------------------------------------------ raw HTTP client


def _read_all(sock: socket.socket, deadline: float) -> bytes:
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("the stub did not finish its answer in time")
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            raise AssertionError("the stub did not finish its answer in time") from None
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def _dechunk(data: bytes) -> bytes:
    out: list[bytes] = []
    while True:
        line, _, data = data.partition(b"\r\n")
        size = int(line.split(b";")[0], 16)
        if size == 0:
            return b"".join(out)
        out.append(data[:size])
        data = data[size + 2 :]


def send(port: int, request: bytes, close_after: bool = False) -> bytes:
    """Write ``request``; read until the stub closes (or, ``close_after``, close first)."""
    deadline = time.monotonic() + READ_TIMEOUT_S
    with socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT_S) as sock:
        sock.sendall(request)
        if close_after:
            return b""
        return _read_all(sock, deadline)


def exchange(
    s: Stub, path: str, body: bytes, method: str = "POST", headers: dict[str, str] | None = None
) -> Answer:
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    )
    raw = send(s.port, head.encode() + body)
    assert raw, "the stub closed without an answer"
    top, _, payload = raw.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    hdrs = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    if hdrs.get("transfer-encoding") == "chunked":
        payload = _dechunk(payload)
    else:
        assert len(payload) == int(hdrs["content-length"])
    return Answer(status, hdrs, payload)


def ledger(s: Stub, cursor: str = "") -> tuple[np.ndarray[Any, Any], str]:
    a = exchange(s, f"/_loadgate/ledger?cursor={cursor}", b"", "GET")
    assert a.status == 200
    return np.frombuffer(a.body, dtype=LEDGER_DTYPE), a.headers["x-loadgate-cursor"]


def healthy(s: Stub) -> None:
    a = exchange(s, "/health", b"", "GET")
    assert a.status == 200
    rss = s.process.memory_info().rss
    assert rss - s.rss0 < RSS_GROWTH_LIMIT, f"stub RSS grew by {(rss - s.rss0) >> 20} MiB"


def check(s: Stub, path: str, answer: Answer, statuses: tuple[int, ...] = (200, 400)) -> None:
    """The answer is allowed and well-shaped, it left one ledger record, the stub is well."""
    assert answer.status in statuses, (answer.status, answer.body[:300])
    if answer.status >= 400:
        err = json.loads(answer.body)
        if path == MESSAGES:
            assert err["type"] == "error" and set(err["error"]) == {"type", "message"}
        else:
            assert set(err["error"]) == {"message", "type", "param", "code"}
    elif answer.headers["content-type"].startswith("text/event-stream"):
        assert answer.body.endswith(b"\n\n")
    else:
        json.loads(answer.body)
    recs, s.cursor = ledger(s, s.cursor)
    assert len(recs) == 1, f"{len(recs)} ledger records for one request"
    assert recs[0]["status"] == answer.status
    if answer.status >= 400:
        assert recs[0]["fault"] == FAULT_CODES["bad_request"]
    healthy(s)


def post(s: Stub, path: str, body: bytes, headers: dict[str, str] | None = None) -> Answer:
    a = exchange(s, path, body, headers=headers)
    check(s, path, a)
    return a


# ------------------------------------------------------------------ bodies

_USER = [{"role": "user", "content": f"hi {content.marker(0xF022)}"}]
VALID: dict[str, dict[str, Any]] = {
    CHAT: {"model": "gpt-4o-mini", "messages": _USER, "max_tokens": 4},
    RESPONSES: {"model": "gpt-4o-mini", "input": "hi", "max_output_tokens": 4},
    MESSAGES: {"model": "claude-stub", "max_tokens": 4, "messages": _USER},
    EMBEDDINGS: {"model": "text-embedding-3-small", "input": ["a", "b"]},
    MODELS: {},
}
#: Where a fuzzed value may go, per endpoint (a path into the valid body).
FIELDS: dict[str, list[tuple[str | int, ...]]] = {
    CHAT: [
        ("model",), ("messages",), ("messages", 0), ("messages", 0, "role"),
        ("messages", 0, "content"), ("messages", 1), ("max_tokens",),
        ("max_completion_tokens",), ("n",), ("temperature",), ("top_p",), ("stream",),
        ("stream_options",), ("stream_options", "include_usage"), ("tools",), ("tools", 0),
        ("tool_choice",), ("stop",), ("seed",), ("logprobs",), ("top_logprobs",),
        ("response_format",), ("presence_penalty",), ("frequency_penalty",), ("user",),
    ],
    RESPONSES: [
        ("model",), ("input",), ("input", 0), ("input", 0, "content"), ("instructions",),
        ("max_output_tokens",), ("temperature",), ("top_p",), ("stream",), ("tools",),
        ("tool_choice",), ("text",), ("reasoning",), ("store",), ("include",),
    ],
    MESSAGES: [
        ("model",), ("max_tokens",), ("messages",), ("messages", 0), ("messages", 0, "role"),
        ("messages", 0, "content"), ("messages", 0, "content", 0), ("system",),
        ("temperature",), ("top_p",), ("top_k",), ("stop_sequences",), ("stream",),
        ("tools",), ("tool_choice",), ("metadata",), ("thinking",),
    ],
    EMBEDDINGS: [
        ("model",), ("input",), ("input", 0), ("input", 1), ("encoding_format",),
        ("dimensions",), ("user",),
    ],
}  # fmt: skip

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids, max_size=4)
    ),
    max_leaves=12,
)
#: Literal JSON text (or what a careless encoder writes) placed unquoted.
absurd_literals = st.sampled_from(
    [
        "0", "-1", "2147483648", "9223372036854775808", "18446744073709551616",
        "1" + "0" * 30, "9" * 5000, "1e999", "-1e999", "1e-999", "-0", "0.5", "1e308",
        "NaN", "Infinity", "-Infinity", "nan", "true", "null", '""', '"' + "x" * 70_000 + '"',
        "[]", "{}", "[[]]", '[{"type": 5}]', '"\\ud800"', '"\\u0000"',
        "1" * 400, "1000000000", "65537", "4097",
    ]
)  # fmt: skip
replacement = absurd_literals | json_values.map(json.dumps)


def _set(body: Any, path: tuple[str | int, ...], value: Any) -> Any:
    """A copy of ``body`` with ``value`` at ``path`` (list indices past the end append)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(head, int):
        items = list(body) if isinstance(body, list) else [body]
        if head < len(items):
            items[head] = _set(items[head], rest, value)
        else:
            items.append(_set({}, rest, value))
        return items
    obj = dict(body) if isinstance(body, dict) else {}
    obj[head] = _set(obj.get(head, {}), rest, value)
    return obj


def with_literal(body: dict[str, Any], path: tuple[str | int, ...], literal: str) -> bytes:
    text = json.dumps(_set(body, path, SLOT))
    return text.replace(json.dumps(SLOT), literal).encode()


endpoints = st.sampled_from([CHAT, RESPONSES, MESSAGES, EMBEDDINGS])


# ------------------------------------------------------ regressions (probed)


def test_huge_dimensions_is_400_and_the_loop_stays_free(stub: Stub) -> None:
    # Used to block the stub's loop (RSS to GBs, SIGTERM ignored): 1e9 numbers derived.
    for dims in (1_000_000_000, 1_000_000):
        body = {"model": "m", "input": "x", "dimensions": dims}
        a = post(stub, EMBEDDINGS, json.dumps(body).encode())
        assert a.status == 400 and json.loads(a.body)["error"]["param"] == "dimensions"


def test_embedding_input_of_mixed_types_is_400(stub: Stub) -> None:
    # ["a", 5, null] used to be a 500 with a TypeError traceback in the log.
    mixed: list[Any] = [["a", 5, None], ["a", 5], [[1], "a"], [1, [2]], [{}], {"a": 1}]
    for inp in mixed:
        a = post(stub, EMBEDDINGS, json.dumps({"model": "m", "input": inp}).encode())
        assert a.status == 400 and json.loads(a.body)["error"]["param"].startswith("input")
    # A lone surrogate used to be a 500 (UnicodeEncodeError): now it is not valid JSON text.
    a = post(stub, EMBEDDINGS, b'{"model": "m", "input": "\\ud800"}')
    assert a.status == 400


def test_malformed_corr_header_is_ignored(stub: Stub) -> None:
    # A signed 16-character id used to reach the ledger as a negative u64: 500, or a
    # stream whose end was never recorded.
    chat = json.dumps(VALID[CHAT]).encode()
    for path, body in ((CHAT, chat), (EMBEDDINGS, json.dumps(VALID[EMBEDDINGS]).encode())):
        for bad in ("-000000000000001", "+00000000000000f", "0x0000000000000f", " 0000000000000f "):
            post(stub, path, body, {content.CORR_HEADER: bad})
    streamed = json.dumps({**VALID[CHAT], "stream": True}).encode()
    post(stub, CHAT, streamed, {content.CORR_HEADER: "-000000000000001"})


def test_long_model_name_is_400(stub: Stub) -> None:
    # The model is echoed in every SSE event: a 1 MiB name times 4096 tokens was 4 GiB.
    body = {**VALID[CHAT], "model": "m" * 300, "stream": True}
    a = post(stub, CHAT, json.dumps(body).encode(), {"x-stub-tokens": "4096"})
    assert a.status == 400 and json.loads(a.body)["error"]["param"] == "model"


def test_limits_at_their_edges(stub: Stub) -> None:
    chat = json.dumps(VALID[CHAT] | {"max_tokens": 10_000}).encode()
    most = str(validate.MAX_HEADER_TOKENS)
    a = post(stub, CHAT, chat, {"x-stub-tokens": most})
    got = json.loads(a.body)["choices"][0]["message"]["content"]
    assert got == content.expected_text(0xF022, validate.MAX_HEADER_TOKENS)
    a = post(stub, CHAT, chat, {"x-stub-tokens": str(validate.MAX_HEADER_TOKENS + 1)})
    assert a.status == 400
    values = validate.MAX_EMBEDDING_VALUES
    for inputs, dims, status in (
        (1, values, 200),
        (1, values + 1, 400),
        (validate.MAX_EMBEDDING_INPUTS, values // validate.MAX_EMBEDDING_INPUTS, 200),
        (validate.MAX_EMBEDDING_INPUTS + 1, 1, 400),
    ):
        body = {"model": "m", "input": ["x"] * inputs, "dimensions": dims}
        a = post(stub, EMBEDDINGS, json.dumps(body).encode())
        assert a.status == status
        if status == 200:
            data = json.loads(a.body)["data"]
            assert len(data) == inputs and len(data[-1]["embedding"]) == dims


# ------------------------------------------------------------------ fuzzing


@FUZZ
@given(endpoint=endpoints, data=st.data())
def test_a_field_with_any_value(stub: Stub, endpoint: str, data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(FIELDS[endpoint]))
    body = with_literal(VALID[endpoint], path, data.draw(replacement))
    post(stub, endpoint, body)


@FUZZ
@given(endpoint=endpoints, value=json_values)
def test_any_json_document(stub: Stub, endpoint: str, value: Any) -> None:
    post(stub, endpoint, json.dumps(value).encode())


#: Every field name the stub declares: the rest of a body is never looked at.
DECLARED = {
    name
    for body in (validate.ChatBody, validate.ResponsesBody, validate.MessagesBody,
                 validate.EmbeddingsBody)
    for name in body.__struct_fields__
}  # fmt: skip
unknown_keys = st.text(min_size=1, max_size=10).filter(lambda k: k not in DECLARED)


@FUZZ
@given(endpoint=endpoints, extra=st.dictionaries(unknown_keys, json_values, max_size=5))
def test_unknown_fields_are_ignored(stub: Stub, endpoint: str, extra: dict[str, Any]) -> None:
    body = {**extra, **VALID[endpoint]}
    assert post(stub, endpoint, json.dumps(body).encode()).status == 200


@FUZZ
@given(endpoint=endpoints, data=st.data())
def test_truncated_or_corrupted_bytes(stub: Stub, endpoint: str, data: st.DataObject) -> None:
    raw = json.dumps(VALID[endpoint]).encode()
    at = data.draw(st.integers(0, len(raw)))
    if data.draw(st.booleans()):
        body = raw[:at]  # truncated JSON, declared as such
    else:
        junk = data.draw(st.binary(min_size=1, max_size=8) | st.sampled_from([b"\xff", b"\xc3"]))
        body = raw[:at] + junk + raw[at:]  # invalid UTF-8 and stray bytes anywhere
    post(stub, endpoint, body)


@settings(FUZZ, max_examples=40)
@given(
    endpoint=endpoints,
    depth=st.integers(1, 200_000),
    opener=st.sampled_from(["[", '{"a":', '[{"type":"t","x":']),
    field=st.sampled_from(["tools", "messages", "input", "unknown", "metadata"]),
)
def test_deep_nesting(stub: Stub, endpoint: str, depth: int, opener: str, field: str) -> None:
    closer = {"[": "]", '{"a":': "}", '[{"type":"t","x":': "}]"}[opener]
    nested = opener * depth + "1" + closer * depth
    if len(nested) > BODY_LIMIT - 1024:
        nested = opener * depth  # unclosed: still within the limit, still malformed
        nested = nested[: BODY_LIMIT - 1024]
    post(stub, endpoint, with_literal(VALID[endpoint], (field,), nested))


@settings(FUZZ, max_examples=12)
@given(
    endpoint=endpoints,
    size=st.integers(BODY_LIMIT // 4, BODY_LIMIT - 512),
    char=st.sampled_from(["x", "é", "\\n", "[", "\\ud83d\\ude00"]),
)
def test_huge_strings_within_the_body_limit(
    stub: Stub, endpoint: str, size: int, char: str
) -> None:
    text = char * (size // len(char.encode()))
    field = {CHAT: ("messages", 0, "content"), MESSAGES: ("messages", 0, "content")}.get(
        endpoint, ("input",)
    )
    body = with_literal(VALID[endpoint], field, '"' + text + '"')
    if len(body) <= BODY_LIMIT:
        post(stub, endpoint, body)


@FUZZ
@given(
    inp=st.one_of(
        json_values,
        st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=3000),
        st.lists(st.integers(-5, 2**32), min_size=1, max_size=9000),
        st.lists(st.lists(st.integers(0, 100), min_size=1, max_size=3), min_size=1, max_size=40),
    ),
    dims=st.none() | st.integers(-3, 2**64) | st.sampled_from([1, 8192, 65536, 65537]),
    fmt=st.none() | st.sampled_from(["float", "base64", "hex", "", "FLOAT"]),
)
def test_embeddings_shapes_and_sizes(
    stub: Stub, inp: Any, dims: int | None, fmt: str | None
) -> None:
    body: dict[str, Any] = {"model": "text-embedding-3-small", "input": inp}
    if dims is not None:
        body["dimensions"] = dims
    if fmt is not None:
        body["encoding_format"] = fmt
    a = post(stub, EMBEDDINGS, json.dumps(body).encode())
    if a.status == 200:
        got = json.loads(a.body)
        assert len(got["data"]) >= 1
        assert all(len(d["embedding"]) > 0 for d in got["data"])


header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=0, max_size=24
)


@FUZZ
@given(
    endpoint=endpoints,
    tokens=st.none() | header_text | st.integers(-2, 5000).map(str),
    itl=st.none() | header_text | st.sampled_from(["0", "0.001", "-1", "nan", "inf", "1e400"]),
    fault=st.none() | header_text.filter(lambda v: v not in INJECTABLE_FAULTS),
    stream=st.booleans(),
)
def test_override_headers(
    stub: Stub,
    endpoint: str,
    tokens: str | None,
    itl: str | None,
    fault: str | None,
    stream: bool,
) -> None:
    headers = {"x-stub-tokens": tokens, "x-stub-itl-ms": itl, "x-stub-fault": fault}
    # Only values a header can carry: no leading or trailing blanks (framing, not ours).
    sent = {k: v.strip() for k, v in headers.items() if v is not None and v.strip()}
    body = VALID[endpoint] if endpoint == EMBEDDINGS else {**VALID[endpoint], "stream": stream}
    post(stub, endpoint, json.dumps(body).encode(), sent)


@FUZZ
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]), body=st.binary(max_size=64))
def test_models_with_any_method_and_body(stub: Stub, method: str, body: bytes) -> None:
    a = exchange(stub, MODELS, body, method)
    check(stub, MODELS, a, (200,) if method == "GET" else (405,))


@settings(FUZZ, max_examples=30)
@given(endpoint=endpoints, data=st.data())
def test_client_closes_mid_body(stub: Stub, endpoint: str, data: st.DataObject) -> None:
    raw = json.dumps(VALID[endpoint]).encode()
    cut = data.draw(st.integers(0, len(raw) - 1))
    head = (
        f"POST {endpoint} HTTP/1.1\r\nHost: fuzz\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(raw)}\r\n\r\n"
    ).encode()
    send(stub.port, head + raw[:cut], close_after=True)
    healthy(stub)
    recs, stub.cursor = ledger(stub, stub.cursor)  # an abandoned request may or may not count
    assert not (recs["status"] >= 500).any()


def test_zz_stub_memory_and_log_after_the_run(stub: Stub) -> None:
    """Last in the file: the whole run left the stub healthy, bounded and quiet."""
    healthy(stub)
    recs, stub.cursor = ledger(stub, stub.cursor)
    assert not (recs["status"] >= 500).any()
    log = stub.log.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
