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

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "CHUNK",
    "Windows",
    "arrival_times",
    "closed_loop_offsets",
    "iter_arrivals",
    "stream_shift_ns",
    "worker_start_offsets",
]

NS = 1_000_000_000
#: Send times made at once (512 KiB): memory is bounded whatever rate × duration is.
CHUNK = 65_536


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


def iter_arrivals(
    start_ns: int,
    end_ns: int,
    rate: float,
    arrival: str,
    seed: int,
    *,
    max_count: int | None = None,
    chunk: int = CHUNK,
) -> Iterator[npt.NDArray[np.int64]]:
    """Absolute intended send times in ``[start_ns, end_ns)`` for an open loop, in chunks.

    ``constant``: ``start + k/rate``. ``poisson``: exponential gaps with mean
    ``1/rate`` from ``numpy.random.default_rng(seed)``: the same seed gives the
    same schedule on every machine, and a shorter window's schedule is a prefix
    of a longer one's. Chunks of at most ``chunk`` times (int64, ascending) are
    made as they are needed, so memory does not grow with ``rate × duration``.
    """
    if rate <= 0:
        raise ValueError("rate must be positive")
    if arrival not in ("constant", "poisson"):
        raise ValueError(f"unknown arrival {arrival!r}")
    left = max_count if max_count is not None else -1
    if end_ns <= start_ns or left == 0:
        return
    gap_ns = NS / rate
    rng = np.random.default_rng(seed)
    k = 0  # constant: index of the next send
    acc = 0.0  # poisson: offset of the next send, ns (the first send is at start)
    while left != 0:
        n = chunk if left < 0 else min(chunk, left)
        if arrival == "constant":
            offsets = np.floor(np.arange(k, k + n, dtype=np.float64) * gap_ns)
            k += n
        else:
            # cumsum from the running offset, value by value, as one long cumsum would.
            gaps = rng.exponential(gap_ns, size=n)
            sums = np.cumsum(np.concatenate(([acc], gaps)))
            offsets, acc = np.floor(sums[:-1]), float(sums[-1])
        times = start_ns + offsets.astype(np.int64)
        inside = times[times < end_ns]
        if inside.size:
            yield inside
        if inside.size < times.size:
            return
        if left > 0:
            left -= n


def arrival_times(
    start_ns: int,
    end_ns: int,
    rate: float,
    arrival: str,
    seed: int,
    *,
    max_count: int | None = None,
) -> npt.NDArray[np.int64]:
    """:func:`iter_arrivals` as one array (tests and short schedules)."""
    chunks = list(iter_arrivals(start_ns, end_ns, rate, arrival, seed, max_count=max_count))
    return np.concatenate(chunks) if chunks else np.empty(0, dtype=np.int64)


def stream_shift_ns(worker_index: int, phase: float, rate_total: float) -> int:
    """Where one open-loop process's schedule starts, after the run's start.

    ``rate_total`` is spread over the processes (each at ``rate_total / workers``);
    worker ``w`` starts ``w / rate_total`` in and shard ``i`` of ``N`` (``phase = i/N``)
    a further ``(i/N) / rate_total``: constant schedules of every worker of every shard
    interleave into the one constant schedule at ``N · rate_total``.
    """
    return round((worker_index + phase) * NS / rate_total)


def worker_start_offsets(concurrency: int, ramp_up_ns: int) -> list[int]:
    """First-send offsets of closed-loop workers: evenly spread over the ramp."""
    if concurrency <= 0:
        return []
    if ramp_up_ns <= 0 or concurrency == 1:
        return [0] * concurrency
    step = ramp_up_ns / concurrency
    return [int(i * step) for i in range(concurrency)]


def closed_loop_offsets(
    total: int,
    processes: int,
    process_index: int,
    *,
    ramp_up_ns: int,
    service_ns: int,
    phase: float = 0.0,
) -> list[int]:
    """First-send offsets of one process's closed-loop workers.

    With a ramp-up, workers join evenly over it. Without one, they still start
    spread over one nominal service time (the stub's TTFT + (n−1)·ITL): a stub
    with fixed latency keeps whatever phase the workers start with, and N
    workers started at one instant would stay a synchronised burst of N
    requests forever — queueing in the harness and the stub that no real
    traffic has, charged to the gateway as overhead. Global worker ``g`` of
    ``total`` starts at ``g/total`` of the span; process ``p`` of ``P`` owns
    ``g = k·P + p``, so processes interleave. ``phase`` (shard i of N: i/N) moves
    every start by that share of one worker's spacing, so shards interleave too.
    """
    span = ramp_up_ns if ramp_up_ns > 0 else service_ns
    mine = range(process_index, total, processes)
    if span <= 0 or (total <= 1 and not phase):
        return [0] * len(mine)
    return [int((g + phase) * span / total) for g in mine]
