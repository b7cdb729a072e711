"""A frontier sweep's result, files and page from synthetic steps (no runs)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

from loadgate.analysis.knee import SweepPolicy
from loadgate.pipeline.sweep import build_sweep_result, write_sweep_directory
from loadgate.profile import load_profile
from loadgate.result.io import load_result
from loadgate.result.model import Environment, StepRequests, SweepResult, SweepStep
from tests.unit.analysis.test_frontier import queue_p99, search

SVG = "{http://www.w3.org/2000/svg}"
BOUNDS = [0.3, 1.0, 1000.0]
POLICY = SweepPolicy(start=50.0, max_value=1600.0, max_steps=40)


def _sweep(tmp: Path, steps: list[SweepStep]) -> SweepResult:
    return build_sweep_result(
        load_profile("smoke"),
        "rate",
        steps,
        POLICY,
        values=None,
        stopped=None,
        target=None,
        sweep_dir=tmp,
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        duration_s=60.0,
        environment=Environment(host="box", cpu_model="EPYC", cpus=2),
        frontier=BOUNDS,
    )


def _series(svg: str) -> dict[str, tuple[list[float], list[float | None]]]:
    out = {}
    for path in ET.fromstring(svg).iter(f"{SVG}path"):
        if path.get("class") == "series":
            xs = [float(v) for v in (path.get("data-x") or "").split(",") if v]
            ys = [None if v == "null" else float(v) for v in (path.get("data-y") or "").split(",")]
            out[path.get("data-series") or ""] = (xs, ys)
    return out


def test_the_frontier_result_files_and_page(tmp_path: Path) -> None:
    steps, _ = search(queue_p99, POLICY, bounds=tuple(BOUNDS))
    for s in steps:
        s.requests = StepRequests(
            sent=100, ok=100, failed=0, error_rate=0.0, throughput_rps=s.value
        )
    sweep = _sweep(tmp_path, steps)
    assert sweep.frontier is not None
    low, one, huge = sweep.frontier.points
    assert (low.status, one.status, huge.status) == ("not_reached", "found", "above_tried")
    assert huge.max_rate == 1600.0  # sweep.max_value: p99 there was 1.09 ms
    assert (sweep.verdict, sweep.exit_code) == ("pass", 0)
    assert sweep.recommendation == (
        "Highest offered rate of the reference gateway on box (EPYC, 2 CPUs) by overhead p99: "
        f"p99 < 0.3 ms: not reached; p99 < 1 ms: {one.max_rate:g} req/s; "
        "p99 < 1000 ms: >= 1600 req/s."
    )
    write_sweep_directory(sweep, tmp_path)
    assert {"frontier.svg", "sweep.svg", "report.html", "result.json"} <= {
        p.name for p in tmp_path.iterdir()
    }
    series = _series((tmp_path / "frontier.svg").read_text())
    assert series["highest rate under the bound"] == (BOUNDS, [None, one.max_rate, 1600.0])
    xs, p99 = series["overhead p99 (ms)"]
    assert xs == sorted(s.value for s in steps)
    assert p99[0] == float(f"{queue_p99(xs[0]):.6g}")  # the SVG keeps six figures
    page = (tmp_path / "report.html").read_text()
    assert "<h2>Throughput frontier</h2>" in page and "above the highest rate tried" in page
    back = load_result(tmp_path / "result.json")
    assert isinstance(back, SweepResult) and back.frontier == sweep.frontier


def test_an_older_sweep_file_has_no_frontier(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, [])
    assert sweep.frontier is not None and sweep.verdict == "invalid"
    old = SweepResult.model_validate({"schema": "loadgate.result/1", "kind": "sweep"})
    assert old.frontier is None
