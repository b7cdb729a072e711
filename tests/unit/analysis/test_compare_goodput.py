"""compare's goodput row: a difference of proportions, tested, informational (never gating)."""

from __future__ import annotations

from typing import Any

from loadgate.analysis.compare import IMPROVEMENT, NO_CHANGE, REGRESSION, compare_results
from loadgate.analysis.compare_render import render
from loadgate.result.model import Result
from tests.support import synthetic

SLO = {"overhead_ms": 5.0}


def _run(good: int | None, n: int = 4000, slo: dict[str, float] = SLO) -> Result:
    data: dict[str, Any] = synthetic.make_result(seed=3, n=n)
    if good is not None:
        data["goodput"] = {"slo": slo, "requests": n, "good": good, "ratio": good / n}
    return Result.model_validate(data)


def _row(c: Any) -> Any:
    return next(r for r in c.rows if r.name == "goodput.ratio")


def test_a_large_drop_in_goodput_is_a_regression_that_does_not_gate() -> None:
    c = compare_results([_run(3990)], [_run(3600)])
    row = _row(c)
    assert row.verdict == REGRESSION and row.gating is False
    assert (row.base, row.cand) == (0.9975, 0.9)
    assert row.ci_high is not None and row.ci_high < 0
    assert row.note.startswith("3990/4000 vs 3600/4000; informational")
    assert c.exit_code == 0  # identical latencies: nothing gating moved
    assert "goodput.ratio" in render(c, "markdown")


def test_a_rise_is_an_improvement_and_one_request_is_no_change() -> None:
    assert _row(compare_results([_run(3600)], [_run(3990)])).verdict == IMPROVEMENT
    assert _row(compare_results([_run(3990)], [_run(3989)])).verdict == NO_CHANGE


def test_goodput_is_tested_inside_the_bonferroni_family() -> None:
    with_row = compare_results([_run(3990)], [_run(3990)])
    without = compare_results([_run(None)], [_run(None)])
    assert with_row.tests == without.tests + 1
    assert not any(r.name == "goodput.ratio" for r in without.rows)
    assert not any("goodput" in w for w in without.warnings)


def test_runs_with_different_or_missing_slos_are_not_compared_and_say_why() -> None:
    c = compare_results([_run(3990)], [_run(3990, slo={"overhead_ms": 10.0})])
    assert not any(r.name == "goodput.ratio" for r in c.rows)
    assert "goodput not compared: the runs judged different [slo] bounds" in c.warnings
    c = compare_results([_run(3990)], [_run(None)])
    assert "goodput not compared: not every run had [slo] bounds" in c.warnings
