"""The README's library example runs as written and says what it claims."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import ROOT

pytestmark = pytest.mark.timeout(120)


def readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## As a library", 1)[1]
    return section.split("```python\n", 1)[1].split("\n```", 1)[0]


def test_the_library_example_runs_and_writes_its_result(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", readme_example()],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    first, overhead, control = proc.stdout.splitlines()[:3]
    assert first.split()[0] in ("pass", "fail", "invalid")
    assert overhead.startswith("overhead p99 ") and control.startswith("control p99 ")
    assert float(control.split()[2]) >= 0  # the smoke profile has a gateway: a control group
    data = json.loads((tmp_path / "result.json").read_text())
    assert data["schema"] == "loadgate.result/1" and data["harness"]["control"]["requests"] > 0
