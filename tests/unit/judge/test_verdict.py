"""judge(): one run's verdict, by timestamp source, interruption and gateway death."""

from __future__ import annotations

from typing import Any

from loadgate.judge.verdict import judge
from loadgate.profile import HarnessSpec
from loadgate.result.model import Result

GATES = {"overhead_ms.p99": "< 20", "requests.error_rate": "< 0.01"}


def _summary(p99: float) -> dict[str, float]:
    stats = dict.fromkeys(("mean", "stdev", "min", "p50", "p90", "p999", "max"), p99 / 2)
    return {"count": 1000, **stats, "p99": p99}


def _result(overhead_p99: float, **harness: Any) -> Result:
    return Result.model_validate(
        {
            "metrics": {"overhead_ms": _summary(overhead_p99)},
            "requests": {"sent": 1000, "error_rate": 0.0},
            "harness": harness,
        }
    )


def _control(p99: float) -> dict[str, Any]:
    return {"ratio": 0.05, "requests": 50, "metrics": {"overhead_ms": _summary(p99)}}


def _lag(p99: float) -> dict[str, float]:
    return {"p50": p99 / 2, "p99": p99, "max": p99}


def test_kernel_stamps_a_late_loop_does_not_spoil_a_clear_pass() -> None:
    # 50 ms of loop lag: with kernel stamps not in the figures; control p99 0.1 ms.
    r = _result(2.3, timestamps="kernel", loop_lag_ms=_lag(50.0), control=_control(0.1))
    verdict, gates = judge(r, HarnessSpec(), GATES, stop_reason=None, gateway_died_with=None)
    assert (verdict.verdict, verdict.exit_code) == ("pass", 0)
    assert all(g.decided for g in gates)


def test_user_stamps_the_same_lag_makes_it_invalid() -> None:
    r = _result(2.3, timestamps="user", loop_lag_ms=_lag(50.0), control=_control(0.1))
    verdict, gates = judge(r, HarnessSpec(), GATES, stop_reason=None, gateway_died_with=None)
    assert (verdict.verdict, verdict.exit_code) == ("invalid", 3)
    assert "event-loop lag p99 50.00 ms" in verdict.reasons[0]
    assert not any(g.decided for g in gates)


def test_kernel_stamps_undecided_when_control_p99_could_flip_the_gate() -> None:
    # 21 ms fails "< 20", but minus the 3 ms control floor it would pass: undecided.
    r = _result(21.0, timestamps="kernel", control=_control(3.0))
    verdict, gates = judge(r, HarnessSpec(), GATES, stop_reason=None, gateway_died_with=None)
    assert verdict.verdict == "invalid"
    assert "control group's overhead (p99 3.00 ms)" in verdict.reasons[0]
    overhead = next(g for g in gates if g.name == "overhead_ms.p99")
    assert not overhead.decided and overhead.undecided_reason


def test_kernel_stamps_a_clear_fail_stays_a_fail() -> None:
    # 40 ms fails "< 20" even minus the 3 ms floor.
    r = _result(40.0, timestamps="kernel", control=_control(3.0))
    verdict, _ = judge(r, HarnessSpec(), GATES, stop_reason=None, gateway_died_with=None)
    assert (verdict.verdict, verdict.exit_code) == ("fail", 1)


def test_kernel_stamps_a_control_floor_eating_the_budget_is_invalid() -> None:
    # Control p99 12 ms is 60 % of the 20 ms budget: the run cannot judge the gateway.
    r = _result(2.0, timestamps="kernel", control=_control(12.0))
    verdict, _ = judge(r, HarnessSpec(), GATES, stop_reason=None, gateway_died_with=None)
    assert verdict.verdict == "invalid"
    assert any("60 % of overhead_ms.p99's 20 ms budget" in why for why in verdict.reasons)


def test_a_gateway_that_died_is_a_fail_whatever_the_harness() -> None:
    r = _result(2.0, timestamps="user", loop_lag_ms=_lag(50.0))
    verdict, gates = judge(
        r, HarnessSpec(), GATES, stop_reason="gateway_died", gateway_died_with=-9
    )
    assert (verdict.verdict, verdict.exit_code) == ("fail", 1)
    assert verdict.reasons[0] == "gateway process exited (code -9) during the run"
    assert not any(g.decided for g in gates)


def test_an_interrupted_run_is_invalid_and_says_so_first() -> None:
    r = _result(2.0, timestamps="kernel", control=_control(0.1))
    verdict, _ = judge(r, HarnessSpec(), GATES, stop_reason="SIGINT", gateway_died_with=None)
    assert verdict.verdict == "invalid"
    assert verdict.reasons[0] == "interrupted by SIGINT: partial result"


def test_a_missing_auth_cache_says_which_series_and_where() -> None:
    r = Result.model_validate(
        {
            "metrics": {"overhead_ms": _summary(1.0)},
            "harness": {"timestamps": "kernel", "control": _control(0.1)},
            "gateway": {"kind": "target", "url": "http://127.0.0.1:9"},
            "profile": {"gateway": {"auth_cache": {"hits": "h_total", "misses": "m_total"}}},
        }
    )
    gates = {"gateway.auth_cache_hit_rate": "> 0.9"}
    verdict, (gate,) = judge(r, HarnessSpec(), gates, stop_reason=None, gateway_died_with=None)
    assert verdict.verdict == "fail" and gate.decided
    assert gate.reason is not None
    assert "no h_total / m_total counters at http://127.0.0.1:9/metrics" in gate.reason
