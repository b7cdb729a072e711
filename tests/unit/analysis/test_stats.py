"""The estimators behind compare, checked against known values and the bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pytest

from loadgate.analysis.stats import (
    SideEstimate,
    batch_means_se,
    combine_runs,
    proportion_difference,
    quantile_with_se,
    t_crit,
    t_sf2,
    welch,
)
from loadgate.histograms.hdr import bucket_bounds, counts_of, new_histogram
from tests.support.synthetic import MEDIAN_US


def test_t_distribution_against_known_values() -> None:
    assert t_crit(0.05, math.inf) == pytest.approx(1.959964, abs=1e-5)
    assert t_crit(0.05, 1) == pytest.approx(12.7062, abs=1e-3)
    assert t_crit(0.05, 4) == pytest.approx(2.7764, abs=1e-3)
    assert t_crit(0.01, 10) == pytest.approx(3.1693, abs=1e-3)
    assert t_sf2(2.7764, 4) == pytest.approx(0.05, abs=1e-4)
    assert t_sf2(0.0, 3) == pytest.approx(1.0)


def test_order_statistic_se_agrees_with_multinomial_bootstrap() -> None:
    """The closed form is checked against the bootstrap it replaces."""
    rng = np.random.default_rng(11)
    h = new_histogram()
    for v in rng.lognormal(math.log(MEDIAN_US), 0.5, 20_000).astype(np.int64).tolist():
        h.record_value(v)
    counts = counts_of(h)
    bounds = bucket_bounds(h)
    nz = np.flatnonzero(counts)
    p = counts[nz] / counts.sum()
    boots = rng.multinomial(int(counts.sum()), p, size=400)
    for q in (50.0, 99.0):
        _, se, n = quantile_with_se(counts, q, bounds)
        assert n == 20_000
        full = np.zeros((400, counts.size), dtype=np.uint64)
        full[:, nz] = boots
        reps = [quantile_with_se(full[i], q, bounds)[0] for i in range(400)]
        assert se == pytest.approx(float(np.std(reps)), rel=0.3)


def test_batch_means_se_needs_enough_tail_per_batch() -> None:
    rng = np.random.default_rng(3)
    parts = [rng.lognormal(np.log(MEDIAN_US), 0.5, 200) for _ in range(20)]
    batches = []
    for us in parts:
        h = new_histogram()
        for v in us.astype(np.int64).tolist():
            h.record_value(v)
        batches.append(counts_of(h))
    bounds = bucket_bounds(h)
    se50, used50 = batch_means_se(batches, 50.0, bounds) or (0.0, 0)
    assert used50 == 20 and 0 < se50 < MEDIAN_US
    # p99 of 4000 samples: 40 beyond it, so at most 4 groups of 10: too few to use.
    assert batch_means_se(batches, 99.0, bounds) is None
    # p90: 400 beyond it → 20 groups possible, all 20 used.
    assert batch_means_se(batches, 90.0, bounds) is not None


def test_between_run_variance_is_used_only_when_larger_than_within() -> None:
    # Runs that disagree (1, 3): between-run variance 2 > within 0.01 → it counts, k − 1 df.
    spread = combine_runs([1.0, 3.0], [0.1, 0.1], [100, 200], [math.inf, math.inf])
    assert spread == SideEstimate(2.0, 1.0, 1.0, 2, 300, 100)
    # Runs that agree better than sampling says: the within-run error is the floor.
    agree = combine_runs([1.0, 1.0], [0.5, 0.5], [100, 100], [4.0, 4.0])
    assert agree == SideEstimate(1.0, 0.125, 8.0, 2, 200, 100)


def test_welch_difference_and_satterthwaite_df() -> None:
    b = SideEstimate(1.0, 0.04, 4.0, 5, 5, 1)
    c = SideEstimate(1.5, 0.04, 4.0, 5, 5, 1)
    d, se, df = welch(b, c)
    assert d == pytest.approx(0.5) and se == pytest.approx(math.sqrt(0.08))
    assert df == pytest.approx(8.0)  # equal variances and df: the pooled 2(k − 1)
    assert welch(SideEstimate(1.0, 0.01, math.inf, 1, 9, 9), b)[2] == pytest.approx(
        0.05**2 / (0.04**2 / 4.0)
    )


def test_proportion_difference_at_zero_events_has_width() -> None:
    pd = proportion_difference(0, 4000, 0, 4000, 0.05)
    assert pd.base == pd.cand == 0.0
    assert pd.ci_low < 0 < pd.ci_high  # the Wald interval would be [0, 0]
    assert pd.p_value == pytest.approx(1.0)
    worse = proportion_difference(0, 4000, 200, 4200, 0.05)
    assert worse.ci_low > 0 and worse.cand == pytest.approx(200 / 4200)
