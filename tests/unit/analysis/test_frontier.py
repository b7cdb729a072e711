"""The frontier search against a fake measurement: a monotone p99(rate), arithmetic only."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Literal

from loadgate.analysis.frontier import (
    find_frontier,
    frontier_lines,
    frontier_next,
    frontier_verdict,
    is_under,
)
from loadgate.analysis.knee import SweepPolicy
from loadgate.result.model import Frontier, StepRequests, SweepStep

BOUNDS = (1.0, 5.0, 10.0, 50.0, 100.0)
CAPACITY = 3000.0  # req/s: the fake gateway's queue grows without bound above it


def queue_p99(rate: float) -> float:
    """p99 overhead (ms) of an M/M/1-like gateway: 0.4 ms floor, unbounded near capacity."""
    if rate >= CAPACITY:
        return 5000.0
    return 0.4 + 0.6 * rate / (CAPACITY - rate)


def crossing(f: Callable[[float], float], bound: float) -> float:
    """The rate where the monotone ``f`` reaches ``bound`` (bisection to 1e-9)."""
    lo, hi = 0.0, CAPACITY
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if f(mid) < bound else (lo, mid)
    return lo


def step(
    rate: float,
    p99: float,
    verdict: Literal["pass", "fail", "invalid"] = "pass",
    error_rate: float = 0.0,
) -> SweepStep:
    s = SweepStep(
        value=rate,
        verdict=verdict,
        reasons=["harness CPU 99 % > 95 %"] if verdict == "invalid" else [],
        requests=StepRequests(error_rate=error_rate, throughput_rps=rate * (1 - error_rate)),
        metrics={"overhead_ms": {"p50": p99 / 2, "p99": p99, "p99_low": p99 * 0.9,
                                 "p99_high": p99 * 1.1}},
    )  # fmt: skip
    return s


def search(
    f: Callable[[float], float],
    policy: SweepPolicy,
    bounds: tuple[float, ...] = BOUNDS,
    measure: Callable[[float], SweepStep] | None = None,
) -> tuple[list[SweepStep], Frontier]:
    measure = measure or (lambda r: step(r, f(r)))
    steps: list[SweepStep] = []
    while (rate := frontier_next(steps, bounds, policy)) is not None:
        assert rate not in {s.value for s in steps}, "a rate is never measured twice"
        steps.append(measure(rate))
    return steps, find_frontier(steps, bounds, policy)


def test_every_bound_is_found_within_the_resolution() -> None:
    policy = SweepPolicy(start=50.0, max_steps=60)
    steps, frontier = search(queue_p99, policy)
    assert [p.bound_ms for p in frontier.points] == list(BOUNDS)
    for p in frontier.points:
        assert p.status == "found", p.reason
        assert p.max_rate is not None and p.first_over is not None
        true = crossing(queue_p99, p.bound_ms)
        # The measured bracket holds the true crossing and is within 10 % of its bottom.
        assert p.max_rate <= true <= p.first_over
        assert p.first_over - p.max_rate <= 0.10 * p.max_rate
        assert queue_p99(p.max_rate) < p.bound_ms <= queue_p99(p.first_over)
        assert p.overhead_p99_ms == queue_p99(p.max_rate)
    # Ramp 50..3200 (7 steps), then at most 4 halvings of a factor-2 bracket per bound.
    assert len(steps) <= 7 + 4 * len(BOUNDS)


def test_measured_steps_are_shared_across_bounds() -> None:
    policy = SweepPolicy(start=50.0, max_steps=60)
    both, _ = search(queue_p99, policy, bounds=(50.0, 100.0))
    one, _ = search(queue_p99, policy, bounds=(50.0,))
    # 50 and 100 ms cross between 2880 and 2940 req/s: bisecting one settles most of the other.
    assert len(both) < 2 * len(one)


def test_out_of_steps_the_answer_is_honest_and_wider() -> None:
    policy = SweepPolicy(start=50.0, max_steps=12)
    steps, frontier = search(queue_p99, policy)
    assert len(steps) == 12
    statuses = {p.status for p in frontier.points}
    assert "unresolved" in statuses and statuses <= {"found", "unresolved"}
    for p in frontier.points:
        assert p.max_rate is not None and p.first_over is not None
        assert queue_p99(p.max_rate) < p.bound_ms <= queue_p99(p.first_over)
        if p.status == "unresolved":
            assert "sweep.max_steps = 12 reached" in p.reason


def test_a_bound_under_the_floor_is_not_reached() -> None:
    policy = SweepPolicy(start=50.0, max_steps=60)
    steps, frontier = search(queue_p99, policy, bounds=(0.3, 5.0))
    low = frontier.points[0]
    assert low.status == "not_reached" and low.max_rate is None
    # It halved towards start/64 (0.78125 req/s) and gave up: 25, 12.5, ... 1.56
    # (the next, 0.781 in three figures, is below the floor).
    assert sorted(s.value for s in steps)[:3] == [1.56, 3.12, 6.25]
    assert low.reason.startswith("not reached: even the lowest rate tried, 1.56 req/s")


def test_a_bound_never_crossed_is_above_the_highest_rate_tried() -> None:
    policy = SweepPolicy(start=50.0, max_value=400.0, max_steps=60)
    steps, frontier = search(queue_p99, policy, bounds=(100.0,))
    assert [s.value for s in steps] == [50.0, 100.0, 200.0, 400.0]
    p = frontier.points[0]
    assert (p.status, p.max_rate, p.first_over) == ("above_tried", 400.0, None)
    assert "above the highest rate tried" in p.reason


def test_a_harness_bound_step_is_never_the_gateways_limit() -> None:
    def measure(rate: float) -> SweepStep:
        return step(rate, queue_p99(rate), verdict="invalid" if rate >= 2000 else "pass")

    policy = SweepPolicy(start=100.0, max_steps=60)
    _, frontier = search(queue_p99, policy, bounds=(1.0, 50.0), measure=measure)
    one, fifty = frontier.points
    assert one.status == "found"  # 1 ms is crossed at 1500 req/s, below the harness's 2000
    assert fifty.status == "harness" and fifty.max_rate is not None  # 50 ms: at ~2950
    assert fifty.max_rate < 2000 <= (fifty.first_over or 0)
    assert "harness-bound" in fifty.reason and "at or above" in fifty.reason


def test_failing_fast_is_not_under_any_bound() -> None:
    policy = SweepPolicy()
    assert is_under(step(100, 0.5), 1.0, policy)
    assert not is_under(step(100, 0.5, error_rate=0.5), 1.0, policy)
    assert not is_under(step(100, 0.5, verdict="invalid"), 1.0, policy)
    assert not is_under(step(100, 1.0), 1.0, policy)  # "under" is strict


def test_a_pass_above_a_failure_is_noise_and_said_so() -> None:
    steps = [step(100, 0.5), step(200, 2.0), step(400, 0.8)]
    p = find_frontier(steps, [1.0], dataclasses.replace(SweepPolicy(), max_steps=3)).points[0]
    assert (p.max_rate, p.first_over) == (100.0, 200.0)
    assert "400 req/s was under it again above" in p.reason


def test_an_interval_across_the_bound_is_marginal() -> None:
    # p99 4.8 ms with its interval up to 5.28: the 5 ms answer could move by a step.
    steps = [step(100, 4.8), step(110, 6.0)]
    p = find_frontier(steps, [5.0]).points[0]
    assert p.status == "found" and p.marginal
    q = find_frontier([step(100, 2.0), step(110, 9.0)], [5.0]).points[0]
    assert not q.marginal


def test_verdict_table_and_search_bounds() -> None:
    assert frontier_verdict([]) == ("invalid", ["no steps ran"], 3)
    assert frontier_verdict([step(50, 0.5), step(100, 0.6)])[0] == "pass"
    assert frontier_verdict([step(50, 0.5, verdict="invalid")])[2] == 3
    lines = frontier_lines(find_frontier([step(100, 0.5), step(105, 2.0)], [1.0]))
    assert lines[1].split() == ["1", "ms", "100", "100.0", "0.5", "(0.45–0.55)", "found"]
    assert frontier_next([], ()) is None
    interrupted = step(50, 0.5)
    interrupted.interrupted = "SIGINT"
    assert frontier_next([interrupted], BOUNDS) is None


def test_halving_stops_at_a_step_with_too_few_requests_and_says_so() -> None:
    def measure(rate: float) -> SweepStep:
        s = step(rate, queue_p99(rate))
        s.requests.sent = int(rate * 10)  # a 10 s measured window
        return s

    policy = SweepPolicy(start=200.0, max_steps=60)
    steps, frontier = search(queue_p99, policy, bounds=(0.3,), measure=measure)
    # 200 req/s measured 2000 requests, 100 measured 1000; 50 would measure 500: not run.
    assert sorted(s.value for s in steps) == [100.0, 200.0]
    p = frontier.points[0]
    assert p.status == "not_reached" and "100 req/s had overhead p99" in p.reason
    assert "few requests" not in p.reason
    # A step that did measure few (an explicit low start) is said to.
    thin = step(20.0, 0.5)
    thin.requests.sent = 80
    q = find_frontier([thin, step(40.0, 9.0)], [1.0]).points[0]
    assert "few requests behind the p99 at 20 req/s (80), under 1000" in q.reason
