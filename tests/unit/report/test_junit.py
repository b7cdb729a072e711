"""JUnit XML: parsed back with xml.etree; one case per gate, failure iff the gate failed,
skipped iff the run could not decide it."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from loadgate.report import render_junit
from loadgate.result import Result
from loadgate.result.io import load_run_result
from loadgate.result.model import Gate
from tests.support.paths import DATA


def _load(name: str) -> Result:
    return load_run_result(DATA / name)


def _suite(xml: str) -> tuple[ET.Element, ET.Element]:
    root = ET.fromstring(xml.encode("utf-8"))
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    return root, suites[0]


@pytest.mark.parametrize("name", ["sample_pass.json", "sample_fail.json"])
def test_one_case_per_gate_failure_iff_failed(name: str) -> None:
    result = _load(name)
    assert all(g.decided for g in result.gates)
    root, suite = _suite(render_junit(result))
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [g.name for g in result.gates]
    assert {c.get("classname") for c in cases} == {"loadgate.judge.gates"}
    for case, gate in zip(cases, result.gates, strict=True):
        assert (case.find("failure") is not None) == (not gate.passed)
        assert case.find("error") is None and case.find("skipped") is None
    failed = sum(not g.passed for g in result.gates)
    for el in (root, suite):
        assert el.get("tests") == str(len(result.gates))
        assert el.get("failures") == str(failed)
        assert el.get("errors") == "0" and el.get("skipped") == "0"
        assert float(el.get("time", "x")) == result.duration_s


def test_failure_message_names_measured_value_and_budget() -> None:
    _, suite = _suite(render_junit(_load("sample_fail.json")))
    by_name = {c.get("name"): c for c in suite.findall("testcase")}
    fail = by_name["overhead_ms.p99"].find("failure")
    assert fail is not None
    assert fail.get("message") == "measured 30.66 ms, budget < 20"
    assert fail.get("type") == "gate"
    viol = by_name["integrity.violations"].find("failure")
    assert viol is not None and viol.get("message") == "measured 2, budget == 0"


def test_gate_without_data_fails_with_its_reason() -> None:
    result = _load("sample_pass.json")
    result.gates = [
        Gate(
            name="gateway.auth_cache_hit_rate",
            op=">",
            threshold=0.9,
            value=None,
            passed=False,
            reason="no data",
        )
    ]
    _, suite = _suite(render_junit(result))
    fail = suite.find("testcase/failure")
    assert fail is not None and fail.get("message") == "no data, budget > 0.9"


def _invalid(result: Result, reasons: list[str]) -> Result:
    """``result`` as build_result leaves an invalid run: every gate undecided."""
    result.verdict, result.exit_code, result.reasons = "invalid", 3, reasons
    for g in result.gates:
        g.decided = False
        g.undecided_reason = "the run is invalid: its gates prove nothing either way"
    return result


def test_invalid_run_is_an_error_case_with_every_reason() -> None:
    reasons = [
        "harness event-loop lag p99 9.10 ms > 5.0 ms: add workers",
        "harness CPU 99 % of a core > 95 %: loadgate was saturated",
    ]
    result = _invalid(_load("sample_pass.json"), reasons)
    root, suite = _suite(render_junit(result))
    cases = suite.findall("testcase")
    assert len(cases) == len(result.gates) + 1
    err_cases = [c for c in cases if c.find("error") is not None]
    assert len(err_cases) == 1
    case = err_cases[0]
    assert case.get("classname") == "loadgate.harness" and case.get("name") == "harness.validity"
    err = case.find("error")
    assert err is not None and err.text is not None
    assert err.get("message") == f"run invalid: {reasons[0]}"
    assert err.text.splitlines() == reasons
    assert root.get("errors") == suite.get("errors") == "1"
    assert suite.get("tests") == str(len(cases))


def test_undecided_gates_are_skipped_not_failed() -> None:
    result = _invalid(_load("sample_fail.json"), ["interrupted by SIGINT: partial result"])
    assert sum(not g.passed for g in result.gates) == 3  # three would have failed
    root, suite = _suite(render_junit(result))
    gate_cases = [c for c in suite.findall("testcase") if c.get("name") != "harness.validity"]
    assert len(gate_cases) == 4
    for case in gate_cases:
        assert case.find("failure") is None
        skipped = case.find("skipped")
        assert skipped is not None
    by_name = {c.get("name"): c.find("skipped") for c in gate_cases}
    p99 = by_name["overhead_ms.p99"]
    assert p99 is not None and p99.get("message") == (
        "undecided (would fail): the run is invalid: its gates prove nothing either way"
    )
    assert p99.text == "overhead_ms.p99: measured 30.66 ms, budget < 20"
    hit = by_name["gateway.auth_cache_hit_rate"]
    assert hit is not None and str(hit.get("message")).startswith("undecided (would pass): ")
    for el in (root, suite):
        assert el.get("failures") == "0" and el.get("skipped") == "4" and el.get("errors") == "1"


def test_a_gate_within_the_noise_is_skipped_in_a_failing_run() -> None:
    result = _load("sample_fail.json")
    close = next(g for g in result.gates if g.name == "overhead_ms.p99")
    close.decided, close.undecided_reason = False, "within the harness's noise"
    root, suite = _suite(render_junit(result))
    by_name = {c.get("name"): c for c in suite.findall("testcase")}
    skipped = by_name["overhead_ms.p99"].find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "undecided (would fail): within the harness's noise"
    assert by_name["requests.error_rate"].find("failure") is not None
    assert root.get("failures") == "2" and root.get("skipped") == "1"


def test_special_characters_survive_the_round_trip() -> None:
    result = _load("sample_pass.json")
    sel = 'x_total{le="0.5",path="/a&b<c>"}'
    result.gates = [
        Gate(name=f"gateway.counters.{sel}", op="<", threshold=1, value=3, passed=False)
    ]
    _, suite = _suite(render_junit(result))
    case = suite.find("testcase")
    assert case is not None and case.get("name") == f"gateway.counters.{sel}"
