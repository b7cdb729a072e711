"""Shard arithmetic: the split, the nonces, the common window (pure, fake wall clock)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loadgate.errors import UsageError
from loadgate.load.generator import split_share
from loadgate.load.schedule import NS, arrival_times, closed_loop_offsets, stream_shift_ns
from loadgate.pipeline.shard import (
    Shard,
    ShardPlan,
    derived_start,
    judge_shard,
    parse_shard,
    parse_start,
    peer_urls,
    shard_nonce,
    shard_plan,
    split_profile,
)
from loadgate.profile import load_profile
from loadgate.result.model import Gate, Result


def _profile(*sets: str):  # type: ignore[no-untyped-def]
    return load_profile("smoke", ["load.warmup=2s", "load.duration=10s", *sets])


@pytest.mark.parametrize("bad", ["3", "3/3", "-1/2", "a/b", "1/0", "0/"])
def test_bad_shard_is_a_usage_error_naming_the_option(bad: str) -> None:
    with pytest.raises(UsageError, match="--shard"):
        parse_shard(bad)


def test_shard_from_the_indexed_jobs_environment() -> None:
    plan = shard_plan(None, "100", (), {"LOADGATE_SHARDS": "4", "JOB_COMPLETION_INDEX": "3"})
    assert plan is not None and plan.shard == Shard(3, 4) and plan.start_at == 100.0
    assert shard_plan(None, None, (), {}) is None
    with pytest.raises(UsageError, match="JOB_COMPLETION_INDEX"):
        shard_plan(None, None, (), {"LOADGATE_SHARDS": "4"})
    with pytest.raises(UsageError, match="--start-at needs --shard"):
        shard_plan(None, "100", (), {})
    env = {"LOADGATE_START_AT": "2026-01-01T00:00:00Z"}
    plan = shard_plan("0/2", None, (), env)
    assert plan is not None and plan.start_at == 1767225600.0 and not plan.start_derived


def test_start_times_and_the_derived_start() -> None:
    assert parse_start("1767225600.5") == 1767225600.5
    with pytest.raises(UsageError, match="time zone"):
        parse_start("2026-01-01T00:00:00")
    with pytest.raises(UsageError, match="--start-at"):
        parse_start("soon")
    # Next multiple of 30 s at least 15 s ahead: shards started 10 s apart agree.
    assert derived_start(1000.0) == 1020 and derived_start(1004.9) == 1020
    assert derived_start(1005.1) == 1050


def test_closed_loop_split_adds_up_and_seeds_differ() -> None:
    p = _profile("load.concurrency=10", "load.max_requests=100")
    parts = [split_profile(p, Shard(i, 3)) for i in range(3)]
    assert [q.load.concurrency for q in parts] == [4, 3, 3]
    assert sum(q.load.max_requests or 0 for q in parts) == 100
    assert parts[0].load.seed == p.load.seed  # one shard of one is the unsharded run
    assert len({q.load.seed for q in parts}) == 3
    with pytest.raises(UsageError, match="cannot be split over 11 shards"):
        split_profile(p, Shard(0, 11))


def test_constant_shards_with_phase_offsets_are_the_whole_constant_schedule() -> None:
    rate, n, workers = 1000.0, 4, 2  # 1 ms apart: exact integer arithmetic
    p = _profile(f"load.rate={rate}", "load.arrival=constant")
    times = []
    for i in range(n):
        share = split_profile(p, Shard(i, n))
        assert share.load.rate == rate / n
        for w in range(workers):  # as the engine does: each process at rate / n / workers
            shift = stream_shift_ns(w, i / n, rate / n)
            times.append(arrival_times(shift, NS, rate / n / workers, "constant", 1))
    union = np.sort(np.concatenate(times))
    assert np.array_equal(union, arrival_times(0, NS, rate, "constant", 1))


def test_closed_loop_shards_interleave_their_first_sends() -> None:
    total, n, span = 12, 3, 12_000
    alone = closed_loop_offsets(total, 1, 0, ramp_up_ns=0, service_ns=span)
    shards = [
        closed_loop_offsets(total // n, 1, 0, ramp_up_ns=0, service_ns=span, phase=i / n)
        for i in range(n)
    ]
    assert sorted(o for s in shards for o in s) == alone  # 0, 1000, ..., 11000


def test_poisson_shards_draw_independent_schedules() -> None:
    p = _profile("load.rate=500")
    seeds = [split_profile(p, Shard(i, 3)).load.seed for i in range(3)]
    runs = [arrival_times(0, NS, 500 / 3, "poisson", s * 1009) for s in seeds]
    assert not np.array_equal(runs[0][:10], runs[1][:10])


def test_nonces_never_collide_across_shards_and_workers() -> None:
    workers, count = 3, 5
    seen = set()
    for rnd in (0, 1, 0x7FFFFFFF, 123456789):
        for i in range(count):
            base = shard_nonce(rnd, Shard(i, count), workers)
            assert 0 < base <= 0x7FFFFFFF
            for w in range(workers):  # parallel.py: worker w's nonce is base + w
                low = (base + w) & 0xF
                seen.add((rnd, low))
                assert low == i * workers + w
    assert len(seen) == 4 * count * workers


def test_peer_urls_expand_every_other_index() -> None:
    got = peer_urls(("http://lg-shards-{i}.lg-stubs:9000", "http://x:1"), Shard(1, 3))
    assert got == (
        "http://lg-shards-0.lg-stubs:9000",
        "http://lg-shards-2.lg-stubs:9000",
        "http://x:1",
    )


def _plan(start_at: float) -> ShardPlan:
    # Wall clock 1000.0 s is monotonic 5e9 ns here.
    return ShardPlan(Shard(1, 2), start_at, wall=(1000.0, 5 * NS))


def test_a_shard_on_time_keeps_the_whole_window() -> None:
    p = split_profile(_profile(), Shard(1, 2))
    placed = _plan(1010.0).place(p, ready_ns=6 * NS)
    # Measured from 1010.0 (mono 15e9), warm-up 2 s before it.
    assert placed.start_ns == 13 * NS
    assert placed.profile.load.warmup_s == 2.0 and placed.profile.load.duration_s == 10.0
    f = placed.figures
    assert (f.measure_start, f.measure_end, f.missed_start_s) == (1010.0, 1020.0, 0.0)


def test_a_late_shard_shortens_warmup_then_misses_the_start() -> None:
    p = split_profile(_profile(), Shard(1, 2))
    warm = _plan(1010.0).place(p, ready_ns=14 * NS)  # 1 s into the warm-up
    assert warm.profile.load.warmup_s == 1.0 and warm.figures.missed_start_s == 0
    late = _plan(1010.0).place(p, ready_ns=17 * NS)  # 2 s into the window
    assert late.profile.load.warmup_s == 0 and late.profile.load.duration_s == 8.0
    assert late.figures.missed_start_s == 2.0 and late.figures.measure_start == 1012.0
    assert late.figures.measure_end == 1020.0
    result = Result(verdict="pass", exit_code=0, gates=[Gate(name="x", op="<", threshold=1)])
    judge_shard(result, late.figures)
    assert result.verdict == "invalid" and result.exit_code == 3
    assert result.reasons[0].startswith("shard 1/2 missed the common start by 2.000 s")
    assert not result.gates[0].decided
    with pytest.raises(UsageError, match="whole measured window has passed"):
        _plan(1010.0).place(p, ready_ns=30 * NS)


def test_the_split_needs_enough_load() -> None:
    assert split_share(5, 3, 0) == 2
    with pytest.raises(UsageError, match="max_requests"):
        split_profile(_profile("load.max_requests=2"), Shard(0, 3))


def test_a_trace_replay_is_not_sharded(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    trace.write_text('{"timestamp": 0, "input_length": 10, "output_length": 4}\n')
    p = load_profile("smoke", ["load.concurrency=", f"load.trace={trace}"])
    with pytest.raises(UsageError, match=r"load\.trace: a trace replay is not split"):
        split_profile(p, Shard(0, 2))
