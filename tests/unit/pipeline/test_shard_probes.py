"""The probes of a sharded run: the revocation probe runs once for the whole run.

Every shard plans the same revocations on the common window (so every shard's load
withholds the keys before they are revoked) but only shard 0 calls the hook and
probes; the merge takes that shard's section, never a sum over shards. Pure: plans,
fake clocks and synthetic results.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from loadgate.load.generator import WorkerPlan
from loadgate.load.keys import KeyPool, header_for
from loadgate.load.schedule import NS, Windows
from loadgate.pipeline.run import _revocation, _without_revocation_gates
from loadgate.pipeline.shard import Shard, ShardPlan, split_profile
from loadgate.probes.revocation import RETIRE_LEAD_NS, RetiringDraw, RevocationProbe
from loadgate.profile import Profile, load_profile
from loadgate.report._checks import probe_rows
from loadgate.result.merge import ShardResult, merge_results
from loadgate.result.model import (
    Probes,
    PropagationFigures,
    Requests,
    Result,
    RevocationFigures,
    RevokedKey,
    ShardFigures,
)

REVOKE = [
    "probes.revocation.url={gateway_url}/admin/keys/revoke",
    "probes.revocation.keys=3",
    "load.warmup=2s",
    "load.duration=12s",
]


def _profile(*sets: str) -> Profile:
    return load_profile("smoke", [*REVOKE, *sets])


def _placed_revocation(
    profile: Profile, shard: Shard, ready_ns: int
) -> tuple[tuple[tuple[str, int], ...], RevocationProbe | None, Windows]:
    """What ``_measure`` does for one shard: place it, then plan the revocations."""
    # Wall clock 1000.0 s is monotonic 5e9 ns on this (every shard's) machine.
    sp = ShardPlan(shard, 1010.0, wall=(1000.0, 5 * NS))
    placed = sp.place(split_profile(profile, shard), ready_ns)
    load = placed.profile.load
    windows = Windows.from_seconds(placed.start_ns, load.warmup_s, load.duration_s, 0.0)
    plan = WorkerPlan(placed.profile, "http://gw", "http://stub", placed.start_ns, 7 + shard.index)
    retire, probe = _revocation(placed.profile, "http://gw", windows, plan, sp, placed.common_ns)
    return retire, probe, windows


def test_only_shard_0_runs_the_probe_and_every_shard_withholds_its_keys() -> None:
    profile = _profile()
    got = [_placed_revocation(profile, Shard(i, 3), ready_ns=6 * NS) for i in range(3)]
    retires = [r for r, _, _ in got]
    probes = [p for _, p, _ in got]
    assert probes[0] is not None and probes[1] is None and probes[2] is None
    assert len(retires[0]) == 3 and retires[1] == retires[0] and retires[2] == retires[0]
    # The probe revokes exactly what the shards withhold, each 0.5 s after it left.
    assert probes[0] is not None
    planned = probes[0].plan
    assert [(p.key, p.retire_ns) for p in planned] == list(retires[0])
    assert all(
        p.revoke_ns - t == RETIRE_LEAD_NS for p, (_, t) in zip(planned, retires[0], strict=True)
    )


def test_a_shard_that_missed_the_start_withholds_the_keys_at_the_common_moments() -> None:
    profile = _profile()
    on_time, _, windows = _placed_revocation(profile, Shard(1, 2), ready_ns=6 * NS)
    late, none, late_windows = _placed_revocation(profile, Shard(1, 2), ready_ns=17 * NS)
    assert late_windows.measure_start_ns != windows.measure_start_ns  # it did miss
    assert none is None and late == on_time
    # Revoked over the first half of the common window [15 s, 27 s) on this clock.
    assert [t + RETIRE_LEAD_NS for _, t in on_time] == [16 * NS, 18 * NS, 20 * NS]
    # Shard 0 late too: its probe keeps the common moments the others withhold for.
    _, probe, _ = _placed_revocation(profile, Shard(0, 2), ready_ns=17 * NS)
    assert probe is not None
    assert [(p.key, p.retire_ns) for p in probe.plan] == list(on_time)


def test_unsharded_runs_probe_as_before() -> None:
    profile = _profile()
    windows = Windows.from_seconds(10 * NS, 2.0, 12.0, 0.0)
    plan = WorkerPlan(profile, "http://gw", "http://stub", 10 * NS, 7)
    retire, probe = _revocation(profile, "http://gw", windows, plan, None)
    assert probe is not None and len(retire) == 3
    off = load_profile("smoke")
    assert _revocation(off, "http://gw", windows, plan, None) == ((), None)


def test_partitioned_shards_withhold_the_probed_keys_that_are_theirs() -> None:
    profile = _profile("load.shard_keys=partitioned")
    retire, _, _ = _placed_revocation(profile, Shard(1, 3), ready_ns=6 * NS)
    pool = KeyPool.from_spec(profile.auth, Path(".")).partition(1, 3)
    mine = {k for k, _ in retire} & set(pool.keys)
    assert mine  # the top ranks spread over the partitions: rank 1 is shard 1's
    clock = [30 * NS]  # after every retirement
    draw = RetiringDraw(pool, retire, lambda: clock[0])
    rng = random.Random(3)
    seen = {draw(rng) for _ in range(2000)}
    assert not {header_for(pool.header, k) for k in mine} & seen


def test_a_shard_without_the_probe_does_not_judge_its_gates() -> None:
    profile = _profile(
        "gates.probes.revocation.propagation_s.max=< 5", "gates.requests.error_rate=< 0.01"
    )
    judged = _without_revocation_gates(profile)
    assert set(judged.gates) == set(profile.gates) - {"probes.revocation.propagation_s.max"}
    plain = load_profile("smoke")
    assert _without_revocation_gates(plain) is plain


def _revoked(n: int) -> RevocationFigures:
    keys = [
        RevokedKey(key=f"sk-lg-{i}…", rank=i, baseline_status=200, propagation_s=0.1 * (i + 1))
        for i in range(n)
    ]
    return RevocationFigures(
        revoked=n,
        propagation_s=PropagationFigures(p50=0.2, max=0.1 * n),
        interval_ms=50.0,
        bound_s=0.05,
        keys=keys,
    )


def _shard(i: int, n: int, revocation: RevocationFigures | None) -> ShardResult:
    profile: dict[str, Any] = {
        "load": {"concurrency": 6},
        "probes": {"revocation": {"url": "http://x/revoke", "keys": 3}},
        "gates": {"probes.revocation.propagation_s.max": "< 5"},
    }
    r = Result(
        verdict="pass",
        exit_code=0,
        profile=profile,
        requests=Requests(sent=10, ok=10),
        probes=Probes(revocation=revocation),
        shard=ShardFigures(index=i, count=n, start_at=100, measure_start=100, measure_end=110),
    )
    return ShardResult(f"shard-{i}.json", r)


def test_the_merge_takes_the_probing_shards_section() -> None:
    m = merge_results([_shard(1, 3, None), _shard(0, 3, _revoked(3)), _shard(2, 3, None)])
    r = m.probes.revocation
    assert r is not None and r == _revoked(3)
    (gate,) = m.gates
    assert gate.passed and gate.value == pytest.approx(0.3)


def test_shards_that_each_revoked_the_same_keys_are_not_summed() -> None:
    # Files from before the fix: every shard revoked the same 3 keys.
    m = merge_results([_shard(i, 3, _revoked(3)) for i in range(3)])
    r = m.probes.revocation
    assert r is not None and r.revoked == 3 and len(r.keys) == 3


def test_a_non_probing_shards_summary_says_who_ran_the_probe() -> None:
    rows = dict(probe_rows(_shard(1, 3, None).result))
    assert rows["key revocation"] == "run by shard 0/3 only (the merged result has it)"
    assert dict(probe_rows(_shard(0, 3, None).result))["key revocation"] == "not configured"
