"""Decoders: recorded streams and JSON bodies → content, terminator, usage, times."""

from __future__ import annotations

import base64
import itertools
import json
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadgate.client.decoders import Decoder, count_tokens, make_decoder
from stub_upstream import content
from tests.support.streams import CID, N, build_stream, recorded_streams

STREAMS = recorded_streams()
EXPECTED = content.expected_text(CID, N)


def feed_all(dec: Decoder, chunks: list[bytes]) -> Decoder:
    for t, chunk in enumerate(chunks, start=1):
        dec.feed(chunk, t)
    dec.finish()
    return dec


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_recorded_stream_decodes_to_the_expected_text(name: str) -> None:
    endpoint = name.split("_")[0].removesuffix(".sse")
    dec = feed_all(make_decoder(endpoint, True), [STREAMS[name]])
    assert dec.text == EXPECTED
    assert dec.terminated and not dec.malformed and not dec.stream_error
    assert len(dec.token_times) == N
    assert dec.usage is not None
    assert count_tokens(dec.text) == N


@settings(max_examples=100, deadline=None)
@given(name=st.sampled_from(sorted(STREAMS)), cuts=st.lists(st.integers(0, 4000), max_size=30))
def test_any_chunking_gives_the_same_text_and_a_time_per_delta(name: str, cuts: list[int]) -> None:
    endpoint = name.split("_")[0].removesuffix(".sse")
    data = STREAMS[name]
    points = [0, *sorted({c % (len(data) + 1) for c in cuts}), len(data)]
    chunks = [data[a:b] for a, b in itertools.pairwise(points)]
    dec = feed_all(make_decoder(endpoint, True), chunks)
    assert dec.text == EXPECTED and dec.terminated
    assert len(dec.token_times) == N
    assert dec.token_times == sorted(dec.token_times)  # times are the reads' arrival order


def test_delta_time_is_the_arrival_of_the_read_that_completed_it() -> None:
    data = build_stream("chat", n=3)
    events = data.split(b"\n\n")
    dec = make_decoder("chat", True)
    for t, ev in enumerate(events, start=100):
        dec.feed(ev + b"\n\n", t)
    # event 0 is the empty role chunk, events 1..3 the tokens
    assert dec.token_times == [101, 102, 103]


def _chat_chunk(text: str) -> bytes:
    return b"data: " + json.dumps({"choices": [{"delta": {"content": text}}]}).encode() + b"\n\n"


def test_coalesced_and_split_deltas_still_give_the_text() -> None:
    toks = content.tokens(CID, N)
    coalesced = ["".join(toks[:3]), *toks[3:5], toks[5][:2], toks[5][2:], "".join(toks[6:])]
    dec = make_decoder("chat", True)
    for t, text in enumerate(coalesced):
        dec.feed(_chat_chunk(text), t)
    dec.feed(b"data: [DONE]\n\n", 99)
    assert dec.text == EXPECTED and dec.terminated
    assert len(dec.token_times) == len(coalesced)
    assert count_tokens(dec.text) == N


def test_chat_error_event_is_a_stream_error() -> None:
    dec = feed_all(make_decoder("chat", True), [b'data: {"error": {"message": "x"}}\n\n'])
    assert dec.stream_error and not dec.terminated


def test_messages_error_event_is_a_stream_error() -> None:
    body = b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error"}}\n\n'
    assert feed_all(make_decoder("messages", True), [body]).stream_error


def test_responses_failed_is_a_stream_error() -> None:
    body = b'event: response.failed\ndata: {"type":"response.failed"}\n\n'
    assert feed_all(make_decoder("responses", True), [body]).stream_error


@pytest.mark.parametrize("endpoint", ["chat", "responses", "messages"])
def test_undecodable_event_is_malformed_and_the_rest_still_decodes(endpoint: str) -> None:
    data = build_stream(endpoint)
    first = data.index(b"data: ") + len(b"data: ")
    data = data[:first] + b"{not json" + data[first:]
    dec = feed_all(make_decoder(endpoint, True), [data])
    assert dec.malformed
    assert dec.terminated


def test_stream_without_terminator_is_not_terminated() -> None:
    data = build_stream("chat")
    data = data[: data.index(b"data: [DONE]")]
    dec = feed_all(make_decoder("chat", True), [data])
    assert dec.text == EXPECTED and not dec.terminated


NON_STREAM = {
    "chat": {
        "id": "chatcmpl-x",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": EXPECTED}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": N, "total_tokens": N + 1},
    },
    "responses": {
        "id": "resp_x",
        "output": [{"type": "message", "content": [{"type": "output_text", "text": EXPECTED}]}],
        "usage": {"input_tokens": 1, "output_tokens": N, "total_tokens": N + 1},
    },
    "messages": {
        "id": "msg_x",
        "type": "message",
        "content": [{"type": "text", "text": EXPECTED}],
        "usage": {"input_tokens": 1, "output_tokens": N},
    },
}


@pytest.mark.parametrize("endpoint", sorted(NON_STREAM))
def test_non_stream_bodies_at_every_split(endpoint: str) -> None:
    body = json.dumps(NON_STREAM[endpoint]).encode()
    for cut in range(0, len(body) + 1, 7):
        dec = feed_all(make_decoder(endpoint, False), [body[:cut], body[cut:]])
        assert dec.text == EXPECTED and dec.terminated and dec.usage is not None
        assert dec.token_times == [2]  # the whole content becomes readable at the last read


@pytest.mark.parametrize("endpoint", sorted(NON_STREAM))
def test_non_stream_body_cut_short_is_cut_not_malformed(endpoint: str) -> None:
    body = json.dumps(NON_STREAM[endpoint]).encode()
    for cut in range(0, len(body), 5):
        dec = feed_all(make_decoder(endpoint, False), [body[:cut]])
        assert dec.cut and not dec.malformed and not dec.terminated, cut


def test_non_stream_garbage_is_malformed() -> None:
    dec = feed_all(make_decoder("chat", False), [b'{"choices": [} garbage]'])
    assert dec.malformed and not dec.cut
    dec = feed_all(make_decoder("chat", False), [b'{"choices": 3}'])
    assert dec.malformed and dec.terminated


def test_embeddings_float_and_base64() -> None:
    vec = content.embedding(CID, 16)
    for enc in (vec, base64.b64encode(struct.pack("<16f", *vec)).decode()):
        body = json.dumps({"object": "list", "data": [{"embedding": enc}]}).encode()
        dec = feed_all(make_decoder("embeddings", False), [body])
        assert dec.embedding == vec and not dec.malformed


def test_embeddings_garbage_vector_is_malformed() -> None:
    for enc in ('"!!notbase64"', '"AAA="', '["a"]', "{}"):
        body = b'{"data": [{"embedding": ' + enc.encode() + b"}]}"
        assert feed_all(make_decoder("embeddings", False), [body]).malformed, enc


def test_count_tokens() -> None:
    assert count_tokens("") == 0
    assert count_tokens(content.expected_text(5, 1)) == 1
    assert count_tokens(content.expected_text(5, 16)) == 16
