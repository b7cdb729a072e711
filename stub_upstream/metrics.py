"""Prometheus metrics of the stub, correct across ``--workers N``.

Each worker counts into its own slots of an anonymous shared mapping (created
before the fork, like the ledger rings); ``GET /metrics`` on any worker sums every
worker's slots through a custom prometheus-client collector. So a scrape sees
the whole server, whichever worker answers it, and the hot path pays one
memoryview store per counter instead of prometheus-client's locks.

Exposed families:
  stub_requests_total{endpoint, status}        counter
  stub_in_flight                                gauge
  stub_timer_lateness_seconds                   histogram of first write - schedule
"""

from __future__ import annotations

import bisect
import mmap
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from stub_upstream.ledger_format import ENDPOINT_NAMES

__all__ = ["LATENESS_BOUNDS_NS", "STATUSES", "WorkerMetrics", "render"]

#: Statuses with their own series; anything else is counted as "other".
STATUSES: tuple[int, ...] = (200, 400, 401, 404, 405, 413, 429, 500, 503, 529)
_STATUS_INDEX = {s: i for i, s in enumerate(STATUSES)}
_N_STATUS = len(STATUSES) + 1
_N_ENDPOINT = len(ENDPOINT_NAMES)

#: Upper bounds of the lateness histogram buckets (ns); +Inf is implicit.
LATENESS_BOUNDS_NS: tuple[int, ...] = (
    50_000, 100_000, 250_000, 500_000, 1_000_000, 2_000_000, 5_000_000, 10_000_000, 50_000_000,
)  # fmt: skip
_N_BUCKET = len(LATENESS_BOUNDS_NS) + 1

_OFF_REQ = 0
_OFF_INFLIGHT = _N_ENDPOINT * _N_STATUS
_OFF_BUCKET = _OFF_INFLIGHT + 1
_OFF_SUM = _OFF_BUCKET + _N_BUCKET
_N_SLOTS = _OFF_SUM + 1


class WorkerMetrics:
    """One worker's counters (written by that worker only)."""

    __slots__ = ("_map", "slots")

    def __init__(self) -> None:
        self._map = mmap.mmap(-1, _N_SLOTS * 8)
        self.slots = memoryview(self._map).cast("q")

    def request(self, endpoint: int, status: int) -> None:
        i = _OFF_REQ + endpoint * _N_STATUS + _STATUS_INDEX.get(status, _N_STATUS - 1)
        self.slots[i] += 1

    def in_flight(self, delta: int) -> None:
        self.slots[_OFF_INFLIGHT] += delta

    def lateness(self, ns: int) -> None:
        # bisect_left: the first bucket whose upper bound is >= ns (le semantics)
        self.slots[_OFF_BUCKET + bisect.bisect_left(LATENESS_BOUNDS_NS, ns)] += 1
        self.slots[_OFF_SUM] += ns


class _Collector(Collector):
    def __init__(self, workers: list[WorkerMetrics]) -> None:
        self._workers = workers

    def collect(self) -> Iterator[Metric]:
        tot = [0] * _N_SLOTS
        for w in self._workers:
            for i, v in enumerate(w.slots.tolist()):
                tot[i] += v
        req = CounterMetricFamily(
            "stub_requests", "Requests answered, by endpoint and status",
            labels=["endpoint", "status"],
        )  # fmt: skip
        for e in range(_N_ENDPOINT):
            for s in range(_N_STATUS):
                n = tot[_OFF_REQ + e * _N_STATUS + s]
                if n:
                    label = str(STATUSES[s]) if s < len(STATUSES) else "other"
                    req.add_metric([ENDPOINT_NAMES[e], label], n)
        yield req
        yield GaugeMetricFamily("stub_in_flight", "Requests in flight", value=tot[_OFF_INFLIGHT])
        buckets: list[tuple[str, float]] = []
        acc = 0
        for b in range(_N_BUCKET):
            acc += tot[_OFF_BUCKET + b]
            le = str(LATENESS_BOUNDS_NS[b] / 1e9) if b < len(LATENESS_BOUNDS_NS) else "+Inf"
            buckets.append((le, acc))
        yield HistogramMetricFamily(
            "stub_timer_lateness_seconds",
            "First write minus its scheduled time",
            buckets=buckets,
            sum_value=tot[_OFF_SUM] / 1e9,
        )


def render(workers: list[WorkerMetrics]) -> bytes:
    """The Prometheus text exposition of all workers together."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(workers))
    return generate_latest(registry)
