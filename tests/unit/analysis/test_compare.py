"""compare: verdicts on synthetic histograms of known shift, outputs, refusals."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loadgate.analysis.compare import (
    IMPROVEMENT,
    NO_CHANGE,
    REGRESSION,
    Comparison,
    Row,
    compare_results,
)
from loadgate.analysis.compare_render import render
from loadgate.errors import UsageError
from loadgate.result.model import Result
from tests.support import synthetic
from tests.support.cli import run_cli
from tests.support.paths import DATA

REF = Path(__file__).parent / "compare_ref"


def make_result(seed: int, **kw: Any) -> Result:
    """The synthetic result, typed as compare reads it."""
    return Result.model_validate(synthetic.make_result(seed, **kw))


def row(c: Comparison, name: str, mode: str = "all") -> Row:
    (r,) = [r for r in c.rows if r.name == name and r.mode == mode]
    return r


def ci(r: Row) -> tuple[float, float]:
    assert r.ci_low is not None and r.ci_high is not None, r
    return r.ci_low, r.ci_high


# ------------------------------------------------------------------- verdicts


def test_no_shift_is_no_significant_change() -> None:
    c = compare_results([make_result(1)], [make_result(2)])
    assert c.exit_code == 0
    assert c.verdict == NO_CHANGE
    tested = [r for r in c.rows if r.gating]
    assert len(tested) == 3 * 3 + 2  # p999 needs 10 000 samples per run: not tested
    assert all(r.verdict == NO_CHANGE for r in tested)
    assert row(c, "overhead_ms.p999").verdict == "not tested"
    assert "fewer than 10 beyond p99.9" in row(c, "overhead_ms.p999").note
    assert any("one run per side" in w for w in c.warnings)


def test_shift_is_a_regression_and_the_interval_holds_the_true_shift() -> None:
    c = compare_results([make_result(1, n=20_000)], [make_result(2, n=20_000, shift_ms=1.0)])
    assert c.exit_code == 1 and c.verdict == REGRESSION
    for q in ("p50", "p90", "p99"):
        for mode in ("all", "stream", "non_stream"):
            r = row(c, f"overhead_ms.{q}", mode)
            lo, hi = ci(r)
            assert r.verdict == REGRESSION, r
            assert lo <= 1.0 <= hi, r


def test_improvement() -> None:
    c = compare_results([make_result(1)], [make_result(2, scale=0.8)])
    assert c.exit_code == 0
    assert c.verdict == IMPROVEMENT
    r = row(c, "overhead_ms.p99")
    assert r.verdict == IMPROVEMENT and ci(r)[1] < 0


def test_threshold_turns_a_small_significant_change_into_no_change() -> None:
    base, cand = [make_result(1, n=40_000)], [make_result(2, n=40_000, scale=1.04)]
    strict = compare_results(base, cand, threshold_pct=2.0)
    assert row(strict, "overhead_ms.p50").verdict == REGRESSION
    lax = compare_results(base, cand, threshold_pct=10.0)
    r = row(lax, "overhead_ms.p50")
    assert r.verdict == NO_CHANGE and ci(r)[0] > 0
    assert "within the ±10 % threshold" in r.note
    assert lax.exit_code == 0


def _drifting(seed: int, k: int, shift_ms: float = 0.0) -> list[Result]:
    # Run-to-run drift (σ = 5 % of the scale) bigger than the within-run error.
    rng = np.random.default_rng(seed)
    return [
        make_result(seed * 100 + i, scale=1.0 + rng.normal(0, 0.05), shift_ms=shift_ms)
        for i in range(k)
    ]


def test_several_runs_per_side_use_between_run_variance() -> None:
    base, cand = _drifting(1, 4), _drifting(2, 4)
    c = compare_results(base, cand, threshold_pct=0.0)
    assert (c.base_runs, c.cand_runs) == (4, 4)
    r = row(c, "overhead_ms.p50")
    assert r.base == pytest.approx(
        np.mean([row(compare_results([b], [b]), "overhead_ms.p50").base for b in base])
    )
    single = row(compare_results(base[:1], cand[:1], threshold_pct=0.0), "overhead_ms.p50")
    # The drift makes the 4-vs-4 interval wider than one pair's sampling interval.
    assert (ci(r)[1] - ci(r)[0]) > (ci(single)[1] - ci(single)[0])
    shifted = row(compare_results(base, _drifting(2, 4, shift_ms=0.5)), "overhead_ms.p50")
    assert shifted.verdict == REGRESSION
    assert ci(shifted)[0] <= 0.5 <= ci(shifted)[1]


def test_aa_false_alarm_rate_is_at_most_5_percent() -> None:
    """200 seeded A/A comparisons: how often does compare exit 1? Deterministic."""
    alarms = sum(
        compare_results([make_result(2 * t, n=2000)], [make_result(2 * t + 1, n=2000)]).exit_code
        for t in range(200)
    )
    assert alarms <= 10


def test_aa_false_alarm_rate_with_drift_and_three_runs_per_side() -> None:
    alarms = sum(
        compare_results(_drifting(1000 + 2 * t, 3), _drifting(1001 + 2 * t, 3)).exit_code
        for t in range(60)
    )
    assert alarms <= 3


def test_drift_within_one_run_is_not_a_regression_with_batch_means() -> None:
    # Each run wanders (its 20 time batches scaled by 1 ± 20 %): one run per side,
    # sampling error alone would call half of these A/A pairs a regression.
    def aa(strip: bool) -> int:
        alarms = 0
        for i in range(40):
            a = make_result(2 * i + 1000, n=8000, batches=20, drift=0.2)
            b = make_result(2 * i + 1001, n=8000, batches=20, drift=0.2)
            if strip:
                a.histogram_batches = {}
                b.histogram_batches = {}
            alarms += compare_results([a], [b]).exit_code
        return alarms

    assert aa(strip=False) <= 2  # ≤ 5 % of 40
    assert aa(strip=True) >= 10  # the same pairs without batches: the drift is unseen


def test_batch_means_keeps_a_real_shift_detected_and_covered() -> None:
    for i in range(5):
        base = make_result(3 * i + 7, n=8000, batches=20, drift=0.1)
        cand = make_result(3 * i + 8, n=8000, batches=20, drift=0.1, shift_ms=0.5)
        c = compare_results([base], [cand])
        assert c.exit_code == 1
        r = row(c, "overhead_ms.p50")
        assert r.verdict == REGRESSION and ci(r)[0] <= 0.5 <= ci(r)[1], r


def test_paired_rounds_cancel_shared_drift() -> None:
    """ab's design: each round's drift hits A and B alike; pairing removes it."""
    rng = np.random.default_rng(5)
    drift = 1.0 + rng.normal(0, 0.08, 5)
    base = [make_result(10 + i, n=20_000, scale=f) for i, f in enumerate(drift)]
    cand = [make_result(20 + i, n=20_000, scale=f * 1.08) for i, f in enumerate(drift)]
    unpaired = row(compare_results(base, cand), "overhead_ms.p50")
    paired = row(compare_results(base, cand, paired=True), "overhead_ms.p50")
    assert unpaired.verdict == NO_CHANGE  # drift of ±8 % hides an 8 % step
    assert paired.verdict == REGRESSION
    assert (ci(paired)[1] - ci(paired)[0]) < (ci(unpaired)[1] - ci(unpaired)[0]) / 2
    same = compare_results(
        base, [make_result(30 + i, n=20_000, scale=f) for i, f in enumerate(drift)], paired=True
    )
    assert same.exit_code == 0
    with pytest.raises(UsageError, match="as many base as candidate"):
        compare_results(base, cand[:2], paired=True)


def test_a_mode_holding_every_sample_is_not_a_second_row() -> None:
    # ttft_overhead exists only for streams: its all-modes and stream histograms hold the
    # same samples, so one row, not two (a second would also double-count Bonferroni's m).
    def with_ttft(seed: int) -> Result:
        r = make_result(seed)
        r.histograms["ttft_overhead_ms"] = r.histograms["stream.overhead_ms"]
        r.histograms["stream.ttft_overhead_ms"] = r.histograms["stream.overhead_ms"]
        return r

    c = compare_results([with_ttft(1)], [with_ttft(2)])
    ttft = [(r.name, r.mode) for r in c.rows if r.name.startswith("ttft_overhead_ms.")]
    assert ttft and {mode for _, mode in ttft} == {"all"}
    assert len(ttft) == len({name for name, _ in ttft})
    # overhead_ms is split over two modes, so it keeps its per-mode rows.
    assert {r.mode for r in c.rows if r.name == "overhead_ms.p50"} == {
        "all", "stream", "non_stream"
    }  # fmt: skip


def test_error_rate_is_compared_as_proportions() -> None:
    c = compare_results([make_result(1)], [make_result(1, failed=200)])
    r = row(c, "requests.error_rate")
    assert r.verdict == REGRESSION and ci(r)[0] > 0
    assert r.note == "0/4000 vs 200/4200"
    assert c.exit_code == 1
    # the latencies are identical (same seed): only the error rate moved
    assert row(c, "overhead_ms.p99").verdict == NO_CHANGE


# ------------------------------------------------------------------- refusals


def test_different_load_settings_are_refused() -> None:
    with pytest.raises(UsageError, match="concurrency: 100 vs 50"):
        compare_results([make_result(1)], [make_result(2, concurrency=50)])


def test_an_invalid_input_run_makes_the_comparison_exit_3_as_ab_does() -> None:
    shifted = make_result(2, shift_ms=3.0)
    assert compare_results([make_result(1)], [shifted]).exit_code == 1
    spoilt = make_result(1)
    spoilt.verdict, spoilt.reasons = "invalid", ["stub timer lateness p99 7 ms > 5 ms"]
    c = compare_results([spoilt], [shifted])
    # The rows are still decided (a reader sees them), but nothing may pass or fail on them.
    assert c.regressions and c.invalid_runs == 1 and c.exit_code == 3
    assert any("base run 1 is an invalid run (stub timer lateness" in w for w in c.warnings)
    assert json.loads(render(c, "json"))["exit_code"] == 3
    assert "INVALID: 1 input run(s) invalid, so this comparison proves nothing" in render(
        c, "markdown"
    )


def test_different_machine_or_profile_name_is_a_warning() -> None:
    c = compare_results([make_result(1)], [make_result(2, machine="m2", name="other")])
    assert any("2 different machines" in w for w in c.warnings)
    assert any("profile names differ" in w for w in c.warnings)


def test_not_a_result_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "x.json"
    p.write_text('{"schema": "other"}')
    code, _, err = run_cli(capsys, "compare", str(p), str(p), "--format", "json")
    assert code == 2 and f"{p}: schema: unsupported" in err
    code, _, err = run_cli(capsys, "compare", str(tmp_path / "nope.json"), str(p))
    assert code == 2 and "nope.json: cannot read" in err


def test_a_sweep_result_is_refused_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, sweep = tmp_path / "run.json", DATA / "sample_sweep.json"
    run.write_text(json.dumps(synthetic.make_result(1)))
    code, _, err = run_cli(capsys, "compare", str(run), str(sweep))
    assert code == 2 and "a sweep result, not a run's" in err


def test_compare_results_takes_typed_results() -> None:
    with pytest.raises(TypeError, match="Result objects, not dict"):
        compare_results([synthetic.make_result(1)], [make_result(2)])  # type: ignore[list-item]


# ------------------------------------------------------------------- outputs


def _reference_pair(tmp_path: Path) -> tuple[Path, Path]:
    b, c = tmp_path / "base.json", tmp_path / "cand.json"
    b.write_text(json.dumps(synthetic.make_result(1, batches=20)))
    c.write_text(json.dumps(synthetic.make_result(2, shift_ms=0.3, batches=20)))
    return b, c


@pytest.mark.parametrize("fmt,ext", [("markdown", "md"), ("json", "json"), ("table", "txt")])
def test_output_matches_stored_reference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str, ext: str
) -> None:
    b, c = _reference_pair(tmp_path)
    out = tmp_path / f"out.{ext}"
    code, _, _ = run_cli(capsys, "compare", str(b), str(c), "--format", fmt, "--out", str(out))
    assert code == 1
    got = out.read_text().replace(str(tmp_path), "<tmp>")
    ref = REF / f"shift.{ext}"
    if not ref.exists() or os.environ.get("LOADGATE_UPDATE_REFS"):
        ref.parent.mkdir(exist_ok=True)
        ref.write_text(got)
        pytest.fail(f"reference {ref.name} (re)written: review it and commit it")
    assert got == ref.read_text()


@pytest.mark.parametrize("fmt,ext", [("markdown", "md"), ("json", "json")])
def test_stdout_is_the_same_text_as_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str, ext: str
) -> None:
    b, c = _reference_pair(tmp_path)
    code, out, _ = run_cli(capsys, "compare", str(b), str(c), "--format", fmt)
    assert code == 1
    assert out.replace(str(tmp_path), "<tmp>") == (REF / f"shift.{ext}").read_text()


def test_json_structure() -> None:
    doc = json.loads(render(compare_results([make_result(1)], [make_result(1)]), "json"))
    assert doc["schema"] == "loadgate.compare/1"
    assert doc["verdict"] == NO_CHANGE and doc["exit_code"] == 0
    first = doc["rows"][0]
    assert set(first) >= {"name", "mode", "base", "cand", "change", "ci_low", "ci_high", "verdict"}
    assert {r["mode"] for r in doc["rows"] if r["kind"] == "quantile"} == {
        "all",
        "stream",
        "non_stream",
    }
