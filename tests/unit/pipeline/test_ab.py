"""ab: run order, side parsing, profile rewriting, and the session with a stand-in runner.

No real runs: :func:`run_ab` takes the runner as a seam, and the CLI's default runner is
replaced, so what is tested is where files go and what reaches the comparison."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadgate.analysis.power import parse_target
from loadgate.errors import UsageError
from loadgate.pipeline.ab import (
    FALLBACK_ROUNDS,
    AbOutcome,
    PowerSpec,
    SideSpec,
    parse_side,
    plan_rounds,
    profile_for_side,
    result_path,
    run_ab,
)
from loadgate.pipeline.run import RunOptions
from loadgate.profile import Profile, load_profile
from loadgate.result.io import load_run_result
from loadgate.result.model import LagSummary, Result
from tests.support import synthetic
from tests.support.cli import run_cli


def test_rounds_alternate_and_counterbalance() -> None:
    assert plan_rounds(1) == ["a", "b"]
    assert plan_rounds(4) == ["a", "b", "b", "a", "a", "b", "b", "a"]
    order = plan_rounds(6)
    # every side runs once per round, and on average at the same position in time
    assert order.count("a") == order.count("b") == 6
    mean_pos = {s: sum(i for i, x in enumerate(order) if x == s) / 6 for s in "ab"}
    assert mean_pos["a"] == mean_pos["b"]
    with pytest.raises(UsageError):
        plan_rounds(0)


def test_parse_side() -> None:
    assert parse_side("http://127.0.0.1:4000") == SideSpec("target", "http://127.0.0.1:4000")
    assert parse_side(" https://gw.example/v1 ") == SideSpec("target", "https://gw.example/v1")
    cmd = "./gw --upstream {stub_url} --listen 127.0.0.1:{port}"
    assert parse_side(cmd) == SideSpec("command", cmd)
    with pytest.raises(UsageError, match="--b: 'gw' is neither a URL"):
        parse_side("gw", "--b")
    with pytest.raises(UsageError, match="--a: empty"):
        parse_side("  ")


def test_profile_for_side() -> None:
    base = load_profile("smoke", ["gateway.reference.delay_ms=1"])
    prof, target = profile_for_side(base, parse_side("http://127.0.0.1:9"))
    assert prof is base and target == "http://127.0.0.1:9"
    prof, target = profile_for_side(base, parse_side("gw --up {stub_url} --port {port}"))
    assert target is None
    assert prof.gateway.kind == "command"
    assert prof.gateway.command == "gw --up {stub_url} --port {port}"
    # everything else is the same profile
    assert prof.load == base.load and prof.stub == base.stub
    assert prof.gateway.reference == base.gateway.reference
    assert base.gateway.kind == "reference"  # the original is untouched


def test_result_paths() -> None:
    assert result_path(Path("out"), "a", 1) == Path("out/a-1.json")
    assert result_path(Path("out"), "b", 3) == Path("out/b-3.json")


# ---------------------------------------------------------------- run_ab (no real runs)


class FakeRunner:
    """Stands in for ``pipeline.run.run``: synthetic results, B ``scale`` times slower."""

    def __init__(
        self,
        scale: float = 1.0,
        stop_on_call: int | None = None,
        spoil_calls: frozenset[int] = frozenset(),
        undecided_calls: frozenset[int] = frozenset(),
    ) -> None:
        self.scale = scale
        self.stop_on_call = stop_on_call
        self.spoil_calls = spoil_calls  # calls whose stub was 500 ms late (smoke: limit 100)
        self.undecided_calls = undecided_calls  # calls invalid only by an undecided gate
        self.calls: list[tuple[str | None, Path | None, str]] = []

    def __call__(self, profile: Profile, options: RunOptions) -> Result:
        side = "b" if options.run_dir is not None and options.run_dir.name.startswith("b") else "a"
        self.calls.append((options.target, options.run_dir, profile.gateway.kind))
        n = len(self.calls)
        data = synthetic.make_result(n, n=40_000, scale=self.scale if side == "b" else 1.0)
        result = Result.model_validate(data)
        if n == self.stop_on_call:
            result.verdict, result.interrupted = "invalid", "SIGINT"
        if n in self.spoil_calls:
            result.verdict = "invalid"
            result.harness.stub_timer_lateness_ms = LagSummary(p50=200.0, p99=500.0, max=800.0)
        if n in self.undecided_calls:
            result.verdict = "invalid"
            result.reasons = ["overhead_ms.p99: within the control group's noise of 20"]
        return result


def test_run_ab_files_each_round_under_the_runs_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOADGATE_RUNS_DIR", str(tmp_path / "runs"))
    runner = FakeRunner()
    lines: list[str] = []
    cmd = "gw --up {stub_url} --port {port}"
    outcome = run_ab(
        load_profile("smoke"),
        parse_side("http://127.0.0.1:9"),
        parse_side(cmd, "--b"),
        2,
        on_progress=lines.append,
        runner=runner,
    )
    out = outcome.out_dir
    assert out.parent == tmp_path / "runs" and out.name.startswith("ab-smoke-")
    # A B, then B A; each run in its own directory, its result also as <side>-<i>.json
    assert runner.calls == [
        ("http://127.0.0.1:9", out / "a-1", "reference"),
        (None, out / "b-1", "command"),
        (None, out / "b-2", "command"),
        ("http://127.0.0.1:9", out / "a-2", "reference"),
    ]
    assert [line.split(" → ")[0] for line in lines if " → " in line] == [
        "ab: round 1/2, A", "ab: round 1/2, B", "ab: round 2/2, B", "ab: round 2/2, A"
    ]  # fmt: skip
    assert outcome.a.paths == [out / "a-1.json", out / "a-2.json"]
    assert outcome.b.paths == [out / "b-1.json", out / "b-2.json"]
    for side in "ab":
        for i in (1, 2):
            assert load_run_result(out / f"{side}-{i}.json").histograms
            assert (out / f"{side}-{i}" / "result.json").is_file()
    assert outcome.comparison is not None and outcome.comparison.base_runs == 2
    assert outcome.invalid == 0 and outcome.stopped is None
    assert outcome.exit_code == outcome.comparison.exit_code == 0


def test_a_round_the_harness_spoilt_is_set_aside_and_run_again(tmp_path: Path) -> None:
    # Call 3 (round 2's first run, B) had the stub 500 ms late: round 2 runs again.
    runner = FakeRunner(spoil_calls=frozenset({3}))
    lines: list[str] = []
    url = parse_side("http://127.0.0.1:9")
    outcome = run_ab(load_profile("smoke"), url, url, 2, out_dir=tmp_path, runner=runner,
                     on_progress=lines.append)  # fmt: skip
    assert len(runner.calls) == 6 and outcome.rounds_done == 2
    assert (outcome.set_aside, outcome.invalid, outcome.exit_code) == (2, 0, 0)
    assert sorted(p.name for p in (tmp_path / "set-aside").iterdir()) == [
        "a-2.1", "a-2.1.json", "b-2.1", "b-2.1.json"
    ]  # fmt: skip
    assert outcome.a.paths[1] == tmp_path / "a-2.json" and (tmp_path / "a-2.json").is_file()
    assert all(r.verdict == "pass" for r in outcome.a.results + outcome.b.results)
    (said,) = [line for line in lines if "set aside" in line]
    assert said.startswith("ab: round 2: B invalid by the harness (stub timer lateness p99")
    assert said.endswith("the round runs again (1/2)")


def test_a_round_spoilt_every_time_is_kept_and_the_session_is_invalid(tmp_path: Path) -> None:
    runner = FakeRunner(spoil_calls=frozenset({1, 3, 5}))  # round 1, three attempts
    url = parse_side("http://127.0.0.1:9")
    outcome = run_ab(load_profile("smoke"), url, url, 1, out_dir=tmp_path, runner=runner)
    assert len(runner.calls) == 6  # the first try and ROUND_RETRIES = 2 more
    assert (outcome.set_aside, outcome.invalid, outcome.exit_code) == (4, 1, 3)


def test_a_run_invalid_only_by_an_undecided_gate_is_not_run_again(tmp_path: Path) -> None:
    # A gate near its threshold is the gateway's figure: rerunning until it moved
    # would choose the answer. Kept, and the session says invalid.
    runner = FakeRunner(undecided_calls=frozenset({2}))
    url = parse_side("http://127.0.0.1:9")
    outcome = run_ab(load_profile("smoke"), url, url, 1, out_dir=tmp_path, runner=runner)
    assert len(runner.calls) == 2
    assert (outcome.set_aside, outcome.invalid, outcome.exit_code) == (0, 1, 3)
    assert not (tmp_path / "set-aside").exists()


def test_run_ab_threshold_reaches_the_comparison(tmp_path: Path) -> None:
    profile = load_profile("smoke")
    url = parse_side("http://127.0.0.1:9")

    def once(threshold: float, where: str) -> AbOutcome:
        return run_ab(profile, url, url, 1, threshold_pct=threshold, out_dir=tmp_path / where,
                      runner=FakeRunner(scale=1.04))  # fmt: skip

    strict, lax = once(2.0, "strict"), once(10.0, "lax")
    assert strict.comparison is not None and lax.comparison is not None
    assert strict.comparison.threshold_pct == 2.0 and lax.comparison.threshold_pct == 10.0
    assert (strict.exit_code, lax.exit_code) == (1, 0)  # B is 4 % slower


def test_a_stopped_run_ends_the_session_and_makes_it_invalid(tmp_path: Path) -> None:
    runner = FakeRunner(stop_on_call=2)
    url = parse_side("http://127.0.0.1:9")
    outcome = run_ab(load_profile("smoke"), url, url, 3, out_dir=tmp_path, runner=runner)
    assert len(runner.calls) == 2  # rounds 2 and 3 never started
    assert outcome.stopped == "SIGINT in round 1 (B)" and outcome.rounds_done == 1
    assert outcome.invalid == 1 and outcome.exit_code == 3
    assert outcome.comparison is not None and outcome.comparison.base_runs == 1
    # One round is one run per side: the advice is more rounds, not `loadgate ab` again.
    (warning,) = [w for w in outcome.comparison.warnings if w.startswith("one run per side")]
    assert "run more rounds (`loadgate ab --rounds 5`)" in warning


def test_cli_ab_passes_threshold_format_and_runs_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOADGATE_RUNS_DIR", str(tmp_path / "runs"))
    runner = FakeRunner(scale=1.04)
    monkeypatch.setattr("loadgate.pipeline.ab._default_runner", runner)
    url = "http://127.0.0.1:9"
    code, out, err = run_cli(capsys, "ab", "smoke", "--a", url, "--b", url, "--rounds", "1",
                          "--threshold", "2", "--format", "json")  # fmt: skip
    doc = json.loads(out)
    assert doc["schema"] == "loadgate.compare/1" and doc["threshold_pct"] == 2.0
    assert doc["runs"] == {"base": 1, "cand": 1}
    assert code == doc["exit_code"] == 1
    (ab_dir,) = (tmp_path / "runs").iterdir()
    assert ab_dir.name.startswith("ab-smoke-")
    assert f"ab: round 1/1, A → {ab_dir / 'a-1.json'}" in err
    assert f"ab: results in {ab_dir}" in err
    code, out, _ = run_cli(capsys, "ab", "smoke", "--a", url, "--b", url, "--rounds", "1",
                        "--format", "markdown")  # fmt: skip
    assert code == 0 and out.startswith("### loadgate compare: no significant change")


def test_cli_ab_checks_format_before_any_round(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    runner = FakeRunner()
    monkeypatch.setattr("loadgate.pipeline.ab._default_runner", runner)
    url = "http://127.0.0.1:9"
    code, _, err = run_cli(capsys, "ab", "smoke", "--a", url, "--b", url, "--format", "xml")
    assert (code, err) == (
        2,
        "loadgate: error: --format: must be table, markdown or json (got 'xml')\n",
    )
    code, _, err = run_cli(capsys, "ab", "smoke", "--a", url, "--b", "gw")
    assert code == 2 and "--b: 'gw' is neither a URL" in err
    assert runner.calls == []


# ---------------------------------------------------------------- the power plan


class ShiftRunner:
    """Round i: both sides draw the same samples (seed i), B shifted by ``shifts[i - 1]`` ms.

    So the per-round p99 difference is known: its spread is the spread of ``shifts``."""

    def __init__(self, shifts: list[float], n: int = 20_000) -> None:
        self.shifts, self.n = shifts, n
        self.calls: list[str] = []

    def __call__(self, profile: Profile, options: RunOptions) -> Result:
        assert options.run_dir is not None
        side, i = options.run_dir.name.split("-")
        self.calls.append(options.run_dir.name)
        shift = self.shifts[(int(i) - 1) % len(self.shifts)] if side == "b" else 0.0
        return Result.model_validate(synthetic.make_result(int(i), n=self.n, shift_ms=shift))


def _planned(
    tmp_path: Path, shifts: list[float], max_rounds: int = 6
) -> tuple[AbOutcome, list[str]]:
    url = parse_side("http://127.0.0.1:9")
    heard: list[str] = []
    spec = PowerSpec(parse_target("overhead_ms.p99", "1ms"), 0.9, 3, max_rounds)
    outcome = run_ab(
        load_profile("smoke"), url, url, power=spec, out_dir=tmp_path, runner=ShiftRunner(shifts),
        on_plan=lambda plan, first: heard.append(f"{first}:{plan.rounds}"),
    )  # fmt: skip
    return outcome, heard


def test_quiet_rounds_stop_after_the_pilot(tmp_path: Path) -> None:
    # B is +1 ms in every round: the differences do not spread, the pilot's 3 rounds do it
    outcome, heard = _planned(tmp_path, [1.0])
    assert outcome.rounds_done == outcome.rounds_planned == 3
    assert heard == ["True:3"]
    plan = outcome.plan
    assert plan is not None and plan.spread.rounds == 3 and not plan.capped
    assert plan.needed is not None and plan.needed <= 3
    assert outcome.reached is not None and outcome.reached.mde_ms is not None
    assert outcome.reached.mde_ms <= 1.0
    assert outcome.exit_code == 1  # and the +1 ms p99 is called
    doc = json.loads((tmp_path / "power.json").read_text())
    assert doc["schema"] == "loadgate.ab-power/1"
    assert doc["plan"]["rounds"] == 3 and doc["reached"]["mde_ms"] == pytest.approx(
        outcome.reached.mde_ms
    )


def test_noisy_rounds_run_to_the_cap_and_say_what_they_reach(tmp_path: Path) -> None:
    # ±3 ms round to round: +1 ms needs far more than 6 rounds
    outcome, heard = _planned(tmp_path, [4.0, -2.0, 4.0, -2.0, 4.0, -2.0])
    assert outcome.rounds_done == outcome.rounds_planned == 6
    assert heard == ["True:6"]  # planned once: the cap does not move
    plan = outcome.plan
    assert plan is not None and plan.capped and plan.rounds == 6
    assert plan.needed is None or plan.needed > 6
    assert outcome.reached is not None and outcome.reached.mde_ms is not None
    assert outcome.reached.mde_ms > 1.0  # the session says it could not see +1 ms
    assert outcome.reached.spread.rounds == 6


def test_the_plan_is_remade_after_every_round_past_the_pilot(tmp_path: Path) -> None:
    # The pilot's differences spread a little (4 rounds needed), round 4's a lot: the
    # re-plan after round 4 goes to the cap, and the session runs it
    outcome, heard = _planned(tmp_path, [1.0, 1.15, 0.85, 9.0, 1.0, 1.0])
    assert heard == ["True:4", "False:6"]
    assert outcome.rounds_done == outcome.rounds_planned == 6
    assert outcome.plan is not None and outcome.plan.spread.rounds == 6  # the last one made


def test_fixed_rounds_make_no_plan_but_report_the_reach(tmp_path: Path) -> None:
    runner = ShiftRunner([4.0, -2.0])
    url = parse_side("http://127.0.0.1:9")
    heard: list[object] = []
    outcome = run_ab(load_profile("smoke"), url, url, 4, out_dir=tmp_path, runner=runner,
                     on_plan=lambda p, f: heard.append(p))  # fmt: skip
    assert outcome.rounds_done == 4 and outcome.plan is None and heard == []
    assert len(runner.calls) == 8
    assert outcome.reached is not None and outcome.reached.spread.rounds == 4
    one = run_ab(load_profile("smoke"), url, url, 1, out_dir=tmp_path / "one", runner=runner)
    assert one.reached is None  # one round: no spread to speak of


def test_no_plan_without_the_metric_falls_back_to_five_rounds(tmp_path: Path) -> None:
    url = parse_side("http://127.0.0.1:9")
    lines: list[str] = []
    spec = PowerSpec(parse_target("e2e_ms.p99", "1ms"))
    outcome = run_ab(load_profile("smoke"), url, url, power=spec, out_dir=tmp_path,
                     runner=ShiftRunner([1.0]), on_progress=lines.append)  # fmt: skip
    assert outcome.rounds_done == FALLBACK_ROUNDS == 5 and outcome.plan is None
    assert "ab: no power plan (no e2e_ms.p99 in every run): running 5 rounds" in lines
    assert [x.split(" → ")[0] for x in lines if " → " in x][:7] == [
        "ab: round 1 (pilot), A", "ab: round 1 (pilot), B", "ab: round 2 (pilot), B",
        "ab: round 2 (pilot), A", "ab: round 3 (pilot), A", "ab: round 3 (pilot), B",
        "ab: round 4/5, B",
    ]  # fmt: skip


def test_pilot_must_fit_under_the_cap(tmp_path: Path) -> None:
    url = parse_side("http://127.0.0.1:9")
    spec = PowerSpec(parse_target("overhead_ms.p99", "1ms"), 0.9, 5, 4)
    with pytest.raises(UsageError, match="--pilot-rounds"):
        run_ab(
            load_profile("smoke"), url, url, power=spec, out_dir=tmp_path, runner=ShiftRunner([1.0])
        )


def test_cli_ab_prints_the_plan_up_front_and_the_reach_at_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOADGATE_RUNS_DIR", str(tmp_path / "runs"))
    runner = ShiftRunner([1.0])
    monkeypatch.setattr("loadgate.pipeline.ab._default_runner", runner)
    url = "http://127.0.0.1:9"
    code, out, err = run_cli(capsys, "ab", "smoke", "--a", url, "--b", url, "--format", "json")
    assert code == 1 and json.loads(out)["runs"] == {"base": 3, "cand": 3}
    lines = err.splitlines()
    plan_at = next(i for i, x in enumerate(lines) if "to detect" in x)
    assert lines[plan_at].startswith(
        "ab: to detect +1 ms on overhead_ms.p99 at 90 % power: "
    ) and lines[plan_at].endswith("rounds of 5 s; running 3")
    assert "round 3 (pilot), B" in lines[plan_at - 1]  # up front: before round 4 would run
    assert lines[plan_at + 1].startswith("ab:   per-round difference sd ")
    assert any(
        x.startswith("ab: 3 rounds detect +") and x.endswith("(asked: +1 ms)") for x in lines
    )
    code, _, err = run_cli(capsys, "ab", "smoke", "--a", url, "--b", url, "--detect", "x")
    assert code == 2 and "--detect: expected a positive change" in err
    code, _, err = run_cli(capsys, "ab", "smoke", "--a", url, "--b", url, "--pilot-rounds", "9",
                           "--max-rounds", "4")  # fmt: skip
    assert code == 2 and "--pilot-rounds 9 is more than --max-rounds 4" in err
