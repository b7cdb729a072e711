"""Per-request SLOs: precomputed figures in, counts out; counts merge by adding."""

from __future__ import annotations

from datetime import UTC, datetime

from loadgate.histograms.recorder import Recorder
from loadgate.join.goodput import GoodputCounts, RequestFigures, SloBounds, mean_gap_ns
from loadgate.load.outcome import EngineOutcome, merge_outcomes
from loadgate.profile import parse_profile
from loadgate.result.build import GatewayFacts, RunFacts, build_result
from loadgate.result.model import Environment

MS = 1_000_000
ALL_FOUR = SloBounds(ttft_ms=200, itl_ms=20, e2e_ms=1000, overhead_ms=5)
#: well inside every bound of ALL_FOUR
GOOD = RequestFigures(ttft_ns=50 * MS, itl_ns=5 * MS, e2e_ns=300 * MS, overhead_ns=1 * MS)


def test_a_request_meeting_three_of_four_slos_is_not_good() -> None:
    counts = GoodputCounts()
    over = RequestFigures(ttft_ns=50 * MS, itl_ns=5 * MS, e2e_ns=300 * MS, overhead_ns=50 * MS)
    assert counts.add(ALL_FOUR, over) is False
    assert counts.add(ALL_FOUR, GOOD) is True
    assert (counts.judged, counts.good, counts.failed) == (2, 1, 0)
    assert counts.missed == {"overhead_ms": 1}


def test_a_value_on_the_bound_meets_it_and_one_ns_past_misses() -> None:
    counts = GoodputCounts()
    bound = SloBounds(e2e_ms=10)
    assert counts.add(bound, RequestFigures(e2e_ns=10 * MS)) is True
    assert counts.add(bound, RequestFigures(e2e_ns=10 * MS + 1)) is False
    assert counts.missed == {"e2e_ms": 1}


def test_a_failed_request_is_never_good_and_misses_no_named_slo() -> None:
    counts = GoodputCounts()
    assert counts.add(ALL_FOUR, None) is False
    assert (counts.judged, counts.good, counts.failed, counts.missed) == (1, 0, 1, {})


def test_bounds_that_do_not_apply_are_met_and_counted() -> None:
    counts = GoodputCounts()
    non_stream = RequestFigures(e2e_ns=300 * MS, overhead_ns=1 * MS)
    assert counts.add(ALL_FOUR, non_stream) is True
    assert counts.not_applicable == {"ttft_ms": 1, "itl_ms": 1}
    # A request missing every figure and every bound: good (nothing to miss).
    assert counts.add(ALL_FOUR, RequestFigures()) is True
    assert counts.not_applicable == {"ttft_ms": 2, "itl_ms": 2, "e2e_ms": 1, "overhead_ms": 1}


def test_itl_is_the_requests_mean_gap_not_its_largest() -> None:
    # Gaps 1, 1, 1, 9 ms: mean 3 ms, max 9 ms. A 4 ms bound is met by the mean.
    times = [0, 1 * MS, 2 * MS, 3 * MS, 12 * MS]
    assert mean_gap_ns(times) == 3 * MS
    assert mean_gap_ns([5]) is None and mean_gap_ns([]) is None
    counts = GoodputCounts()
    assert counts.add(SloBounds(itl_ms=4), RequestFigures(itl_ns=mean_gap_ns(times))) is True


def _outcome(good: int, over: int, failed: int) -> EngineOutcome:
    out = EngineOutcome(Recorder(0))
    bounds = SloBounds(overhead_ms=5, ttft_ms=200)
    for _ in range(good):
        out.goodput.add(bounds, RequestFigures(overhead_ns=1 * MS))
    for _ in range(over):
        out.goodput.add(bounds, RequestFigures(overhead_ns=9 * MS, ttft_ns=300 * MS))
    for _ in range(failed):
        out.goodput.add(bounds, None)
    out.sent = good + over + failed
    out.failed = failed
    out.ok = good + over
    return out


def test_counts_merge_across_load_workers_by_adding() -> None:
    merged = merge_outcomes([_outcome(7, 2, 1), _outcome(3, 1, 0), _outcome(0, 0, 4)])
    g = merged.goodput
    assert (g.judged, g.good, g.failed) == (18, 10, 5)
    assert g.missed == {"overhead_ms": 3, "ttft_ms": 3}
    assert g.not_applicable == {"ttft_ms": 10}


def _facts() -> RunFacts:
    return RunFacts(
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        wall_s=12.0,
        gateway=GatewayFacts(kind="reference"),
        environment=Environment(),
    )


def test_the_result_reports_ratio_rate_and_share_missing_each_slo() -> None:
    profile = parse_profile(
        {
            "load": {"concurrency": 4, "duration": "10s", "warmup": "0s"},
            "slo": {"overhead_ms": 5, "ttft_ms": 200},
            "gates": {"goodput.ratio": "> 0.99"},
        }
    )
    result = build_result(profile, _outcome(70, 20, 10), _facts())
    g = result.goodput
    assert g is not None
    assert (g.requests, g.good, g.failed) == (100, 70, 10)
    assert g.ratio == 0.7
    assert g.rps == 7.0  # 70 good over the 10 s window
    assert g.slo == {"ttft_ms": 200.0, "overhead_ms": 5.0}
    assert g.missed == {"ttft_ms": 20, "overhead_ms": 20}
    assert g.missed_ratio == {"ttft_ms": 0.2, "overhead_ms": 0.2}
    gate = result.gates[0]
    assert (gate.name, gate.value, gate.passed) == ("goodput.ratio", 0.7, False)


def test_without_slo_goodput_is_not_configured() -> None:
    profile = parse_profile({"load": {"concurrency": 4, "duration": "10s", "warmup": "0s"}})
    result = build_result(profile, _outcome(0, 0, 0), _facts())
    assert result.goodput is None
    assert "goodput" not in result.model_dump(by_alias=True, exclude_unset=True)
