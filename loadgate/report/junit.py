"""JUnit XML for CI: one test case per gate, an error case for an invalid run.

The layout is the one Jenkins, GitLab and GitHub test reporters all read:
``<testsuites>`` → ``<testsuite name tests failures errors skipped time>`` →
``<testcase classname name time>`` with ``<failure message type>``,
``<error message type>`` or ``<skipped message>``. A failed gate's message is
what a reviewer needs without opening anything: ``measured 23.4 ms, budget < 20``.
A gate the run could not decide (invalid run, or within the harness's noise) is
``<skipped>`` with why: it is neither a pass nor a failure of the gateway.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from loadgate.report._fmt import gate_line, gate_measured, gate_outcome
from loadgate.result.model import Result

__all__ = ["GATE_CLASSNAME", "HARNESS_CLASSNAME", "render_junit"]

GATE_CLASSNAME = "loadgate.judge.gates"
HARNESS_CLASSNAME = "loadgate.harness"


def render_junit(result: Result, suite_name: str | None = None) -> str:
    """The result as a JUnit XML document (UTF-8 text with an XML declaration)."""
    name = suite_name or f"loadgate {result.profile_name}"
    cases: list[ET.Element] = []
    failures = errors = skipped = 0
    for g in result.gates:
        case = ET.Element("testcase", classname=GATE_CLASSNAME, name=g.name, time="0")
        if not g.decided:
            skipped += 1
            why = g.undecided_reason or "the run cannot back this answer"
            skip = ET.SubElement(case, "skipped", message=f"{gate_outcome(g)}: {why}")
            skip.text = gate_line(g)
        elif not g.passed:
            failures += 1
            fail = ET.SubElement(case, "failure", message=gate_measured(g), type="gate")
            fail.text = gate_line(g)
        cases.append(case)
    if result.verdict == "invalid":
        errors += 1
        reasons = result.reasons or ["run invalid"]
        case = ET.Element(
            "testcase", classname=HARNESS_CLASSNAME, name="harness.validity", time="0"
        )
        err = ET.SubElement(case, "error", message=f"run invalid: {reasons[0]}", type="invalid")
        err.text = "\n".join(reasons)
        cases.append(case)
    counts = {
        "tests": str(len(cases)),
        "failures": str(failures),
        "errors": str(errors),
        "skipped": str(skipped),
        "time": f"{result.duration_s:.3f}",
    }
    root = ET.Element("testsuites", {"name": "loadgate", **counts})
    suite = ET.SubElement(root, "testsuite", {"name": name, **counts})
    if result.started_at:
        suite.set("timestamp", result.started_at)
    if result.environment.host:
        suite.set("hostname", result.environment.host)
    suite.extend(cases)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
