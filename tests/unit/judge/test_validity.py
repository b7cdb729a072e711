"""Harness figures against the profile's limits: the arithmetic of ``invalid``."""

from loadgate.judge.validity import invalid_reasons
from loadgate.profile import HarnessSpec
from loadgate.result.model import Harness, LagSummary


def _lag(p99: float) -> LagSummary:
    return LagSummary(p50=p99 / 2, p99=p99, max=p99 * 2)


def test_judge_passes_healthy_figures() -> None:
    h = Harness(
        loop_lag_ms=_lag(0.4),
        cpu_percent=40.0,
        stub_timer_lateness_ms=_lag(0.3),
        achieved_rate_ratio=0.999,
    )
    assert invalid_reasons(h, HarnessSpec()) == []


def test_judge_names_each_limit() -> None:
    h = Harness(
        loop_lag_ms=_lag(9.0),
        cpu_percent=99.0,
        stub_timer_lateness_ms=_lag(6.0),
        achieved_rate_ratio=0.8,
        send_lag_ms=_lag(7.0),
    )
    reasons = invalid_reasons(h, HarnessSpec())
    assert len(reasons) == 5
    assert "event-loop lag p99 9.00 ms > 5.0 ms" in reasons[0]
    assert "CPU 99 %" in reasons[1]
    assert "achieved/offered rate 0.800" in reasons[2]
    assert "stub timer lateness" in reasons[3]
    assert "send lag" in reasons[4]


def test_missing_figures_are_not_reasons() -> None:
    assert invalid_reasons(Harness(loop_lag_ms=None, cpu_percent=None), HarnessSpec()) == []


def test_send_lag_limit_is_the_profiles() -> None:
    # 50 ms of send lag against a 100 ms limit: within it; against the default 5 ms: not.
    h = Harness(send_lag_ms=_lag(50.0))
    assert invalid_reasons(h, HarnessSpec(max_send_lag_p99_ms=100.0)) == []
    assert len(invalid_reasons(h, HarnessSpec())) == 1
