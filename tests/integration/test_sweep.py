"""`loadgate sweep` on loopback against a gateway of known capacity K (issue 6).

The gateway (tests/support/limited_gateway.py) serves at most K = 4 requests at
once; the rest queue. The margins make every verdict independent of the
machine's speed:

* the stub's service time is ≥ 600 ms (TTFT 600 ms + 4 tokens × 5 ms), so above
  K every request waits about one service time for a slot: overhead p99 ≥ 600 ms,
  twice the 300 ms budget;
* at or below K nothing queues, and the pass-through costs a few ms: the budget
  leaves ~300 ms for a loaded 2-core machine's scheduling noise (seen on a noisy VM:
  77 and 161 ms at K, with the harness's own loop lag p99 at 36 ms — a 60 ms budget
  was not enough);
* the harness's own limits are relaxed (not under test here), so no step can
  turn ``invalid`` on a busy CI runner.

Runs are short (0.5 s warm-up, 3 s measured) and bounded by ``load.max_requests``.
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from loadgate.cli import main

pytestmark = pytest.mark.timeout(240)

K = 4
GATEWAY = Path(__file__).resolve().parents[1] / "support" / "limited_gateway.py"
SVG = "{http://www.w3.org/2000/svg}"


def write_profile(tmp: Path) -> Path:
    command = (
        f"{shlex.quote(sys.executable)} {shlex.quote(str(GATEWAY))} "
        f"--upstream {{stub_url}} --port {{port}} --limit {K}"
    )
    path = tmp / "limited.toml"
    path.write_text(
        f"""
[load]
concurrency = 1
duration = "3s"
warmup = "0.5s"
stream_ratio = 0.5
max_tokens = 4
max_requests = 2000

[stub]
port = 0
ttft_ms = 600
itl_ms = 5
output_tokens = 4

[auth]
keys = 10

[gateway]
kind = "command"
command = {json.dumps(command)}
drain_check = false
[gateway.auth_cache]
hits = ""
misses = ""

[harness]
max_loop_lag_p99_ms = 1000
max_cpu_percent = 100
max_stub_lateness_p99_ms = 1000
max_send_lag_p99_ms = 1000

