"""JUnit XML: parsed back with xml.etree; one case per gate, failure iff the gate failed."""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from loadgate.report import render_junit
from tests.support.paths import DATA


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / name).read_text())
    return data


def _suite(xml: str) -> tuple[ET.Element, ET.Element]:
    root = ET.fromstring(xml.encode("utf-8"))
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    return root, suites[0]


@pytest.mark.parametrize("name", ["sample_pass.json", "sample_fail.json"])
def test_one_case_per_gate_failure_iff_failed(name: str) -> None:
    data = _load(name)
    root, suite = _suite(render_junit(data))
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [g["name"] for g in data["gates"]]
    assert {c.get("classname") for c in cases} == {"loadgate.judge.gates"}
    for case, gate in zip(cases, data["gates"], strict=True):
        assert (case.find("failure") is not None) == (not gate["passed"])
        assert case.find("error") is None
    failed = sum(not g["passed"] for g in data["gates"])
    for el in (root, suite):
        assert el.get("tests") == str(len(data["gates"]))
        assert el.get("failures") == str(failed)
        assert el.get("errors") == "0"
        assert float(el.get("time", "x")) == data["duration_s"]


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
    data = _load("sample_pass.json")
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
    _, suite = _suite(render_junit(data))
    fail = suite.find("testcase/failure")
    assert fail is not None and fail.get("message") == "no data, budget > 0.9"


def test_invalid_run_is_an_error_case_with_every_reason() -> None:
    data = copy.deepcopy(_load("sample_pass.json"))
    data["verdict"] = "invalid"
    data["reasons"] = [
        "harness event-loop lag p99 9.10 ms > 5.0 ms: add workers",
        "harness CPU 99 % of a core > 95 %: loadgate was saturated",
    ]
    root, suite = _suite(render_junit(data))
    cases = suite.findall("testcase")
    assert len(cases) == len(data["gates"]) + 1
    err_cases = [c for c in cases if c.find("error") is not None]
    assert len(err_cases) == 1
    case = err_cases[0]
    assert case.get("classname") == "loadgate.harness" and case.get("name") == "harness.validity"
    err = case.find("error")
    assert err is not None and err.text is not None
    assert err.get("message") == f"run invalid: {data['reasons'][0]}"
    assert err.text.splitlines() == data["reasons"]
    assert root.get("errors") == suite.get("errors") == "1"
    assert suite.get("tests") == str(len(cases))


def test_special_characters_survive_the_round_trip() -> None:
    data = _load("sample_pass.json")
    sel = 'x_total{le="0.5",path="/a&b<c>"}'
    data["gates"] = [
        {"name": f"gateway.counters.{sel}", "op": "<", "threshold": 1, "value": 3, "passed": False}
    ]
    _, suite = _suite(render_junit(data))
    case = suite.find("testcase")
    assert case is not None and case.get("name") == f"gateway.counters.{sel}"
