"""Overhead without a shared clock; the clock check; records of another clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import numpy as np
import pytest
from aiohttp import web

from loadgate.client.observation import Observation
from loadgate.join.joiner import Joiner
from loadgate.join.overhead import Call, decompose
from loadgate.join.stubs import StubLedgers, same_clock
from stub_upstream.ledger import shift_clock
from stub_upstream.ledger_format import BOOT_ID, CONTROL_PREFIX, LEDGER_DTYPE

HOUR = 3600 * 10**9


def _obs(corr: int = 7) -> Observation:
    return Observation(
        corr=corr, endpoint="chat", stream=False, t_intended=1_000, t_send=1_100,
        t_first_byte=9_000, t_last_byte=10_000,
    )  # fmt: skip


def test_overhead_is_a_difference_of_durations_whatever_the_stubs_clock() -> None:
    call: Call = (2_000, 3_000, 8_000, 2_900, 0)
    shifted: Call = (2_000 + HOUR, 3_000 + HOUR, 8_000 + HOUR, 2_900 + HOUR, 0)
    same = decompose(_obs(), [call])
    other = decompose(_obs(), [shifted], same_clock=False)
    assert same.overhead == other.overhead == 9_000 - 6_000
    assert (same.ingress, same.egress) == (1_000, 2_000)
    assert (other.ingress, other.egress) == (None, None)


def test_the_clock_check() -> None:
    info = {"boot_id": "b", "monotonic_ns": 150}
    assert same_clock(info, 100, 200, boot_id="b") is None
    assert "another kernel" in (same_clock(info, 100, 200, boot_id="a") or "")
    assert "+3600000" in (same_clock({**info, "monotonic_ns": 150 + HOUR}, 100, 200, "b") or "")
    assert "does not report" in (same_clock({"boot_id": "b"}, 100, 200, "b") or "")


def test_records_from_another_clock_mark_their_request() -> None:
    seen: list[tuple[int, bool]] = []
    joiner = Joiner(0, lambda o, m, c: seen.append((o.corr, joiner.is_cross_clock(o.corr))))
    recs = np.zeros(2, dtype=LEDGER_DTYPE)
    recs["corr"] = [1, 2]
    recs["t_recv"] = 5
    joiner.add_records(recs[:1])
    joiner.add_records(recs[1:], same_clock=False)
    joiner.add_observation(_obs(1), True)
    joiner.add_observation(_obs(2), True)
    joiner.finish()
    assert sorted(seen) == [(1, False), (2, True)]
    assert not joiner.is_cross_clock(2)  # forgotten once joined


def test_the_test_only_offset_shifts_only_times_that_are_set() -> None:
    recs = np.zeros(1, dtype=LEDGER_DTYPE)
    recs["t_recv"], recs["t_last_write"] = 10, 20
    out = np.frombuffer(shift_clock(recs.tobytes(), HOUR), dtype=LEDGER_DTYPE)
    assert int(out["t_recv"][0]) == 10 + HOUR and int(out["t_last_write"][0]) == 20 + HOUR
    assert int(out["t_first_write"][0]) == 0 and int(out["corr"][0]) == 0


@asynccontextmanager
async def _fake_stub(corrs: list[int], up: asyncio.Event) -> AsyncIterator[str]:
    """A stub's two control endpoints on port 0; 503 until ``up`` is set (not started yet)."""
    recs = np.zeros(len(corrs), dtype=LEDGER_DTYPE)
    recs["corr"], recs["t_recv"] = corrs, 5

    async def info(_: web.Request) -> web.Response:
        if not up.is_set():
            raise web.HTTPServiceUnavailable()
        return web.json_response({"boot_id": BOOT_ID, "monotonic_ns": time.monotonic_ns()})

    async def ledger(_: web.Request) -> web.Response:
        if not up.is_set():
            raise web.HTTPServiceUnavailable()
        return web.Response(body=recs.tobytes(), headers={"x-loadgate-cursor": "end"})

    app = web.Application()
    app.router.add_get(f"{CONTROL_PREFIX}/info", info)
    app.router.add_get(f"{CONTROL_PREFIX}/ledger", ledger)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.mark.timeout(20)
async def test_a_peer_not_up_at_the_clock_check_is_checked_again_and_counted_per_stub() -> None:
    ours, theirs = (9 << 32) | 1, (8 << 32) | 1
    own_up, peer_up = asyncio.Event(), asyncio.Event()
    own_up.set()
    async with (
        _fake_stub([ours, theirs], own_up) as own,
        _fake_stub([ours, ours, theirs], peer_up) as peer,
        aiohttp.ClientSession() as session,
    ):
        ledgers = StubLedgers(own, (own + "/", peer), session)  # the own URL again: once
        first = await ledgers.check_clocks()
        assert [c.same_clock for c in first] == [True, False]
        assert (first[1].reason or "").startswith("unreachable: ")
        assert [u for u, _, _ in await ledgers.pull_each()] == [own]  # the peer failed
        assert len(ledgers.errors) == 1
        peer_up.set()  # the peer's process is up now
        joiner = Joiner(9, lambda o, m, c: None)
        got = {u: joiner.add_records(r, same_clock=s) for u, r, s in await ledgers.pull_each()}
    assert got == {own: 1, peer: 2}  # this run's records (nonce 9) per stub
    assert [c.same_clock for c in ledgers.clocks] == [True, True]  # no longer "another clock"
    assert joiner.stats.foreign == 2
