"""HTML reports: self-contained, plots carry exactly the histograms' percentiles."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from loadgate.errors import UsageError
from loadgate.histograms.hdr import bucket_bounds, counts_of, decode, percentile_us
from loadgate.report import (
    main,
    render_compare_html,
    render_html,
    render_sweep_html,
    sweep_points,
    sweep_svg,
    write_reports,
)
from loadgate.result import Result
from tests.support.chromium import plot_series
from tests.support.paths import DATA


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / name).read_text())
    return data


@pytest.fixture(scope="module")
def fail() -> dict[str, Any]:
    return _load("sample_fail.json")


@pytest.fixture(scope="module")
def fail_html(fail: dict[str, Any]) -> str:
    return render_html(fail)


def _assert_self_contained(page: str) -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "<script" not in page and "<link" not in page and "<img" not in page
    assert "@import" not in page and "url(" not in page


def test_report_is_self_contained(fail_html: str) -> None:
    _assert_self_contained(fail_html)
    assert fail_html.startswith("<!DOCTYPE html>")


def _expected_ms(b64: str, q: float) -> float:
    """HdrHistogram's value at percentile ``q`` by an independent (numpy) computation."""
    h = decode(b64)
    if q == 0.0:
        return round(float(h.get_value_at_percentile(0.0)) / 1000.0, 4)
    _, hi, _ = bucket_bounds(h)
    return round(percentile_us(counts_of(h), hi, q) / 1000.0, 4)


@pytest.mark.parametrize("metric", ["overhead_ms", "ttft_overhead_ms", "e2e_ms"])
def test_distribution_plots_are_the_histogram_percentiles(
    fail: dict[str, Any], fail_html: str, metric: str
) -> None:
    charts, paths = plot_series(fail_html)
    series = charts[f"dist-{metric}"]
    modes = [m for m in ("stream", "non_stream") if f"{m}.{metric}" in fail["histograms"]]
    assert len(series) == len(modes) >= 1
    for mode in modes:
        b64 = fail["histograms"][f"{mode}.{metric}"]
        label = "stream" if mode == "stream" else "non-stream"
        n = decode(b64).get_total_count()
        qs, ys = series[f"{label} (n={n})"]
        assert qs[0] == 0.0 and qs[-1] == 100.0 and list(qs) == sorted(qs)
        assert qs[10] == 90.0 and qs[20] == 99.0  # 10 points per decade
        assert list(ys) == [_expected_ms(b64, q) for q in qs]
        summary = fail["by_mode"][mode]["metrics"][metric]
        assert ys[qs.index(99.0)] == summary["p99"]
        assert ys[-1] == summary["max"]
        assert paths[f"dist-{metric}"][f"{label} (n={n})"].count("L") == len(qs) - 1


def test_time_series_are_the_result_timeseries(fail: dict[str, Any], fail_html: str) -> None:
    charts = plot_series(fail_html)[0]
    ts = fail["timeseries"]
    xs = tuple(float(t) for t in ts["t_s"])
    assert charts["ts-rps"]["Requests completed per second"] == (xs, tuple(ts["rps"]))
    assert charts["ts-errors"]["Errors per second"][1] == tuple(ts["errors"])
    assert sum(ts["errors"]) == fail["requests"]["failed"]
    assert charts["ts-overhead"]["Overhead p99 per second"][1] == tuple(ts["overhead_p99_ms"])
    hx, hy = charts["ts-hit-rate"]["Auth-cache hit rate"]
    assert hx == tuple(p[0] for p in ts["auth_cache_hit_rate"])
    assert hy == tuple(p[1] for p in ts["auth_cache_hit_rate"])


def test_hit_rate_aligned_to_seconds_and_absent(fail: dict[str, Any]) -> None:
    data = copy.deepcopy(fail)
    data["timeseries"] = {"t_s": [0, 1, 2], "rps": [5, 6, 7], "auth_cache_hit_rate": [0.5, None, 1]}
    charts = plot_series(render_html(data))[0]
    assert charts["ts-hit-rate"]["Auth-cache hit rate"] == ((0.0, 1.0, 2.0), (0.5, None, 1.0))
    data["timeseries"] = {}
    data["gateway"] = {"kind": "direct", "auth_cache_hit_rate": None}
    page = render_html(data)
    assert "ts-hit-rate" not in plot_series(page)[0]
    assert page.count('class="no-data"') == 4


def test_verdict_gates_and_figures_are_on_top(fail: dict[str, Any], fail_html: str) -> None:
    assert 'data-verdict="fail"' in fail_html
    top = fail_html[: fail_html.index("Latency distributions")]
    table = top[top.index('class="gates"') :]
    for g in fail["gates"]:
        assert f"<code>{g['name']}</code>" in table
    assert table.count(">FAIL<") == sum(not g["passed"] for g in fail["gates"]) == 3
    assert "30.66 ms" in table and "&lt; 20" in table
    for reason in fail["reasons"]:
        assert reason.replace("<", "&lt;") in top
    assert "1 of 15 gateway metric scrapes failed" in fail_html  # harness warning
    assert "violation: cross_talk" in fail_html and "bench-01" in fail_html


def test_invalid_and_hostile_text_is_escaped(fail: dict[str, Any]) -> None:
    data = copy.deepcopy(fail)
    data["verdict"] = "invalid"
    data["reasons"] = ["harness CPU 99 % of a core > 95 %: <loadgate> was saturated"]
    data["gates"][0]["name"] = 'x{le="<script>"}'
    page = render_html(data)
    assert 'data-verdict="invalid"' in page and "INVALID" in page
    assert "<script>" not in page and "&lt;loadgate&gt; was saturated" in page
    assert "Invalid: see the reasons at the top" in page


