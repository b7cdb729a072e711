"""Percentile distributions of the result's HdrHistograms, for plotting.

A histogram (base64, µs) becomes points ``(percentile, ms)`` on a grid that is
even on HdrHistogram's log-percentile scale (``ticks_per_decade`` points per
"nine"), up to the last decade the sample count can resolve, then the max at
100 %. Values come from hdrh itself (``get_percentile_to_value_dict``, one pass
over the counts), so a plot shows exactly what HdrHistogram reports.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from loadgate.histograms.hdr import decode

__all__ = ["Distribution", "distribution", "histogram_key", "percentile_grid"]

_MAX_DECADES = 6


@dataclass(frozen=True, slots=True)
class Distribution:
    """``percentiles`` (0..100, last = 100 = max) and their values in ms."""

    count: int
    percentiles: tuple[float, ...]
    values_ms: tuple[float, ...]


def percentile_grid(count: int, ticks_per_decade: int = 10) -> list[float]:
    """0, …, 90, …, 99, …: even in ``log10(1/(1-q))``, ending with 100.

    The grid stops at the first decade at or beyond ``count`` (rarer
    percentiles than one sample in ``count`` all equal the max).
    """
    if count <= 0:
        return []
    decades = min(_MAX_DECADES, max(1, math.ceil(math.log10(max(count, 2)))))
    grid = [
        round(100.0 * (1.0 - 10.0 ** (-k / ticks_per_decade)), 6)
        for k in range(decades * ticks_per_decade + 1)
    ]
    grid.append(100.0)
    return grid


def distribution(b64: str | bytes, ticks_per_decade: int = 10) -> Distribution | None:
    """Decode one histogram into plot points; None when it holds no values."""
    h = decode(b64)
    n = int(h.get_total_count())
    if n == 0:
        return None
    grid = percentile_grid(n, ticks_per_decade)
    values = h.get_percentile_to_value_dict(grid)
    return Distribution(
        count=n,
        percentiles=tuple(grid),
        values_ms=tuple(round(values[q] / 1000.0, 4) for q in grid),
    )


def histogram_key(histograms: Mapping[str, str], metric: str, mode: str | None) -> str | None:
    """The ``Result.histograms`` key of ``metric`` in ``mode`` (None = all modes), if set."""
    key = metric if mode is None else f"{mode}.{metric}"
    value = histograms.get(key)
    return key if value else None
