"""HTML reports: self-contained, plots carry exactly the histograms' percentiles."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from loadgate.errors import UsageError
from loadgate.histograms.hdr import bucket_bounds, counts_of, decode, percentile_us
from loadgate.report import (
    render_compare_html,
    render_html,
    render_sweep_html,
    sweep_points,
    sweep_svg,
    write_reports,
)
from loadgate.result import Result, SweepResult
from loadgate.result.io import load_run_result
from loadgate.result.model import AuthCacheFigures, Timeseries
from tests.support.chromium import plot_series
from tests.support.paths import DATA
from tests.support.report_pages import sample_sweep


def _load(name: str) -> Result:
    return load_run_result(DATA / name)


@pytest.fixture(scope="module")
def fail() -> Result:
    return _load("sample_fail.json")


@pytest.fixture(scope="module")
def fail_html(fail: Result) -> str:
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
    fail: Result, fail_html: str, metric: str
) -> None:
    charts, paths = plot_series(fail_html)
    series = charts[f"dist-{metric}"]
    modes = [m for m in ("stream", "non_stream") if f"{m}.{metric}" in fail.histograms]
    assert len(series) == len(modes) >= 1
    for mode in modes:
        b64 = fail.histograms[f"{mode}.{metric}"]
        label = "stream" if mode == "stream" else "non-stream"
        n = decode(b64).get_total_count()
        qs, ys = series[f"{label} (n={n})"]
        assert qs[0] == 0.0 and qs[-1] == 100.0 and list(qs) == sorted(qs)
        assert qs[10] == 90.0 and qs[20] == 99.0  # 10 points per decade
        assert list(ys) == [_expected_ms(b64, q) for q in qs]
        summary = fail.by_mode[mode].metrics[metric]
        assert ys[qs.index(99.0)] == summary.p99
        assert ys[-1] == summary.max
        assert paths[f"dist-{metric}"][f"{label} (n={n})"].count("L") == len(qs) - 1


def test_time_series_are_the_result_timeseries(fail: Result, fail_html: str) -> None:
    charts = plot_series(fail_html)[0]
    ts = fail.timeseries
    xs = tuple(float(t) for t in ts.t_s)
    assert charts["ts-rps"]["Requests completed per second"] == (xs, tuple(map(float, ts.rps)))
    assert charts["ts-errors"]["Errors per second"][1] == tuple(ts.errors)
    assert sum(ts.errors) == fail.requests.failed
    assert charts["ts-overhead"]["Overhead p99 per second"][1] == tuple(ts.overhead_p99_ms)
    assert ts.auth_cache_hit_rate
    hx, hy = charts["ts-hit-rate"]["Auth-cache hit rate"]
    assert hx == tuple(p[0] for p in ts.auth_cache_hit_rate)
    assert hy == tuple(p[1] for p in ts.auth_cache_hit_rate)


def test_hit_rate_from_the_gateway_section_and_absent(fail: Result) -> None:
    result = fail.model_copy(deep=True)
    result.timeseries = Timeseries(t_s=[0, 1, 2], rps=[5, 6, 7])
    result.gateway.auth_cache = AuthCacheFigures(series=[(0.0, 0.5), (2.0, None), (4.0, 1.0)])
    charts = plot_series(render_html(result))[0]
    assert charts["ts-hit-rate"]["Auth-cache hit rate"] == ((0.0, 2.0, 4.0), (0.5, None, 1.0))
    result.timeseries = Timeseries()
    result.gateway.auth_cache, result.gateway.auth_cache_hit_rate = None, None
    page = render_html(result)
    assert "ts-hit-rate" not in plot_series(page)[0]
    assert page.count('class="no-data"') == 4


def test_verdict_gates_and_figures_are_on_top(fail: Result, fail_html: str) -> None:
    assert 'data-verdict="fail"' in fail_html
    top = fail_html[: fail_html.index("Latency distributions")]
    table = top[top.index('class="gates"') :]
    for g in fail.gates:
        assert f"<code>{g.name}</code>" in table
    assert table.count(">FAIL<") == sum(not g.passed for g in fail.gates) == 3
    assert "undecided" not in table
    assert "30.66 ms" in table and "&lt; 20" in table
    for reason in fail.reasons:
        assert reason.replace("<", "&lt;") in top
    assert "1 of 15 gateway metric scrapes failed" in fail_html  # harness warning
    assert "violation: cross_talk" in fail_html and "bench-01" in fail_html


def test_undecided_gates_show_as_such_under_the_invalid_banner(fail: Result) -> None:
    result = fail.model_copy(deep=True)
    result.verdict, result.reasons = "invalid", ["interrupted by SIGINT: partial result"]
    why = "the run is invalid: its gates prove nothing either way"
    for g in result.gates:
        g.decided, g.undecided_reason = False, why
    page = render_html(result)
    table = page[page.index('class="gates"') : page.index("Key figures")]
    assert ">FAIL<" not in table and 'class="bad"' not in table
    assert table.count(">undecided (would fail)<") == 3
    assert table.count(">undecided (would pass)<") == 1
    assert table.count('class="undecided"') == 4
    assert table.count('class="note undecided-why"') == 1  # one reason, said once
    assert why in table


def test_a_gate_within_the_noise_is_undecided_in_a_failing_run(fail: Result) -> None:
    result = fail.model_copy(deep=True)
    close = result.gates[0]
    close.decided, close.undecided_reason = False, "within the harness's noise"
    table = render_html(result).split('class="gates"', 1)[1].split("Key figures", 1)[0]
    assert table.count(">FAIL<") == 2 and table.count(">undecided (would fail)<") == 1
    assert "<code>overhead_ms.p99</code>: within the harness&#x27;s noise" in table


def test_invalid_and_hostile_text_is_escaped(fail: Result) -> None:
    result = fail.model_copy(deep=True)
    result.verdict = "invalid"
    result.reasons = ["harness CPU 99 % of a core > 95 %: <loadgate> was saturated"]
    result.gates[0].name = 'x{le="<script>"}'
    result.gates[0].decided, result.gates[0].undecided_reason = False, "<b>why</b>"
    page = render_html(result)
    assert 'data-verdict="invalid"' in page and "INVALID" in page
    assert "<script>" not in page and "&lt;loadgate&gt; was saturated" in page
    assert "<b>why</b>" not in page and "&lt;b&gt;why&lt;/b&gt;" in page
    assert "Invalid: see the reasons at the top" in page


def test_compare_overlays_both_runs() -> None:
    base, cand = _load("sample_pass.json"), _load("sample_fail.json")
    page = render_compare_html(base, cand, verdict="regression", reasons=["p99 +"])
    _assert_self_contained(page)
    series = plot_series(page)[0]["cmp-overhead_ms"]
    assert sorted(name.split(" (")[0] for name in series) == [
        "base non-stream",
        "base stream",
        "candidate non-stream",
        "candidate stream",
    ]
    n = decode(cand.histograms["stream.overhead_ms"]).get_total_count()
    qs, ys = series[f"candidate stream (n={n})"]
    assert ys[qs.index(99.0)] == cand.by_mode["stream"].metrics["overhead_ms"].p99
    assert page.count('stroke-dasharray="6 4"') >= 2 * 3  # base is dashed, in chart and legend
    assert 'data-verdict="regression"' in page and 'class="verdict fail"' in page
    assert "<li>p99 +</li>" in page
    assert "data-verdict" not in render_compare_html(base, cand)  # no verdict given: none shown


def test_sweep_points_and_knee_plot() -> None:
    sweep = sample_sweep()
    label, pts = sweep_points(sweep)
    assert label == "concurrency" and [p.x for p in pts] == [8, 16, 32, 64, 128, 256]
    assert [p.verdict for p in pts] == [s.verdict for s in sweep.steps]
    svg = sweep_svg(sweep)
    charts = plot_series(svg)[0]
    _, rps = charts["sweep-throughput"]["throughput (req/s)"]
    assert rps == tuple(s.requests.throughput_rps for s in sweep.steps)
    _, p99 = charts["sweep-overhead"]["overhead p99 (ms)"]
    assert p99 == tuple(s.metric("overhead_ms", "p99") for s in sweep.steps)
    # sample_sweep.json has no budget section: the steps' overhead_ms.p99 gate gives it
    assert sweep.budget is None
    assert 'data-rule="budget 20 ms" data-value="20"' in svg
    assert svg.count('data-rule="knee: 128" data-value="128"') == 2
    page = render_sweep_html(sweep)
    _assert_self_contained(page)
    assert "Knee: concurrency 128" in page


def test_sweep_points_of_a_rate_sweep_and_an_invalid_step() -> None:
    data: dict[str, Any] = {
        "mode": "rate",
        "steps": [
            {
                "rate": 200,
                "verdict": "pass",
                "requests": {"throughput_rps": 199.0},
                "metrics": {"overhead_ms": {"p99": 3.0}},
            },
            {"rate": 100, "verdict": "invalid", "requests": {"throughput_rps": 100.0}},
        ],
        "profile": {"gates": {"overhead_ms.p99": "< 99"}},
    }
    sweep = SweepResult.model_validate(data)
    label, pts = sweep_points(sweep)
    assert label == "offered rate (req/s)"
    assert [(p.x, p.throughput_rps, p.overhead_p99_ms, p.verdict) for p in pts] == [
        (100.0, 100.0, None, "invalid"),
        (200.0, 199.0, 3.0, "pass"),
    ]
    rows = render_sweep_html(sweep).split("<h2>Steps</h2>", 1)[1]
    assert '<span class="undecided">invalid</span>' in rows and ">FAIL<" not in rows
    assert 'class="no-data"' in sweep_svg(SweepResult())


def test_the_budget_line_is_the_sweeps_own_when_it_says() -> None:
    data: dict[str, Any] = {"steps": [{"concurrency": 4, "verdict": "pass"}]}
    data["steps"][0]["gates"] = [{"name": "overhead_ms.p99", "op": "<", "threshold": 50}]
    data["profile"] = {"gates": {"overhead_ms.p99": "< 99"}}
    budget = {"name": "overhead_ms.p99", "op": "<", "threshold": 5.0}

    def budget_rules(**over: Any) -> list[str]:
        svg = sweep_svg(SweepResult.model_validate({**data, **over}))
        return re.findall(r'data-rule="(budget [^"]*)"', svg)

    assert budget_rules(budget=budget) == ["budget 5 ms"]
    assert budget_rules(budget=None) == []  # the sweep had no budget: none drawn
    assert budget_rules() == ["budget 50 ms"]  # an early file without the key: the steps'
    data["steps"][0]["gates"] = []
    assert budget_rules() == ["budget 99 ms"]  # … else the profile's gate


def test_write_reports(tmp_path: Path, fail: Result) -> None:
    out = write_reports(
        fail, html=tmp_path / "r.html", junit=tmp_path / "j.xml", markdown=tmp_path / "s.md"
    )
    assert [p.name for p in out] == ["r.html", "j.xml", "s.md"]
    assert (tmp_path / "r.html").read_text() == render_html(fail)
    assert (tmp_path / "r.html").stat().st_mode & 0o044 == 0o044
    assert write_reports(fail) == []
    write_reports(sample_sweep(), html=tmp_path / "sweep.html")
    assert "Knee plot" in (tmp_path / "sweep.html").read_text()
    with pytest.raises(UsageError, match=r"^--junit .*j2\.xml: a sweep result has no junit"):
        write_reports(sample_sweep(), html=tmp_path / "s2.html", junit=tmp_path / "j2.xml")
    assert not (tmp_path / "s2.html").exists()  # refused before anything was written


def test_an_unwritable_report_is_one_line_naming_it(tmp_path: Path, fail: Result) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    target = blocker / "r.html"  # a directory that is a file: cannot be created
    with pytest.raises(UsageError) as info:
        write_reports(fail, html=target)
    message = str(info.value)
    assert message.startswith(f"{target}: cannot write: ") and "\n" not in message


def test_report_command_writes_beside_the_result_and_prints_only_in_the_cli(
    tmp_path: Path, fail: Result, capsys: pytest.CaptureFixture[str]
) -> None:
    from loadgate.cli import main

    src, md = tmp_path / "res.json", tmp_path / "sub" / "s.md"
    src.write_text((DATA / "sample_fail.json").read_text())
    with pytest.raises(SystemExit) as done:
        main(["report", str(src)])
    assert done.value.code == 0  # a report is written whatever the verdict
    assert (tmp_path / "res.html").read_text() == render_html(fail)
    assert capsys.readouterr().err == f"wrote {tmp_path / 'res.html'}\n"
    with pytest.raises(SystemExit) as done:
        main(["report", str(src), "--junit", str(tmp_path / "j.xml"), "--markdown", str(md)])
    assert done.value.code == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [f"wrote {tmp_path / 'j.xml'}", f"wrote {md}"]
    assert md.read_text().startswith("### loadgate: FAIL")
    src.write_text('{"schema": "other/9"}')
    with pytest.raises(SystemExit) as done:
        main(["report", str(src), "--html", str(tmp_path / "x.html")])
    assert done.value.code == 2
    assert re.fullmatch(r"loadgate: error: .*res\.json: schema: .*\n", capsys.readouterr().err)


def test_sample_results_match_their_generator() -> None:
    from tests.support import make_sample_results as gen

    doc = gen.make("sample_pass", 11, slow_share=0.004, errors=0, violations=0)
    stored: dict[str, Any] = json.loads((DATA / "sample_pass.json").read_text())
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
    result = Result.model_validate(data)
    page = render_html(result)
    _assert_self_contained(page)
    assert plot_series(page)[0] == {}
    assert page.count('class="no-data"') == 7  # 3 distributions + 4 time series
    assert "run did not start measuring" in page or not data
    assert "No gates in this result." in page
    assert render_compare_html(result, result).count('class="no-data"') == 3
    assert "No knee" in render_sweep_html(SweepResult())


def test_the_witness_section_says_not_configured_or_shows_its_figures() -> None:
    plain = Result.model_validate({"schema": "loadgate.result/1"})
    assert "<th>side-effect witness</th><td>not configured</td>" in render_html(plain)
    lag = {"count": 3, "p50": 24.5, "p99": 61.2, "max": 66.0}
    witness = {"kind": "sql", "sample": 0.05, "sampled": 3, "found": 2, "missing": 1}
    shown = Result.model_validate(
        {"schema": "loadgate.result/1", "probes": {"witness": {**witness, "latency_ms": lag}}}
    )
    page = render_html(shown)
    assert "3 / 2 / 1" in page and "p50 24.5 / p99 61.2 / max 66" in page


def test_the_probes_rows_name_each_probe_configured_or_not() -> None:
    from loadgate.report._checks import probe_rows
    from loadgate.report.markdown import render_markdown

    plain = Result.model_validate({"schema": "loadgate.result/1"})
    assert probe_rows(plain) == [
        ("side-effect witness", "not configured"),
        ("key revocation", "not configured"),
        ("tenant isolation", "not configured"),
    ]
    revocation = {
        "revoked": 5,
        "never_rejected": 1,
        "propagation_s": {"p50": 0.2, "max": None},
        "interval_ms": 50,
        "bound_s": 0.05,
    }
    tenants = {"tried": 40, "leaked": 2, "examples": ["00000001000000aa"]}
    shown = Result.model_validate(
        {"schema": "loadgate.result/1", "probes": {"revocation": revocation, "tenants": tenants}}
    )
    rows = dict(probe_rows(shown))
    # A key never rejected leaves the propagation unknown: never a max of the others.
    assert rows["key revocation"] == (
        "5 revoked, 1 never rejected; propagation unknown (not every key was rejected)"
    )
    assert rows["tenant isolation"] == "40 cross-tenant requests, 2 leaked (e.g. 00000001000000aa)"
    assert "| tenant isolation | 40 cross-tenant requests, 2 leaked" in render_markdown(shown)
    assert "<th>key revocation</th><td>5 revoked, 1 never rejected;" in render_html(shown)
