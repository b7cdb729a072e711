"""REALTIME -> MONOTONIC conversion of kernel stamps, on injected clocks: the
narrowest bracket wins, re-sampling follows steps, impossible stamps are clamped.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict

from stub_upstream.stamped import ClockBridge, clock_bridge


class Clocks:
    """Monotonic reads take no time; a realtime read at ``offset`` takes ``2 w``
    (``w`` cycling through ``widths``) and reports the instant half-way through,
    or, ``preempted``, its very start (the process lost the CPU right after it).
    """

    def __init__(
        self, offset: int, widths: list[int] | None = None, preempted: bool = False
    ) -> None:
        self.mono_now = 1_000_000
        self.offset = offset
        self.preempted = preempted
        self._widths = itertools.cycle(widths or [10])

    def mono(self) -> int:
        return self.mono_now

    def real(self) -> int:
        w = next(self._widths)
        t = self.mono_now + (0 if self.preempted else w) + self.offset
        self.mono_now += 2 * w
        return t


def test_offset_is_the_narrowest_brackets_midpoint() -> None:
    c = Clocks(offset=5_000_000_000, widths=[400, 40, 4000, 900, 1200], preempted=True)
    b = ClockBridge(mono=c.mono, real=c.real, tries=5)
    # Taking the midpoint of a bracket 2w wide errs by w here: the narrowest
    # (80 ns, w = 40) errs least, and is the one kept.
    assert b.bracket_ns == 80
    assert b.offset_ns == 5_000_000_000 - 40
    assert b.to_monotonic(5_000_000_000 + 777, now_mono=10_000_000) == 777 + 40


def test_stamps_convert_by_plain_subtraction() -> None:
    c = Clocks(offset=123_456_789)
    b = ClockBridge(mono=c.mono, real=c.real)
    now = c.mono_now + 1000
    assert b.to_monotonic(now - 300 + 123_456_789, now) == now - 300
    assert b.stats().clamped == 0


def test_forward_step_is_noticed_at_once() -> None:
    c = Clocks(offset=1_000_000)
    b = ClockBridge(mono=c.mono, real=c.real, resample_ns=10**12)  # no periodic re-sample
    c.offset += 50_000_000  # settimeofday: realtime jumps 50 ms ahead
    now = c.mono_now + 5_000
    stamp = now - 2_000 + c.offset  # arrived 2 us before the read, in the new realtime
    # With the old offset it would lie 50 ms in the future; the bridge re-samples.
    assert b.to_monotonic(stamp, now) == now - 2_000
    s = b.stats()
    assert s.samples == 2 and s.largest_step_ns == 50_000_000 and s.clamped == 0
    assert (s.offset_min_ns, s.offset_max_ns) == (1_000_000, 51_000_000)


def test_backward_step_is_corrected_by_the_periodic_resample() -> None:
    c = Clocks(offset=9_000_000_000)
    b = ClockBridge(mono=c.mono, real=c.real, resample_ns=1_000_000)
    c.offset -= 30_000_000  # realtime steps 30 ms back
    now = c.mono_now + 10
    stamp = now - 100 + c.offset
    # Before the re-sample is due the old offset still applies: 30 ms too early.
    assert b.to_monotonic(stamp, now) == now - 100 - 30_000_000
    later = c.mono_now + 2_000_000  # past the 1 ms re-sample interval
    assert b.to_monotonic(later - 100 + c.offset, later) == later - 100
    assert b.stats().largest_step_ns == 30_000_000


def test_a_stamp_still_in_the_future_is_clamped_and_counted() -> None:
    c = Clocks(offset=0)
    b = ClockBridge(mono=c.mono, real=c.real, resample_ns=10**12)
    now = c.mono_now + 100
    assert b.to_monotonic(now + 7_000_000, now) == now  # no step explains it
    assert b.stats().clamped == 1
    # Within the bracket's own error a "future" stamp is just rounding: not counted.
    assert b.to_monotonic(now + b.bracket_ns, now) == now
    assert b.stats().clamped == 1


def test_stats_are_plain_data() -> None:
    c = Clocks(offset=42)
    stats = asdict(ClockBridge(mono=c.mono, real=c.real).stats())
    assert stats == {
        "samples": 1, "offset_ns": 42, "offset_min_ns": 42, "offset_max_ns": 42,
        "largest_step_ns": 0, "bracket_ns": 20, "clamped": 0,
    }  # fmt: skip


def test_the_real_clocks_agree_with_time_module() -> None:
    import time

    b = clock_bridge()
    assert b is clock_bridge()  # one per process
    mono = time.monotonic_ns()
    back = b.to_monotonic(time.time_ns(), time.monotonic_ns())
    # Lopsided: the conversion error is the bracket (~100 ns), not 50 ms.
    assert abs(back - mono) < 50_000_000
