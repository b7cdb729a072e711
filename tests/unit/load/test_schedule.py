"""Schedule arithmetic with round numbers: no clocks, no sleeping."""

import numpy as np
import pytest

from loadgate.load.schedule import (
    CHUNK,
    NS,
    Windows,
    arrival_times,
    iter_arrivals,
    worker_start_offsets,
)


def test_windows_edges_and_phases() -> None:
    w = Windows.from_seconds(1000 * NS, warmup_s=10, duration_s=60, cooldown_s=5)
    assert w.measure_start_ns == 1010 * NS
    assert w.measure_end_ns == 1070 * NS
    assert w.end_ns == 1075 * NS
    assert w.phase(1000 * NS) == "warmup"
    assert w.phase(1010 * NS - 1) == "warmup"
    assert w.phase(1010 * NS) == "measured"
    assert w.phase(1070 * NS - 1) == "measured"
    assert w.phase(1070 * NS) == "cooldown"


def test_constant_arrivals_are_exact() -> None:
    t = arrival_times(1000 * NS, 1002 * NS, rate=4.0, arrival="constant", seed=1)
    assert t.tolist() == [1000 * NS + k * 250_000_000 for k in range(8)]


def test_constant_arrivals_respect_max_count() -> None:
    t = arrival_times(0, 10 * NS, rate=100.0, arrival="constant", seed=1, max_count=7)
    assert len(t) == 7
    assert t[-1] == 6 * 10_000_000


def test_poisson_is_seeded_and_a_prefix_of_one_sequence() -> None:
    a = arrival_times(0, 10 * NS, rate=50.0, arrival="poisson", seed=42)
    b = arrival_times(0, 10 * NS, rate=50.0, arrival="poisson", seed=42)
    c = arrival_times(0, 10 * NS, rate=50.0, arrival="poisson", seed=43)
    assert np.array_equal(a, b)
    assert not np.array_equal(a[:20], c[:20])
    shorter = arrival_times(0, 5 * NS, rate=50.0, arrival="poisson", seed=42)
    assert np.array_equal(a[: len(shorter)], shorter)
    assert a[0] == 0
    assert np.all(np.diff(a) >= 0)
    assert np.all(a < 10 * NS)


def test_poisson_mean_gap_matches_rate() -> None:
    # 100k arrivals: the sample mean gap is 1/rate within 1 % (seeded: exact output).
    t = arrival_times(0, 1000 * NS, rate=100.0, arrival="poisson", seed=7)
    assert np.mean(np.diff(t)) == pytest.approx(NS / 100.0, rel=0.01)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError):
        arrival_times(0, NS, rate=0.0, arrival="constant", seed=1)
    with pytest.raises(ValueError):
        arrival_times(0, NS, rate=1.0, arrival="bursty", seed=1)
    assert len(arrival_times(5, 5, rate=1.0, arrival="constant", seed=1)) == 0


def test_worker_start_offsets() -> None:
    assert worker_start_offsets(4, 0) == [0, 0, 0, 0]
    assert worker_start_offsets(4, 4 * NS) == [0, NS, 2 * NS, 3 * NS]
    assert worker_start_offsets(0, NS) == []


def test_closed_loop_offsets_spread_over_service_time() -> None:
    from loadgate.load.schedule import closed_loop_offsets

    # 4 workers, one process, 200 ms service: 0, 50, 100, 150 ms
    assert closed_loop_offsets(4, 1, 0, ramp_up_ns=0, service_ns=200 * 10**6) == [
        0, 50 * 10**6, 100 * 10**6, 150 * 10**6,
    ]  # fmt: skip
    # a ramp-up wins over the service time
    assert closed_loop_offsets(2, 1, 0, ramp_up_ns=NS, service_ns=5) == [0, NS // 2]
    # two processes interleave: together they cover every slot exactly once
    a = closed_loop_offsets(5, 2, 0, ramp_up_ns=0, service_ns=10 * 10**6)
    b = closed_loop_offsets(5, 2, 1, ramp_up_ns=0, service_ns=10 * 10**6)
    assert sorted(a + b) == [0, 2 * 10**6, 4 * 10**6, 6 * 10**6, 8 * 10**6]
    assert len(a) == 3 and len(b) == 2
    # zero-latency stub: no spread
    assert closed_loop_offsets(3, 1, 0, ramp_up_ns=0, service_ns=0) == [0, 0, 0]


@pytest.mark.parametrize("arrival", ["constant", "poisson"])
def test_chunks_are_the_same_schedule_as_one_array(arrival: str) -> None:
    whole = arrival_times(0, 3 * NS, rate=1000.0, arrival=arrival, seed=5)
    parts = list(iter_arrivals(0, 3 * NS, rate=1000.0, arrival=arrival, seed=5, chunk=97))
    assert len(parts) > 10 and max(len(p) for p in parts) <= 97
    assert np.array_equal(np.concatenate(parts), whole)


def test_a_huge_schedule_is_made_lazily() -> None:
    # 10⁶ req/s for a day would be 690 GB as one array; the first chunk comes at once.
    first = next(iter_arrivals(0, 86_400 * NS, rate=1e6, arrival="poisson", seed=1))
    assert first.size == CHUNK and first[0] == 0 and first[-1] < NS
