"""Summary: stability warnings (pure) and the printed table."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from loadgate.report.summary import print_summary, stability_warnings
from loadgate.result import SCHEMA, Result


def _stats(count: int, mean: float = 10.0, stdev: float = 1.0) -> dict[str, float]:
    return {
        "count": count,
        "mean": mean,
        "stdev": stdev,
        "min": 1.0,
        "p50": 9.0,
        "p90": 11.0,
        "p99": 15.0,
        "p999": 19.0,
        "max": 25.0,
    }


def _result(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "schema": SCHEMA,
        "verdict": "pass",
        "exit_code": 0,
        "reasons": [],
        "gates": [
            {"name": "overhead_ms.p99", "op": "<", "threshold": 20.0, "value": 15.0, "passed": True}
        ],
        "metrics": {"overhead_ms": _stats(50_000)},
        "by_mode": {
            "stream": {"metrics": {"overhead_ms": _stats(20_000)}},
            "non_stream": {"metrics": {"overhead_ms": _stats(30_000)}},
        },
        "requests": {"sent": 50_000, "ok": 50_000, "failed": 0, "error_rate": 0.0, "errors": {}},
        "integrity": {"checked": 50_000, "violations": 0, "by_class": {}},
        "upstream": {"calls": 50_000, "calls_per_request": 1.0},
        "gateway": {"kind": "reference", "auth_cache_hit_rate": 0.97},
        "harness": {
            "loop_lag_ms": {"p50": 0.1, "p99": 0.5, "max": 1.0},
            "cpu_percent": 40.0,
            "floor_ms": None,
            "stub_timer_lateness_ms": {"p50": 0.1, "p99": 0.3, "max": 0.9},
            "limits": {
                "max_loop_lag_p99_ms": 5.0,
                "max_cpu_percent": 95.0,
                "max_stub_lateness_p99_ms": 5.0,
            },
            "warnings": [],
        },
        "profile": {"name": "phase2-gate", "harness": {"floor_warn_share": 0.25}},
    }
    data.update(over)
    return data


def _warnings(data: dict[str, Any]) -> dict[str, list[str]]:
    return stability_warnings(Result.model_validate(data))


def test_a_steady_large_run_has_no_warnings() -> None:
    assert _warnings(_result()) == {}


def test_sample_counts_behind_tail_percentiles() -> None:
    w = _warnings(_result(metrics={"overhead_ms": _stats(500), "itl_ms": _stats(5000)}))
    assert w["overhead_ms.p99"] == ["only 500 samples behind p99 (< 1000)"]
    assert w["overhead_ms.p999"] == ["only 500 samples behind p999 (< 10 000)"]
    assert "itl_ms.p99" not in w
    assert w["itl_ms.p999"] == ["only 5000 samples behind p999 (< 10 000)"]


def test_by_mode_warnings_carry_the_mode_prefix() -> None:
    by_mode = {"stream": {"metrics": {"ttft_overhead_ms": _stats(800)}}}
    w = _warnings(_result(by_mode=by_mode))
    assert "stream.ttft_overhead_ms.p99" in w
    assert "ttft_overhead_ms.p99" not in w


def test_stdev_share_of_mean() -> None:
    w = _warnings(_result(metrics={"e2e_ms": _stats(50_000, mean=10.0, stdev=6.0)}))
    assert w == {"e2e_ms.mean": ["std dev is 60 % of the mean"]}
    assert _warnings(_result(metrics={"e2e_ms": _stats(50_000, stdev=5.0)})) == {}


def test_floor_share_of_gate_budget() -> None:
    base = _result()
    base["harness"]["floor_ms"] = {"p50": 2.0, "p99": 6.0}  # 30 % of the 20 ms budget
    w = _warnings(base)
    assert w["overhead_ms.p99"] == [
        "harness floor p99 6.00 ms is 30 % of this gate's 20 ms budget (> 25 %)"
    ]
    base["harness"]["floor_ms"] = {"p50": 2.0, "p99": 4.0}  # 20 %: fine
    assert _warnings(base) == {}
    # A file written before limits were recorded: the profile's share applies.
    base["profile"]["harness"]["floor_warn_share"] = 0.1
    assert "overhead_ms.p99" in _warnings(base)
    base["harness"]["limits"]["floor_warn_share"] = 0.25  # recorded: it wins
    assert _warnings(base) == {}


def test_harness_near_its_limits() -> None:
    data = _result()
    data["harness"]["loop_lag_ms"]["p99"] = 3.0  # 60 % of 5 ms
    data["harness"]["stub_timer_lateness_ms"]["p99"] = 2.4  # 48 %: fine
    data["harness"]["cpu_percent"] = 90.0  # > 85 % of 95
    w = _warnings(data)
    assert set(w) == {"harness.loop_lag_ms", "harness.cpu_percent"}
    assert w["harness.loop_lag_ms"][0].startswith("event-loop lag p99 3.00 ms is 60 % of the 5 ms")


def test_first_tokens_read_with_the_next_mark_the_ttft_tail_they_can_reach() -> None:
    metrics = {"ttft_ms": _stats(50_000), "ttft_overhead_ms": _stats(50_000)}
    data = _result(metrics=metrics)
    data["harness"]["first_token_same_read_ratio"] = 0.002  # 0.2 %: beyond p99.9, not p99
    w = _warnings(data)
    assert set(w) == {"ttft_ms.p999", "ttft_overhead_ms.p999"}
    assert w["ttft_ms.p999"] == [
        "0.2 % of first tokens were read with the next one: p999 may be the next token's "
        "arrival (an upper bound)"
    ]
    data["harness"]["first_token_same_read_ratio"] = 0.03  # p99 too, not p90
    assert {k for k in _warnings(data) if k.startswith("ttft_ms")} == {
        "ttft_ms.p99",
        "ttft_ms.p999",
    }
    data["harness"]["first_token_same_read_ratio"] = 0.0005  # inside p99.9's tail: nothing
    assert _warnings(data) == {}


def test_an_empty_result_has_no_warnings() -> None:
    assert stability_warnings(Result()) == {}


def _render(data: dict[str, Any]) -> str:
    buf = io.StringIO()
    print_summary(Result.model_validate(data), Console(file=buf, width=240, color_system=None))
    return buf.getvalue()


def test_print_summary_shows_verdict_gates_and_figures() -> None:
    text = _render(_result())
    assert "phase2-gate: PASS" in text
    gate_line = next(line for line in text.splitlines() if "overhead_ms.p99" in line)
    assert "< 20" in gate_line and " 15 " in gate_line and "pass" in gate_line
    assert "auth-cache hit rate" in text and "0.97" in text


def test_print_summary_puts_warnings_beside_their_figures() -> None:
    data = _result(verdict="fail", exit_code=1, reasons=["overhead_ms.p99 = 25 (gate < 20)"])
    data["by_mode"]["stream"]["metrics"]["overhead_ms"] = _stats(700)
    data["gates"][0].update(value=25.0, passed=False)
    text = _render(data)
    assert "phase2-gate: FAIL  (exit 1)" in text
    assert "• overhead_ms.p99 = 25 (gate < 20)" in text
    stream_row = next(
        line for line in text.splitlines() if "overhead_ms" in line and " stream " in line
    )
    assert "only 700 samples behind p99" in stream_row
    all_row = next(line for line in text.splitlines() if "overhead_ms" in line and " all " in line)
    assert "samples behind" not in all_row


def test_print_summary_no_data_gate_and_interrupted() -> None:
    data = _result(verdict="invalid", exit_code=3, interrupted="SIGINT")
    data["gates"] = [
        {
            "name": "gateway.auth_cache_hit_rate",
            "op": ">",
            "threshold": 0.9,
            "value": None,
            "passed": False,
            "reason": "no data",
        }
    ]
    text = _render(data)
    assert "INVALID" in text and "interrupted: SIGINT" in text
    gate_line = next(line for line in text.splitlines() if "gateway.auth_cache_hit_rate" in line)
    assert "no data" in gate_line and "FAIL" in gate_line and "> 0.9" in gate_line


def test_print_summary_shows_undecided_gates_as_such() -> None:
    data = _result(verdict="invalid", exit_code=3, reasons=["harness CPU 99 % > 95 %"])
    data["gates"] = [
        {"name": "overhead_ms.p99", "op": "<", "threshold": 20.0, "value": 25.0, "passed": False},
        {"name": "requests.error_rate", "op": "<", "threshold": 0.01, "value": 0.0, "passed": True},
    ]
    why = "the run is invalid: its gates prove nothing either way"
    for g in data["gates"]:
        g.update(decided=False, undecided_reason=why)
    text = _render(data)
    lines = text.splitlines()
    p99_line = next(line for line in lines if "overhead_ms.p99" in line and "< 20" in line)
    assert "undecided (would fail)" in p99_line and "FAIL" not in p99_line
    rate_line = next(line for line in lines if "requests.error_rate" in line and "< 0.01" in line)
    assert "undecided (would pass)" in rate_line
    assert [line.strip() for line in lines if line.strip().startswith("undecided:")] == [
        f"undecided: overhead_ms.p99, requests.error_rate: {why}"
    ]


def test_print_summary_decided_gates_have_no_undecided_caption() -> None:
    assert "undecided" not in _render(_result())


def test_print_summary_says_the_witness_was_not_configured() -> None:
    row = next(line for line in _render(_result()).splitlines() if "side-effect witness" in line)
    assert "not configured" in row


def test_print_summary_shows_the_witness_figures_and_their_bounds() -> None:
    lag = {"count": 40, "p50": 24.5, "p99": 61.2, "max": 66.0}
    witness = {
        "kind": "sql",
        "sample": 0.05,
        "sampled": 40,
        "found": 38,
        "missing": 2,
        "latency_ms": lag,
        "error_ms": {"count": 40, "p50": 11.5, "p99": 20.0, "max": 27.3},
        "upper_ms": {"count": 40, "p50": 30.0, "p99": 78.4, "max": 80.0},
        "polls": 120,
        "polls_per_s": 60.0,
        "rtt_ms": {"count": 120, "p50": 0.6, "p99": 2.0, "max": 3.7},
        "poll_errors": 1,
        "max_in_flight": 3,
    }
    lines = _render(_result(probes={"witness": witness})).splitlines()
    counts = next(line for line in lines if "sampled / found / missing" in line)
    assert "40 / 38 / 2" in counts and "5 % sampled" in counts
    latency = next(line for line in lines if "witness latency" in line)
    assert "24.50 / 61.20 / 66" in latency and "± 11.50 typical" in latency
    assert "± 27.30 at most" in latency and "upper bound p99 78.40" in latency
    work = next(line for line in lines if "witness queries" in line)
    assert "120 (60.0/s)" in work and "1 failed" in work and "≤ 3 in flight" in work


def test_the_checks_say_not_configured_when_off() -> None:
    from loadgate.report._checks import check_rows
    from loadgate.report.markdown import render_markdown

    result = Result.model_validate(_result())
    assert check_rows(result) == [
        ("upstream assertions", "not configured"),
        ("real-time streams", "not configured"),
        ("metrics lint", "not configured"),
    ]
    assert "| metrics lint | not configured |" in render_markdown(result)


def test_the_checks_show_their_figures() -> None:
    from loadgate.report._checks import check_rows, lint_lines

    assertions = {
        "checked": 40,
        "failed": 4,
        "by_rule": {"require_system": 4},
        "examples": ["00000001000000aa"],
    }
    problem = {"metric": "x", "rule": "counter_total", "detail": "must end in _total"}
    data = _result(
        upstream={"assertions": assertions},
        gateway={"metrics_lint": {"series": 9, "problems": 1, "missing": 0, "details": [problem]}},
        profile={"name": "p", "checks": {"streaming": {"enabled": True}}},
    )
    data["by_mode"]["stream"]["realtime"] = {"streams": 5, "buffered": 5}
    rows = dict(check_rows(Result.model_validate(data)))
    assert rows["upstream assertions"] == (
        "40 checked, 4 failed (require_system 4; e.g. 00000001000000aa)"
    )
    assert rows["real-time streams"] == "5 of 5 streams buffered"
    assert rows["metrics lint"] == "9 series, 1 problems"
    assert lint_lines(Result.model_validate(data)) == ["x: counter_total: must end in _total"]
    out = io.StringIO()
    print_summary(Result.model_validate(data), Console(file=out, width=200))
    assert "40 checked, 4 failed" in out.getvalue()


def test_square_brackets_in_a_note_are_printed_not_taken_as_markup() -> None:
    data = _result()
    data["harness"]["placement"] = {
        "harness": [0],
        "stub": [0],
        "gateway": [1],
        "gateway_known": True,
        "note": "as the profile's [cpus] says",
    }
    assert "as the profile's [cpus] says" in _render(data)


@pytest.mark.parametrize(
    ("placement", "shown"),
    [
        ({"harness": [0], "stub": [0], "gateway": [1]}, "harness 0, stub 0, gateway 1"),
        ({"harness": None, "stub": None, "gateway": None}, "not pinned"),
        (
            {"harness": [0], "stub": None, "gateway": None, "gateway_known": False},
            "harness 0, stub any, gateway unknown",
        ),
    ],
)
def test_the_cpus_row_says_pinned_not_pinned_or_unknown(
    placement: dict[str, object], shown: str
) -> None:
    data = _result()
    data["harness"]["placement"] = {"gateway_known": True, "note": "n", **placement}
    line = next(ln for ln in _render(data).splitlines() if "│ CPUs" in ln)
    assert shown in line
