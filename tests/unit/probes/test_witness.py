"""The witness's arithmetic, sampling and limits, on a fake clock (no database)."""

from __future__ import annotations

import asyncio

import pytest

from loadgate.client.observation import Observation
from loadgate.histograms.hdr import summarize_lag
from loadgate.histograms.recorder import Recorder
from loadgate.load.outcome import EngineOutcome, merge_outcomes
from loadgate.probes.witness import Lookup, Witness, WitnessCounts, is_sampled, sighting
from loadgate.profile import WitnessSpec
from stub_upstream.content import format_corr_id

pytestmark = pytest.mark.timeout(10)

MS = 1_000_000
T0 = 1_000 * MS  # the sampled request's completion (its last byte)


class FakeTime:
    """A clock only sleeps move (one sleeper at a time: the tests keep it so)."""

    def __init__(self) -> None:
        self.now = 0

    def clock(self) -> int:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += round(seconds * 1e9)
        await asyncio.sleep(0)


class FakeStore:
    """Records appear at given instants; a look is evaluated half-way through its rtt."""

    def __init__(self, t: FakeTime, appears: dict[str, int], rtt_ns: int = 2 * MS) -> None:
        self.t = t
        self.appears = appears
        self.rtt_ns = rtt_ns
        self.fail_next = 0
        self.looks: list[int] = []
        self.closed = False

    async def __call__(self, corr_id: str) -> bool:
        self.looks.append(self.t.now)
        self.t.now += self.rtt_ns // 2
        seen = self.t.now >= self.appears.get(corr_id, 1 << 62)
        self.t.now += self.rtt_ns - self.rtt_ns // 2
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("store busy")
        return seen

    async def close(self) -> None:
        self.closed = True


def spec(**kw: object) -> WitnessSpec:
    base: dict[str, object] = {"kind": "sql", "dsn": "postgresql://x/y", "sample": 1.0}
    base.update({"interval": "20ms", "timeout": "5s", "max_rate": 1000.0})
    return WitnessSpec.model_validate({**base, **kw})


def witness(s: WitnessSpec, store: Lookup, t: FakeTime) -> Witness:
    async def factory() -> Lookup:
        return store

    return Witness(s, factory, clock=t.clock, sleep=t.sleep)


def obs(corr: int, **kw: object) -> Observation:
    return Observation(corr=corr, endpoint="chat", stream=False, t_intended=0, **kw)  # type: ignore[arg-type]


def test_sighting_is_the_interval_between_last_miss_sent_and_hit_answered() -> None:
    assert sighting(T0, T0 + 40 * MS, T0 + 62 * MS) == (40 * MS, 62 * MS)
    # Found by the first look: it may predate the last byte, so the floor is 0.
    assert sighting(T0, None, T0 + 2 * MS) == (0, 2 * MS)
    # A record written before the response ended (a hit read "before" completion).
    assert sighting(T0, None, T0 - 5 * MS) == (0, 0)


def test_sampling_is_a_hash_of_the_id_at_the_share() -> None:
    ids = [(12345 << 32) | seq for seq in range(1, 20_001)]
    picked = [c for c in ids if is_sampled(c, 0.05)]
    assert 900 <= len(picked) <= 1100  # a hash, not a counter: about 5 %
    assert picked == [c for c in ids if is_sampled(c, 0.05)]  # the same every time
    assert all(is_sampled(c, 1.0) for c in ids)
    # A smaller share picks a subset: widening the sample keeps the earlier ones.
    assert {c for c in ids if is_sampled(c, 0.01)} <= set(picked)


async def test_latency_is_the_midpoint_and_the_error_its_half_width() -> None:
    t = FakeTime()
    corr = 0xABC
    store = FakeStore(t, {format_corr_id(corr): T0 + 50 * MS})
    w = witness(spec(), store, t)
    await w.start()
    t.now = T0
    await w.watch(corr, T0)
    c = await w.finish()
    # Looks sent at +0, +20, +40 (misses: evaluated at +1, +21, +41) and +60 (hit,
    # answered at +62): the record appeared in (40, 62] ms → 51 ± 11 ms.
    assert store.looks == [T0, T0 + 20 * MS, T0 + 40 * MS, T0 + 60 * MS]
    assert (c.found, c.missing, c.polls, c.first_look) == (1, 0, 4, 0)
    lat, err, up = (summarize_lag(h) for h in (c.latency_us, c.error_us, c.upper_us))
    assert lat is not None and err is not None and up is not None
    assert lat["p50"] == pytest.approx(51.0, rel=1e-3)
    assert err["max"] == pytest.approx(11.0, rel=1e-3)
    assert up["max"] == pytest.approx(62.0, rel=1e-3)
    rtt = summarize_lag(c.rtt_us)
    assert rtt is not None and rtt["max"] == pytest.approx(2.0, rel=1e-3)
    assert store.closed


