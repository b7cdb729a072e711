"""The power calculation as arithmetic: known spreads give known rounds.

Reference figures: the one-sample (paired) t test with effect size 1 (change = sd),
two-sided α = 0.05 and power 0.9 needs 13 pairs (the textbook/G*Power figure); the
normal approximation ((z₀.₉₇₅ + z₀.₉) · sd / change)² is a lower bound the t answer
exceeds by a round or two. A seeded simulation of the paired test checks that the
planned rounds do reach the asked power.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from loadgate.analysis.power import (
    Spread,
    Target,
    duration_needed,
    make_plan,
    minimum_detectable,
    paired_spread,
    parse_change_ms,
    parse_target,
    rounds_needed,
)
from loadgate.analysis.stats import t_crit
from loadgate.errors import UsageError
from loadgate.result.model import Result
from tests.support import synthetic

P99 = Target("overhead_ms", 99.0, "all", 1.0)


def test_minimum_detectable_is_the_two_t_quantiles_times_the_standard_error() -> None:
    for sd, k, alpha, power in ((1.0, 5, 0.05, 0.9), (0.3, 12, 0.002, 0.8), (2.0, 2, 0.01, 0.5)):
        expected = (t_crit(alpha, k - 1) + t_crit(2 * (1 - power), k - 1)) * sd / math.sqrt(k)
        assert minimum_detectable(sd, k, alpha, power) == pytest.approx(expected, rel=1e-12)
    # power 0.5: the second quantile is 0, the change sits right at the critical value
    assert minimum_detectable(1.0, 9, 0.05, 0.5) == pytest.approx(2.306004 / 3, rel=1e-5)
    assert minimum_detectable(2.0, 7, 0.05, 0.9) == pytest.approx(
        2 * minimum_detectable(1.0, 7, 0.05, 0.9)
    )
    with pytest.raises(ValueError, match="at least 2 rounds"):
        minimum_detectable(1.0, 1, 0.05, 0.9)
    with pytest.raises(ValueError, match="power"):
        minimum_detectable(1.0, 5, 0.05, 1.0)


@pytest.mark.parametrize(
    ("sd", "change", "alpha", "expected"),
    [
        (1.0, 1.0, 0.05, 13),  # effect size 1: the textbook 13
        (1.0, 0.1, 0.05, 1053),  # normal approximation 1050.7, t adds two
        (0.8, 1.0, 0.05 / 26, 17),  # the exploratory ab session's spread, Bonferroni over 26
        (0.2, 1.0, 0.05 / 26, 5),
    ],
)
def test_rounds_needed_is_the_smallest_k_that_reaches_the_change(
    sd: float, change: float, alpha: float, expected: int
) -> None:
    k = rounds_needed(sd, change, alpha, 0.9)
    assert k == expected
    assert minimum_detectable(sd, k, alpha, 0.9) <= change
    assert k == 2 or minimum_detectable(sd, k - 1, alpha, 0.9) > change


def test_rounds_needed_edges() -> None:
    assert rounds_needed(0.0, 1.0, 0.05, 0.9) == 2  # no spread: the least a paired test takes
    assert rounds_needed(1.0, 1e-3, 0.05, 0.9) is None  # ~10⁷ rounds: out of reach
    assert rounds_needed(1.0, 0.04, 0.05, 0.9) == 6570  # normal approximation 6567.1
    assert rounds_needed(1.0, 0.03, 0.05, 0.9) is None  # ~11 700: past MAX_SEARCH
    with pytest.raises(ValueError, match="positive"):
        rounds_needed(1.0, 0.0, 0.05, 0.9)


def test_the_planned_rounds_reach_the_power_in_a_seeded_simulation() -> None:
    """Paired t tests on normal differences with true mean = change: the rejection rate
    at the planned k is about the asked power, and clearly lower one third as many."""
    rng = np.random.default_rng(7)
    sd, change, alpha, power = 1.0, 1.0, 0.05, 0.9
    k = rounds_needed(sd, change, alpha, power)
    assert k == 13

    def rejection_rate(rounds: int) -> float:
        d = rng.normal(change, sd, size=(4000, rounds))
        t = d.mean(axis=1) / (d.std(axis=1, ddof=1) / math.sqrt(rounds))
        return float(np.mean(t > t_crit(alpha, rounds - 1)))

    assert 0.88 <= rejection_rate(k) <= 0.95
    assert rejection_rate(4) < 0.6


def test_duration_needed_shrinks_only_the_within_run_part() -> None:
    alpha, power, rounds = 0.05 / 26, 0.9, 5
    per_sd = minimum_detectable(1.0, rounds, alpha, power)
    # all the spread is within-run (between ≤ within): sd² = within · 10 s / D
    spread = Spread(rounds=3, between=0.5, within=1.0, mean_diff=0.0, base=2.0)
    d = duration_needed(spread, 10.0, rounds, 1.0, alpha, power)
    assert d is not None
    assert minimum_detectable(math.sqrt(1.0 * 10.0 / d), rounds, alpha, power) == pytest.approx(1.0)
    assert d == pytest.approx(10.0 * per_sd**2)
    # an excess of between over within stays whatever the length: past the target, None
    noisy = Spread(rounds=3, between=1.0 + (1.0 / per_sd) ** 2, within=1.0, mean_diff=0.0, base=2.0)
    assert duration_needed(noisy, 10.0, rounds, 1.0, alpha, power) is None
    some = Spread(rounds=3, between=1.0 + 0.5 / per_sd**2, within=1.0, mean_diff=0.0, base=2.0)
    d2 = duration_needed(some, 10.0, rounds, 1.0, alpha, power)
    assert d2 is not None and d2 == pytest.approx(10.0 * 1.0 / (0.5 / per_sd**2))


def test_parse_change_and_target() -> None:
    assert parse_change_ms("1ms") == 1.0
    assert parse_change_ms("+1.5ms") == 1.5
    assert parse_change_ms("500us") == pytest.approx(0.5)
    assert parse_change_ms("0.002s") == pytest.approx(2.0)
    assert parse_change_ms(" 2 ") == 2.0  # bare: ms
    for bad in ("abc", "0ms", "-1ms", "1 parsec"):
        with pytest.raises(UsageError, match="--detect"):
            parse_change_ms(bad)
    t = parse_target("overhead_ms.p99", "1ms")
    assert (t.metric, t.quantile, t.mode, t.change_ms) == ("overhead_ms", 99.0, "all", 1.0)
    assert t.name == "overhead_ms.p99"
    s = parse_target("stream.ttft_overhead_ms.p90", "2ms")
    assert (s.metric, s.quantile, s.mode, s.name) == (
        "ttft_overhead_ms", 90.0, "stream", "stream.ttft_overhead_ms.p90"
    )  # fmt: skip
    for bad in ("foo.p99", "overhead_ms.p95", "overhead_ms", "batch.overhead_ms.p99"):
        with pytest.raises(UsageError, match="--detect-metric"):
            parse_target(bad, "1ms")


def test_make_plan_clamps_caps_and_warns() -> None:
    alpha = 0.05 / 26
    spread = Spread(rounds=3, between=0.64, within=0.01, mean_diff=0.1, base=2.0)
    plan = make_plan(spread, P99, tests=26, duration_s=10.0, max_rounds=20)
    assert plan.alpha == pytest.approx(alpha)
    assert (plan.needed, plan.rounds, plan.capped) == (17, 17, False)
    assert plan.mde_ms == pytest.approx(minimum_detectable(0.8, 3, alpha, 0.9))
    assert plan.mde_planned_ms <= 1.0
    assert plan.headline() == "to detect +1 ms on overhead_ms.p99 at 90 % power: 17 rounds of 10 s"
    assert not plan.below_threshold and plan.duration_for_cap_s is None
    # a small spread: the pilot's rounds are enough, the plan never asks for fewer
    quiet = make_plan(Spread(3, 1e-6, 1e-6, 0.0, 2.0), P99, tests=26, duration_s=10.0,
                      min_rounds=3)  # fmt: skip
    assert (quiet.needed, quiet.rounds) == (2, 3)
    # capped: runs max_rounds, says what they reach and that longer runs would not help
    capped = make_plan(spread, P99, tests=26, duration_s=10.0, max_rounds=8)
    assert (capped.rounds, capped.capped) == (8, True)
    assert capped.mde_planned_ms == pytest.approx(minimum_detectable(0.8, 8, alpha, 0.9))
    assert capped.duration_for_cap_s is None  # between ≫ within: length does not help
    assert any("longer runs would not reach it" in n for n in capped.notes())
    # within-run spread dominates: a longer run would do it in 8 rounds
    within = make_plan(Spread(3, 0.01, 0.64, 0.0, 2.0), P99, tests=26, duration_s=10.0,
                       max_rounds=8)  # fmt: skip
    assert within.capped and within.duration_for_cap_s is not None
    assert within.duration_for_cap_s > 10.0
    # +1 ms on a 40 ms base is under the 5 % threshold: flagged
    big_base = make_plan(Spread(3, 0.01, 0.01, 0.0, 40.0), P99, tests=26, duration_s=10.0)
    assert big_base.below_threshold
    assert any("under --threshold 5 %" in n for n in big_base.notes())
    doc = plan.to_dict()
    assert doc["target"] == {"row": "overhead_ms.p99", "change_ms": 1.0}
    assert doc["spread"]["sd"] == pytest.approx(0.8) and doc["rounds"] == 17


def _results(seeds: list[int], shifts: list[float]) -> list[Result]:
    return [
        Result.model_validate(synthetic.make_result(s, n=20_000, shift_ms=x))
        for s, x in zip(seeds, shifts, strict=True)
    ]


def test_paired_spread_from_results() -> None:
    # Round i: the same samples on both sides, B shifted by a known amount per round.
    shifts = [1.0, 1.4, 0.6, 1.0]
    bases = _results([1, 2, 3, 4], [0.0] * 4)
    cands = _results([1, 2, 3, 4], shifts)
    sp = paired_spread(bases, cands, P99)
    assert sp is not None and sp.rounds == 4
    assert sp.mean_diff == pytest.approx(1.0, abs=0.02)  # HDR buckets: 0.1 % of ~3 ms
    assert sp.between == pytest.approx(float(np.var(shifts, ddof=1)), rel=0.1)
    assert sp.within > 0 and sp.sd == pytest.approx(math.sqrt(max(sp.between, sp.within)))
    assert 2.5 < sp.base < 3.5  # p99 of lognormal(800 µs, σ 0.5) ≈ 2.56 ms, HDR-rounded
    # identical rounds: no between-round spread, the within-run error is the floor
    same = paired_spread(bases, bases, P99)
    assert (
        same is not None
        and same.between == 0.0
        and same.sd == pytest.approx(math.sqrt(same.within))
    )
    assert paired_spread(bases, cands, Target("e2e_ms", 99.0, "all", 1.0)) is None
    assert paired_spread([], [], P99) is None
