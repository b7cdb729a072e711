"""The HTML report in a real browser: headless Chromium draws every plot.

Chromium is Debian's package, installed by the session fixture when missing
(root + apt); elsewhere the tests skip with the reason. Set
``LOADGATE_UPDATE_SCREENSHOT=1`` to refresh docs/img/report.png from this run.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import struct
from pathlib import Path
from typing import TypedDict

import pytest

from loadgate.report import render_html, render_sweep_html
from loadgate.result.io import load_run_result
from tests.support.chromium import (
    Unavailable,
    distinct_colours,
    dump_dom,
    ensure_chromium,
    plot_series,
    screenshot,
)
from tests.support.report_pages import LEGEND_ENTRIES, sample_pages, sample_sweep

pytestmark = [pytest.mark.chromium, pytest.mark.timeout(1200)]  # a first apt install is slow

ROOT = Path(__file__).resolve().parent.parent.parent
DATA = ROOT / "tests" / "data" / "results"
#: every stored run result (a real run's result added here is covered too); not sweeps
RESULTS = sorted(p for p in DATA.glob("*.json") if "steps" not in json.loads(p.read_text()))
SHOT_FROM = DATA / "sample_fail.json"
DIST = ("dist-overhead_ms", "dist-ttft_overhead_ms", "dist-e2e_ms")
SERIES = ("ts-rps", "ts-overhead", "ts-errors", "ts-hit-rate")


@pytest.fixture(scope="session")
def chromium() -> str:
    try:
        return ensure_chromium()
    except Unavailable as exc:
        pytest.skip(f"headless Chromium unavailable: {exc}")


def _drawn(dom: str, chart_ids: tuple[str, ...]) -> None:
    charts, paths = plot_series(dom)
    for chart in chart_ids:
        assert charts.get(chart), f"{chart}: no data series in the rendered DOM"
        for name, (xs, ys) in charts[chart].items():
            assert len(xs) >= 2 and any(y is not None for y in ys), f"{chart}/{name}: empty"
            assert paths[chart][name].count("L") >= 1, f"{chart}/{name}: nothing drawn"


@pytest.mark.parametrize("result", RESULTS, ids=lambda p: p.stem)
def test_report_plots_are_drawn(chromium: str, tmp_path: Path, result: Path) -> None:
    data = json.loads(result.read_text())
    page = tmp_path / "report.html"
    page.write_text(render_html(load_run_result(result)), encoding="utf-8")
    dom = dump_dom(chromium, page, tmp_path)
    assert f'data-verdict="{data["verdict"]}"' in dom
    hists = data.get("histograms") or {}
    ts = data.get("timeseries") or {}
    dist = [c for c in DIST if c.removeprefix("dist-") in hists]
    series = [c for c in SERIES if c != "ts-hit-rate" or ts.get("auth_cache_hit_rate")]
    assert "dist-overhead_ms" in dist and "ts-rps" in series  # nothing to check otherwise
    _drawn(dom, (*dist, *series))
    modes = [m for m in ("stream", "non_stream") if f"{m}.overhead_ms" in hists]
    assert len(plot_series(dom)[0]["dist-overhead_ms"]) == len(modes)  # modes overlaid
    if result != SHOT_FROM:
        return

    png = screenshot(chromium, page, tmp_path / "report.png", tmp_path)
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (1280, 2400)
    colours = distinct_colours(png)
    assert colours > 16, f"screenshot looks blank ({colours} colours)"
    if os.environ.get("LOADGATE_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(tmp_path / "report.png", ROOT / "docs" / "img" / "report.png")


def test_sweep_knee_plot_is_drawn(chromium: str, tmp_path: Path) -> None:
    page = tmp_path / "sweep.html"
    page.write_text(render_sweep_html(sample_sweep()), encoding="utf-8")
    dom = dump_dom(chromium, page, tmp_path)
    _drawn(dom, ("sweep-throughput", "sweep-overhead"))
    assert 'data-rule="knee: 128"' in dom


#: Measures, in the browser, each legend entry's text as laid out and each plot's rectangle
#: (user units of the entry's own chart) and writes them into the DOM for dump_dom.
_MEASURE = """<script>
const out = [];
for (const svg of document.querySelectorAll("svg.chart")) {
  const p = svg.querySelector("rect.plot-area").getBBox();
  for (const g of svg.querySelectorAll("g.legend")) {
    const t = g.querySelector("text").getBBox(), b = g.querySelector("rect.legend-box").getBBox();
    out.push({chart: svg.id, plot: [p.x, p.y, p.x + p.width, p.y + p.height],
              text: [t.x, t.y, t.x + t.width, t.y + t.height],
              box: [b.x, b.y, b.x + b.width, b.y + b.height],
              size: [svg.width.baseVal.value, svg.height.baseVal.value]});
  }
}
const pre = document.createElement("pre");
pre.id = "geometry";
pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
</script>"""


class _Measured(TypedDict):
    """One legend entry as _MEASURE reports it: boxes as ``[x0, y0, x1, y1]``."""

    chart: str
    plot: list[float]
    text: list[float]
    box: list[float]
    size: list[float]


def _overlap(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_legend_text_as_drawn_stays_off_every_plot(chromium: str, tmp_path: Path) -> None:
    """The legend layout is computed without measuring text; the browser's own text
    boxes show that every legend label, as drawn, is off the plot and inside its box."""
    entries: list[_Measured] = []
    for i, doc in enumerate(sample_pages()):
        page = tmp_path / f"page{i}.html"
        page.write_text(doc.replace("</body>", _MEASURE + "</body>"), encoding="utf-8")
        found = re.search(r'<pre id="geometry">(.*?)</pre>', dump_dom(chromium, page, tmp_path))
        assert found, "the measuring script did not run"
        entries += json.loads(html.unescape(found.group(1)))
    assert len(entries) == sum(LEGEND_ENTRIES)
    for e in entries:
        text, box, plot, (width, height) = e["text"], e["box"], e["plot"], e["size"]
        assert text[2] > text[0] and text[3] > text[1], f"{e['chart']}: legend text not drawn"
        assert not _overlap(text, plot), f"{e['chart']}: legend text {text} on the plot {plot}"
        assert box[0] <= text[0] and text[2] <= box[2] + 0.5, f"{e['chart']}: wider than laid out"
        assert text[2] <= width and text[1] >= 0 and text[3] <= height


def test_blank_page_is_detected(chromium: str, tmp_path: Path) -> None:
    """The colour count can fail: an empty page is a handful of colours at most."""
    page = tmp_path / "blank.html"
    page.write_text("<!DOCTYPE html><html><body></body></html>", encoding="utf-8")
    png = screenshot(chromium, page, tmp_path / "blank.png", tmp_path, size=(320, 240))
    assert distinct_colours(png) <= 2


def test_report_of_a_real_small_run(chromium: str, tmp_path: Path) -> None:
    """A real run (stub + reference gateway on loopback, a few seconds): the report the
    runner writes into its run directory draws every plot in Chromium."""
    import subprocess
    import sys

    out = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, "-m", "loadgate", "run", "smoke", "--quiet", "--out", str(out),
         "--set", "stub.port=0", "--set", "load.duration=3s", "--set", "load.warmup=0.5s",
         "--set", "load.concurrency=8", "--set", "harness.max_cpu_percent=100"],
        cwd=tmp_path, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert out.exists(), proc.stderr
    data = json.loads(out.read_text())
    page = Path(data["run_dir"]) / "report.html"
    assert page.exists()
    dom = dump_dom(chromium, page, tmp_path)
    assert f'data-verdict="{data["verdict"]}"' in dom
    _drawn(dom, ("dist-overhead_ms", "dist-e2e_ms", "ts-rps", "ts-overhead"))
    assert len(plot_series(dom)[0]["dist-overhead_ms"]) == 2  # stream and non-stream overlaid
    png = screenshot(chromium, page, tmp_path / "real.png", tmp_path)
    assert distinct_colours(png) > 16
