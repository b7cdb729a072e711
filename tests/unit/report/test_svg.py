"""svg.py: axis arithmetic, determinism, data read-back, gaps, rules, empty charts."""

from __future__ import annotations

import itertools
import math
import re
from html.parser import HTMLParser

import pytest

from loadgate.report.distribution import percentile_grid
from loadgate.report.svg import Axis, Rule, Series, line_chart, percentile_to_t, stack
from tests.support.chromium import plot_series


def test_percentile_axis_is_decades_of_one_over_one_minus_q() -> None:
    assert percentile_to_t(0.0) == 0.0
    assert percentile_to_t(90.0) == pytest.approx(1.0)
    assert percentile_to_t(99.0) == pytest.approx(2.0)
    assert percentile_to_t(99.99) == pytest.approx(4.0)
    assert percentile_to_t(100.0, t_max=3.0) == 3.0  # the max sits on the right edge
    assert percentile_to_t(99.9999, t_max=3.0) == 3.0


def test_percentile_grid_is_even_in_decades_and_ends_with_the_max() -> None:
    assert percentile_grid(1000, ticks_per_decade=1) == [0.0, 90.0, 99.0, 99.9, 100.0]
    assert percentile_grid(0) == []
    grid = percentile_grid(20_000, ticks_per_decade=4)
    assert len(grid) == 5 * 4 + 2  # 5 decades resolve 20 000 samples, plus 0 and the max
    steps = [percentile_to_t(q) for q in grid[:-1]]
    # q is rounded to 6 decimals for the file: under 1e-3 decade (a tenth of a pixel) off
    assert all(b - a == pytest.approx(0.25, abs=1e-3) for a, b in itertools.pairwise(steps))


def _chart(width: int = 560) -> str:
    s = Series("a", (0.0, 90.0, 99.0, 100.0), (1.0, 2.5, 7.25, 9.0))
    return line_chart(
        [s],
        x=Axis("percentile", scale="percentile"),
        y=Axis("ms"),
        title="t",
        chart_id="c",
        width=width,
    )


def test_series_data_reads_back_exactly_and_output_is_deterministic() -> None:
    svg = _chart()
    assert svg == _chart()
    charts, paths = plot_series(svg)
    assert charts == {"c": {"a": ((0.0, 90.0, 99.0, 100.0), (1.0, 2.5, 7.25, 9.0))}}
    assert paths["c"]["a"].count("L") == 3


def test_points_land_on_their_ticks() -> None:
    svg = _chart(width=500)
    # left margin 62, right margin 34, axis 0..2 decades (data reaches 99 %)
    plot_w = 500 - 62 - 34
    d = plot_series(svg)[1]["c"]["a"]
    xs = [float(m) for m in re.findall(r"[ML]([-\d.]+),", d)]
    assert xs == pytest.approx([62, 62 + plot_w / 2, 62 + plot_w, 62 + plot_w], abs=0.01)
    for label in ("0%", "90%", "99%"):
        assert f">{label}</text>" in svg
    assert ">99.9%</text>" not in svg


def test_none_is_a_gap_not_a_zero() -> None:
    s = Series("gappy", (0.0, 1.0, 2.0, 3.0), (1.0, None, 2.0, 3.0))
    svg = line_chart([s], x=Axis("s"), y=Axis("v"), title="g", chart_id="g")
    (_, ys), d = plot_series(svg)[0]["g"]["gappy"], plot_series(svg)[1]["g"]["gappy"]
    assert ys == (1.0, None, 2.0, 3.0)
    assert d.count("M") == 2 and d.count("L") == 1


def test_rules_and_empty_charts() -> None:
    svg = line_chart(
        [Series("x", (1.0, 2.0), (None, None))],
        x=Axis("a"),
        y=Axis("b"),
        title="e",
        rules=[Rule("y", 20.0, "budget 20 ms")],
    )
    assert 'class="no-data"' in svg
    assert plot_series(svg)[0] == {}
    assert 'data-rule="budget 20 ms" data-value="20"' in svg


def test_log_axis_uses_given_ticks_and_text_is_escaped() -> None:
    s = Series("<b>&", (8.0, 16.0, 32.0), (1.0, 2.0, 4.0))
    svg = line_chart(
        [s],
        x=Axis("c", scale="log", ticks=(8.0, 16.0, 32.0)),
        y=Axis("v"),
        title="<script>",
        chart_id="l",
    )
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    d = plot_series(svg)[1]["l"]["<b>&"]
    xs = [float(m) for m in re.findall(r"[ML]([-\d.]+),", d)]
    assert xs[1] - xs[0] == pytest.approx(xs[2] - xs[1])  # doublings are evenly spaced
    for t in (">8</text>", ">16</text>", ">32</text>"):
        assert t in svg


def test_stack_keeps_every_chart() -> None:
    a = line_chart(
        [Series("a", (0.0, 1.0), (1.0, 2.0))], x=Axis("x"), y=Axis("y"), title="A", chart_id="a"
    )
    b = line_chart(
        [Series("b", (0.0, 1.0), (3.0, math.pi))], x=Axis("x"), y=Axis("y"), title="B", chart_id="b"
    )
    charts = plot_series(stack([a, b], width=560, heights=[300, 300], title="s"))[0]
    assert set(charts) == {"a", "b"}
    assert charts["b"]["b"][1] == (3.0, round(math.pi, 5))


