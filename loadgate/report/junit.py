"""JUnit XML for CI: one test case per gate, an error case for an invalid run.

The layout is the one Jenkins, GitLab and GitHub test reporters all read:
``<testsuites>`` → ``<testsuite name tests failures errors skipped time>`` →
``<testcase classname name time>`` with ``<failure message type>`` or
``<error message type>``. A failed gate's message is what a reviewer needs
without opening anything: ``measured 23.4 ms, budget < 20``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from loadgate.report._fmt import gate_line, gate_measured, num

__all__ = ["GATE_CLASSNAME", "HARNESS_CLASSNAME", "render_junit"]

GATE_CLASSNAME = "loadgate.judge.gates"
HARNESS_CLASSNAME = "loadgate.harness"


def render_junit(data: Mapping[str, Any], suite_name: str | None = None) -> str:
    """The result as a JUnit XML document (UTF-8 text with an XML declaration)."""
    name = suite_name or f"loadgate {(data.get('profile') or {}).get('name', 'run')}"
    gates = [g for g in data.get("gates") or [] if isinstance(g, Mapping)]
    duration = num(data.get("duration_s")) or 0.0
    cases: list[ET.Element] = []
    failures = errors = 0
    for g in gates:
        case = ET.Element(
            "testcase", classname=GATE_CLASSNAME, name=str(g.get("name", "?")), time="0"
        )
        if not g.get("passed"):
            failures += 1
            fail = ET.SubElement(case, "failure", message=gate_measured(g), type="gate")
            fail.text = gate_line(g)
        cases.append(case)
    if data.get("verdict") == "invalid":
        errors += 1
        reasons = [str(r) for r in data.get("reasons") or []] or ["run invalid"]
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
        "skipped": "0",
        "time": f"{duration:.3f}",
    }
    root = ET.Element("testsuites", {"name": "loadgate", **counts})
    suite = ET.SubElement(root, "testsuite", {"name": name, **counts})
    if data.get("started_at"):
        suite.set("timestamp", str(data["started_at"]))
    host = (data.get("environment") or {}).get("host")
    if host:
        suite.set("hostname", str(host))
    suite.extend(cases)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
