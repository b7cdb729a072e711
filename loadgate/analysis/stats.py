"""The statistics behind ``loadgate compare``: pure arithmetic, no result files.

This module owns the estimators (docs/compare.md, "Method"):

* Student's t distribution (:func:`t_sf2`, :func:`t_crit`), for intervals with
  few degrees of freedom;
* a quantile and its standard error from one HDR histogram's bucket counts, by
  the distribution-free order-statistic interval (:func:`quantile_with_se`);
* the batch-means standard error of a run that drifts over its own length
  (:func:`batch_means_se`);
* one side's estimate from its runs (:func:`combine_runs`) and the difference of
  two sides by Welch's t with Satterthwaite degrees of freedom (:func:`welch`);
* the difference of two proportions by the Agresti–Caffo interval
  (:func:`proportion_difference`).

Why the t distribution is written here: numpy has no t CDF, and scipy — a
large compiled dependency — would be pulled in for two functions that a
continued fraction of the incomplete beta function gives to 1e-14. The unit
tests check them against tabulated values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

from loadgate.histograms.hdr import percentile_us

__all__ = [
    "MIN_BATCHES",
    "MIN_TAIL",
    "Counts",
    "ProportionDifference",
    "SideEstimate",
    "batch_means_se",
    "combine_runs",
    "proportion_difference",
    "quantile_with_se",
    "run_quantile",
    "scalar_side",
    "t_crit",
    "t_sf2",
    "welch",
]

Counts = npt.NDArray[np.uint64]

_ORDER_Z = 1.959964  # rank window of the order-statistic interval (95 %)
#: Samples a run needs beyond a quantile (and below it) for the order-statistic
#: interval to fit inside the data; fewer and the tail is one or two values.
MIN_TAIL = 10
#: Batch means needs a few batches for its variance to mean anything.
MIN_BATCHES = 5


# --------------------------------------------------------------------- t distribution


def _betacf(a: float, b: float, x: float) -> float:
    # Lentz's continued fraction for the incomplete beta function.
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-14:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    front = math.exp(ln + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_sf2(t: float, df: float) -> float:
    """Two-sided tail probability P(|T| ≥ |t|) of Student's t (df = inf: normal)."""
    t = abs(t)
    if math.isinf(t):
        return 0.0
    if math.isinf(df):
        return 2.0 * (1.0 - NormalDist().cdf(t))
    return _betainc(df / 2.0, 0.5, df / (df + t * t))


def t_crit(two_sided_alpha: float, df: float) -> float:
    """The t value whose two-sided tail probability is ``two_sided_alpha``."""
    if math.isinf(df):
        return NormalDist().inv_cdf(1.0 - two_sided_alpha / 2.0)
    lo, hi = 0.0, 1.0
    while t_sf2(hi, df) > two_sided_alpha:
        hi *= 2.0
    for _ in range(100):
        mid = (lo + hi) / 2.0
        if t_sf2(mid, df) > two_sided_alpha:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


# --------------------------------------------------------------------- one run


def _value_at_rank(cum: npt.NDArray[np.uint64], vals: npt.NDArray[np.float64], rank: int) -> float:
    return float(vals[int(np.searchsorted(cum, rank, side="left"))])


def quantile_with_se(counts: Counts, q: float, bounds: Any) -> tuple[float, float, int]:
    """(quantile µs, standard error µs, n) of one histogram's bucket counts.

    The quantile follows HdrHistogram's rule (highest equivalent value of the
    bucket holding rank ``max(1, round(qn))``). The standard error is the width
    of the order-statistic interval ``[x(r−), x(r+)]``, r± = nq ∓ z√(nq(1−q)),
    divided by 2z — its coverage is exact for any continuous distribution, so no
    shape is assumed. It is floored at half a bucket: both sides share the bucket
    grid, so a one-bucket step is the smallest difference the data can show.
    """
    lo, hi, mid = bounds
    cum = np.cumsum(counts)
    n = int(cum[-1]) if cum.size else 0
    if n == 0:
        return float("nan"), float("nan"), 0
    p = q / 100.0
    rank = max(int(p * n + 0.5), 1)
    idx = int(np.searchsorted(cum, rank, side="left"))
    value = float(hi[idx])
    spread = _ORDER_Z * math.sqrt(n * p * (1.0 - p))
    r_lo = min(max(math.floor(n * p - spread), 1), n)
    r_hi = min(max(math.ceil(n * p + spread), 1), n)
    width = _value_at_rank(cum, mid, r_hi) - _value_at_rank(cum, mid, r_lo)
    se = max(width / (2.0 * _ORDER_Z), (float(hi[idx]) - float(lo[idx]) + 1.0) / 2.0)
    return value, se, n


