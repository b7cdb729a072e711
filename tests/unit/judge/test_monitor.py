from loadgate.judge.monitor import Limits, judge


def test_judge_passes_healthy_figures() -> None:
    h = {
        "loop_lag_ms": {"p99": 0.4},
        "cpu_percent": 40.0,
        "stub_timer_lateness_ms": {"p99": 0.3},
        "achieved_rate_ratio": 0.999,
    }
    assert judge(h, Limits()) == []


def test_judge_names_each_limit() -> None:
    h = {
        "loop_lag_ms": {"p99": 9.0},
        "cpu_percent": 99.0,
        "stub_timer_lateness_ms": {"p99": 6.0},
        "achieved_rate_ratio": 0.8,
        "send_lag_ms": {"p99": 7.0},
    }
    reasons = judge(h, Limits())
    assert len(reasons) == 5
    assert "event-loop lag p99 9.00 ms > 5.0 ms" in reasons[0]
    assert "CPU 99 %" in reasons[1]
    assert "achieved/offered rate 0.800" in reasons[2]
    assert "stub timer lateness" in reasons[3]
    assert "send lag" in reasons[4]


def test_missing_figures_are_not_reasons() -> None:
    assert judge({"loop_lag_ms": None, "cpu_percent": None}, Limits()) == []
