"""The harness watching itself while it runs (DESIGN §5).

* event-loop lag: a ticker asks to run every ``tick_ms``; how late it actually
  runs is the delay every response callback suffers too. Recorded in an HDR
  histogram (µs).
* send lag (open loop) and stub timer lateness are recorded by the load
  generator into histograms made by :func:`record_ns`'s callers.

What the figures mean for the verdict is :mod:`loadgate.judge.validity`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable

from hdrh.histogram import HdrHistogram

from loadgate.histograms.hdr import new_histogram

__all__ = ["LagTicker", "record_ns"]


def record_ns(h: HdrHistogram, values_ns: Iterable[int]) -> None:
    for v in values_ns:
        h.record_value(max(0, v // 1000))


class LagTicker:
    """Measures event-loop lag with a self-rescheduling absolute-deadline ticker."""

    def __init__(self, tick_ms: float = 10.0) -> None:
        self.histogram = new_histogram()
        self.last_us: int | None = None  # the latest tick's lag (live displays)
        self._tick_ns = int(tick_ms * 1e6)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        # loop.time() may be coarse (uvloop: ms); measure with monotonic_ns.
        deadline = time.monotonic_ns() + self._tick_ns
        while True:
            await asyncio.sleep(max(0.0, (deadline - time.monotonic_ns()) / 1e9))
            now = time.monotonic_ns()
            self.last_us = max(0, (now - deadline) // 1000)
            self.histogram.record_value(self.last_us)
            deadline += self._tick_ns
            if deadline < now:  # fell behind by more than a tick: skip, don't burst
                deadline = now + self._tick_ns

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
