"""Gates: expression parsing, path resolution, arithmetic, verdict precedence."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from loadgate.judge.gates import GateSpec, evaluate_gates, parse_gate, resolve
from loadgate.judge.verdict import (
    INVALID_GATE_PREFIX,
    Verdict,
    decide_verdict,
    too_close_to_call,
    undecided_reasons,
)
from loadgate.result.model import Gate, Result


def _summary(**stats: float) -> dict[str, float]:
    """A full latency summary whose unnamed statistics are 0."""
    base = dict.fromkeys(("mean", "stdev", "min", "p50", "p90", "p99", "p999", "max"), 0.0)
    return {"count": 1, **base, **stats}


RESULT_DATA: dict[str, Any] = {
    "metrics": {"overhead_ms": _summary(count=5000, p99=12.5, p999=30.0)},
    "by_mode": {
        "stream": {
            "metrics": {"overhead_ms": _summary(p99=14.0), "ttft_overhead_ms": _summary(p99=3.0)},
            "requests": {"sent": 10, "ok": 9, "failed": 1},
        },
        "non_stream": {"metrics": {"overhead_ms": _summary(p99=9.0)}},
    },
    "requests": {"sent": 1000, "error_rate": 0.0005, "failed": 0},
    "integrity": {"checked": 1000, "violations": 0},
    "upstream": {"calls": 1100, "calls_per_request": 1.1},
    "gateway": {
        "kind": "reference",
        "auth_cache_hit_rate": 0.95,
        "counters": {
            'proxy_latency_bucket{le="0.5"}': 42.0,
            "plain_total": 7,
            "never_scraped": None,
        },
        "drain": {"ok": True},
    },
    "harness": {"loop_lag_ms": {"p50": 0.1, "p99": 0.4, "max": 1.0}},
}
RESULT = Result.model_validate(RESULT_DATA)


@pytest.mark.parametrize(
    ("expr", "op", "threshold"),
    [
        ("< 20", "<", 20.0),
        ("<=20", "<=", 20.0),
        ("> 0.90", ">", 0.9),
        (">= -1", ">=", -1.0),
        ("== 0", "==", 0.0),
        ("!= 3", "!=", 3.0),
        ("  <  1e-3 ", "<", 0.001),
        ("< .5", "<", 0.5),
    ],
)
def test_parse(expr: str, op: str, threshold: float) -> None:
    assert parse_gate("overhead_ms.p99", expr) == GateSpec("overhead_ms.p99", op, threshold)


@pytest.mark.parametrize("expr", ["20", "<", "< twenty", "=< 5", "<< 5", "~ 5", "< 5 ms", "", 20])
def test_parse_rejects(expr: object) -> None:
    with pytest.raises(ValueError):
        parse_gate("overhead_ms.p99", expr)


@pytest.mark.parametrize(
    "name",
    ["overhead.p99", "overhead_ms", "overhead_ms.p95", "stream", "stream.gateway.x", "nonsense"],
)
def test_parse_rejects_names_that_cannot_resolve(name: str) -> None:
    with pytest.raises(ValueError):
        parse_gate(name, "< 1")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("overhead_ms.p99", 12.5),  # metrics first
        ("stream.overhead_ms.p99", 14.0),  # then by_mode.<mode>.metrics
        ("non_stream.overhead_ms.p99", 9.0),
        ("stream.requests.failed", 1),  # by_mode.<mode> itself
        ("requests.error_rate", 0.0005),  # then the root
        ("gateway.auth_cache_hit_rate", 0.95),
        ('gateway.counters.proxy_latency_bucket{le="0.5"}', 42.0),  # dots inside a key
        ("gateway.counters.plain_total", 7),
        ("metrics.overhead_ms.p999", 30.0),
        ("gateway.counters.absent_total", None),
        ("gateway.counters.never_scraped", None),
        ("ttft_ms.p99", None),
    ],
)
def test_resolve(name: str, value: object) -> None:
    assert resolve(RESULT, name) == value


def test_evaluate_arithmetic_at_the_boundary() -> None:
    gates = {
        "overhead_ms.p99": "< 12.5",  # equal is not less: fails
        "stream.overhead_ms.p99": "<= 14",
        "gateway.auth_cache_hit_rate": "> 0.90",
        "requests.error_rate": "< 0.001",
        "integrity.violations": "== 0",
        "upstream.calls_per_request": ">= 1.2",
        "requests.failed": "!= 0",
    }
    rows = evaluate_gates(gates, RESULT)
    assert [r.name for r in rows] == list(gates)  # profile order kept
    assert [r.passed for r in rows] == [False, True, True, True, True, False, False]
    assert rows[0].model_dump(exclude_none=True) == {
        "name": "overhead_ms.p99",
        "op": "<",
        "threshold": 12.5,
        "value": 12.5,
        "passed": False,
        "decided": True,
    }


def test_missing_or_null_value_fails_with_no_data() -> None:
    rows = evaluate_gates(
        {"ttft_ms.p99": "< 100", "gateway.counters.never_scraped": "== 0"}, RESULT
    )
    for row in rows:
        assert row.value is None
        assert row.passed is False
        assert row.reason == "no data"


def test_non_numeric_value_fails() -> None:
    (row,) = evaluate_gates({"harness.loop_lag_ms": "< 1"}, RESULT)
    assert row.passed is False and row.value is None
    assert row.reason is not None and row.reason.startswith("not a number")


def test_boolean_counts_as_number() -> None:
    (row,) = evaluate_gates({"gateway.drain.ok": "== 1"}, RESULT)
    assert row.passed is True and row.value == 1.0


def test_verdict_pass() -> None:
    rows = evaluate_gates({"integrity.violations": "== 0"}, RESULT)
    assert decide_verdict(rows, []) == Verdict("pass", [], 0)
    assert decide_verdict([], []) == Verdict("pass", [], 0)


def test_verdict_fail_names_each_failed_gate() -> None:
    rows = evaluate_gates({"overhead_ms.p99": "< 10", "ttft_ms.p99": "< 5"}, RESULT)
    verdict, reasons, code = dataclasses.astuple(decide_verdict(rows, []))
    assert (verdict, code) == ("fail", 1)
    assert reasons == [
        "overhead_ms.p99 = 12.5 (gate < 10)",
        "ttft_ms.p99: no data (gate < 5)",
    ]


def test_invalid_beats_fail() -> None:
    rows = evaluate_gates({"overhead_ms.p99": "< 10"}, RESULT)
    verdict, reasons, code = dataclasses.astuple(
        decide_verdict(rows, ["event-loop lag p99 9 ms > 5 ms"])
    )
    assert (verdict, code) == ("invalid", 3)
    # the failed gate follows the reason, marked as not being one
    assert reasons == [
        "event-loop lag p99 9 ms > 5 ms",
        INVALID_GATE_PREFIX + "overhead_ms.p99 = 12.5 (gate < 10)",
    ]


def test_invalid_beats_pass() -> None:
    rows = evaluate_gates({"integrity.violations": "== 0"}, RESULT)
    assert decide_verdict(rows, ["harness CPU 99 %"]) == Verdict("invalid", ["harness CPU 99 %"], 3)


def test_a_latency_gate_the_harness_lag_could_flip_cannot_be_called() -> None:
    def gate(name: str, op: str, threshold: float, value: float | None) -> Gate:
        return Gate(name=name, op=op, threshold=threshold, value=value)

    gates = [
        gate("overhead_ms.p99", "<", 20.0, 21.7),
        gate("stream.ttft_overhead_ms.p50", "<", 5.0, 4.9),
        gate("e2e_ms.p50", ">=", 50.0, 52.0),
        gate("e2e_ms.p99", "<", 100.0, 130.0),
        gate("requests.error_rate", "<", 0.001, 0.5),
        gate("overhead_ms.count", "==", 5.0, 4.0),
        gate("ttft_ms.p99", "<", 80.0, None),
    ]
    for g in gates:
        g.passed = g.name in ("stream.ttft_overhead_ms.p50", "e2e_ms.p50")
    # Lag only adds: the true value is in [value − 4.86, value].
    # 21.7 fails "< 20" but 16.84 would pass: undecided. 4.9 passes "< 5" at both ends:
    # stands. 52 passes ">= 50" but 47.14 would not: undecided. 130 fails "< 100" at
    # both ends: a real fail. Not latencies, exact ops and missing values: untouched.
    close = too_close_to_call(gates, 4.86)
    assert list(close) == ["overhead_ms.p99", "e2e_ms.p50"]
    assert "event-loop lag (p99 4.86 ms)" in close["overhead_ms.p99"]
    assert "threshold < 20" in close["overhead_ms.p99"]
    # A quieter harness decides both.
    assert too_close_to_call(gates, 1.5) == {}
    assert too_close_to_call(gates, None) == {} and too_close_to_call(gates, 0.0) == {}
    # Other gates failed beyond doubt (e2e p99 130 ≥ 100, the error rate): a fail
    # whatever the two close calls say, so they do not make the run invalid ...
    assert undecided_reasons(gates, 4.86) == []
    # ... but when the verdict rests on them, it is invalid.
    rest = [g for g in gates if g.name in close or g.passed]
    assert undecided_reasons(rest, 4.86) == list(close.values())


def test_the_checks_figures_are_gate_able_and_missing_when_not_configured() -> None:
    data = {
        **RESULT_DATA,
        "upstream": {"assertions": {"checked": 10, "failed": 2, "by_rule": {"require_system": 2}}},
        "by_mode": {
            "stream": {
                "metrics": {"token_delay_ms": _summary(p99=150.0)},
                "realtime": {"streams": 4, "buffered": 4},
            }
        },
        "gateway": {"metrics_lint": {"series": 9, "problems": 0, "missing": 0}},
    }
    checks = {
        "upstream.assertions.failed": "== 0",
        "upstream.assertions.by_rule.require_system": "== 0",
        "stream.token_delay_ms.p99": "< 20",
        "stream.realtime.buffered": "== 0",
        "gateway.metrics_lint.problems": "== 0",
    }
    got = {g.name: (g.value, g.passed) for g in evaluate_gates(checks, Result.model_validate(data))}
    assert got == {
        "upstream.assertions.failed": (2.0, False),
        "upstream.assertions.by_rule.require_system": (2.0, False),
        "stream.token_delay_ms.p99": (150.0, False),
        "stream.realtime.buffered": (4.0, False),
        "gateway.metrics_lint.problems": (0.0, True),
    }
    # Not configured: None in the result, so the gate fails with "no data", never passes.
    bare = evaluate_gates(checks, Result.model_validate(RESULT_DATA))
    assert [(g.passed, g.reason) for g in bare] == [(False, "no data")] * 5
