"""Send-time arithmetic for the two load models (DESIGN §4).

Everything here is pure: integer nanoseconds in, integer nanoseconds out, no
clock reads. The runner supplies ``start_ns``; tests supply round numbers.

* Open loop: every send time is fixed in advance as an absolute timestamp
  (constant spacing, or Poisson arrivals from a seeded RNG). Latency is then
  measured from the *intended* time, so a stalled gateway cannot slow the
  offered load down and hide its own latency (coordinated omission).
* Closed loop: N workers, each sends when its previous request completes;
  ramp-up only staggers the workers' first sends.

Windows: ``[start, start+warmup)`` warm-up, ``[.., +duration)`` measured,
``[.., +cooldown)`` cool-down; a request belongs to the window of its intended
send time, and only the measured window reaches the histograms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "Windows",
    "arrival_times",
    "closed_loop_offsets",
    "worker_start_offsets",
]

NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Windows:
    """Absolute window edges in ns for one run."""

    start_ns: int
    warmup_ns: int
    duration_ns: int
    cooldown_ns: int

    @classmethod
    def from_seconds(
        cls, start_ns: int, warmup_s: float, duration_s: float, cooldown_s: float
    ) -> Windows:
        return cls(start_ns, round(warmup_s * NS), round(duration_s * NS), round(cooldown_s * NS))

    @property
    def measure_start_ns(self) -> int:
        return self.start_ns + self.warmup_ns

    @property
    def measure_end_ns(self) -> int:
        return self.measure_start_ns + self.duration_ns

    @property
    def end_ns(self) -> int:
        """No request is *sent* at or after this instant."""
        return self.measure_end_ns + self.cooldown_ns

    def phase(self, t_intended_ns: int) -> str:
        """``"warmup"``, ``"measured"`` or ``"cooldown"`` for an intended send time."""
        if t_intended_ns < self.measure_start_ns:
            return "warmup"
        if t_intended_ns < self.measure_end_ns:
            return "measured"
        return "cooldown"


def arrival_times(
    start_ns: int,
    end_ns: int,
    rate: float,
    arrival: str,
    seed: int,
    *,
    max_count: int | None = None,
) -> np.ndarray:
    """Absolute intended send times in ``[start_ns, end_ns)`` for an open loop.

    ``constant``: ``start + k/rate``. ``poisson``: exponential gaps with mean
    ``1/rate`` from ``numpy.random.default_rng(seed)``: the same seed gives the
    same schedule on every machine. Returns an int64 array, ascending.
    """
    if rate <= 0:
        raise ValueError("rate must be positive")
    span_ns = end_ns - start_ns
    if span_ns <= 0:
        return np.empty(0, dtype=np.int64)
    expected = int(span_ns / NS * rate) + 1
    if max_count is not None:
        expected = min(expected, max_count)
    if arrival == "constant":
        k = np.arange(expected, dtype=np.float64)
        offsets = np.floor(k * (NS / rate)).astype(np.int64)
    elif arrival == "poisson":
        rng = np.random.default_rng(seed)
        # Draw with headroom, then cut at the window edge: the schedule is a
        # prefix of one infinite seeded sequence, whatever the duration.
        n = expected + int(4 * np.sqrt(expected)) + 16
        gaps = rng.exponential(NS / rate, size=n)
        offsets = np.floor(np.cumsum(gaps) - gaps[0]).astype(np.int64)
    else:
        raise ValueError(f"unknown arrival {arrival!r}")
    times = start_ns + offsets
    times = times[times < end_ns]
    if max_count is not None:
        times = times[:max_count]
    return times


def worker_start_offsets(concurrency: int, ramp_up_ns: int) -> list[int]:
    """First-send offsets of closed-loop workers: evenly spread over the ramp."""
    if concurrency <= 0:
        return []
    if ramp_up_ns <= 0 or concurrency == 1:
        return [0] * concurrency
    step = ramp_up_ns / concurrency
    return [int(i * step) for i in range(concurrency)]


def closed_loop_offsets(
    total: int, processes: int, process_index: int, *, ramp_up_ns: int, service_ns: int
) -> list[int]:
    """First-send offsets of one process's closed-loop workers.

    With a ramp-up, workers join evenly over it. Without one, they still start
    spread over one nominal service time (the stub's TTFT + (n−1)·ITL): a stub
    with fixed latency keeps whatever phase the workers start with, and N
    workers started at one instant would stay a synchronised burst of N
    requests forever — queueing in the harness and the stub that no real
    traffic has, charged to the gateway as overhead. Global worker ``g`` of
    ``total`` starts at ``g/total`` of the span; process ``p`` of ``P`` owns
    ``g = k·P + p``, so processes interleave.
    """
    span = ramp_up_ns if ramp_up_ns > 0 else service_ns
    mine = range(process_index, total, processes)
    if span <= 0 or total <= 1:
        return [0] * len(mine)
    return [int(g * span / total) for g in mine]
