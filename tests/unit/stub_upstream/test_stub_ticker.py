"""The shared ticker: absolute deadlines, batching of due items, no early fires."""

from __future__ import annotations

import asyncio
import time

import pytest

from stub_upstream.ticker import Ticker


class Rec:
    """Fires at each of its deadlines and records (deadline, fired-at)."""

    def __init__(self, deadlines: list[int], log: list[tuple[str, int, int]], name: str) -> None:
        self.deadlines, self.log, self.name, self.i = deadlines, log, name, 0

    def fire(self, now_ns: int) -> int | None:
        self.log.append((self.name, self.deadlines[self.i], now_ns))
        self.i += 1
        return self.deadlines[self.i] if self.i < len(self.deadlines) else None


@pytest.mark.parametrize("use_timerfd", [True, False])
async def test_items_fire_in_deadline_order_never_early(use_timerfd: bool) -> None:
    loop = asyncio.get_running_loop()
    ticker = Ticker(loop, use_timerfd=use_timerfd)
    log: list[tuple[str, int, int]] = []
    t0 = time.monotonic_ns() + 2_000_000
    a = Rec([t0, t0 + 6_000_000, t0 + 12_000_000], log, "a")
    b = Rec([t0 + 3_000_000, t0 + 9_000_000], log, "b")
    ticker.add(a.deadlines[0], a)
    ticker.add(b.deadlines[0], b)
    await ticker.sleep_until(t0 + 12_000_000)
    await asyncio.sleep(0)
    ticker.close()
    assert [name for name, _, _ in log] == ["a", "b", "a", "b", "a"]
    assert all(fired >= deadline for _, deadline, fired in log)
    assert ticker.pending == 0


async def test_past_deadlines_fire_at_once_together() -> None:
    ticker = Ticker(asyncio.get_running_loop())
    log: list[tuple[str, int, int]] = []
    past = time.monotonic_ns() - 1_000
    for name in "xyz":
        ticker.add(past, Rec([past], log, name))
    await ticker.sleep_until(time.monotonic_ns() + 1_000_000)
    ticker.close()
    assert [n for n, _, _ in log] == ["x", "y", "z"]  # FIFO among equal deadlines


async def test_sleep_until_the_past_returns_without_waiting() -> None:
    ticker = Ticker(asyncio.get_running_loop())
    await ticker.sleep_until(0)
    assert ticker.pending == 0
    ticker.close()
