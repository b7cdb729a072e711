"""Per-token delay arithmetic on precomputed schedules (no clock, no sockets)."""

from __future__ import annotations

from loadgate.checks.streaming import MIN_SPAN_NS, stream_delays, token_arrivals

MS = 1_000_000
T0 = 1_000 * MS  # the stub meant to write token 0 here
ITL = 10 * MS


def test_a_relayed_stream_has_the_relay_delay_on_every_token() -> None:
    # Stub wrote on schedule (0.2 ms late at most); the client got each token 0.3 ms later.
    writes = [T0 + k * ITL + 200_000 for k in range(4)]
    arrivals = [w + 300_000 for w in writes]
    got = stream_delays(arrivals, T0, ITL, writes[0], writes[-1], dev_ns=200_000)
    assert got is not None
    # Token 0 is exact (its write is stamped); the others are timed from the nominal
    # schedule, so over-estimated by the stub's 0.2 ms lag (the bound), never under.
    assert got.delays_ns == [300_000, 500_000, 500_000, 500_000]
    assert got.bound_ns == 200_000
    assert not got.buffered


def test_a_stream_held_to_its_end_is_buffered_and_its_first_tokens_waited_longest() -> None:
    writes = [T0 + k * ITL for k in range(8)]
    end = writes[-1] + 1 * MS  # all 8 tokens in one read, 1 ms after the last write
    got = stream_delays([end] * 8, T0, ITL, writes[0], writes[-1], dev_ns=0)
    assert got is not None
    assert got.delays_ns == [71 * MS, 61 * MS, 51 * MS, 41 * MS, 31 * MS, 21 * MS, 11 * MS, 1 * MS]
    assert got.buffered


def test_a_constant_delay_is_not_buffering() -> None:
    writes = [T0 + k * ITL for k in range(8)]
    got = stream_delays([w + 50 * MS for w in writes], T0, ITL, writes[0], writes[-1], 0)
    assert got is not None and not got.buffered
    assert set(got.delays_ns) == {50 * MS}


def test_short_write_spans_are_not_judged_for_buffering() -> None:
    itl = (MIN_SPAN_NS // 2) - 1  # two gaps: a span just under the minimum
    writes = [T0, T0 + itl, T0 + 2 * itl]
    got = stream_delays([writes[-1]] * 3, T0, itl, writes[0], writes[-1], 0)
    assert got is not None and not got.buffered


def test_unknown_stub_side_gives_no_delays() -> None:
    assert stream_delays([], T0, ITL, T0, T0, 0) is None
    assert stream_delays([T0], 0, ITL, T0, T0, 0) is None  # no schedule recorded
    assert stream_delays([T0], T0, ITL, 0, 0, 0) is None  # never written


def test_rechunked_deltas_map_back_to_tokens() -> None:
    # A gateway merged tokens 0-2 into one delta and 3-4 into another.
    assert token_arrivals([5, 9], [3, 5]) == [5, 5, 5, 9, 9]
    # A token split over two deltas counts from the delta that brought its first part.
    assert token_arrivals([5, 6, 9], [1, 2, 2]) == [5, 6]
    assert token_arrivals([1, 2], None) == [1, 2]