[gates]
"overhead_ms.p99" = "< 300"
"integrity.violations" = "== 0"
""",
        encoding="utf-8",
    )
    return path


def svg_series(path: Path) -> dict[str, tuple[list[float], list[float]]]:
    root = ET.parse(path).getroot()
    out = {}
    for p in root.iter(f"{SVG}path"):
        if p.get("class") == "series":
            xs = [float(v) for v in (p.get("data-x") or "").split(",")]
            ys = [float(v) for v in (p.get("data-y") or "").split(",")]
            out[p.get("data-series", "")] = (xs, ys)
    return out


def svg_rules(path: Path) -> dict[str, float]:
    root = ET.parse(path).getroot()
    return {
        g.get("data-rule", ""): float(g.get("data-value", "nan"))
        for g in root.iter(f"{SVG}g")
        if g.get("class") == "rule"
    }


def only_sweep_dir(runs: Path) -> Path:
    dirs = list(runs.glob("sweep-*"))
    assert len(dirs) == 1, dirs
    return dirs[0]


def test_knee_is_the_gateways_capacity(tmp_path: Path) -> None:
    profile = write_profile(tmp_path)
    out = tmp_path / "sweep.json"
    env = dict(os.environ, LOADGATE_RUNS_DIR=str(tmp_path / "runs"))
    proc = subprocess.run(
        [sys.executable, "-m", "loadgate", "sweep", str(profile), "--concurrency", "2,4,8",
         "--out", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=200, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    data: dict[str, Any] = json.loads(out.read_text())
    assert data["schema"] == "loadgate.result/1" and data["kind"] == "sweep"
    steps = data["steps"]
    assert [s["concurrency"] for s in steps] == [2, 4, 8]
    assert [s["verdict"] for s in steps] == ["pass", "pass", "fail"], [s["reasons"] for s in steps]
    assert data["knee"]["max_concurrency"] == K
    assert data["knee"]["limited_by"] == "gateway"
    assert data["knee"]["reason"].startswith("gates failed at 8: overhead_ms.p99 = ")
    assert data["knee"]["throughput_rps"] == steps[1]["requests"]["throughput_rps"]
    assert data["verdict"] == "pass" and data["exit_code"] == 0
    assert f"sustains {K} concurrent requests" in data["recommendation"]
    assert data["recommendation"] in proc.stdout

    # Each step is a full run in its own directory; the gateway held K, never more.
    sweep_dir = tmp_path / data["run_dir"]  # --out's directory: the same as `loadgate run`
    assert sweep_dir.parent == tmp_path and sweep_dir.name.startswith("sweep-limited-")
    floors = []
    for s in steps:
        step_result = json.loads((sweep_dir / s["result"]).read_text())
        assert step_result["profile"]["load"]["concurrency"] == s["value"]
        assert step_result["verdict"] == s["verdict"]
        # The step keeps its run's control-group overhead p99: the floor beside its own.
        control = step_result["harness"]["control"]
        assert control is not None and control["requests"] > 0
        floor = control["metrics"]["overhead_ms"]["p99"]
        assert s["harness"]["control_overhead_p99_ms"] == floor
        floors.append(floor)
    assert "limited_gateway max_inflight=4 " in (sweep_dir / "step-8" / "gateway.log").read_text()
    # loadgate launched the gateway, so its CPU and RSS were sampled.
    for s in steps:
        assert s["gateway"]["pid"] is not None
        assert s["gateway"]["rss_mb"] is not None and s["gateway"]["rss_mb"] > 1
        assert s["gateway"]["cpu_percent"] is not None and s["gateway"]["cpu_percent"] >= 0
    assert json.loads((sweep_dir / "result.json").read_text()) == data

    # The plot draws exactly the steps' figures; the knee and budget are marked.
    drawn = svg_series(sweep_dir / "sweep.svg")
    xs, rps = drawn["throughput (req/s)"]
    assert xs == [2, 4, 8]
    assert rps == pytest.approx([s["requests"]["throughput_rps"] for s in steps], rel=1e-5)
    xs, p99 = drawn["overhead p99 (ms)"]
    assert p99 == pytest.approx([s["metrics"]["overhead_ms"]["p99"] for s in steps], rel=1e-5)
    assert p99[2] > 300 > p99[1]
    assert svg_rules(sweep_dir / "sweep.svg") == {"knee: 4": 4.0, "budget 300 ms": 300.0}
    assert drawn["control overhead p99, the floor (ms)"][1] == pytest.approx(floors, rel=1e-5)
    with (sweep_dir / "sweep.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["concurrency"] for r in rows] == ["2", "4", "8"]
    assert [r["verdict"] for r in rows] == ["pass", "pass", "fail"]
    assert [float(r["control_overhead_p99_ms"]) for r in rows] == pytest.approx(floors)


def test_steps_past_a_failing_one_are_skipped_when_the_policy_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # In-process, through the CLI's own entry point: the step lines arrive by the callback.
    profile = write_profile(tmp_path)
    monkeypatch.setenv("LOADGATE_RUNS_DIR", str(tmp_path / "runs"))
    argv = ["sweep", str(profile), "--concurrency", "4,8,16,32",
            "--set", "sweep.stop_after_fail=true"]  # fmt: skip
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    sweep_dir = only_sweep_dir(tmp_path / "runs")
    data = json.loads((sweep_dir / "result.json").read_text())
    assert [s["concurrency"] for s in data["steps"]] == [4, 8]
    assert [s["verdict"] for s in data["steps"]] == ["pass", "fail"]
    assert data["skipped"] == [16, 32]
    assert data["stopped"] == "gates failed at 8 and sweep.stop_after_fail is set"
    assert data["knee"]["max_concurrency"] == K
    assert data["policy"]["stop_after_fail"] is True
    out, err = capsys.readouterr()
    step_lines = [
        line for line in err.splitlines() if line.startswith("sweep: ") and "req/s" in line
    ]
    assert [line.split()[1:3] for line in step_lines] == [["4", "pass"], ["8", "fail"]]
    assert "sweep: stopped early: gates failed at 8" in err
    assert "sweep: skipped 16, 32" in err
    assert f"sweep: pass — results, plot and CSV in {sweep_dir}" in out


def test_frontier_brackets_the_gateways_rate_capacity(tmp_path: Path) -> None:
    # Capacity 4 at ~615 ms a request: ~6.5 req/s. 2 req/s queues nothing; at 8 req/s
    # the queue grows by 1.5 requests a second, waits pass 300 ms within the step.
    profile = write_profile(tmp_path)
    out = tmp_path / "frontier.json"
    env = dict(os.environ, LOADGATE_RUNS_DIR=str(tmp_path / "runs"))
    proc = subprocess.run(
        [sys.executable, "-m", "loadgate", "sweep", str(profile), "--frontier", "300",
         "--set", "sweep.start=2", "--set", "sweep.max_steps=4", "--out", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=200, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    data: dict[str, Any] = json.loads(out.read_text())
    assert [s["rate"] for s in data["steps"]] == [2, 4, 8, 6]
    point = data["frontier"]["points"][0]
    # 6 req/s sits near the capacity: either side of the bound is a right answer.
    assert (point["max_rate"], point["first_over"]) in ((6, 8), (4, 6))
    over = next(s for s in data["steps"] if s["rate"] == 8)
    assert over["metrics"]["overhead_ms"]["p99"] >= 300
    assert "p99 < 300 ms:" in proc.stdout and "max rate" in proc.stdout
    sweep_dir = only_sweep_dir(tmp_path)  # beside --out
    drawn = {
        p.get("data-series"): p.get("data-y")
        for p in ET.parse(sweep_dir / "frontier.svg").getroot().iter(f"{SVG}path")
    }
    assert drawn["highest rate under the bound"] == f"{point['max_rate']:g}"
