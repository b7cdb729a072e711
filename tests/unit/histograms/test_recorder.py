"""Recorder: rounding, modes, intervals, summaries, lossless merge and transport."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hdrh.histogram import HdrHistogram

from loadgate.histograms import recorder as recorder_module
from loadgate.histograms.hdr import (
    bulk_record,
    counts_of,
    decode,
    new_histogram,
    renew,
    summarize,
)
from loadgate.histograms.recorder import LIVE_INTERVALS, METRICS, Recorder

S = 1_000_000_000


def _fill(rec: Recorder, seed: int, n: int, t0: int = 0) -> list[tuple[str, bool, int, int]]:
    rng = np.random.default_rng(seed)
    vals = rng.lognormal(mean=13.0, sigma=0.8, size=n).astype(np.int64)  # ~0.4 ms in ns
    ats = t0 + np.sort(rng.integers(0, 12 * S, size=n))
    out = []
    for k, (v, at) in enumerate(zip(vals.tolist(), ats.tolist(), strict=True)):
        m = METRICS[k % 3]
        s = bool(k % 2)
        rec.record(m, s, v, at)
        out.append((m, s, v, at))
    return out


def _same_counts(a: HdrHistogram, b: HdrHistogram) -> bool:
    return bool(np.array_equal(counts_of(a), counts_of(b)))


def test_rounds_ns_to_us_and_counts_modes() -> None:
    rec = Recorder(start_ns=0)
    rec.record("overhead_ms", True, 1_499, 10)  # 1.499 µs → 1
    rec.record("overhead_ms", False, 1_500, 10)  # 1.5 µs → 2
    rec.record("overhead_ms", False, 0, 10)  # zero is a fine value
    rec.record("overhead_ms", False, -300, 10)  # clamped to 0
    assert rec.count("overhead_ms") == 4
    assert rec.count("overhead_ms", "stream") == 1
    assert rec.count("overhead_ms", "non_stream") == 3
    c = counts_of(rec.histogram("overhead_ms"))
    assert (int(c[0]), int(c[1]), int(c[2])) == (2, 1, 1)
    assert rec.summary("e2e_ms") is None
    assert rec.count("e2e_ms") == 0


def test_summary_matches_hdrh_and_is_in_ms() -> None:
    rec = Recorder(start_ns=0)
    ref = new_histogram()
    for v_us in (100, 200, 300, 400, 5000):
        rec.record("e2e_ms", False, v_us * 1000, 0)
        ref.record_value(v_us)
    s = rec.summary("e2e_ms")
    assert s is not None
    assert s["count"] == 5
    assert s["p50"] == ref.get_value_at_percentile(50) / 1000 == 0.3
    assert s["p99"] == ref.get_value_at_percentile(99) / 1000
    assert s["max"] == ref.get_max_value() / 1000
    assert s["min"] == 0.1
    assert s["mean"] == pytest.approx(ref.get_mean_value() / 1000, abs=1e-4)
    assert s["stdev"] == pytest.approx(ref.get_stddev() / 1000, abs=1e-4)
    assert set(s) == {"count", "mean", "stdev", "min", "p50", "p90", "p99", "p999", "max"}


def test_interval_percentile_by_completion_time() -> None:
    rec = Recorder(start_ns=5 * S)
    rec.record("overhead_ms", True, 1_000_000, 5 * S + 10)  # interval 0: 1 ms
    rec.record("overhead_ms", False, 3_000_000, 7 * S + 1)  # interval 2: 3 ms
    rec.record("overhead_ms", False, 2_000_000, 4 * S)  # before start → interval 0
    got = rec.interval_percentile("overhead_ms", 99.0)
    assert got == [(0, pytest.approx(2.0, rel=1e-3)), (1, None), (2, pytest.approx(3.0, rel=1e-3))]
    assert rec.interval_percentile("itl_ms", 99.0) == []


def test_batches_cut_the_window_into_contiguous_time_slices() -> None:
    rec = Recorder(start_ns=0)
    for i in range(12):  # interval i holds i + 1 values of (i + 1) ms, in both modes
        for _ in range(i + 1):
            rec.record("overhead_ms", i % 2 == 0, (i + 1) * 1_000_000, i * S + 5)
    four = rec.batches("overhead_ms", None, 4)
    # 12 intervals into 4 batches: intervals 0-2, 3-5, 6-8, 9-11, in time order.
    assert [h.get_total_count() for h in four] == [1 + 2 + 3, 4 + 5 + 6, 7 + 8 + 9, 10 + 11 + 12]
    assert [h.get_max_value() // 1000 for h in four] == [3, 6, 9, 12]
    # More batches asked than intervals exist: one per interval, nothing lost.
    many = rec.batches("overhead_ms", None, 20)
    assert [h.get_total_count() for h in many] == list(range(1, 13))
    # Per mode: only that mode's values; stream holds the even intervals.
    stream = rec.batches("overhead_ms", "stream", 4)
    assert [h.get_total_count() for h in stream] == [1 + 3, 5, 7 + 9, 11]
    enc = rec.encode_batches(("overhead_ms", "itl_ms"), 4)
    assert set(enc) == {"overhead_ms", "stream.overhead_ms", "non_stream.overhead_ms"}
    assert [decode(b).get_total_count() for b in enc["overhead_ms"]] == [6, 15, 24, 33]


def test_old_intervals_are_frozen_and_thawed_losslessly() -> None:
    rec = Recorder(start_ns=0)
    for i in range(10):
        rec.record("itl_ms", True, 1_000_000 + i * 1000, i * S)
    rec.flush()  # values reach the interval histograms in bulk
    live = rec._live["itl_ms"][True]
    assert len(live) == LIVE_INTERVALS + 1  # the rest are compressed
    rec.record("itl_ms", True, 9_000_000, 0)  # a late value into a frozen interval
    ivs = dict(rec.intervals("itl_ms"))
    assert sorted(ivs) == list(range(10))
    assert ivs[0].get_total_count() == 2
    assert sum(h.get_total_count() for h in ivs.values()) == rec.count("itl_ms") == 11


def test_merge_equals_recording_everything_into_one() -> None:
    a, b, both = Recorder(0), Recorder(0), Recorder(0)
    for rec, seed in ((a, 1), (b, 2)):
        for m, s, v, at in _fill(rec, seed, 3000):
            both.record(m, s, v, at)
    a.merge(b)
    for m in METRICS:
        for mode in (None, "stream", "non_stream"):
            assert _same_counts(a.histogram(m, mode), both.histogram(m, mode)), (m, mode)
            ia, ib = a.intervals(m, mode), both.intervals(m, mode)
            assert [j for j, _ in ia] == [j for j, _ in ib]
            assert all(_same_counts(x, y) for (_, x), (_, y) in zip(ia, ib, strict=True))
        assert a.summary(m) == both.summary(m)


def test_merge_shifts_intervals_by_start_difference() -> None:
    a, b = Recorder(0), Recorder(2 * S)
    b.record("e2e_ms", True, 1_000_000, 2 * S + 1)  # b's interval 0 = a's interval 2
    a.merge(b)
    assert [j for j, _ in a.intervals("e2e_ms")] == [2]
    with pytest.raises(ValueError):
        a.merge(Recorder(0, interval_ns=S // 2))


def test_encode_names_and_round_trip() -> None:
    rec = Recorder(0)
    _fill(rec, 3, 2000)
    rec.record("ttft_ms", True, 50_000_000, 0)  # stream-only metric
    enc = rec.encode()
    assert "ttft_ms" in enc and "stream.ttft_ms" in enc and "non_stream.ttft_ms" not in enc
    assert "itl_ms" not in enc  # empty metrics are left out
    for m in ("overhead_ms", "e2e_ms", "ingress_ms"):
        for name, mode in ((m, None), (f"stream.{m}", "stream"), (f"non_stream.{m}", "non_stream")):
            h = decode(enc[name])
            assert _same_counts(h, rec.histogram(m, mode))
            assert summarize(h) == rec.summary(m, mode)


def test_to_bytes_from_bytes_is_lossless() -> None:
    rec = Recorder(123, interval_ns=S // 2)
    _fill(rec, 4, 4000, t0=123)
    back = Recorder.from_bytes(rec.to_bytes())
    assert (back.start_ns, back.interval_ns) == (123, S // 2)
    for m in METRICS:
        for mode in (None, "stream", "non_stream"):
            assert _same_counts(back.histogram(m, mode), rec.histogram(m, mode))
        assert back.interval_percentile(m, 99.0) == rec.interval_percentile(m, 99.0)
    # the decoded recorder keeps recording into its (frozen) intervals
    back.record("overhead_ms", True, 1000, 123)
    assert back.count("overhead_ms") == rec.count("overhead_ms") + 1


def test_values_beyond_range_are_clamped_not_dropped() -> None:
    rec = Recorder(0)
    rec.record("e2e_ms", False, 2 * 3600 * S, 0)  # 2 h
    assert rec.count("e2e_ms") == 1
    s = rec.summary("e2e_ms")
    assert s is not None and s["max"] >= 3_600_000


def test_bad_metric_and_mode() -> None:
    rec = Recorder(0)
    with pytest.raises(KeyError):
        rec.count("nope_ms")
    with pytest.raises(ValueError):
        rec.count("e2e_ms", "streaming")


def test_bulk_recording_is_byte_identical_to_one_by_one() -> None:
    rng = np.random.default_rng(11)
    values = np.concatenate(
        [
            rng.integers(1, 2_000, 3000),  # the exact range (first bucket)
            rng.integers(2_000, 10_000_000, 3000),  # every bucket in between
            np.array([1, 2047, 2048, 4095, 4096, 3_600_000_000]),  # edges of buckets
        ]
    ).astype(np.int64)
    one = new_histogram()
    for v in values.tolist():
        one.record_value(v)
    bulk = new_histogram()
    bulk_record(bulk, values[:5000])
    bulk_record(bulk, values[5000:])
    assert bulk.encode() == one.encode()
    assert (bulk.get_total_count(), bulk.get_max_value(), bulk.get_min_value()) == (
        one.get_total_count(),
        one.get_max_value(),
        one.get_min_value(),
    )


def test_values_waiting_for_a_flush_are_seen_by_every_query() -> None:
    rec = Recorder(start_ns=0)
    rec.record("overhead_ms", True, 2_000_000, 0)  # 2 ms, not flushed yet
    assert rec.count("overhead_ms") == 1
    rec.record("overhead_ms", True, 4_000_000, 1_500_000_000)
    assert rec.interval_percentile_at("overhead_ms", 1, 99.0) == pytest.approx(4.0, rel=1e-3)
    other = Recorder(start_ns=0)
    other.record("overhead_ms", False, 8_000_000, 0)
    rec.merge(other)
    assert rec.count("overhead_ms") == 3
    assert Recorder.from_bytes(rec.to_bytes()).encode() == rec.encode()


def test_a_thin_recorder_flushes_when_a_new_interval_starts_not_seconds_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 3 values a second, far below the flush count: each flush must still open at
    # most one new interval per metric and mode (one flush of 10 s opened ~100).
    opened: list[int] = []
    real_open = Recorder._open_interval

    def counting(self: Recorder, metric: str, stream: bool, i: int) -> HdrHistogram:
        opened.append(i)
        return real_open(self, metric, stream, i)

    monkeypatch.setattr(Recorder, "_open_interval", counting)
    real_flush = Recorder.flush
    per_flush: list[int] = []

    def timed(self: Recorder) -> None:
        before = len(opened)
        real_flush(self)
        per_flush.append(len(opened) - before)

    monkeypatch.setattr(Recorder, "flush", timed)
    rec = Recorder(start_ns=0)
    one_by_one = Recorder(start_ns=0)
    for k in range(30):  # 10 s of 3 values a second, in both recording styles
        t = k * S // 3
        rec.record("overhead_ms", True, 1_000_000 + k, t)
        rec.record_many("itl_ms", True, [10_000_000, 11_000_000], t)
        one_by_one.record("overhead_ms", True, 1_000_000 + k, t)
        for v in (10_000_000, 11_000_000):
            one_by_one.record("itl_ms", True, v, t)
    assert max(per_flush) <= 2  # one interval each for overhead_ms and itl_ms
    # Every interval but the newest was flushed as the next one began; the newest waits.
    assert sorted(set(opened)) == list(range(9))
    assert rec.encode() == one_by_one.encode()  # flushing earlier changes no figure


def test_live_percentile_queries_leave_no_histogram_for_the_collector() -> None:
    # During load full collections are held off: a temporary histogram left in a
    # reference cycle (hdrh's histogram <-> encoder) stays ~190 KB until exit. Every
    # live query (a few a second) must free its temporaries by reference counting.
    import gc

    rec = Recorder(start_ns=0)
    for i in range(LIVE_INTERVALS + 3):  # some intervals frozen, some live
        rec.record("overhead_ms", False, 1_000_000, at_ns=i * 1_000_000_000)

    def live_histograms() -> int:
        return sum(isinstance(o, HdrHistogram) for o in gc.get_objects())

    rec.interval_percentile_at("overhead_ms", 0, 99.0)  # warm any lazy state
    gc.collect()
    gc.disable()
    try:
        before = live_histograms()
        for _ in range(20):
            assert rec.interval_percentile_at("overhead_ms", 0, 99.0) == pytest.approx(1.0, 0.01)
            assert rec.interval_percentile_at("overhead_ms", LIVE_INTERVALS + 2, 99.0) is not None
        assert live_histograms() == before
    finally:
        gc.enable()


def test_record_gaps_is_record_of_every_pair() -> None:
    times = [0, 1_499, 1_499, 11_000_000, 11_000_000, 9_000_000, 4 * 3600 * S, 4 * 3600 * S + 2]
    one, bulk = Recorder(start_ns=0), Recorder(start_ns=0)
    at = 3 * S + 5
    for a, b in itertools.pairwise(times):
        one.record("itl_ms", True, b - a, at)
    # 0-gaps counted on the raw ns (1 499 -> 1 499 is one, 0 -> 1 499 is not)
    assert bulk.record_gaps("itl_ms", True, times, at) == 2
    assert bulk.count("itl_ms", "stream") == len(times) - 1 == one.count("itl_ms", "stream")
    assert _same_counts(bulk.histogram("itl_ms"), one.histogram("itl_ms"))  # clamped alike
    assert [j for j, _ in bulk.intervals("itl_ms")] == [3]
    assert bulk.record_gaps("itl_ms", False, [7], at) == 0
    assert bulk.record_gaps("itl_ms", False, [], at) == 0
    assert bulk.count("itl_ms", "non_stream") == 0


def test_renewed_histogram_is_a_new_one() -> None:
    used = new_histogram()
    bulk_record(used, np.array([0, 5, 70_000, 3_000_000], dtype=np.int64))
    used.record_value(12)
    used.set_start_time_stamp(5)
    used.set_tag("x")
    fresh = renew(used)
    ref = new_histogram()
    assert {k: v for k, v in vars(fresh).items() if k not in ("encoder", "counts")} == {
        k: v for k, v in vars(ref).items() if k not in ("encoder", "counts")
    }
    assert not counts_of(fresh).any()
    for h in (fresh, ref):
        bulk_record(h, np.array([3, 3, 900], dtype=np.int64))
    assert fresh.encode() == ref.encode() and fresh.get_max_value() == ref.get_max_value()


def test_reused_interval_histograms_start_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    renewed: list[HdrHistogram] = []

    def counting(h: HdrHistogram) -> HdrHistogram:
        renewed.append(h)
        return renew(h)

    monkeypatch.setattr(recorder_module, "renew", counting)
    rec = Recorder(start_ns=0)
    for j in range(4 * LIVE_INTERVALS):  # intervals freeze and their histograms are reused
        rec.record("e2e_ms", True, (j + 1) * 1_000_000, j * S + 1)
        rec.flush()
    got = dict(rec.intervals("e2e_ms", "stream"))
    assert sorted(got) == list(range(4 * LIVE_INTERVALS))
    assert len(renewed) >= 4 * LIVE_INTERVALS - LIVE_INTERVALS - 2  # reuse did happen
    for j, h in got.items():
        assert h.get_total_count() == 1
        assert h.get_value_at_percentile(100) == h.get_highest_equivalent_value((j + 1) * 1000)


def test_record_many_is_record_of_every_value() -> None:
    values = [-2_000, 0, 1_499, 11_000_000, 4 * 3600 * S]  # a negative and an over-range one
    one, bulk = Recorder(start_ns=0), Recorder(start_ns=0)
    at = 2 * S + 5
    for v in values:
        one.record("token_delay_ms", True, v, at)
    bulk.record_many("token_delay_ms", True, values, at)
    bulk.record_many("token_delay_ms", True, [], at)
    assert bulk.count("token_delay_ms", "stream") == len(values) == one.count("token_delay_ms")
    assert _same_counts(bulk.histogram("token_delay_ms"), one.histogram("token_delay_ms"))
    assert [j for j, _ in bulk.intervals("token_delay_ms")] == [2]
