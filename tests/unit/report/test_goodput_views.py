"""Goodput in every view of one run: summary, HTML, Markdown; "not configured" without [slo]."""

from __future__ import annotations

import io

from rich.console import Console

from loadgate.report import render_compare_html, render_html, render_markdown
from loadgate.report.summary import print_summary
from loadgate.result.io import load_run_result
from loadgate.result.model import Goodput, Result
from tests.support.paths import DATA

GOODPUT = Goodput(
    slo={"ttft_ms": 200.0, "overhead_ms": 5.0},
    requests=2000,
    good=1990,
    failed=4,
    ratio=0.995,
    rps=199.0,
    missed={"ttft_ms": 2, "overhead_ms": 6},
    missed_ratio={"ttft_ms": 0.001, "overhead_ms": 0.003},
    not_applicable={"ttft_ms": 1000, "overhead_ms": 0},
)


def _result(goodput: Goodput | None) -> Result:
    result = load_run_result(DATA / "sample_fail.json")
    result.goodput = goodput
    return result


def _summary(result: Result) -> str:
    buf = io.StringIO()
    print_summary(result, Console(file=buf, width=240, color_system=None))
    return buf.getvalue()


def test_goodput_in_the_summary_html_and_markdown() -> None:
    result = _result(GOODPUT)
    ratio = "99.50 % (1990 / 2000), 199 req/s"
    misses = "ttft_ms <= 200: 0.10 % missed (1000 n/a, met); overhead_ms <= 5: 0.30 % missed"
    for text in (_summary(result), render_markdown(result)):
        assert ratio in text and misses in text and "failed requests 0.20 %" in text
    html = render_html(result)
    assert ratio in html and "ttft_ms &lt;= 200: 0.10 % missed" in html


def test_without_slo_every_view_says_not_configured() -> None:
    result = _result(None)
    for text in (_summary(result), render_markdown(result), render_html(result)):
        assert "not configured (no [slo] in the profile)" in text
        assert "% missed" not in text and "failed requests" not in text


def test_compare_page_pairs_a_run_with_goodput_and_one_without() -> None:
    page = render_compare_html(_result(GOODPUT), _result(None))
    assert "99.50 % (1990 / 2000), 199 req/s" in page
    assert "not configured (no [slo] in the profile)" in page