async def test_a_record_never_written_is_missing_after_the_timeout() -> None:
    t = FakeTime()
    store = FakeStore(t, {})
    w = witness(spec(timeout="100ms"), store, t)
    await w.start()
    t.now = T0
    await w.watch(7, T0)
    c = await w.finish()
    # Every 20 ms from completion; the look due at the deadline is the last.
    assert store.looks == [T0 + k * 20 * MS for k in range(6)]
    assert (c.found, c.missing, c.polls) == (0, 1, 6)
    assert c.latency_us == b""


async def test_a_failed_look_is_neither_a_miss_nor_a_hit() -> None:
    t = FakeTime()
    corr = 9
    store = FakeStore(t, {format_corr_id(corr): T0})
    store.fail_next = 2
    w = witness(spec(), store, t)
    await w.start()
    t.now = T0
    await w.watch(corr, T0)
    c = await w.finish()
    # Two failures proved nothing: the lower bound stays 0, the upper is the third look.
    assert (c.polls, c.poll_errors, c.found, c.first_look) == (3, 2, 1, 1)
    up = summarize_lag(c.upper_us)
    assert up is not None and up["max"] == pytest.approx(42.0, rel=1e-3)
    assert c.errors == ["ConnectionError: store busy", "ConnectionError: store busy"]


async def test_query_starts_are_spaced_by_the_rate_limit() -> None:
    t = FakeTime()
    appears = {format_corr_id(c): 0 for c in (1, 2, 3)}
    store = FakeStore(t, appears, rtt_ns=0)
    w = witness(spec(max_rate=10.0, max_concurrency=1), store, t)
    await w.start()
    t.now = T0
    await asyncio.gather(*(w.watch(c, T0) for c in (1, 2, 3)))
    c = await w.finish()
    # 10 queries/s: 100 ms apart, whatever the cadence asked for.
    assert store.looks == [T0, T0 + 100 * MS, T0 + 200 * MS]
    assert c.max_in_flight == 1
    up = summarize_lag(c.upper_us)
    assert up is not None and up["max"] == pytest.approx(200.0, rel=1e-3)


async def test_offer_watches_only_sampled_answered_gateway_requests() -> None:
    t = FakeTime()
    t.now = T0
    store = FakeStore(t, {format_corr_id(c): 0 for c in range(1, 6)})
    w = witness(spec(max_watched=1), store, t)
    await w.start()
    w.offer(obs(1, t_last_byte=T0, control=True))  # the control group: not the gateway's
    w.offer(obs(2, t_last_byte=T0, error="http_5xx"))  # failed: no record is owed
    w.offer(obs(3))  # no last byte
    w.offer(obs(4, t_last_byte=T0))
    w.offer(obs(5, t_last_byte=T0))  # one already under watch: skipped, counted
    c = await w.finish()
    assert (c.sampled, c.skipped, c.found, c.missing) == (1, 1, 1, 0)


async def test_a_store_that_cannot_be_reached_makes_every_sample_missing() -> None:
    async def refuse() -> Lookup:
        raise OSError("connection refused")

    t = FakeTime()
    w = Witness(spec(), refuse, clock=t.clock, sleep=t.sleep)
    await w.start()
    w.offer(obs(4, t_last_byte=T0))
    w.offer(obs(5, t_last_byte=T0))
    c = await w.finish()
    assert (c.sampled, c.found, c.missing, c.polls) == (2, 0, 2, 0)
    assert c.errors and "connection refused" in c.errors[0]


def test_counts_of_load_processes_add_up() -> None:
    a = WitnessCounts(sampled=3, found=2, missing=1, polls=10, span_ns=5, errors=["x"])
    b = WitnessCounts(sampled=4, found=4, polls=7, span_ns=9)
    outs = [EngineOutcome(Recorder(0), witness=a), EngineOutcome(Recorder(0), witness=b)]
    merged = merge_outcomes(outs).witness
    assert merged is not None
    assert (merged.sampled, merged.found, merged.missing, merged.polls) == (7, 6, 1, 17)
    assert merged.span_ns == 9  # overlapping spans: the longest
    assert merged.errors == ["x"]
