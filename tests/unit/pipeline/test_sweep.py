"""Sweep decisions on synthetic step summaries: plan_next, stop rules, auto search, knee,
verdict, recommendation, CSV and the plot's data; the sweep directory's files. No runs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pytest

from loadgate.analysis.knee import (
    GatewayUsage,
    Mode,
    SweepPolicy,
    budget_gate,
    find_knee,
    plan_next,
    policy_from_sets,
    recommendation,
    steps_csv,
    stop_reason,
    summarize_step,
    sweep_verdict,
)
from loadgate.errors import UsageError
from loadgate.pipeline.sweep import (
    ChildSampler,
    _command_name,
    build_sweep_result,
    plan_mode,
    step_line,
    step_profile,
    write_sweep_directory,
)
from loadgate.profile import load_profile
from loadgate.result.io import load_result, load_run_result, to_json
from loadgate.result.model import Environment, StepRequests, SweepResult, SweepStep
from tests.support.paths import DATA

SVG = "{http://www.w3.org/2000/svg}"


def step(
    value: float,
    verdict: str = "pass",
    rps: float | None = 100.0,
    *,
    err: float = 0.0,
    p50: float = 1.0,
    p99: float = 2.0,
    reason: str = "",
    mode: Mode = "concurrency",
    interrupted: str | None = None,
    control: float | None = None,
) -> SweepStep:
    gate_ok = verdict != "fail"
    gates = [
        {"name": "overhead_ms.p99", "op": "<", "threshold": 50.0, "value": p99, "passed": gate_ok}
    ]
    reasons = [] if verdict == "pass" else [reason or f"{verdict} reason"]
    return SweepStep.model_validate({
        mode: value,
        "value": value,
        "verdict": verdict,
        "reasons": reasons,
        "gates": gates,
        "requests": {"sent": 10, "ok": 10, "failed": 0, "error_rate": err, "throughput_rps": rps},
        "metrics": {
            "overhead_ms": {"p50": p50, "p99": p99},
            "ttft_overhead_ms": {"p50": p50 / 2, "p99": p99 / 2},
        },
        "harness": {"valid": verdict != "invalid", "control_overhead_p99_ms": control},
        "gateway": {"cpu_percent": None, "rss_mb": None},
        "interrupted": interrupted,
    })  # fmt: skip


# ---------------------------------------------------------------- explicit lists


def test_explicit_values_run_in_ascending_order_then_stop() -> None:
    steps: list[SweepStep] = []
    seen = []
    while (v := plan_next(steps, SweepPolicy(), [16, 4, 8])) is not None:
        seen.append(v)
        steps.append(step(v, rps=v * 10))
    assert seen == [4, 8, 16]


def test_steps_past_a_failing_one_are_skipped_when_the_policy_says_so() -> None:
    steps = [step(2, rps=20), step(4, rps=40), step(8, "fail", rps=80)]
    assert plan_next(steps, SweepPolicy(stop_after_fail=True), [2, 4, 8, 16]) is None
    assert "sweep.stop_after_fail" in (stop_reason(steps, SweepPolicy(stop_after_fail=True)) or "")
    # Default policy: throughput still doubled and few errors → keep going.
    assert plan_next(steps, SweepPolicy(), [2, 4, 8, 16]) == 16


def test_saturation_stops_when_a_failing_step_adds_under_min_growth() -> None:
    steps = [step(8, rps=100.0), step(16, "fail", rps=104.9)]
    why = stop_reason(steps, SweepPolicy())
    assert why is not None and why.startswith("saturated at 16") and "+4.9%" in why
    assert plan_next(steps, SweepPolicy(), [8, 16, 32]) is None
    # 5 % exactly is growth enough; a passing step never stops the sweep.
    assert stop_reason([step(8, rps=100.0), step(16, "fail", rps=105.0)], SweepPolicy()) is None
    assert stop_reason([step(8, rps=100.0), step(16, rps=90.0)], SweepPolicy()) is None


def test_error_rate_over_the_limit_stops() -> None:
    steps = [step(8, rps=100.0), step(16, "fail", rps=300.0, err=0.11)]
    why = stop_reason(steps, SweepPolicy())
    assert why is not None and why.startswith("failing at 16: error rate 11.0% > 10%")
    assert stop_reason(steps, SweepPolicy(max_error_rate=0.2)) is None


def test_invalid_stops_by_default_and_is_reported_as_harness_bound() -> None:
    steps = [step(8), step(16, "invalid", reason="harness CPU 99 % of a core > 95 %")]
    assert (
        stop_reason(steps, SweepPolicy())
        == "harness-bound at 16: harness CPU 99 % of a core > 95 %"
    )
    assert plan_next(steps, SweepPolicy(), [8, 16, 32]) is None
    assert plan_next(steps, SweepPolicy(stop_on_invalid=False), [8, 16, 32]) == 32


def test_interrupted_step_always_stops() -> None:
    last = step(16, "invalid", interrupted="SIGINT")
    policy = SweepPolicy(stop_on_invalid=False)
    assert plan_next([step(8), last], policy, [8, 16, 32]) is None
    assert plan_next([step(8), last], policy) is None


def test_max_steps_bounds_every_mode() -> None:
    steps = [step(v) for v in (1, 2, 3)]
    assert plan_next(steps, SweepPolicy(max_steps=3), [1, 2, 3, 4]) is None
    assert plan_next(steps, SweepPolicy(max_steps=3)) is None


# ---------------------------------------------------------------- automatic search


def drive(
    verdict_of: Callable[[float], str], policy: SweepPolicy | None = None, integer: bool = True
) -> list[SweepStep]:
    policy = policy or SweepPolicy()
    steps: list[SweepStep] = []
    while (v := plan_next(steps, policy, integer=integer)) is not None:
        assert v not in [s.value for s in steps], "a value ran twice"
        steps.append(step(v, verdict_of(v), rps=v))
    return steps


def test_auto_doubles_then_bisects_to_the_resolution() -> None:
    steps = drive(lambda v: "pass" if v <= 40 else "fail")
    assert [s.value for s in steps] == [8, 16, 32, 64, 48, 40, 44]
    assert find_knee(steps).max_concurrency == 40


def test_auto_halves_when_the_first_step_fails() -> None:
    steps = drive(lambda v: "pass" if v <= 4 else "fail")
    assert [s.value for s in steps] == [8, 4, 6, 5]
    assert find_knee(steps).max_concurrency == 4
    nothing = drive(lambda v: "fail")
    assert [s.value for s in nothing] == [8, 4, 2, 1]
    assert find_knee(nothing).max_concurrency is None


@pytest.mark.parametrize("k", [1, 2, 3, 7, 9, 15, 33, 100, 257, 1000, 3000])
def test_auto_finds_every_knee_within_ten_percent(k: int) -> None:
    steps = drive(lambda v: "pass" if v <= k else "fail")
    knee = find_knee(steps).max_concurrency
    assert knee is not None
    assert knee <= k and (k - knee <= 0.1 * knee or k - knee < 1)
    assert len(steps) <= 20


def test_auto_stops_at_max_value_and_says_the_limit_is_above() -> None:
    steps = drive(lambda v: "pass", SweepPolicy(max_value=64))
    assert [s.value for s in steps] == [8, 16, 32, 64]
    knee = find_knee(steps)
    assert knee.max_concurrency == 64 and knee.limited_by == "untested"


def test_auto_treats_an_invalid_step_as_an_upper_bound() -> None:
    steps = drive(lambda v: "pass" if v <= 20 else "invalid", SweepPolicy(start=10))
    assert [s.value for s in steps] == [10, 20, 40, 30, 25, 22]
    knee = find_knee(steps)
    assert knee.max_concurrency == 20 and knee.limited_by == "harness"


def test_auto_rates_are_not_rounded_to_integers() -> None:
    steps = drive(lambda v: "pass" if v <= 130 else "fail", SweepPolicy(start=100.0), integer=False)
    assert [s.value for s in steps] == [100.0, 200.0, 150.0, 125.0, 138.0, 132.0]
    assert find_knee(steps, "rate").max_rate == 125.0


# ---------------------------------------------------------------- knee and verdict


def test_knee_is_the_largest_passing_step_before_the_first_failure() -> None:
    steps = [
        step(16, "fail", rps=150, p99=80.0),
        step(4, rps=40, p99=3.0),
        step(8, rps=79.5, p99=4.5),
    ]
    knee = find_knee(steps)
    assert knee.model_dump() == {
        "max_concurrency": 8,
        "max_rate": None,
        "throughput_rps": 79.5,
        "overhead_p99_ms": 4.5,
        "first_not_passing": 16,
        "limited_by": "gateway",
        "reason": "gates failed at 16: overhead_ms.p99 = 80 (needs < 50)",
    }
    assert sweep_verdict(steps, knee) == ("pass", [], 0)


def test_invalid_step_is_never_the_gateways_limit() -> None:
    steps = [step(4), step(8, "invalid", reason="harness event-loop lag p99 9 ms > 5 ms"), step(16)]
    knee = find_knee(steps)
    assert knee.max_concurrency == 4 and knee.limited_by == "harness"
    assert knee.reason.startswith("harness-bound at 8: harness event-loop lag p99 9 ms > 5 ms")
    assert "16 passed again above it" in knee.reason


def test_a_pass_above_a_failure_is_not_the_knee() -> None:
    knee = find_knee([step(4), step(8, "fail"), step(16)])
    assert knee.max_concurrency == 4
    assert "note: 16 passed again above it" in knee.reason


def test_no_passing_step_fails_the_sweep() -> None:
    steps = [step(4, "fail"), step(8, "fail")]
    knee = find_knee(steps)
    assert knee.max_concurrency is None and knee.reason.startswith("no step passed; gates")
    verdict, reasons, code = sweep_verdict(steps, knee)
    assert (verdict, code) == ("fail", 1) and reasons == [knee.reason]


def test_harness_bound_smallest_step_makes_the_sweep_invalid() -> None:
    steps = [step(4, "invalid", reason="stub late"), step(8)]
    verdict, reasons, code = sweep_verdict(steps, find_knee(steps))
    assert (verdict, code) == ("invalid", 3)
    assert reasons == ["the smallest step (4) was harness-bound: stub late"]
    assert sweep_verdict([], find_knee([])) == ("invalid", ["no steps ran"], 3)


def test_rate_knee_uses_max_rate() -> None:
    steps = [step(100.0, mode="rate"), step(250.5, "fail", mode="rate")]
    knee = find_knee(steps, "rate")
    assert knee.max_rate == 100.0 and knee.max_concurrency is None
    assert knee.reason.startswith("gates failed at 250.5")


# ---------------------------------------------------------------- recommendation


def test_recommendation_line() -> None:
    knee = find_knee([step(32, rps=300), step(64, rps=412.4, p99=6.14), step(128, "fail")])
    line = recommendation(
        knee, "concurrency", gateway="mygw", machine="box (Xeon, 8 CPUs)", budget=("<", 20.0)
    )
    assert line == (
        "One instance of mygw sustains 64 concurrent requests (412 req/s) with p99 overhead "
        "6.1 ms < 20 ms budget on box (Xeon, 8 CPUs); plan for ≤ 70% of that: 44."
    )
    rate = recommendation(
        find_knee([step(500.0, rps=498.0)], "rate"), "rate", gateway="g", machine="m", budget=None
    )
    assert rate.startswith("One instance of g sustains at least 500 req/s offered (498 req/s")
    assert rate.endswith("plan for ≤ 70% of that: 350 req/s.")
    none = recommendation(find_knee([step(4, "fail")]), "concurrency", gateway="g", machine="m",
                          budget=None)  # fmt: skip
    assert none.startswith("No step passed its gates for g on m: gates failed at 4:")


def test_budget_gate_comes_from_the_overhead_p99_gate() -> None:
    assert budget_gate({"overhead_ms.p99": "<= 20", "requests.error_rate": "< 0.01"}) == (
        "<=",
        20.0,
    )
    assert budget_gate({"requests.error_rate": "< 0.01"}) is None


# ---------------------------------------------------------------- policy from --set


def test_policy_from_sets_splits_sweep_keys() -> None:
    policy, rest = policy_from_sets(
        ["load.duration=2s", "sweep.stop_after_fail=true", "sweep.min_growth=0.1",
         "sweep.max_steps=5", "sweep.start=3"]
    )  # fmt: skip
    assert rest == ["load.duration=2s"]
    assert policy == SweepPolicy(stop_after_fail=True, min_growth=0.1, max_steps=5, start=3.0)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("sweep.nope=1", "--set sweep.nope: unknown sweep key"),
        ("sweep.stop_after_fail=1", "--set sweep.stop_after_fail: must be true or false"),
        ("sweep.min_growth=fast", "--set sweep.min_growth: must be a positive number"),
        ("sweep.max_steps=2.5", "--set sweep.max_steps: must be a positive integer"),
        ("sweep.start=0", "--set sweep.start: must be a positive number"),
        ("sweep.min_growth=-1", "--set sweep.min_growth: must not be negative"),
    ],
)
def test_policy_from_sets_rejects_bad_values(item: str, message: str) -> None:
    with pytest.raises(UsageError, match="^" + message.replace(".", r"\.")):
        policy_from_sets([item])


# ---------------------------------------------------------------- summaries and outputs


def test_summarize_step_from_a_result() -> None:
    result = load_run_result(DATA / "sample_pass.json")
    s = summarize_step(16, "concurrency", result, GatewayUsage(42.0, 80.5), "step-16/r")
    assert s.model_extra == {"concurrency": 16} and s.value == 16
    assert s.verdict == "pass" and s.harness.valid is True
    assert s.requests == StepRequests(
        sent=22500, ok=22500, failed=0, error_rate=0.0, throughput_rps=750.0
    )
    ovh = s.metrics["overhead_ms"]
    assert (ovh["p50"], ovh["p99"]) == (1.033, 2.069)
    # The p99's 95 % interval from the stored histogram (compare's estimator) holds it.
    low, high = ovh["p99_low"], ovh["p99_high"]
    assert low is not None and high is not None and low < 2.069 < high
    assert s.goodput_ratio is None  # no [slo] in that run
    assert s.gateway.cpu_percent == 42.0 and s.gateway.rss_mb == 80.5
    assert s.harness.loop_lag_p99_ms == 0.412
    assert s.harness.control_overhead_p99_ms is None  # a result from before control groups
    assert s.result == "step-16/r"
    assert [g.name for g in s.gates] == [g.name for g in result.gates]
    # The JSON form names the step's load by its mode, as readers of early files expect.
    assert json.loads(s.model_dump_json())["concurrency"] == 16


def test_summarize_step_records_the_control_groups_p99() -> None:
    result = load_run_result(DATA / "v1_control_run.json")
    s = summarize_step(100, "concurrency", result)
    assert result.harness.control is not None
    assert s.harness.control_overhead_p99_ms == result.harness.control.p99() == 0.072
    assert s.metric("overhead_ms", "p99") == 2.307  # beside it: the step's own
    back = SweepStep.model_validate_json(s.model_dump_json())
    assert back.harness.control_overhead_p99_ms == 0.072
    # A sweep file from before the key: the step loads, with no floor.
    old = load_result(DATA / "sample_sweep.json")
    assert isinstance(old, SweepResult)
    assert all(st.harness.control_overhead_p99_ms is None for st in old.steps)


def test_step_profile_switches_the_load_model() -> None:
    base = load_profile("smoke")
    closed = step_profile(base, "concurrency", 12)
    assert closed.load.concurrency == 12 and closed.load.rate is None
    opened = step_profile(base, "rate", 250.0)
    assert opened.load.rate == 250.0 and opened.load.concurrency is None
    assert opened.load.duration_s == base.load.duration_s and opened.gates == base.gates


def test_steps_csv_is_sorted_with_empty_cells_for_missing_figures() -> None:
    steps = [step(8, "fail", rps=None, p99=60.0, reason="x"), step(4, rps=40.0)]
    steps[0].harness.control_overhead_p99_ms = 0.25
    assert steps_csv(steps).splitlines() == [
        "concurrency,verdict,throughput_rps,overhead_p50_ms,overhead_p99_ms,"
        "control_overhead_p99_ms,ttft_overhead_p99_ms,error_rate,harness_valid,"
        "gateway_cpu_percent,gateway_rss_mb,reason",
        "4,pass,40.0,1.0,2.0,,1.0,0.0,True,,,",
        "8,fail,,1.0,60.0,0.25,30.0,0.0,True,,,x",
    ]


def series(svg: str) -> dict[str, ET.Element]:
    root = ET.fromstring(svg)
    return {
        p.get("data-series", ""): p for p in root.iter(f"{SVG}path") if p.get("class") == "series"
    }


def rules(svg: str) -> dict[str, float]:
    root = ET.fromstring(svg)
    return {
        g.get("data-rule", ""): float(g.get("data-value", "nan"))
        for g in root.iter(f"{SVG}g")
        if g.get("class") == "rule"
    }


def points(path: ET.Element) -> list[tuple[float, float]]:
    out = []
    for part in (path.get("d") or "").split():
        x, y = part[1:].split(",")
        out.append((float(x), float(y)))
    return out


def make_sweep(tmp: Path, steps: list[SweepStep], gates: dict[str, str]) -> SweepResult:
    profile = load_profile("smoke").model_copy(update={"gates": gates})
    return build_sweep_result(
        profile,
        "concurrency",
        steps,
        SweepPolicy(),
        values=[2, 4, 8, 16],
        stopped="saturated at 8",
        target=None,
        sweep_dir=tmp,
        started_at=datetime(2024, 6, 1, tzinfo=UTC),
        duration_s=12.34567,
        environment=Environment(host="box", cpu_model="Xeon", cpus=8),
    )


def write_sweep(tmp: Path, steps: list[SweepStep], gates: dict[str, str]) -> SweepResult:
    data = make_sweep(tmp, steps, gates)
    write_sweep_directory(data, tmp)
    return data


def test_outputs_plot_each_steps_figures_and_mark_knee_and_budget(tmp_path: Path) -> None:
    steps = [
        step(v, rps=r, p99=p) for v, r, p in ((2, 20.0, 1.5), (4, 39.0, 2.0), (8, 41.0, 120.0))
    ]
    steps[2].verdict = "fail"
    data = write_sweep(tmp_path, steps, {"overhead_ms.p99": "< 50"})
    assert data.budget is not None
    assert data.budget.model_dump() == {"name": "overhead_ms.p99", "op": "<", "threshold": 50.0}
    assert data.skipped == [16] and data.knee.max_concurrency == 4
    assert data.recommendation.endswith("on box (Xeon, 8 CPUs); plan for ≤ 70% of that: 2.")
    loaded = load_result(tmp_path / "result.json")
    assert isinstance(loaded, SweepResult) and to_json(loaded) == to_json(data)
    svg = (tmp_path / "sweep.svg").read_text()
    found = series(svg)
    thr, p99 = found["throughput (req/s)"], found["overhead p99 (ms)"]
    assert thr.get("data-x") == "2,4,8" and thr.get("data-y") == "20,39,41"
    assert p99.get("data-x") == "2,4,8" and p99.get("data-y") == "1.5,2,120"
    # The drawn points follow the data: x grows with the step; a larger figure is
    # higher up (smaller SVG y) on its chart.
    tp, pp = points(thr), points(p99)
    assert len(tp) == len(pp) == 3
    assert tp[0][0] < tp[1][0] < tp[2][0]
    assert tp[0][1] > tp[1][1] > tp[2][1]
    assert pp[0][1] > pp[1][1] > pp[2][1]
    # log x axis for doubling steps: equal ratios, equal distances
    assert tp[1][0] - tp[0][0] == pytest.approx(tp[2][0] - tp[1][0], abs=0.02)
    assert rules(svg) == {"knee: 4": 4.0, "budget 50 ms": 50.0}
    rows = (tmp_path / "sweep.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows] == ["concurrency", "2", "4", "8"]
    assert "Knee: concurrency 4" in (tmp_path / "report.html").read_text()


def test_outputs_show_each_steps_control_p99_beside_its_overhead(tmp_path: Path) -> None:
    steps = [
        step(v, rps=r, p99=p, control=c)
        for v, r, p, c in ((2, 20.0, 1.5, 0.05), (4, 39.0, 2.0, None), (8, 41.0, 120.0, 0.4))
    ]
    write_sweep(tmp_path, steps, {"overhead_ms.p99": "< 50"})
    found = series((tmp_path / "sweep.svg").read_text())
    floor = found["control overhead p99, the floor (ms)"]
    assert floor.get("data-x") == "2,4,8" and floor.get("data-y") == "0.05,null,0.4"
    assert floor.get("stroke-dasharray") is not None  # dashed: the floor, not a figure
    assert found["overhead p99 (ms)"].get("data-y") == "1.5,2,120"
    page = (tmp_path / "report.html").read_text()
    head = page.split("<h2>Steps</h2>", 1)[1]
    assert "<th>overhead p99 (ms)</th><th>control overhead p99, the floor (ms)</th>" in head
    assert '<td>1.5</td><td><span class="floor">0.05</span></td>' in head
    assert '<td>2</td><td><span class="floor">–</span></td>' in head
    csv_rows = (tmp_path / "sweep.csv").read_text().splitlines()
    assert [r.split(",")[5] for r in csv_rows] == ["control_overhead_p99_ms", "0.05", "", "0.4"]


def test_outputs_without_a_control_group_have_no_floor(tmp_path: Path) -> None:
    write_sweep(tmp_path, [step(2), step(4)], {})
    svg = (tmp_path / "sweep.svg").read_text()
    assert "control overhead p99, the floor (ms)" not in series(svg)
    assert "control overhead" not in (tmp_path / "report.html").read_text()


def test_outputs_without_a_knee_or_budget_have_no_rules(tmp_path: Path) -> None:
    data = write_sweep(tmp_path, [step(2, "fail"), step(3, "fail")], {})
    assert data.budget is None and data.verdict == "fail"
    svg = (tmp_path / "sweep.svg").read_text()
    assert rules(svg) == {}
    assert series(svg)["throughput (req/s)"].get("data-x") == "2,3"


# ---------------------------------------------------------------- gateway CPU / RSS


def test_usage_arithmetic_over_the_last_window() -> None:
    sampler = ChildSampler()
    # (t, CPU seconds, RSS bytes): 0.5 CPU s over the last 2 s window = 25 % of a core
    sampler.samples[77] = [(0.0, 0.0, 409_600), (1.0, 0.9, 409_600), (2.0, 1.0, 8_192_000),
                           (3.0, 1.25, 4_096_000), (4.0, 1.5, 4_096_000)]  # fmt: skip
    assert sampler.usage(77, 2.0) == GatewayUsage(cpu_percent=25.0, rss_mb=8.2)
    assert sampler.usage(78, 2.0) == GatewayUsage()
    assert sampler.usage(None, 2.0) == GatewayUsage(cpu_percent=None, rss_mb=None)


def test_sampler_sees_a_child_process() -> None:
    # The child says when Python is up: sampled earlier, it is still a bare fork whose
    # resident set can be a fraction of a MB (seen on a busy CI machine).
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == b"up\n"
        sampler = ChildSampler()
        sampler.sample()
        sampler.sample()
        rows = sampler.samples[child.pid]
        assert len(rows) == 2 and rows[-1][2] > 0
        usage = sampler.usage(child.pid, 10.0)
        assert usage.rss_mb is not None and usage.rss_mb > 1
    finally:
        child.kill()
        child.wait()


@pytest.mark.parametrize(
    ("command", "name"),
    [
        ("/usr/bin/python3.11 /x/limited_gateway.py --upstream {stub_url}", "limited_gateway.py"),
        ("python -m mygw.server --port {port}", "mygw.server"),
        ("./gw --port {port}", "gw"),
        ("env FOO=1 /opt/bin/litellm --port 4000", "litellm"),
        ("uv run litellm --config x.yaml", "litellm"),
        ("", "the gateway"),
    ],
)
def test_recommendation_names_the_launched_gateway_not_its_interpreter(
    command: str, name: str
) -> None:
    assert _command_name(command) == name


# ---------------------------------------------------------------- the sweep directory's files

OUTPUTS = ["sweep.svg", "sweep.csv", "report.html", "result.json"]


def test_every_output_appears_whole_by_a_rename_and_the_result_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    renamed: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src: Any, dst: Any) -> None:
        renamed.append((Path(src).name, Path(dst).name))
        assert not Path(dst).exists()  # nothing was written in place before the rename
        real_replace(src, dst)

    monkeypatch.setattr("loadgate.result.io.os.replace", spy)
    write_sweep(tmp_path, [step(2), step(4, "fail")], {"overhead_ms.p99": "< 50"})
    assert [dst for _, dst in renamed] == OUTPUTS
    assert all(src.startswith(f".{dst}.") and src.endswith(".tmp") for src, dst in renamed)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(OUTPUTS)


def test_a_failing_write_leaves_no_partial_file_and_no_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replace = os.replace

    def full_disk_at_csv(src: Any, dst: Any) -> None:
        if Path(dst).name == "sweep.csv":
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr("loadgate.result.io.os.replace", full_disk_at_csv)
    data = make_sweep(tmp_path, [step(2), step(4, "fail")], {})
    with pytest.raises(OSError, match="No space left"):
        write_sweep_directory(data, tmp_path)
    # The plot written before is whole; the CSV is not there at all, nor its temp file,
    # and result.json (written last) was never written: no reader is misled.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.svg"]
    ET.fromstring((tmp_path / "sweep.svg").read_text())


# ---------------------------------------------------------------- CLI-facing pieces


def test_step_line() -> None:
    s = step(16, rps=812.34, p50=1.234, p99=5.678, err=0.0125)
    s.gateway.cpu_percent, s.gateway.rss_mb = 41.6, 80.4
    assert step_line(s) == (
        "sweep:     16  pass     812.3 req/s  overhead p50 1.23 p99 5.68 ms  "
        "ttft-ovh p99 2.84 ms  errors 1.25%  gw cpu 42 % rss 80 MB"
    )
    assert "gw cpu – % rss – MB" in step_line(step(8))
    line = step_line(step(8, control=0.072))
    assert "overhead p50 1.00 p99 2.00 (control p99 0.07) ms  " in line
    with_slo = step(8)
    with_slo.goodput_ratio = 0.9955
    assert step_line(with_slo).endswith("rss – MB  goodput 99.55%")


def test_plan_mode() -> None:
    closed, opened = load_profile("smoke"), load_profile("smoke", ["load.rate=50"])
    assert opened.load.concurrency is None
    assert plan_mode(closed, [16, 4, 4], None) == ("concurrency", [4.0, 16.0])
    assert plan_mode(closed, None, [250.0, 100.0]) == ("rate", [100.0, 250.0])
    assert plan_mode(closed, None, None) == ("concurrency", None)
    assert plan_mode(opened, None, None) == ("rate", None)


def test_sampler_counts_the_whole_tree_of_a_child() -> None:
    # A gateway's worker processes count: a child with one grandchild of the same size
    # weighs about twice the child alone, and the grandchild is not a tree of its own.
    code = (
        "import subprocess, sys, time;"
        "g = subprocess.Popen([sys.executable, '-c', \"print('up', flush=True);"
        'import time; time.sleep(30)"], stdout=subprocess.PIPE);'
        "g.stdout.readline(); print(g.pid, flush=True); time.sleep(30)"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    grandchild: int | None = None
    try:
        assert child.stdout is not None
        grandchild = int(child.stdout.readline())
        sampler = ChildSampler()
        sampler.sample()
        own = psutil.Process(child.pid).memory_info().rss
        assert grandchild not in sampler.samples
        (row,) = sampler.samples[child.pid]
        assert row[2] > 1.5 * own
    finally:
        if grandchild is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(grandchild, signal.SIGKILL)
        child.kill()
        child.wait()
