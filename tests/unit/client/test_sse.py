"""SSE parser: every chunking of the recorded streams parses to the same events."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadgate.client.sse import SSEEvent, SSEParser
from tests.support.streams import recorded_streams

STREAMS = recorded_streams()


def parse(chunks: list[bytes]) -> list[SSEEvent]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events += parser.feed(chunk)
    return events


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = [0, *sorted(set(cuts)), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(points)]


def test_recordings_are_present() -> None:
    assert {"chat.sse", "responses.sse", "messages.sse", "chat_crlf.sse", "messages_cr.sse"} <= set(
        STREAMS
    )


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_every_single_split_point_gives_the_same_events(name: str) -> None:
    data = STREAMS[name]
    whole = parse([data])
    assert len(whole) >= 10
    for cut in range(len(data) + 1):
        assert parse([data[:cut], data[cut:]]) == whole, cut


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_byte_at_a_time(name: str) -> None:
    data = STREAMS[name]
    assert parse([data[i : i + 1] for i in range(len(data))]) == parse([data])


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(sorted(STREAMS)),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=40),
)
def test_any_chunking_gives_the_same_events(name: str, cuts: list[int]) -> None:
    data = STREAMS[name]
    cuts = [c % (len(data) + 1) for c in cuts]
    assert parse(split_at(data, cuts)) == parse([data])


@pytest.mark.parametrize(
    ("lf", "other"),
    [
        ("chat.sse", "chat_crlf.sse"),
        ("responses.sse", "responses_crlf.sse"),
        ("messages.sse", "messages_crlf.sse"),
        ("messages.sse", "messages_cr.sse"),
    ],
)
def test_line_endings_do_not_change_events(lf: str, other: str) -> None:
    assert parse([STREAMS[other]]) == parse([STREAMS[lf]])


def test_event_lines_set_the_type_and_default_is_message() -> None:
    events = parse([STREAMS["messages.sse"]])
    assert events[0].type == b"message_start"
    assert events[-1] == SSEEvent(b"message_stop", b'{"type":"message_stop"}')
    assert {e.type for e in parse([STREAMS["chat.sse"]])} == {b"message"}


def test_corners_bom_comments_ids_multiline_and_bare_field() -> None:
    events = parse([STREAMS["chat_corners.sse"]])
    chat = parse([STREAMS["chat.sse"]])
    # the first event's JSON was sent as two data lines: joined with "\n"
    assert events[0].data.replace(b",\n", b",", 1) == chat[0].data
    assert events[1:] == chat[1:]


def test_multiline_data_is_joined_with_newline() -> None:
    assert parse([b"data: a\ndata:b\ndata:  c\n\n"]) == [SSEEvent(b"message", b"a\nb\n c")]


def test_field_without_colon_and_empty_data() -> None:
    assert parse([b"data\n\n"]) == [SSEEvent(b"message", b"")]
    assert parse([b"event\ndata: x\n\n"]) == [SSEEvent(b"message", b"x")]


def test_event_without_data_is_not_dispatched_and_type_resets() -> None:
    assert parse([b"event: ping\n\ndata: x\n\n"]) == [SSEEvent(b"message", b"x")]


def test_comments_ids_retry_and_unknown_fields_are_ignored() -> None:
    data = b": hi\nid: 3\nretry: 10\nfoo: bar\ndata: x\n\n"
    assert parse([data]) == [SSEEvent(b"message", b"x")]


def test_unterminated_last_event_is_discarded() -> None:
    assert parse([b"data: a\n\ndata: b\n"]) == [SSEEvent(b"message", b"a")]


def test_bom_split_over_reads_is_dropped() -> None:
    assert parse([b"\xef", b"\xbb", b"\xbfdata: a\n\n"]) == [SSEEvent(b"message", b"a")]
    # only at the very start: later, it is part of a field name nobody knows
    assert parse([b"data: a\n\n\xef\xbb\xbfdata: b\n\n"]) == [SSEEvent(b"message", b"a")]


def test_crlf_split_between_reads_is_one_line_end() -> None:
    assert parse([b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n"]) == [
        SSEEvent(b"message", b"a"),
        SSEEvent(b"message", b"b"),
    ]


def test_lone_cr_line_ends() -> None:
    assert parse([b"data: a\r\rdata: b\r", b"\r"]) == [
        SSEEvent(b"message", b"a"),
        SSEEvent(b"message", b"b"),
    ]


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_data_only_agrees_with_feed_wherever_it_answers(name: str) -> None:
    data = STREAMS[name]
    blocks = [b + b"\n\n" for b in data.split(b"\n\n") if b]
    # One read per event and two per read, after a first read that decides the BOM.
    for size in (1, 2):
        fast, slow = SSEParser(), SSEParser()
        fast.feed(blocks[0])
        slow.feed(blocks[0])
        answered = 0
        for i in range(1, len(blocks), size):
            read = b"".join(blocks[i : i + size])
            events = slow.feed(read)
            got = fast.data_only(read)
            if got is None:
                assert fast.feed(read) == events
                continue
            answered += 1
            assert [SSEEvent(b"message", d) for d in got] == events
        if name == "chat.sse":  # an LF-only chat stream takes the fast path
            assert answered > 0


@pytest.mark.parametrize(
    "read",
    [
        b"data: a\n\n: comment\n\n",
        b"event: e\ndata: a\n\n",
        b"data: a\ndata: b\n\n",
        b"data: a\r\n\r\n",
        b"data: a\n\ndata:b\n\n",
        b"data: a\n\n\n\ndata: b\n\n",
        b"data: a",
    ],
)
def test_data_only_declines_anything_but_plain_whole_data_events(read: bytes) -> None:
    parser = SSEParser()
    parser.feed(b": start\n\n")
    assert parser.data_only(read) is None


def test_data_only_declines_while_a_line_is_pending() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\n\ndata: par") == [SSEEvent(b"message", b"a")]
    assert parser.data_only(b"data: b\n\n") is None
    assert parser.feed(b"t\n\n") == [SSEEvent(b"message", b"part")]
    assert parser.data_only(b"data: b\n\ndata: \n\n") == [b"b", b""]
