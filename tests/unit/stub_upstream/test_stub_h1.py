"""The stub's HTTP/1.1 request parser: any split of the input, pipelining, chunked
bodies, limits and garbage. Each read is fed with its own arrival stamp (its index),
which shows which read completed each request.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stub_upstream.h1 import MAX_HEAD_BYTES, Request, RequestParser

BODY = b'{"model":"m","messages":[{"role":"user","content":"hi"}]}'
POST_CL = (
    b"POST /v1/chat/completions?x=1&cursor=ab HTTP/1.1\r\nHost: h\r\n"
    b"Content-Type: application/json\r\nX-Loadgate-Id: 00000000000000ff\r\n"
    b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
)
POST_CHUNKED = (
    b"POST /v1/messages HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;ext=1\r\n" + BODY[:5] + b"\r\n"
    b"1A\r\n" + BODY[5:31] + b"\r\n"
    b"" + format(len(BODY) - 31, "x").encode() + b"\r\n" + BODY[31:] + b"\r\n"
    b"0\r\nX-Trailer: t\r\n\r\n"
)
GET = b"GET /health HTTP/1.1\r\nHost: h\r\n\r\n"
STREAM = POST_CL + POST_CHUNKED + GET
EXPECTED = [
    ("POST", "/v1/chat/completions", BODY),
    ("POST", "/v1/messages", BODY),
    ("GET", "/health", b""),
]


def feed_parts(parts: list[bytes], max_body: int = 1 << 20) -> list[Request]:
    """Feed ``parts`` one read at a time, each stamped with its (1-based) index."""
    p = RequestParser(None, max_body)
    out: list[Request] = []
    for i, part in enumerate(parts):
        out.extend(p.feed(part, i + 1))
    return out


def completion_reads(stream: bytes, cuts: list[int]) -> list[int]:
    """For each request of STREAM, the (1-based) read that holds its last byte."""
    ends = [len(POST_CL), len(POST_CL) + len(POST_CHUNKED), len(stream)]
    bounds = [*sorted(set(cuts)), len(stream)]
    return [next(k + 1 for k, b in enumerate(bounds) if b >= e) for e in ends]


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(set(cuts)), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def check(reqs: list[Request], cuts: list[int]) -> None:
    assert [(r.method, r.path, r.body) for r in reqs] == EXPECTED
    assert all(not r.bad_status and not r.too_big and r.keep_alive for r in reqs)
    # t_recv is the read that completed the request, never an earlier or later one.
    assert [r.t_recv for r in reqs] == completion_reads(STREAM, cuts)
    assert reqs[0].headers["x-loadgate-id"] == "00000000000000ff"
    assert reqs[0].query == {"x": "1", "cursor": "ab"}


def test_whole_stream_in_one_read() -> None:
    reqs = feed_parts([STREAM])
    check(reqs, [])
    assert [r.t_recv for r in reqs] == [1, 1, 1]


def test_every_single_split_point() -> None:
    for i in range(1, len(STREAM)):
        check(feed_parts(split(STREAM, [i])), [i])


def test_byte_at_a_time() -> None:
    cuts = list(range(1, len(STREAM)))
    check(feed_parts(split(STREAM, cuts)), cuts)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(STREAM) - 1), max_size=12))
def test_any_split(cuts: list[int]) -> None:
    check(feed_parts(split(STREAM, cuts)), cuts)


def test_pipelined_keep_alive_and_close() -> None:
    data = GET + b"GET /a HTTP/1.1\r\nConnection: close\r\n\r\n" + GET
    p = RequestParser(None, 1 << 20)
    reqs = p.feed(data, 1)
    # The closing request ends the connection's input: what follows it is never read.
    assert [r.path for r in reqs] == ["/health", "/a"]
    assert [r.keep_alive for r in reqs] == [True, False]
    assert p.dead and p.feed(GET, 2) == []


def test_http10_keep_alive_semantics() -> None:
    reqs = feed_parts([b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\nGET / HTTP/1.0\r\n\r\n"])
    assert [(r.http10, r.keep_alive) for r in reqs] == [(True, True), (True, False)]


def test_pipelined_requests_differing_only_in_version() -> None:
    g10 = GET.replace(b"HTTP/1.1", b"HTTP/1.0")
    reqs = feed_parts([GET + g10[:20], g10[20:]])  # the 1.0 head begins after a 1.1 one
    assert [(r.http10, r.keep_alive) for r in reqs] == [(False, True), (True, False)]
    reqs = feed_parts([GET + g10])
    assert [(r.http10, r.keep_alive) for r in reqs] == [(False, True), (True, False)]


def test_headers_lower_case_and_repeated_fields_joined() -> None:
    (r,) = feed_parts([b"GET / HTTP/1.1\r\nX-A: 1\r\nx-a:  2 \r\nAuthorization: Bearer k\r\n\r\n"])
    assert r.headers == {"x-a": "1, 2", "authorization": "Bearer k"}


def test_target_forms() -> None:
    reqs = feed_parts(
        [
            b"GET http://h:1/v1/models?a=b HTTP/1.1\r\n\r\n"
            b"GET /v1/%6dodels HTTP/1.1\r\n\r\n"
            b"OPTIONS * HTTP/1.1\r\n\r\n"
        ]
    )
    assert [r.path for r in reqs] == ["/v1/models", "/v1/models", "*"]
    assert reqs[0].query == {"a": "b"}


def test_stray_crlf_between_requests_is_ignored() -> None:
    reqs = feed_parts([b"\r\n" + GET + b"\r\n", b"\r\n" + GET])
    assert [r.path for r in reqs] == ["/health", "/health"]


def test_chunked_body_with_many_small_chunks() -> None:
    data = b"".join(b"1\r\n" + bytes([c]) + b"\r\n" for c in BODY)
    req = b"POST /x HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" + data + b"0\r\n\r\n"
    (r,) = feed_parts([req[:7], req[7:50], req[50:]])
    assert r.body == BODY and not r.bad_status  # framing is the last coding; gzip is left as is
    (r,) = feed_parts([req.replace(b"gzip, chunked", b"Chunked")])
    assert r.body == BODY and not r.bad_status


def test_expect_100_continue() -> None:
    p = RequestParser(None, 1 << 20)
    head = POST_CL[: POST_CL.index(b"\r\n\r\n")] + b"\r\nExpect: 100-continue\r\n\r\n"
    assert p.feed(head, 1) == [] and p.want_continue
    (r,) = p.feed(BODY, 1)
    assert r.body == BODY and not p.want_continue
    p10 = RequestParser(None, 1 << 20)
    assert p10.feed(head.replace(b"HTTP/1.1", b"HTTP/1.0"), 1) == [] and not p10.want_continue
    small = RequestParser(None, 10)
    (big,) = small.feed(head, 1)
    assert big.too_big and not small.want_continue


def test_declared_body_over_limit_is_too_big_without_reading() -> None:
    p = RequestParser(None, len(BODY) - 1)
    (r,) = p.feed(POST_CL[:-10], 1)
    assert r.too_big and not r.keep_alive and r.body == b"" and p.dead
    assert r.headers["x-loadgate-id"] == "00000000000000ff"
    assert p.feed(POST_CL[-10:] + GET, 1) == []  # everything after is discarded


def test_chunked_body_over_limit() -> None:
    p = RequestParser(None, 30)
    reqs = p.feed(POST_CHUNKED, 1)
    assert [(r.path, r.too_big, r.keep_alive) for r in reqs] == [("/v1/messages", True, False)]
    assert p.dead and p.feed(GET, 1) == []


def test_body_exactly_at_limit_is_fine() -> None:
    (r,) = feed_parts([POST_CL], max_body=len(BODY))
    assert r.body == BODY and not r.too_big
    (r,) = feed_parts([POST_CHUNKED], max_body=len(BODY))
    assert r.body == BODY and not r.too_big


def test_head_over_limit_is_431() -> None:
    big = b"GET / HTTP/1.1\r\nX-Big: " + b"a" * MAX_HEAD_BYTES
    p = RequestParser(None, 1 << 20)
    reqs: list[Request] = []
    for i in range(0, len(big), 1000):  # no end of head in sight: refused while reading
        reqs += p.feed(big[i : i + 1000], 1)
    assert [r.bad_status for r in reqs] == [431] and p.dead
    (r,) = feed_parts([big + b"\r\n\r\n"])  # complete but too large
    assert r.bad_status == 431


def test_trailers_over_limit_are_431() -> None:
    req = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
    trailer = b"X-T: " + b"t" * MAX_HEAD_BYTES + b"\r\n\r\n"
    (r,) = feed_parts([req, trailer])
    assert r.bad_status == 431 and r.path == "/x"


GARBAGE = [
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # a TLS hello
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    b"GET /\r\n\r\n",
    b"GET  / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.2\r\n\r\n",
    b"GET / http/1.1\r\n\r\n",
    b"G=T / HTTP/1.1\r\n\r\n",
    b"GET nope HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
    b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
    b"GET / HTTP/1.1\r\n : x\r\n\r\n",
    b"GET / HTTP/1.1\r\nA: 1\r\n folded\r\n\r\n",
    b"GET / HTTP/1.1\r\nA: 1\nB: 2\r\n\r\n",
    b"GET / HTTP/1.1\r\nA: 1\rB: 2\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nabcde\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nabcde\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcde\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * 2000,
    b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
]


@pytest.mark.parametrize("data", GARBAGE)
def test_garbage_is_400_then_dead(data: bytes) -> None:
    p = RequestParser(None, 1 << 30)
    reqs = p.feed(GET + data, 1)
    assert [r.bad_status for r in reqs] == [0, 400]
    assert not reqs[1].keep_alive and reqs[1].bad_message
    assert p.dead and p.feed(GET, 1) == []


@pytest.mark.parametrize("data", GARBAGE)
def test_garbage_byte_at_a_time(data: bytes) -> None:
    p = RequestParser(None, 1 << 30)
    reqs: list[Request] = []
    for i in range(len(data)):
        reqs += p.feed(data[i : i + 1], 1)
    assert [r.bad_status for r in reqs] == [400]


def test_bad_request_keeps_the_path_when_known() -> None:
    (r,) = feed_parts([b"POST /v1/messages HTTP/1.1\r\nContent-Length: x\r\n\r\n"])
    assert r.bad_status == 400 and r.path == "/v1/messages"
