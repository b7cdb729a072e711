"""The metrics lint's rules, one exposition each, and the reference gateway's own."""

from __future__ import annotations

import pytest

from loadgate.checks.metrics_lint import lint_figures, lint_metrics, parse_required
from reference_gateway._metrics import Metrics


def rules(text: str, **kw: object) -> set[tuple[str, str]]:
    return {(f.metric, f.rule) for f in lint_metrics(text, **kw).findings}  # type: ignore[arg-type]


def test_the_reference_gateways_metrics_are_clean() -> None:
    m = Metrics(cache_hits=lambda: 3)
    m.count_request("chat", 200)
    text = m.exposition().decode()
    report = lint_metrics(text, ["auth_cache_hits_total", "gateway_requests_total{route,status}"])
    assert report.findings == [] and report.missing == []
    assert report.series == 7  # one sample per family (requests: one route/status so far)


def test_the_bad_metric_defect_is_two_problems() -> None:
    m = Metrics()
    m.count_key("sk-lg-0001")
    assert rules(m.exposition().decode()) == {
        ("gateway_key_requests", "counter_total"),
        ("gateway_key_requests", "high_cardinality"),
    }


def test_type_help_and_units() -> None:
    text = (
        "# TYPE a_seconds gauge\na_seconds 1\nlatency_ms 2\n"
        "# HELP b_total x\n# TYPE b_total gauge\nb_total 1\n"
    )
    assert rules(text) == {
        ("a_seconds", "help"),
        ("latency_ms", "type"),
        ("latency_ms", "help"),
        ("latency_ms", "base_units"),
        ("b_total", "total_not_counter"),
    }


def test_labels_that_grow_with_requests() -> None:
    many = "".join(f'x_total{{route="r{i}"}} 1\n' for i in range(5))
    text = "# HELP x_total h\n# TYPE x_total counter\n" + many
    assert rules(text, max_label_values=4) == {("x", "high_cardinality")}
    assert rules(text, max_label_values=5) == set()
    ids = "".join(f'y_total{{req="{i:016x}"}} 1\n' for i in range(2))
    assert rules("# HELP y_total h\n# TYPE y_total counter\n" + ids) == {("y", "high_cardinality")}
    # One commit hash alone is a build label, not a per-request value.
    one = '# HELP build_info h\n# TYPE build_info gauge\nbuild_info{commit="0123456789abcdef0"} 1\n'
    assert rules(one) == set()
    keyed = '# HELP z_total h\n# TYPE z_total counter\nz_total{tenant="gw-7"} 1\n'
    assert rules(keyed, key_prefix="gw-") == {("z", "high_cardinality")}


def test_required_series_with_their_labels() -> None:
    text = '# HELP r_total h\n# TYPE r_total counter\nr_total{route="chat"} 1\n'
    report = lint_metrics(text, ["r_total", "r_total{route}", "r_total{route,status}", "q"])
    assert report.missing == ["r_total{route,status}", "q"]
    fig = lint_figures(report, "http://x/metrics")
    assert (fig.series, fig.problems, fig.missing) == (1, 2, 2)


def test_an_unparseable_exposition_is_a_problem_not_an_exception() -> None:
    report = lint_metrics('a{b="1"} x\n', ["a"])
    assert [f.rule for f in report.findings] == ["parse"] and report.missing == ["a"]


def test_required_specs_parse_or_say_why() -> None:
    assert parse_required(" http_requests_total{route, status} ") == (
        "http_requests_total",
        frozenset({"route", "status"}),
    )
    with pytest.raises(ValueError, match="expected name"):
        parse_required("a{b")
