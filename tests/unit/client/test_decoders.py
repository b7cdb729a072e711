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


# -- the read path queues, settle() decodes: same answer as decoding every read ------


def _as_sink(dec: Decoder, chunks: list[bytes]) -> Decoder:
    dec.on_head(200, {}, 0)
    for t, chunk in enumerate(chunks, start=1):
        dec.on_body(chunk, t)
    dec.finish()
    return dec


def _seen(dec: Decoder) -> tuple[object, ...]:
    return (
        dec.parts,
        dec.token_times,
        dec.terminated,
        dec.malformed,
        dec.stream_error,
        dec.usage,
    )


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = [0, *sorted({c % (len(data) + 1) for c in cuts}), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(points)]


_GOOD = b'{"choices":[{"delta":{"content":"w "}}]}'
# Each event alone, as a gateway might send it: the batch must give what one by one gives.
_EVENTS = [
    b"data: " + _GOOD + b"\n\n",
    b'data: {"choices":[{"delta":{"content":"x "}}],"usage":{"total_tokens":3}}\n\n',
    b"data: [DONE]\n\n",
    b'data: {"error":{"message":"e"}}\n\n',
    b"data: {not json\n\n",
    b"data: " + _GOOD + b"," + _GOOD + b"\n\n",  # two objects in one event: malformed
    b"data: \n\n",
    b'data: {"choices":[{"delta":{"content":7}}]}\n\n',
    b": a comment\n\n",
    b"event: other\ndata: " + _GOOD + b"\n\n",
    b"data: " + _GOOD + b"\r\n\r\n",
    b"data:" + _GOOD + b"\n\n",
    b"data: {\ndata: }\n\n",
    b"\xef\xbb\xbfdata: " + _GOOD + b"\n\n",
]


@settings(max_examples=300, deadline=None)
@given(
    picks=st.lists(st.integers(0, len(_EVENTS) - 1), min_size=1, max_size=12),
    cuts=st.lists(st.integers(0, 2000), max_size=10),
)
def test_settled_pieces_decode_as_the_incremental_path(picks: list[int], cuts: list[int]) -> None:
    data = b"".join(_EVENTS[i] for i in picks)
    chunks = _cut(data, cuts)
    incremental = feed_all(make_decoder("chat", True), chunks)
    settled = _as_sink(make_decoder("chat", True), chunks)
    assert _seen(settled) == _seen(incremental)


@settings(max_examples=100, deadline=None)
@given(name=st.sampled_from(sorted(STREAMS)), cuts=st.lists(st.integers(0, 4000), max_size=30))
def test_settled_recorded_streams_match_the_incremental_path(name: str, cuts: list[int]) -> None:
    endpoint = name.split("_")[0].removesuffix(".sse")
    chunks = _cut(STREAMS[name], cuts)
    settled = _as_sink(make_decoder(endpoint, True), chunks)
    assert _seen(settled) == _seen(feed_all(make_decoder(endpoint, True), chunks))
    assert settled.text == EXPECTED and len(settled.token_times) == N


def test_settled_event_takes_the_stamp_of_the_read_with_its_last_byte() -> None:
    one = b"data: " + _GOOD + b"\n\n"
    # event 1 ends one byte into read 2 (its second LF); event 2 is whole in read 3
    dec = _as_sink(make_decoder("chat", True), [one[:-1], one[-1:] + one[:5], one[5:]])
    assert dec.token_times == [2, 3]


def test_settle_runs_on_the_error_path_too() -> None:
    dec = make_decoder("chat", True)
    dec.on_head(200, {}, 0)
    dec.on_body(b"data: " + _GOOD + b"\n\n", 5)
    assert dec.token_times == []  # only queued
    dec.settle()
    assert dec.token_times == [5] and dec.text == "w "
    dec.settle()  # idempotent
    assert dec.token_times == [5]


def test_a_body_that_is_not_content_is_not_decoded() -> None:
    dec = make_decoder("chat", True)
    dec.on_head(500, {}, 0)
    dec.on_body(b"data: " + _GOOD + b"\n\n", 5)
    dec.finish()
    assert dec.parts == [] and not dec.terminated


def test_a_plain_chat_stream_is_decoded_in_one_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    from loadgate.client import decoders

    calls: list[int] = []
    batch = decoders.ChatStream._batch

    def spy(
        self: decoders.ChatStream, payloads: list[bytes], pending: list[tuple[bytes, int]]
    ) -> None:
        calls.append(len(payloads))
        batch(self, payloads, pending)

    monkeypatch.setattr(decoders.ChatStream, "_batch", spy)
    data = build_stream("chat")
    dec = _as_sink(make_decoder("chat", True), _cut(data, [7, 300, 301, 900]))
    assert calls == [data.count(b"data: ")]
    assert dec.text == EXPECTED and dec.terminated
