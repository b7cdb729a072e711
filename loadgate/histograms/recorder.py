"""HDR recorders: one histogram per metric per mode, plus per-interval histograms.

This module owns how latencies become numbers (DESIGN §6): values arrive in
nanoseconds, are rounded to whole microseconds and recorded into `hdrh`
histograms (1 µs .. 1 h, 3 significant digits). Each metric keeps one histogram
per mode (stream / non-stream; "all modes" is their sum, built on demand) and
one histogram per time interval (all modes) for time series and ``.hlog``
export. The layout and the arithmetic on it live in :mod:`loadgate.histograms.hdr`.

Memory: a histogram of this range is ~190 KB of counters, so an hour of
per-second interval histograms would not fit. Intervals more than
``LIVE_INTERVALS`` behind the newest one are frozen into their compressed
encoding (a few hundred bytes) and thawed only if a late value arrives.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

from loadgate.histograms import BATCHED_METRICS, HISTOGRAM_BATCHES, METRICS, MODES
from loadgate.histograms.hdr import (
    HIGHEST_US,
    bucket_bounds,
    bulk_record,
    counts_of,
    decode,
    new_histogram,
    percentile_us,
    release,
    renew,
    summarize,
)

__all__ = ["BATCHED_METRICS", "HISTOGRAM_BATCHES", "METRICS", "MODES", "Recorder"]

LIVE_INTERVALS = 3
_BYTES_VERSION = 1
#: Values waiting before a flush: small enough to stay a sub-millisecond flush.
_FLUSH_AT = 4096
# A flush also happens when the first value of a new interval arrives, so that one
# flush opens at most one new interval per metric and mode. By count alone a thin
# recorder (the 5 % control group) flushed every few seconds and then opened, froze
# and encoded a hundred interval histograms in one go: 9-20 ms of CPU in one loop
# turn, seen as the harness's loop-lag maximum (a py-spy timeline and a timed flush).
#: Emptied interval histograms kept for reuse (one per metric and mode is enough).
_SPARES = 2 * len(METRICS)


def _add(dst: HdrHistogram, src: HdrHistogram) -> None:
    # hdrh's add() resets min to 0 when the source is empty: skip empties.
    if src.get_total_count():
        dst.add(src)


class Recorder:
    """Histograms for every metric of one run (or one worker process)."""

    __slots__ = (
        "_frozen",
        "_horizon",
        "_live",
        "_newest",
        "_pending",
        "_pending_i",
        "_pending_v",
        "_slot",
        "_spare",
        "_totals",
        "interval_ns",
        "start_ns",
    )

    def __init__(self, start_ns: int, interval_ns: int = 1_000_000_000) -> None:
        if interval_ns <= 0:
            raise ValueError("interval_ns must be positive")
        self.start_ns = start_ns
        self.interval_ns = interval_ns
        # Index False (0) = non-stream, True (1) = stream: record() indexes by the bool.
        self._totals: dict[str, tuple[HdrHistogram, HdrHistogram]] = {
            m: (new_histogram(), new_histogram()) for m in METRICS
        }
        self._live: dict[str, tuple[dict[int, HdrHistogram], dict[int, HdrHistogram]]] = {
            m: ({}, {}) for m in METRICS
        }
        self._frozen: dict[str, tuple[dict[int, bytes], dict[int, bytes]]] = {
            m: ({}, {}) for m in METRICS
        }
        self._newest: dict[str, list[int]] = {m: [-1, -1] for m in METRICS}
        # Values wait here (µs and interval index, per metric and mode) and reach the
        # histograms in bulk (hdr.bulk_record): one Python append per value on the
        # hot path instead of hdrh's record_value twice. Every reader flushes first.
        self._slot = {m: (2 * k, 2 * k + 1) for k, m in enumerate(METRICS)}
        self._pending_v: list[list[int]] = [[] for _ in range(2 * len(METRICS))]
        self._pending_i: list[list[int]] = [[] for _ in range(2 * len(METRICS))]
        self._pending = 0
        self._horizon = 0  # the newest interval any value has been recorded in
        # Frozen intervals' histograms, emptied and reused for the next intervals.
        self._spare: list[HdrHistogram] = []

    # -- hot path -------------------------------------------------------------

    def record(self, metric: str, stream: bool, value_ns: int, at_ns: int) -> None:
        """Record one value (ns, rounded to µs) completed at ``at_ns``."""
        v = (value_ns + 500) // 1000
        if v < 0:
            v = 0  # same clock on both ends: negatives are rounding noise
        elif v > HIGHEST_US:
            v = HIGHEST_US  # keep the count honest rather than drop it
        i = (at_ns - self.start_ns) // self.interval_ns
        if i > self._horizon:
            self._horizon = i
            self.flush()  # what waits belongs to older intervals (see _FLUSH_AT)
        slot = self._slot[metric][stream]
        self._pending_v[slot].append(v)
        self._pending_i[slot].append(i if i > 0 else 0)
        self._pending += 1
        if self._pending >= _FLUSH_AT:
            self.flush()

    def record_gaps(self, metric: str, stream: bool, times_ns: list[int], at_ns: int) -> int:
        """Record every gap ``b - a`` between consecutive ``times_ns``, completed at ``at_ns``.

        The same as one :meth:`record` per pair, in one call (a stream's
        inter-token latencies: 15 values for 16 tokens, ~0.5 µs each one by one).
        Returns how many gaps were exactly 0 (deltas read together).
        """
        if len(times_ns) < 2:
            return 0
        raw = [b - a for a, b in itertools.pairwise(times_ns)]
        self.record_many(metric, stream, raw, at_ns)
        return raw.count(0)

    def record_many(self, metric: str, stream: bool, values_ns: list[int], at_ns: int) -> None:
        """One :meth:`record` per value, all completed at ``at_ns``, in one call."""
        if not values_ns:
            return
        values = [(d + 500) // 1000 for d in values_ns]
        if min(values) < 0 or max(values) > HIGHEST_US:  # clamped as record() does
            values = [0 if v < 0 else HIGHEST_US if v > HIGHEST_US else v for v in values]
        i = (at_ns - self.start_ns) // self.interval_ns
        if i > self._horizon:
            self._horizon = i
            self.flush()
        slot = self._slot[metric][stream]
        self._pending_v[slot] += values
        self._pending_i[slot] += [i if i > 0 else 0] * len(values)
        self._pending += len(values)
        if self._pending >= _FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        """Move every waiting value into its histograms (readers call this first)."""
        if not self._pending:
            return
        self._pending = 0
        for m, (ns_slot, s_slot) in self._slot.items():
            for stream, slot in ((False, ns_slot), (True, s_slot)):
                vals = self._pending_v[slot]
                if not vals:
                    continue
                values = np.array(vals, dtype=np.int64)
                intervals = np.array(self._pending_i[slot], dtype=np.int64)
                vals.clear()
                self._pending_i[slot].clear()
                bulk_record(self._totals[m][stream], values)
                # Not np.unique: its first call imports numpy.ma (17 ms, mid-run).
                lo = int(intervals.min())
                for i in (np.flatnonzero(np.bincount(intervals - lo)) + lo).tolist():
                    h = self._live[m][stream].get(i)
                    if h is None:
                        h = self._open_interval(m, stream, i)
                    bulk_record(h, values[intervals == i])

    def _open_interval(self, metric: str, stream: bool, i: int) -> HdrHistogram:
        live = self._live[metric][stream]
        frozen = self._frozen[metric][stream]
        blob = frozen.pop(i, None)
        if blob is not None:
            h = HdrHistogram.decode(blob)
        elif self._spare:
            h = renew(self._spare.pop())
        else:
            h = new_histogram()
        live[i] = h
        newest = self._newest[metric]
        if i > newest[stream]:
            newest[stream] = i
            cutoff = i - LIVE_INTERVALS
            for j in [j for j in live if j < cutoff]:
                old = live.pop(j)
                if old.get_total_count():
                    frozen[j] = old.encode()
                if len(self._spare) < _SPARES:
                    self._spare.append(old)
                else:
                    release(old)
        return h

    # -- queries --------------------------------------------------------------

    def _check(self, metric: str, mode: str | None) -> None:
        self.flush()  # every query starts here: it sees every value recorded so far
        if metric not in self._totals:
            raise KeyError(f"unknown metric {metric!r}")
        if mode is not None and mode not in MODES:
            raise ValueError(f"mode must be None, 'stream' or 'non_stream', not {mode!r}")

    def count(self, metric: str, mode: str | None = None) -> int:
        self._check(metric, mode)
        ns, s = self._totals[metric]
        if mode == "stream":
            return int(s.get_total_count())
        if mode == "non_stream":
            return int(ns.get_total_count())
        return int(s.get_total_count() + ns.get_total_count())

    def histogram(self, metric: str, mode: str | None = None) -> HdrHistogram:
        """A fresh copy (callers may mutate it) of one metric's histogram."""
        self._check(metric, mode)
        ns, s = self._totals[metric]
        out = new_histogram()
        if mode in (None, "non_stream"):
            _add(out, ns)
        if mode in (None, "stream"):
            _add(out, s)
        return out

    def summary(self, metric: str, mode: str | None = None) -> dict[str, float] | None:
        if self.count(metric, mode) == 0:
            return None
        return summarize(self.histogram(metric, mode))

    def _mode_intervals(self, metric: str, stream: bool) -> dict[int, HdrHistogram]:
        out = {j: HdrHistogram.decode(b) for j, b in self._frozen[metric][stream].items()}
        out.update(self._live[metric][stream])
        return out

    def intervals(self, metric: str, mode: str | None = None) -> list[tuple[int, HdrHistogram]]:
        """Non-empty interval histograms by interval index (copies for mode None)."""
        self._check(metric, mode)
        if mode is not None:
            items = self._mode_intervals(metric, mode == "stream").items()
            return sorted((j, h) for j, h in items if h.get_total_count())
        both: dict[int, HdrHistogram] = {}
        for stream in (False, True):
            for j, h in self._mode_intervals(metric, stream).items():
                if h.get_total_count():
                    _add(both.setdefault(j, new_histogram()), h)
        return sorted(both.items())

    def interval_percentile(self, metric: str, q: float) -> list[tuple[int, float | None]]:
        """``(interval index, value in ms)`` for every interval 0..last; None = empty."""
        by_index = dict(self.intervals(metric))
        if not by_index:
            return []
        out: list[tuple[int, float | None]] = []
        for j in range(max(by_index) + 1):
            h = by_index.get(j)
            if h is None:
                out.append((j, None))
            else:
                _, hi, _ = bucket_bounds(h)
                out.append((j, round(percentile_us(counts_of(h), hi, q) / 1000.0, 4)))
        return out

    def interval_percentile_at(self, metric: str, index: int, q: float) -> float | None:
        """Value (ms) at percentile ``q`` of one interval, all modes; None when empty.

        For live displays: touches only that interval, never the whole run.
        """
        self._check(metric, None)
        h = new_histogram()
        for stream in (False, True):
            live = self._live[metric][stream].get(index)
            if live is not None:
                _add(h, live)
            else:
                blob = self._frozen[metric][stream].get(index)
                if blob is not None:
                    thawed = HdrHistogram.decode(blob)
                    _add(h, thawed)
                    release(thawed)
        # Called a few times a second while the collector is held off (see
        # hdr.release): every temporary histogram is freed here, not at exit.
        value = None
        if h.get_total_count():
            _, hi, _ = bucket_bounds(h)
            value = round(percentile_us(counts_of(h), hi, q) / 1000.0, 4)
        release(h)
        return value

    # -- merge and transport ---------------------------------------------------

    def merge(self, other: Recorder) -> None:
        """Add ``other`` losslessly; its intervals are shifted onto this start."""
        self.flush()
        other.flush()
        if other.interval_ns != self.interval_ns:
            raise ValueError("cannot merge recorders with different intervals")
        shift = round((other.start_ns - self.start_ns) / self.interval_ns)
        for m in METRICS:
            for mine, theirs in zip(self._totals[m], other._totals[m], strict=True):
                _add(mine, theirs)
            for stream, mode in ((False, "non_stream"), (True, "stream")):
                for j, h in other.intervals(m, mode):
                    k = max(0, j + shift)
                    dst = self._live[m][stream].get(k)
                    if dst is None:
                        dst = self._open_interval(m, stream, k)
                    _add(dst, h)

    def batches(self, metric: str, mode: str | None, n: int) -> list[HdrHistogram]:
        """The measured window cut into ``n`` contiguous time batches (fewer if shorter).

        Built from the interval histograms, so a batch is a whole number of
        intervals; ``compare`` reads the spread between batches (batch means).
        """
        items = [(j, h) for j, h in self.intervals(metric, mode) if j >= 0]
        if not items or n < 1:
            return []
        span = max(j for j, _ in items) + 1
        out = [new_histogram() for _ in range(min(n, span))]
        for j, h in items:
            _add(out[j * len(out) // span], h)
        return out

    def encode_batches(self, metrics: tuple[str, ...], n: int) -> dict[str, list[str]]:
        """``result["histogram_batches"]``: per metric and mode, ``n`` time batches."""
        out: dict[str, list[str]] = {}
        for m in metrics:
            if self.count(m) == 0:
                continue
            for mode, key in (
                (None, m),
                ("stream", f"stream.{m}"),
                ("non_stream", f"non_stream.{m}"),
            ):
                if mode is not None and self.count(m, mode) == 0:
                    continue
                out[key] = [_b64(h) for h in self.batches(m, mode, n)]
        return out

    def encode(self) -> dict[str, str]:
        """``result["histograms"]``: base64 per non-empty metric / mode histogram."""
        out: dict[str, str] = {}
        for m in METRICS:
            if self.count(m) == 0:
                continue
            out[m] = self.histogram(m).encode().decode("ascii")
            ns, s = self._totals[m]
            if s.get_total_count():
                out[f"stream.{m}"] = s.encode().decode("ascii")
            if ns.get_total_count():
                out[f"non_stream.{m}"] = ns.encode().decode("ascii")
        return out

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        # Pickles (to a parent process) as its own lossless encoding.
        return (Recorder.from_bytes, (self.to_bytes(),))

    def to_bytes(self) -> bytes:
        """Everything, losslessly, for a worker process to hand to its parent."""
        doc: dict[str, Any] = {
            "v": _BYTES_VERSION,
            "start_ns": self.start_ns,
            "interval_ns": self.interval_ns,
            "metrics": {},
        }
        for m in METRICS:
            if self.count(m) == 0:
                continue
            ns, s = self._totals[m]
            doc["metrics"][m] = {
                mode: {
                    "total": _b64(h),
                    "intervals": {str(j): _b64(ih) for j, ih in self.intervals(m, mode)},
                }
                for mode, h in (("non_stream", ns), ("stream", s))
            }
        return json.dumps(doc, separators=(",", ":")).encode("ascii")

    @classmethod
    def from_bytes(cls, b: bytes) -> Recorder:
        doc = json.loads(b)
        if doc.get("v") != _BYTES_VERSION:
            raise ValueError(f"unsupported recorder encoding version {doc.get('v')!r}")
        rec = cls(int(doc["start_ns"]), int(doc["interval_ns"]))
        for m, d in doc["metrics"].items():
            for stream, mode in ((False, "non_stream"), (True, "stream")):
                part = d[mode]
                if part["total"]:
                    _add(rec._totals[m][stream], decode(part["total"]))
                # Intervals stay compressed until someone reads or extends them.
                frozen = rec._frozen[m][stream]
                for j, blob in part["intervals"].items():
                    frozen[int(j)] = blob.encode("ascii")
                if frozen:
                    rec._newest[m][stream] = max(frozen)
        return rec


def _b64(h: HdrHistogram) -> str:
    return h.encode().decode("ascii") if h.get_total_count() else ""
