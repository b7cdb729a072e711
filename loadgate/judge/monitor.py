"""The harness watching itself (DESIGN §5): is loadgate the bottleneck?

* event-loop lag: a ticker asks to run every ``tick_ms``; how late it actually
  runs is the delay every response callback suffers too. Recorded in an HDR
  histogram (µs).
* process CPU: user+system time over wall time, in % of one core. A load
  process near 100 % queues its own reads, and that queueing lands in
  "overhead".
* send lag (open loop): actual send minus intended send.
* stub timer lateness: the stub's own first write minus its deadline, from the
  ledger.

:func:`judge` turns the figures into ``invalid`` reasons against the profile's
limits. The verdict logic lives here, not in the runner, so it is testable
with plain numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hdrh.histogram import HdrHistogram

__all__ = ["CpuMeter", "LagTicker", "Limits", "judge", "new_histogram", "summarize_ms"]


def new_histogram() -> HdrHistogram:
    """µs, 1 µs .. 1 h, 3 significant digits (DESIGN §6)."""
    return HdrHistogram(1, 3_600_000_000, 3)


def summarize_ms(h: HdrHistogram) -> dict[str, float] | None:
    """p50/p99/max in ms, or ``None`` when nothing was recorded."""
    if h.get_total_count() == 0:
        return None
    return {
        "count": float(h.get_total_count()),
        "p50": h.get_value_at_percentile(50) / 1000.0,
        "p99": h.get_value_at_percentile(99) / 1000.0,
        "max": h.get_max_value() / 1000.0,
    }


def record_ns(h: HdrHistogram, values_ns: Iterable[int]) -> None:
    for v in values_ns:
        h.record_value(max(0, v // 1000))


class LagTicker:
    """Measures event-loop lag with a self-rescheduling absolute-deadline ticker."""

    def __init__(self, tick_ms: float = 10.0) -> None:
        self.histogram = new_histogram()
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
            self.histogram.record_value(max(0, (now - deadline) // 1000))
            deadline += self._tick_ns
            if deadline < now:  # fell behind by more than a tick: skip, don't burst
                deadline = now + self._tick_ns

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class CpuMeter:
    """CPU of this process (and, optionally, of others by PID) as % of one core."""

    def __init__(self) -> None:
        self._t0 = time.monotonic()
        self._c0 = self._cpu()

    @staticmethod
    def _cpu() -> float:
        t = os.times()
        return t.user + t.system

    def percent(self) -> float:
        wall = time.monotonic() - self._t0
        return 100.0 * (self._cpu() - self._c0) / wall if wall > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Limits:
    max_loop_lag_p99_ms: float = 5.0
    max_cpu_percent: float = 95.0
    min_achieved_rate_ratio: float = 0.95
    max_stub_lateness_p99_ms: float = 5.0
    max_send_lag_p99_ms: float = 5.0


def judge(harness: dict[str, Any], limits: Limits) -> list[str]:
    """``invalid`` reasons: each names the figure, its limit and what it means."""
    reasons: list[str] = []
    lag = harness.get("loop_lag_ms")
    if lag and lag["p99"] > limits.max_loop_lag_p99_ms:
        reasons.append(
            f"harness event-loop lag p99 {lag['p99']:.2f} ms > {limits.max_loop_lag_p99_ms} ms: "
            "loadgate read responses late, which inflates overhead: the machine is short of "
            "CPU for harness + stub + gateway (other load? load.workers helps only with a "
            "spare core)"
        )
    cpu = harness.get("cpu_percent")
    if cpu is not None and cpu > limits.max_cpu_percent:
        reasons.append(
            f"harness CPU {cpu:.0f} % of a core > {limits.max_cpu_percent:.0f} %: "
            "loadgate was saturated (load.workers = N spreads it over N processes, given "
            "spare cores)"
        )
    ratio = harness.get("achieved_rate_ratio")
    if ratio is not None and ratio < limits.min_achieved_rate_ratio:
        reasons.append(
            f"achieved/offered rate {ratio:.3f} < {limits.min_achieved_rate_ratio}: "
            "the schedule was not kept"
        )
    stub = harness.get("stub_timer_lateness_ms")
    if stub and stub["p99"] > limits.max_stub_lateness_p99_ms:
        reasons.append(
            f"stub timer lateness p99 {stub['p99']:.2f} ms > {limits.max_stub_lateness_p99_ms} ms:"
            " the stub upstream was short of CPU (other load? stub.workers = 2 given a spare core)"
        )
    send = harness.get("send_lag_ms")
    if send and send["p99"] > limits.max_send_lag_p99_ms:
        reasons.append(
            f"open-loop send lag p99 {send['p99']:.2f} ms > {limits.max_send_lag_p99_ms} ms: "
            "requests left later than scheduled"
        )
    return reasons