def batch_means_se(batches: Sequence[Counts], q: float, bounds: Any) -> tuple[float, int] | None:
    """(standard error µs, batches used) of a run's q-quantile from its time batches.

    Neighbouring batches are merged into groups until each group can hold
    ``MIN_TAIL`` samples beyond the quantile; None when fewer than
    ``MIN_BATCHES`` groups remain (the run is too short to see its own drift).
    """
    p = q / 100.0
    sizes = [int(c.sum()) for c in batches]
    n = sum(sizes)
    groups = min(len(batches), int(n * min(p, 1.0 - p)) // MIN_TAIL)
    if groups < MIN_BATCHES:
        return None
    _lo, hi, _mid = bounds
    values = []
    for idx in np.array_split(np.arange(len(batches)), groups):
        merged = np.sum([batches[i] for i in idx], axis=0)
        if merged.sum() * min(p, 1.0 - p) >= 1.0:  # a group with (almost) nothing: skip
            values.append(percentile_us(merged, hi, q))
    if len(values) < MIN_BATCHES:
        return None
    return float(np.std(values, ddof=1)) / math.sqrt(len(values)), len(values)


def run_quantile(
    counts: Counts, batches: Sequence[Counts], q: float, bounds: Any
) -> tuple[float, float, int, float]:
    """(quantile µs, standard error µs, n, degrees of freedom) of one run.

    The batch-means error replaces the order-statistic one when it is larger:
    the run drifted more than its sampling error alone says.
    """
    value, se, n = quantile_with_se(counts, q, bounds)
    bm = batch_means_se(batches, q, bounds) if batches else None
    if bm is not None and bm[0] > se:
        return value, bm[0], n, float(bm[1] - 1)
    return value, se, n, math.inf


# --------------------------------------------------------------------- sides


@dataclass(frozen=True, slots=True)
class SideEstimate:
    """One side's estimate of a figure, from one or more runs."""

    estimate: float
    var: float
    df: float
    runs: int
    n: int
    min_n: int  # smallest run: decides whether a tail quantile is estimable


def combine_runs(
    values: Sequence[float],
    ses: Sequence[float],
    ns: Sequence[int],
    dfs: Sequence[float] | None = None,
) -> SideEstimate:
    """One side's estimate from its runs; ``dfs``: each run's own degrees of freedom
    (inf for the order-statistic error, B − 1 for batch means).

    The variance is ``max(between-run variance, mean within-run variance) / k``
    (method of moments: the between-run spread already contains the within-run
    noise and cannot honestly be smaller than it), with k − 1 degrees of freedom.
    """
    k = len(values)
    v = np.asarray(values, dtype=np.float64)
    within = float(np.mean(np.square(ses)))
    within_df = math.inf if dfs is None or any(map(math.isinf, dfs)) else float(sum(dfs))
    if k == 1:
        return SideEstimate(float(v[0]), within, within_df, 1, int(ns[0]), int(ns[0]))
    between = float(np.var(v, ddof=1))
    if between > within:
        return SideEstimate(float(v.mean()), between / k, float(k - 1), k, int(sum(ns)), min(ns))
    # Runs agree better than sampling alone predicts: within-run error is the floor.
    return SideEstimate(float(v.mean()), within / k, within_df, k, int(sum(ns)), min(ns))


def scalar_side(values: Sequence[float]) -> SideEstimate:
    """A per-run scalar's side: the mean, its variance from the runs' spread."""
    k = len(values)
    mean = float(np.mean(values))
    var = float(np.var(values, ddof=1)) / k
    return SideEstimate(mean, var, float(k - 1), k, k, 1)


def welch(b: SideEstimate, c: SideEstimate) -> tuple[float, float, float]:
    """(difference c − b, its standard error, Satterthwaite df)."""
    d = c.estimate - b.estimate
    var = b.var + c.var
    se = math.sqrt(var)
    terms = [x.var**2 / x.df for x in (b, c) if not math.isinf(x.df) and x.var > 0]
    df = var**2 / sum(terms) if terms and var > 0 else math.inf
    return d, se, df


# --------------------------------------------------------------------- proportions


@dataclass(frozen=True, slots=True)
class ProportionDifference:
    """Two observed proportions and the interval for their difference."""

    base: float
    cand: float
    ci_low: float
    ci_high: float
    p_value: float


def proportion_difference(
    x_base: float, n_base: float, x_cand: float, n_cand: float, alpha: float
) -> ProportionDifference:
    """Agresti–Caffo interval for ``x_cand/n_cand − x_base/n_base`` (sound at 0 events).

    Adding one success and one failure to each side keeps the interval honest
    when a side saw no events at all, where the plain Wald interval has width 0.
    """
    pb, pc = x_base / n_base, x_cand / n_cand
    tb, tc = (x_base + 1) / (n_base + 2), (x_cand + 1) / (n_cand + 2)
    se = math.sqrt(tb * (1 - tb) / (n_base + 2) + tc * (1 - tc) / (n_cand + 2))
    d_adj = tc - tb
    z = NormalDist().inv_cdf(1 - alpha / 2)
    p = t_sf2(d_adj / se, math.inf) if se > 0 else 1.0
    return ProportionDifference(pb, pc, d_adj - z * se, d_adj + z * se, p)
