"""Revocation arithmetic with precomputed probe sequences and a fake clock: no sockets."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from loadgate.load.keys import KeyPool
from loadgate.probes.revocation import (
    RETIRE_LEAD_NS,
    KeyProbe,
    PlannedRevocation,
    Probe,
    RetiringDraw,
    plan_revocations,
    propagation,
    summarize,
)
from loadgate.profile import AuthSpec, RevocationSpec

MS = 1_000_000
HOOK = 10_000 * MS  # the hook returned at t = 10 s


def probes(statuses: list[int], every_ms: int = 50, start_ns: int = HOOK) -> list[Probe]:
    """Probe i sent at ``start + i·every``, answered ``statuses[i]``."""
    return [Probe(start_ns + i * every_ms * MS, s) for i, s in enumerate(statuses)]


def test_the_first_lasting_rejection_is_the_propagation_time() -> None:
    # accepted ×4, then rejected for good: the 5th probe (sent at +200 ms) is the figure,
    # and the truth lies after the 4th's send (+150 ms): bound 50 ms.
    p = propagation(probes([200, 200, 200, 200, 401, 401, 401]), HOOK)
    assert p.seconds == pytest.approx(0.200)
    assert p.bound_s == pytest.approx(0.050)
    assert p.flaps == 0
    assert p.observed_s == pytest.approx(0.300)


def test_a_flapping_gateway_counts_until_it_stops_flapping() -> None:
    # rejected at +50, accepted again at +100, rejected at +150, accepted at +250,
    # then rejected for good from +300 ms: the figure is +300, two flaps.
    seq = [200, 401, 200, 401, 401, 200, 403, 401, 401]
    p = propagation(probes(seq), HOOK)
    assert p.seconds == pytest.approx(0.300)
    assert p.bound_s == pytest.approx(0.050)
    assert p.flaps == 2


def test_rejected_from_the_first_probe_is_bounded_by_the_hook_return() -> None:
    p = propagation(probes([401, 401, 401], start_ns=HOOK + 3 * MS), HOOK)
    assert p.seconds == pytest.approx(0.003)
    assert p.bound_s == pytest.approx(0.003)  # somewhere between the hook's return and it


def test_never_rejected_for_good_has_no_time() -> None:
    p = propagation(probes([200, 401, 401, 200]), HOOK)
    assert p.seconds is None and p.bound_s is None and p.flaps == 1
    assert propagation([], HOOK).seconds is None


def test_unanswered_probes_neither_confirm_nor_refute() -> None:
    # A timeout / refused connection (status 0) between rejections is left out; so is
    # one at the end (a draining gateway refusing connections).
    p = propagation(probes([200, 401, 0, 401, 0]), HOOK)
    assert p.seconds == pytest.approx(0.050) and p.flaps == 0


def test_the_bound_is_the_real_gap_when_probes_were_late() -> None:
    # Probes sent 50 ms apart, but the one before the rejection 130 ms before it.
    ps = [Probe(HOOK, 200), Probe(HOOK + 70 * MS, 200), Probe(HOOK + 200 * MS, 401)]
    p = propagation(ps, HOOK)
    assert p.seconds == pytest.approx(0.200) and p.bound_s == pytest.approx(0.130)


def _key(rank: int, statuses: list[int], baseline: int = 200) -> KeyProbe:
    k = KeyProbe(PlannedRevocation(rank, f"sk-lg-{rank:06d}abcdef", HOOK - 5 * MS))
    k.baseline_status, k.t_hook_call_ns, k.t_hook_ns = baseline, HOOK - 2 * MS, HOOK
    k.probes = probes(statuses)
    return k


def test_summary_p50_max_and_bound_over_keys() -> None:
    spec = RevocationSpec(url="http://gw/admin/keys/revoke")
    keys = [_key(0, [200, 401]), _key(1, [200, 200, 200, 401]), _key(2, [401, 401])]
    figs = summarize(keys, spec, measure_start_ns=0)
    assert (figs.revoked, figs.never_rejected, figs.hook_failed) == (3, 0, 0)
    assert figs.propagation_s.p50 == pytest.approx(0.050)
    assert figs.propagation_s.max == pytest.approx(0.150)
    assert figs.bound_s == pytest.approx(0.050)
    assert figs.keys[1].hook_s == pytest.approx(0.002)
    assert figs.keys[0].key == "sk-lg-000000…"  # never the whole key in a result


def test_one_key_never_rejected_leaves_the_max_unknown() -> None:
    # Four keys land fast, one never does: a max over the four would pass a "< 5" gate.
    spec = RevocationSpec(url="http://gw/admin/keys/revoke")
    keys = [_key(r, [200, 401]) for r in range(4)] + [_key(4, [200, 200, 200])]
    figs = summarize(keys, spec, measure_start_ns=0)
    assert figs.never_rejected == 1
    assert figs.propagation_s.max is None and figs.propagation_s.p50 is None
    assert figs.keys[4].observed_s == pytest.approx(0.100)


def test_a_key_refused_before_the_hook_says_nothing() -> None:
    spec = RevocationSpec(url="http://gw/admin/keys/revoke")
    figs = summarize([_key(0, [401, 401], baseline=401)], spec, measure_start_ns=0)
    assert figs.baseline_rejected == 1 and figs.never_rejected == 0
    assert figs.propagation_s.max is None


def test_a_failed_hook_is_counted_and_leaves_no_time() -> None:
    spec = RevocationSpec(url="http://gw/admin/keys/revoke")
    k = _key(0, [])
    k.hook_error = "POST http://gw/admin/keys/revoke: status 401"
    figs = summarize([k], spec, measure_start_ns=0)
    assert (figs.revoked, figs.hook_failed) == (0, 1)
    assert figs.propagation_s.max is None


def test_the_plan_takes_the_most_used_keys_spread_over_the_first_half() -> None:
    pool = KeyPool.from_spec(AuthSpec(keys=100), base_dir=Path("."))
    spec = RevocationSpec(url="http://gw/x", keys=5)
    plan = plan_revocations(pool, spec, measure_start_ns=1_000 * MS, duration_ns=40_000 * MS)
    assert [p.rank for p in plan] == [0, 1, 2, 3, 4]  # Zipf: rank 0 is the most used
    # (2i + 1) / 4n of the window: 2, 6, 10, 14, 18 s after it opens (the first half).
    assert [(p.revoke_ns - 1_000 * MS) / 1e9 for p in plan] == [2.0, 6.0, 10.0, 14.0, 18.0]
    assert all(p.retire_ns == p.revoke_ns - RETIRE_LEAD_NS for p in plan)


def test_retired_keys_leave_the_normal_pool_at_their_time() -> None:
    pool = KeyPool.from_spec(AuthSpec(keys=10, distribution="zipf", zipf_s=2.0), Path("."))
    now = [0]
    draw = RetiringDraw(pool, [(pool.keys[0], 100), (pool.keys[1], 200)], clock=lambda: now[0])
    rng = random.Random(3)

    def keys(n: int) -> set[str]:
        out = set()
        for _ in range(n):
            auth = draw(rng)
            assert auth is not None
            out.add(auth[1].removeprefix("Bearer "))
        return out

    assert {pool.keys[0], pool.keys[1]} <= keys(500)
    now[0] = 100
    seen = keys(500)
    assert pool.keys[0] not in seen and pool.keys[1] in seen
    now[0] = 10**12
    seen = keys(500)
    assert pool.keys[0] not in seen and pool.keys[1] not in seen
    assert pool.keys[2] in seen  # rank 0's and 1's draws moved on to it


def test_every_key_cannot_be_retired() -> None:
    pool = KeyPool.from_spec(AuthSpec(keys=2), Path("."))
    with pytest.raises(ValueError, match="every key"):
        RetiringDraw(pool, [(pool.keys[0], 0), (pool.keys[1], 0)])


async def test_the_load_never_sends_a_retired_key() -> None:
    import time

    from loadgate.load.generator import Engine, WorkerPlan
    from loadgate.profile import parse_profile
    from tests.unit.load.test_generator import FakeStub

    profile = parse_profile(
        {
            "load": {"concurrency": 2, "duration": "10s", "warmup": "0s", "stream_ratio": 1.0,
                     "max_tokens": 4, "max_requests": 200},
            "stub": {"output_tokens": 4},
            "auth": {"keys": 20, "zipf_s": 2.0},
        }
    )  # fmt: skip
    pool = KeyPool.from_spec(profile.auth, Path("."))
    stub = FakeStub()
    plan = WorkerPlan(
        profile, "http://gw.invalid", "http://stub.invalid", time.monotonic_ns(), 7,
        retire=((pool.keys[0], 0), (pool.keys[1], 0), ("not-in-this-pool", 0)),
    )  # fmt: skip
    out = await Engine(plan, transport=stub.transport, ledger=stub).run()
    sent = [dict(r.headers)["authorization"] for r in stub.transport.sent]
    assert out.sent == 200 and len(sent) == 200
    assert f"Bearer {pool.keys[0]}" not in sent and f"Bearer {pool.keys[1]}" not in sent
    assert f"Bearer {pool.keys[2]}" in sent
