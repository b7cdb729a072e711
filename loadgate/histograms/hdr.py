"""loadgate's HdrHistogram layout and the arithmetic on it: one place for both.

Values are whole microseconds, 1 µs .. 1 h, 3 significant digits (DESIGN §6).
Summaries and percentiles are computed from the raw bucket counts with numpy,
with the same percentile rule as HdrHistogram itself, and reported in ms.
"""

from __future__ import annotations

import sys
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from hdrh.histogram import HdrHistogram

__all__ = [
    "HIGHEST_US",
    "LOWEST_US",
    "SIGNIFICANT_DIGITS",
    "bucket_bounds",
    "bulk_record",
    "counts_of",
    "decode",
    "new_histogram",
    "percentile_us",
    "release",
    "renew",
    "summarize",
    "summarize_lag",
]

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # 1 h in µs
SIGNIFICANT_DIGITS = 3

Counts = npt.NDArray[np.uint64]
Floats = npt.NDArray[np.float64]


def new_histogram() -> HdrHistogram:
    """An empty histogram with loadgate's layout (µs, 1 µs .. 1 h, 3 digits)."""
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def renew(h: HdrHistogram) -> HdrHistogram:
    """``h`` emptied in place, as :func:`new_histogram` would return it (same layout).

    For a recorder that opens a histogram a second per metric and mode: zeroing
    190 KB with numpy is ~5x cheaper than hdrh building a new one (0.11 ms), and
    hdrh's own ``reset`` loops in Python (0.8 ms).
    """
    counts_of(h).fill(0)
    h.total_count = 0
    h.min_value = sys.maxsize
    h.max_value = 0
    h.start_time_stamp_msec = 0
    h.end_time_stamp_msec = 0
    h.tag = None
    return h


def decode(b64: str | bytes) -> HdrHistogram:
    """Decode a base64 HdrHistogram (as stored under ``result["histograms"]``)."""
    raw = b64.encode("ascii") if isinstance(b64, str) else b64
    return HdrHistogram.decode(raw)


def counts_of(h: HdrHistogram) -> Counts:
    """A zero-copy numpy view of the histogram's bucket counters."""
    return np.frombuffer(h.counts, dtype=np.uint64, count=h.counts_len)


@lru_cache(maxsize=8)
def _bounds(lowest: int, highest: int, digits: int) -> tuple[Floats, Floats, Floats]:
    ref = HdrHistogram(lowest, highest, digits)
    n = ref.counts_len
    lo = np.empty(n, dtype=np.float64)
    hi = np.empty(n, dtype=np.float64)
    for i in range(n):
        v = ref.get_value_from_index(i)
        lo[i] = ref.get_lowest_equivalent_value(v)
        hi[i] = ref.get_highest_equivalent_value(v)
    # HdrHistogram's "median equivalent value": the value it uses for means.
    mid = lo + np.floor((hi - lo + 1) / 2)
    for a in (lo, hi, mid):
        a.setflags(write=False)
    return lo, hi, mid


def bucket_bounds(h: HdrHistogram) -> tuple[Floats, Floats, Floats]:
    """Per counts index: (lowest, highest, median) equivalent value in µs."""
    return _bounds(h.lowest_trackable_value, h.highest_trackable_value, h.significant_figures)


def percentile_us(counts: Counts | npt.NDArray[np.int64], hi: Floats, q: float) -> float:
    """Value (µs) at percentile ``q`` of bucket counts, HdrHistogram's rule.

    The rank is ``max(1, round(q/100 · n))`` and the answer is the highest
    value equivalent to the bucket holding that rank, as
    ``HdrHistogram.get_value_at_percentile`` does (for q > 0).
    """
    cum = np.cumsum(counts)
    n = int(cum[-1])
    if n == 0:
        return float("nan")
    rank = max(int(min(q, 100.0) * n / 100 + 0.5), 1)
    return float(hi[int(np.searchsorted(cum, rank, side="left"))])


