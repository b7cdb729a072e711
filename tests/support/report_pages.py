"""The report pages of the stored sample results, for tests that check every chart."""

from __future__ import annotations

from loadgate.report import render_compare_html, render_html, render_sweep_html
from loadgate.result import SweepResult, load_result
from loadgate.result.io import load_run_result
from tests.support.paths import DATA

__all__ = ["LEGEND_ENTRIES", "sample_pages", "sample_sweep"]

#: Legend entries per page of :func:`sample_pages`: the run (both modes for overhead and
#: e2e, streams only for TTFT), the comparison (both runs' lines), the sweep (one per panel).
LEGEND_ENTRIES = (5, 10, 2)


def sample_sweep() -> SweepResult:
    sweep = load_result(DATA / "sample_sweep.json")
    assert isinstance(sweep, SweepResult)
    return sweep


def sample_pages() -> list[str]:
    """The run report of sample_fail, its comparison with sample_pass, the sweep page."""
    fail = load_run_result(DATA / "sample_fail.json")
    ok = load_run_result(DATA / "sample_pass.json")
    return [render_html(fail), render_compare_html(ok, fail), render_sweep_html(sample_sweep())]