def test_compare_overlays_both_runs() -> None:
    base, cand = _load("sample_pass.json"), _load("sample_fail.json")
    page = render_compare_html(base, cand, comparison={"verdict": "fail", "reasons": ["p99 +"]})
    _assert_self_contained(page)
    series = plot_series(page)[0]["cmp-overhead_ms"]
    assert sorted(name.split(" (")[0] for name in series) == [
        "base non-stream",
        "base stream",
        "candidate non-stream",
        "candidate stream",
    ]
    n = decode(cand["histograms"]["stream.overhead_ms"]).get_total_count()
    qs, ys = series[f"candidate stream (n={n})"]
    assert ys[qs.index(99.0)] == cand["by_mode"]["stream"]["metrics"]["overhead_ms"]["p99"]
    assert page.count('stroke-dasharray="6 4"') >= 2 * 3  # base is dashed, in chart and legend
    assert 'data-verdict="fail"' in page


def test_sweep_points_and_knee_plot() -> None:
    sweep = _load("sample_sweep.json")
    label, pts = sweep_points(sweep["steps"])
    assert label == "concurrency" and [p[0] for p in pts] == [8, 16, 32, 64, 128, 256]
    svg = sweep_svg(sweep["steps"], sweep["knee"], 20.0)
    charts = plot_series(svg)[0]
    _, rps = charts["sweep-throughput"]["throughput (req/s)"]
    assert rps == tuple(s["requests"]["throughput_rps"] for s in sweep["steps"])
    _, p99 = charts["sweep-overhead"]["overhead p99 (ms)"]
    assert p99 == tuple(s["metrics"]["overhead_ms"]["p99"] for s in sweep["steps"])
    assert 'data-rule="budget 20 ms" data-value="20"' in svg
    assert svg.count('data-rule="knee: 128" data-value="128"') == 2
    page = render_sweep_html(sweep)
    _assert_self_contained(page)
    assert "Knee: concurrency 128" in page


def test_sweep_points_accept_rate_steps_and_flat_keys() -> None:
    steps: list[dict[str, Any]] = [
        {"rate": 200, "throughput_rps": 199.0, "overhead_p99_ms": 3.0, "passed": True},
        {"load": {"rate": 100}, "throughput_rps": 100.0, "overhead_p99_ms": 2.0, "verdict": "fail"},
    ]
    assert sweep_points(steps) == (
        "offered rate (req/s)",
        [(100.0, 100.0, 2.0, False), (200.0, 199.0, 3.0, True)],
    )
    assert 'class="no-data"' in sweep_svg([], None, None)


def test_write_reports_and_main(tmp_path: Path, fail: dict[str, Any]) -> None:
    out = write_reports(
        Result.model_validate(fail),
        html=tmp_path / "r.html",
        junit=tmp_path / "j.xml",
        markdown=tmp_path / "s.md",
    )
    assert [p.name for p in out] == ["r.html", "j.xml", "s.md"]
    assert (tmp_path / "r.html").read_text() == render_html(fail)
    assert (tmp_path / "r.html").stat().st_mode & 0o044 == 0o044
    write_reports(_load("sample_sweep.json"), html=tmp_path / "sweep.html")
    assert "Knee plot" in (tmp_path / "sweep.html").read_text()
    src = tmp_path / "res.json"
    src.write_text(json.dumps(fail))
    assert main(src, None, None, None) == 0
    assert (tmp_path / "res.html").read_text() == render_html(fail)
    src.write_text('{"schema": "other/9"}')
    with pytest.raises(UsageError, match=r"res\.json: schema"):
        main(src, tmp_path / "x.html", None, None)


def test_sample_results_match_their_generator() -> None:
    from tests.support import make_sample_results as gen

    doc = gen.make("sample_pass", 11, slow_share=0.004, errors=0, violations=0)
    stored = _load("sample_pass.json")
    # The profile section follows profile.py's defaults, which evolve on their own.
    doc.pop("profile")
    stored.pop("profile")
    assert json.loads(json.dumps(doc)) == stored


@pytest.mark.parametrize(
    "data",
    [
        {},
        {  # the runner's shape when measuring never started
            "schema": "loadgate.result/1",
            "verdict": "invalid",
            "reasons": ["run did not start measuring (gateway_died)"],
            "gates": [],
            "metrics": {},
            "by_mode": {},
            "requests": {"sent": 0, "ok": 0, "failed": 0, "error_rate": None, "errors": {}},
            "integrity": {"checked": 0, "violations": 0, "by_class": {}},
            "upstream": {"calls": 0, "calls_per_request": None},
            "gateway": {"kind": "direct", "auth_cache_hit_rate": None},
            "harness": {},
            "histograms": {},
        },
    ],
)
def test_sparse_results_render_without_plots(data: dict[str, Any]) -> None:
    page = render_html(data)
    _assert_self_contained(page)
    assert plot_series(page)[0] == {}
    assert page.count('class="no-data"') == 7  # 3 distributions + 4 time series
    assert "run did not start measuring" in page or not data
    assert "No gates in this result." in page
    assert render_compare_html(data, data).count('class="no-data"') == 3
    assert "No knee" in render_sweep_html(data)