def summarize(h: HdrHistogram) -> dict[str, float] | None:
    """``{count, mean, stdev, min, p50, p90, p99, p999, max}`` in ms; None if empty."""
    c = counts_of(h)
    nz = np.flatnonzero(c)
    if nz.size == 0:
        return None
    lo, hi, mid = bucket_bounds(h)
    w = c[nz].astype(np.float64)
    n = float(w.sum())
    vals = mid[nz]
    mean = float((w * vals).sum() / n)
    stdev = float(np.sqrt((w * (vals - mean) ** 2).sum() / n))
    cum = np.cumsum(c[nz])
    out: dict[str, float] = {"count": int(n)}
    out["mean"] = round(mean / 1000.0, 4)
    out["stdev"] = round(stdev / 1000.0, 4)
    out["min"] = round(float(lo[nz[0]]) / 1000.0, 4)
    for key, q in (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p999", 99.9)):
        rank = max(int(q * n / 100 + 0.5), 1)
        idx = nz[int(np.searchsorted(cum, rank, side="left"))]
        out[key] = round(float(hi[idx]) / 1000.0, 4)
    out["max"] = round(float(hi[nz[-1]]) / 1000.0, 4)
    return out


def summarize_lag(encoded: bytes) -> dict[str, float] | None:
    """p50/p99/max (ms) and count of an encoded self-monitoring histogram; None if empty."""
    if not encoded:
        return None
    h = HdrHistogram.decode(encoded)
    if h.get_total_count() == 0:
        return None
    return {
        "count": float(h.get_total_count()),
        "p50": h.get_value_at_percentile(50) / 1000.0,
        "p99": h.get_value_at_percentile(99) / 1000.0,
        "max": h.get_max_value() / 1000.0,
    }


def bulk_record(h: HdrHistogram, values: npt.NDArray[np.int64]) -> None:
    """Record many values (µs, already within range) at once: what ``record_value``
    does one by one, with numpy.

    A stream records one inter-token value per token; value by value, hdrh's
    pure-Python ``record_value`` was the harness's largest per-request cost. The
    index arithmetic is hdrh's own (``_counts_index_for``), vectorised; a test
    checks the encodings are byte-identical.
    """
    if values.size == 0:
        return
    v = values.astype(np.int64, copy=False)
    # bit_length(v | sub_bucket_mask): frexp's exponent, exact for integers < 2**53.
    pow2ceiling = np.frexp((v | h.sub_bucket_mask).astype(np.float64))[1].astype(np.int64)
    bucket = pow2ceiling - h.unit_magnitude - (h.sub_bucket_half_count_magnitude + 1)
    sub_bucket = v >> (bucket + h.unit_magnitude)
    index = (
        ((bucket + 1) << h.sub_bucket_half_count_magnitude) + sub_bucket - h.sub_bucket_half_count
    )
    # One count per bucket the values touch: bincount over their index range is
    # 2.4x faster than np.add.at (8 against 20 µs for 300 values here).
    lo = int(index.min())
    per_bucket = np.bincount(index - lo)
    counts = counts_of(h)
    counts[lo : lo + per_bucket.size] += per_bucket.astype(np.uint64)
    h.total_count += int(v.size)
    h.min_value = min(h.min_value, int(v.min()))
    h.max_value = max(h.max_value, int(v.max()))


def release(h: HdrHistogram) -> None:
    """Free a histogram now instead of at the next full garbage collection.

    An hdrh histogram and its encoder point at each other, so only the cyclic
    collector frees one; during load the load generator keeps full collections
    off (they pause the loop), and a per-second interval histogram lives long
    enough to reach the oldest generation: 190 KB a second per metric and mode
    stayed allocated (benchmarks/soak.py: +60 MB in 90 s). Breaking the cycle
    hands it back to reference counting. ``h`` must not be used afterwards.
    """
    h.encoder = None
