"""svg.py: axis arithmetic, determinism, data read-back, gaps, rules, empty charts."""

from __future__ import annotations

import itertools
import math
import re

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
        "main",
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
