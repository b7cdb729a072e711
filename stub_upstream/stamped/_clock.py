"""Kernel receive stamps are CLOCK_REALTIME; every figure is CLOCK_MONOTONIC.

:class:`ClockBridge` converts one into the other with an offset
``REALTIME - MONOTONIC`` sampled in a tight bracket (monotonic, realtime,
monotonic; the narrowest of a few tries wins, and the realtime reading is taken
to sit at the bracket's midpoint, so the error is at most half its width). Both
clocks are slewed alike by NTP, so the offset only moves when the realtime
clock is *stepped* (``settimeofday``, an NTP step, a leap second). Two guards
keep a step from corrupting a run:

* the offset is re-sampled whenever a conversion finds it older than
  ``resample_ns`` (1 s): a backward step is wrong for at most that long;
* a converted stamp later than the read that returned it is impossible (the
  bytes were there before we read them), so it means a forward step: the
  offset is re-sampled at once, and a stamp still in the future is clamped to
  the read time and counted in ``clamped``.

The drift figures (:class:`ClockStats`) are plain data for a result file.
Clocks are injectable so tests can check the arithmetic, steps included.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ClockBridge", "ClockStats", "clock_bridge"]

_RESAMPLE_NS = 1_000_000_000
_TRIES = 5


@dataclass(frozen=True, slots=True)
class ClockStats:
    """What the bridge saw of ``REALTIME - MONOTONIC`` over its life (all ns)."""

    samples: int  #: offset samples taken
    offset_ns: int  #: the offset in use
    offset_min_ns: int
    offset_max_ns: int
    largest_step_ns: int  #: largest |change| between two consecutive samples
    bracket_ns: int  #: width of the narrowest bracket of the latest sample
    clamped: int  #: stamps that were still in the future after a re-sample


class ClockBridge:
    """REALTIME -> MONOTONIC conversion with periodic re-sampling (see module doc)."""

    __slots__ = (
        "_max", "_min", "_mono", "_real", "_resample_ns", "_samples",
        "_step", "_tries", "bracket_ns", "clamped", "next_sample_ns", "offset_ns",
    )  # fmt: skip

    def __init__(
        self,
        *,
        mono: Callable[[], int] = time.monotonic_ns,
        real: Callable[[], int] = time.time_ns,
        tries: int = _TRIES,
        resample_ns: int = _RESAMPLE_NS,
    ) -> None:
        self._mono = mono
        self._real = real
        self._tries = max(tries, 1)
        self._resample_ns = resample_ns
        self._samples = 0
        self._step = 0
        self.clamped = 0
        self.bracket_ns = 0
        self.offset_ns = 0
        #: when :meth:`to_monotonic` samples again (read by the transports' inlined
        #: fast path, which calls it only then or when a stamp is ahead of now)
        self.next_sample_ns = 0
        self.sample()
        self._min = self._max = self.offset_ns

    def sample(self) -> int:
        """Take a new offset now (narrowest of ``tries`` brackets); returns it."""
        mono, real = self._mono, self._real
        best_width = -1
        best = 0
        for _ in range(self._tries):
            a = mono()
            r = real()
            b = mono()
            width = b - a
            if best_width < 0 or width < best_width:
                best_width = width
                best = r - (a + width // 2)
        if self._samples:
            step = abs(best - self.offset_ns)
            if step > self._step:
                self._step = step
            if best < self._min:
                self._min = best
            if best > self._max:
                self._max = best
        self._samples += 1
        self.offset_ns = best
        self.bracket_ns = best_width
        self.next_sample_ns = mono() + self._resample_ns
        return best

    def to_monotonic(self, real_ns: int, now_mono: int) -> int:
        """The monotonic time of realtime stamp ``real_ns``, read at ``now_mono``."""
        if now_mono >= self.next_sample_ns:
            self.sample()
        t = real_ns - self.offset_ns
        if t > now_mono:
            # Later than our own read of it: the realtime clock stepped forward
            # since the last sample (within the bracket's error it is fine).
            if t - now_mono <= self.bracket_ns:
                return now_mono
            t = real_ns - self.sample()
            if t > now_mono:
                self.clamped += 1
                return now_mono
        return t

    def stats(self) -> ClockStats:
        return ClockStats(
            samples=self._samples,
            offset_ns=self.offset_ns,
            offset_min_ns=self._min,
            offset_max_ns=self._max,
            largest_step_ns=self._step,
            bracket_ns=self.bracket_ns,
            clamped=self.clamped,
        )


_bridge: ClockBridge | None = None


def clock_bridge() -> ClockBridge:
    """The process-wide bridge every stamped transport of this process uses."""
    global _bridge
    if _bridge is None:
        _bridge = ClockBridge()
    return _bridge
