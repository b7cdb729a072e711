"""Harness figures against the profile's limits: the arithmetic of ``invalid``."""

from loadgate.judge.validity import (
    control_reasons,
    invalid_reasons,
    lag_warnings,
    send_lag_warnings,
)
from loadgate.profile import HarnessSpec
from loadgate.result.model import ControlFigures, Gate, Harness, LagSummary, Summary


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


# --- rules by timestamp source (issue 14) ---------------------------------------------


def _control(p99: float) -> ControlFigures:
    half = p99 / 2
    overhead = Summary(
        count=500, mean=half, stdev=0.0, min=0.0, p50=half, p90=half, p99=p99, p999=p99, max=p99
    )
    return ControlFigures(ratio=0.05, requests=500, metrics={"overhead_ms": overhead})


def _gate(threshold: float, name: str = "overhead_ms.p99") -> Gate:
    return Gate(name=name, op="<", threshold=threshold, value=1.0, passed=True)


def test_with_kernel_stamps_lag_and_cpu_are_warnings_not_reasons() -> None:
    # 50 ms of lag against a 5 ms limit: invalid with user stamps, a warning with kernel.
    user = Harness(timestamps="user", loop_lag_ms=_lag(50.0), cpu_percent=99.0)
    kernel = Harness(timestamps="kernel", loop_lag_ms=_lag(50.0), cpu_percent=99.0)
    assert len(invalid_reasons(user, HarnessSpec())) == 2
    assert lag_warnings(user, HarnessSpec()) == []
    assert invalid_reasons(kernel, HarnessSpec()) == []
    warnings = lag_warnings(kernel, HarnessSpec())
    assert len(warnings) == 2 and all("not in the figures" in w for w in warnings)


def test_unknown_stamps_keep_the_user_rules() -> None:
    h = Harness(timestamps=None, loop_lag_ms=_lag(50.0))
    assert len(invalid_reasons(h, HarnessSpec())) == 1


def test_a_schedule_not_kept_spoils_a_run_whatever_the_stamps() -> None:
    for source in ("kernel", "user"):
        h = Harness(
            timestamps=source,
            send_lag_ms=_lag(50.0),
            achieved_rate_ratio=0.5,
            stub_timer_lateness_ms=_lag(50.0),
        )
        reasons = invalid_reasons(h, HarnessSpec())
        assert len(reasons) == 3, source
        assert "achieved/offered rate 0.500" in reasons[0]
        assert "stub timer lateness" in reasons[1]
        assert "send lag p99 50.00 ms > 5.0 ms" in reasons[2]


def test_a_low_concurrency_ratio_alone_is_a_figure_not_a_reason() -> None:
    # Fast responses (a 401 gateway answers in 0.1 ms) leave workers idle a large share
    # of the time through no fault of the harness: the send lag says whether it was late.
    h = Harness(timestamps="kernel", concurrency_ratio=0.5, send_lag_ms=_lag(0.05))
    assert invalid_reasons(h, HarnessSpec()) == []
    assert send_lag_warnings(h, HarnessSpec()) == []


def test_closed_loop_late_turnaround_with_the_concurrency_held_is_a_warning() -> None:
    # A measured A/A round: turnaround p99 5.79 ms > 5 ms, but 99.76 % of the
    # concurrency stayed in flight: the gateway saw the load asked for.
    h = Harness(timestamps="kernel", concurrency_ratio=0.9976, send_lag_ms=_lag(5.79))
    assert invalid_reasons(h, HarnessSpec()) == []
    (warning,) = send_lag_warnings(h, HarnessSpec())
    assert warning.startswith("send lag p99 5.79 ms > 5.0 ms (closed loop")
    assert "99.8 % of load.concurrency stayed in flight" in warning


def test_closed_loop_late_turnaround_that_cost_the_concurrency_is_invalid() -> None:
    # 50 ms turnaround p99 and 80 % in flight: the harness was late and the load short.
    h = Harness(timestamps="kernel", concurrency_ratio=0.8, send_lag_ms=_lag(50.0))
    (reason,) = invalid_reasons(h, HarnessSpec())
    assert reason.startswith("in flight 0.800 of load.concurrency < 0.95 with send lag p99 50.00")
    assert send_lag_warnings(h, HarnessSpec()) == []
    # The share is the profile's: 0.75 lets 0.8 through (a warning then).
    assert invalid_reasons(h, HarnessSpec(min_concurrency_ratio=0.75)) == []
    assert len(send_lag_warnings(h, HarnessSpec(min_concurrency_ratio=0.75))) == 1


def test_open_loop_send_lag_warns_nowhere_it_is_a_reason() -> None:
    h = Harness(timestamps="kernel", achieved_rate_ratio=1.0, send_lag_ms=_lag(50.0))
    assert len(invalid_reasons(h, HarnessSpec())) == 1
    assert send_lag_warnings(h, HarnessSpec()) == []


def test_control_share_of_a_latency_budget() -> None:
    # control p99 12 ms: 60 % of a 20 ms budget (> 50 %), 12 % of a 100 ms one.
    h = Harness(timestamps="kernel", control=_control(12.0))
    reasons = control_reasons([_gate(20.0), _gate(100.0, "stream.ttft_ms.p99")], h, HarnessSpec())
    assert len(reasons) == 1
    assert "60 % of overhead_ms.p99's 20 ms budget" in reasons[0]
    assert control_reasons([_gate(20.0)], h, HarnessSpec(max_control_share=0.7)) == []


def test_control_share_ignores_non_latency_gates_and_user_stamps() -> None:
    big = Harness(timestamps="kernel", control=_control(12.0))
    rate = Gate(name="requests.error_rate", op="<", threshold=0.01, value=0.0, passed=True)
    assert control_reasons([rate], big, HarnessSpec()) == []
    user = Harness(timestamps="user", control=_control(12.0))
    assert control_reasons([_gate(20.0)], user, HarnessSpec()) == []
    assert control_reasons([_gate(20.0)], Harness(timestamps="kernel"), HarnessSpec()) == []
