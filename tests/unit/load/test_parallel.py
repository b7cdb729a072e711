"""Merging worker outcomes is lossless: counters add, histogram buckets add."""

import pickle

import pytest
from hdrh.histogram import HdrHistogram

from loadgate.histograms.recorder import Recorder
from loadgate.load.generator import split_share
from loadgate.load.outcome import EngineOutcome, ModeCounts, UpstreamCounts, merge_outcomes


def _outcome(
    start: int, values: list[int], errors: dict[str, int], lag: list[int]
) -> EngineOutcome:
    rec = Recorder(start)
    for i, v in enumerate(values):
        rec.record("overhead_ms", i % 2 == 0, v * 1000, start + i * 10_000_000)
    lag_h = HdrHistogram(1, 3_600_000_000, 3)
    for x in lag:
        lag_h.record_value(x)
    out = EngineOutcome(
        rec,
        sent=len(values),
        ok=len(values) - sum(errors.values()),
        failed=sum(errors.values()),
        errors=dict(errors),
        by_mode={"stream": ModeCounts(2, 2, 0), "non_stream": ModeCounts(1, 0, 1)},
        per_interval_done={0: len(values)},
        upstream=UpstreamCounts(calls=len(values), unseen=1, calls_hist={1: len(values)}),
        loop_lag_us=bytes(lag_h.encode()),
        cpu_s=1.0,
        wall_s=10.0,
    )
    return out


def test_split_share_sums_to_total() -> None:
    for total in (0, 1, 7, 100, 101):
        for workers in (1, 2, 3, 8):
            shares = [split_share(total, workers, i) for i in range(workers)]
            assert sum(shares) == total
            assert max(shares) - min(shares) <= 1


def test_merge_adds_everything() -> None:
    a = _outcome(0, [1, 2, 3, 4], {"http_5xx": 1}, [10, 20])
    b = _outcome(0, [5, 6, 7], {"http_5xx": 2, "timeout": 1}, [30])
    b.cpu_s = 9.0  # the busier worker decides the CPU figure
    all_in_one = Recorder(0)
    for i, v in enumerate([1, 2, 3, 4]):
        all_in_one.record("overhead_ms", i % 2 == 0, v * 1000, i * 10_000_000)
    for i, v in enumerate([5, 6, 7]):
        all_in_one.record("overhead_ms", i % 2 == 0, v * 1000, i * 10_000_000)
    m = merge_outcomes([a, b])
    assert m.sent == 7 and m.failed == 4
    assert m.errors == {"http_5xx": 3, "timeout": 1}
    assert m.by_mode["stream"].sent == 4 and m.by_mode["non_stream"].failed == 2
    assert m.per_interval_done == {0: 7}
    assert m.upstream.calls == 7 and m.upstream.unseen == 2
    assert m.upstream.calls_hist == {1: 7}
    assert m.recorder.encode() == all_in_one.encode()
    lag = HdrHistogram.decode(m.loop_lag_us)
    assert lag.get_total_count() == 3
    assert m.cpu_s / m.wall_s == 0.9


def test_pack_round_trip() -> None:
    a = _outcome(0, [1, 2, 3], {}, [5])
    b = pickle.loads(pickle.dumps(a))
    assert b.recorder.encode() == a.recorder.encode()
    assert (b.sent, b.by_mode["stream"].sent, b.upstream) == (a.sent, 2, a.upstream)


def test_a_counter_of_a_new_type_cannot_be_dropped_silently() -> None:
    # Merging goes by field type: a type with no rule raises instead of being skipped.
    a, b = _outcome(0, [1], {}, []), _outcome(0, [2], {}, [])
    a.stopped_by, b.stopped_by = None, "SIGINT"
    assert merge_outcomes([a, b]).stopped_by == "SIGINT"
    c, d = _outcome(0, [1], {}, []), _outcome(0, [2], {}, [])
    c.upstream.calls_hist = {1: 2.5}  # type: ignore[dict-item]
    d.upstream.calls_hist = {1: 0.5}  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="calls_hist"):
        merge_outcomes([c, d])


def test_probe_stream_and_session_counts_of_every_worker_are_kept_once() -> None:
    """Witness, tenants, realtime streams and sessions: each worker's counts, added once."""
    from loadgate.probes.tenants import TenantCounts
    from loadgate.probes.witness import WitnessCounts

    def worker(i: int) -> EngineOutcome:
        out = _outcome(0, [1, 2], {}, [5])
        h = HdrHistogram(1, 3_600_000_000, 3)
        h.record_value(100 * (i + 1))
        out.witness = WitnessCounts(
            sampled=3 + i, found=2 + i, missing=1, polls=10, span_ns=1_000 * (i + 1)
        )
        out.witness.latency_us = bytes(h.encode())
        out.tenants = TenantCounts(tried=4, leaked=i, by_status={403: 4 - i, 200: i})
        out.streams_timed, out.streams_buffered = 5, i
        out.stream_dev_us = bytes(h.encode())
        out.sessions_started, out.sessions_completed, out.sessions_aborted = 3, 3 - i, i
        out.by_turn = {0: {"requests": 3, "failed": i, "e2e_ms": bytes(h.encode())}}
        crossed: EngineOutcome = pickle.loads(pickle.dumps(out))  # as it crosses the pipe
        return crossed

    m = merge_outcomes([worker(0), worker(1), worker(2)])
    w = m.witness
    assert w is not None and (w.sampled, w.found, w.missing, w.polls) == (12, 9, 3, 30)
    assert w.span_ns == 3_000  # the longest span, not a sum
    assert HdrHistogram.decode(w.latency_us).get_total_count() == 3
    assert (m.tenants.tried, m.tenants.leaked) == (12, 3)
    assert m.tenants.by_status == {403: 9, 200: 3}
    assert (m.streams_timed, m.streams_buffered) == (15, 3)
    assert HdrHistogram.decode(m.stream_dev_us).get_total_count() == 3
    assert (m.sessions_started, m.sessions_completed, m.sessions_aborted) == (9, 6, 3)
    assert m.by_turn[0]["requests"] == 9 and m.by_turn[0]["failed"] == 3
    assert HdrHistogram.decode(m.by_turn[0]["e2e_ms"]).get_total_count() == 3