def test_public_names() -> None:
    import loadgate.report as report
    import loadgate.report.svg as svg

    assert sorted(report.__all__) == [
        "frontier_svg",
        "render_compare_html",
        "render_html",
        "render_junit",
        "render_markdown",
        "render_sweep_html",
        "sweep_points",
        "sweep_svg",
        "write_reports",
    ]
    for mod in (report, svg):
        assert all(hasattr(mod, name) for name in mod.__all__)


# -- legend placement (issue 15 item 7) ------------------------------------------

Box = tuple[float, float, float, float]  # x0, y0, x1, y1


class _Geometry(HTMLParser):
    """Per chart id: its size, its plot rectangle and its legend entries' rectangles."""

    def __init__(self) -> None:
        super().__init__()
        self.size: dict[str, tuple[float, float]] = {}
        self.plot: dict[str, Box] = {}
        self.legend: dict[str, list[Box]] = {}
        self._ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "svg":
            self._ids.append(a.get("id", ""))
            if a.get("class") == "chart":
                self.size[self._ids[-1]] = (float(a["width"]), float(a["height"]))
        elif tag == "rect" and a.get("class") in ("plot-area", "legend-box"):
            x, y, w, h = (float(a[k]) for k in ("x", "y", "width", "height"))
            box = (x, y, x + w, y + h)
            if a["class"] == "plot-area":
                self.plot[self._ids[-1]] = box
            else:
                self.legend.setdefault(self._ids[-1], []).append(box)

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._ids.pop()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag == "svg":
            self.handle_endtag(tag)


def _geometry(svg: str) -> _Geometry:
    g = _Geometry()
    g.feed(svg)
    g.close()
    return g


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _assert_legends_outside_plots(svg: str) -> int:
    """Every legend entry is off the plot, inside its chart, clear of the other entries,
    and every drawn point is on the plot; returns how many legend entries were checked."""
    geo = _geometry(svg)
    assert geo.plot and set(geo.plot) == set(geo.size)
    checked = 0
    for chart, boxes in geo.legend.items():
        plot, (width, height) = geo.plot[chart], geo.size[chart]
        for i, box in enumerate(boxes):
            assert not _overlap(box, plot), f"{chart}: legend {box} overlaps the plot {plot}"
            assert box[0] >= 0 and box[2] <= width and box[1] >= 0 and box[3] <= height
            assert not any(_overlap(box, other) for other in boxes[i + 1 :])
            checked += 1
    for chart, paths in plot_series(svg)[1].items():
        x0, y0, x1, y1 = geo.plot[chart]
        for d in paths.values():
            for x, y in re.findall(r"[ML]([-\d.]+),([-\d.]+)", d):
                assert x0 - 0.01 <= float(x) <= x1 + 0.01 and y0 - 0.01 <= float(y) <= y1 + 0.01
    return checked


def test_the_overlap_check_can_fail() -> None:
    plot = (62.0, 30.0, 526.0, 256.0)
    assert _overlap((66.0, 27.0, 140.0, 42.0), plot)  # the old legend box, top left inside
    assert not _overlap((62.0, 24.5, 140.0, 39.5), (62.0, 40.0, 526.0, 256.0))
    old = (
        '<svg id="c" class="chart" width="560" height="300">'
        '<rect class="plot-area" x="62" y="30" width="464" height="226"/>'
        '<rect class="legend-box" x="66" y="27" width="80" height="33"/></svg>'
    )
    with pytest.raises(AssertionError, match="overlaps the plot"):
        _assert_legends_outside_plots(old)


def test_legends_sit_outside_the_plot_in_every_report_chart() -> None:
    from tests.support.report_pages import LEGEND_ENTRIES, sample_pages

    counts = tuple(_assert_legends_outside_plots(page) for page in sample_pages())
    assert counts == LEGEND_ENTRIES


def test_a_legend_too_wide_for_one_row_wraps_and_pushes_the_plot_down() -> None:
    names = [f"candidate run {i} non-stream (n=123456)" for i in range(7)]
    series = [Series(n, (0.0, 1.0), (float(i), float(i + 1))) for i, n in enumerate(names)]
    svg = line_chart(series, x=Axis("x"), y=Axis("y"), title="wide", chart_id="w")
    geo = _geometry(svg)
    rows = sorted({box[1] for box in geo.legend["w"]})
    assert len(geo.legend["w"]) == 7 and len(rows) >= 3
    assert geo.plot["w"][1] >= max(box[3] for box in geo.legend["w"])
    assert _assert_legends_outside_plots(svg) == 7


def test_one_series_named_like_its_chart_has_no_legend() -> None:
    s = Series("Requests completed per second", (0.0, 1.0), (5.0, 6.0))
    svg = line_chart([s], x=Axis("s"), y=Axis("req/s"), title=s.name, chart_id="r")
    assert 'class="legend"' not in svg
    assert _geometry(svg).plot["r"][1] == 30  # the plot starts right under the title


def test_tick_labels_name_explicit_ticks() -> None:
    s = Series("p99", (0.0, 1.0, 2.0), (1.0, 2.0, 1.5))
    svg = line_chart(
        [s],
        x=Axis("commit", ticks=(0.0, 1.0, 2.0), tick_labels=("a1b2c3d4", "e5f6", "0123")),
        y=Axis("ms"),
        title="history",
    )
    for label in ("a1b2c3d4", "e5f6", "0123"):
        assert f">{label}</text>" in svg
    with pytest.raises(ValueError, match="one label per explicit tick"):
        Axis("commit", ticks=(0.0, 1.0), tick_labels=("a",))
