"""Number and gate wording shared by every output (terminal, HTML, JUnit, Markdown).

One place decides how a figure is printed and what a gate's outcome is called,
so a gate reads the same in the CI log, the pull-request comment and the HTML
page — including a gate the run could not decide (``Gate.decided`` False: the
run is invalid, or the harness's own noise could flip it), which every output
shows as ``undecided (would pass|fail)``, never as a plain pass or FAIL.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from loadgate.result.model import Gate, LagSummary, Result, Summary

__all__ = [
    "floor_p99",
    "fmt_num",
    "fmt_pct",
    "gate_line",
    "gate_measured",
    "gate_outcome",
    "gate_rule",
    "gate_status",
    "gate_value",
    "goodput_misses",
    "goodput_text",
    "key_figures",
    "metric",
    "num",
    "p99",
    "undecided_groups",
    "unit_of",
]

GateStatus = Literal["pass", "fail", "undecided"]


def num(value: float | None) -> float | None:
    """A finite float, or None (missing, NaN, infinite)."""
    if value is None:
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def fmt_num(value: float | None, unit: str = "") -> str:
    """Up to 4 significant digits (3 decimals at most); "–" for no value."""
    f = num(value)
    if f is None:
        return "–"
    if f == int(f) and abs(f) < 1e15:
        text = str(int(f))
    elif abs(f) >= 100:
        text = f"{f:.1f}"
    else:
        text = f"{f:.4g}" if abs(f) >= 0.001 else f"{f:.3g}"
    return f"{text} {unit}".rstrip() if unit else text


def fmt_pct(ratio: float | None) -> str:
    """A 0..1 ratio as a percentage: ``0.956`` → ``"95.6 %"``, ``0.00182`` → ``"0.182 %"``."""
    f = num(ratio)
    if f is None:
        return "–"
    return f"{100.0 * f:.3g} %" if abs(f) < 0.01 else f"{100.0 * f:.1f} %"


def _share(ratio: float) -> str:
    # Two decimals: goodput lives near 100 %, where 99.95 must not read "100.0".
    return f"{100.0 * ratio:.2f} %"


def goodput_text(result: Result) -> str:
    """``99.50 % (1990 / 2000), 199 req/s``; "not configured" without ``[slo]``."""
    g = result.goodput
    if g is None:
        return "not configured (no [slo] in the profile)"
    if g.ratio is None:
        return "no measured requests"
    return f"{_share(g.ratio)} ({g.good} / {g.requests}), {fmt_num(g.rps, 'req/s')}"


def goodput_misses(result: Result) -> str:
    """The share of requests failing each SLO, and the failed requests (never good)."""
    g = result.goodput
    if g is None or not g.requests:
        return "–"
    parts = [
        f"{name} <= {fmt_num(bound)}: {_share(g.missed_ratio.get(name, 0.0))} missed"
        + (f" ({g.not_applicable[name]} n/a, met)" if g.not_applicable.get(name) else "")
        for name, bound in g.slo.items()
    ]
    parts.append(f"failed requests {_share(g.failed / g.requests)}")
    return "; ".join(parts)


def unit_of(gate_name: str) -> str:
    """Gate figures named ``*_ms.*`` are milliseconds; everything else is unitless."""
    return "ms" if "_ms" in gate_name else ""


def gate_rule(gate: Gate) -> str:
    """``"< 20"``: the gate's operator and threshold."""
    return f"{gate.op} {fmt_num(gate.threshold)}"


def gate_value(gate: Gate) -> str:
    """The measured figure with its unit (``"23.4 ms"``), or why there is none."""
    value = num(gate.value)
    if value is None:
        return gate.reason or "no data"
    return fmt_num(value, unit_of(gate.name))


def gate_measured(gate: Gate) -> str:
    """``"measured 23.4 ms, budget < 20"`` (or ``"no data, budget < 20"``)."""
    what = gate_value(gate)
    if num(gate.value) is not None:
        what = f"measured {what}"
    return f"{what}, budget {gate_rule(gate)}"


def gate_line(gate: Gate) -> str:
    """``"overhead_ms.p99: measured 23.4 ms, budget < 20"``."""
    return f"{gate.name}: {gate_measured(gate)}"


def gate_status(gate: Gate) -> GateStatus:
    if not gate.decided:
        return "undecided"
    return "pass" if gate.passed else "fail"


def gate_outcome(gate: Gate) -> str:
    """``"pass"``, ``"FAIL"``, or ``"undecided (would fail)"`` for a gate the run can't back."""
    if not gate.decided:
        return f"undecided (would {'pass' if gate.passed else 'fail'})"
    return "pass" if gate.passed else "FAIL"


def undecided_groups(gates: Sequence[Gate]) -> list[tuple[list[str], str]]:
    """``(gate names, why)`` for the undecided gates, one entry per distinct reason.

    An invalid run makes every gate undecided for the same reason: it is said
    once, naming the gates, rather than once per gate.
    """
    groups: dict[str, list[str]] = {}
    for g in gates:
        if not g.decided:
            groups.setdefault(g.undecided_reason or "the run cannot back this answer", []).append(
                g.name
            )
    return [(names, why) for why, names in groups.items()]


def floor_p99(result: Result) -> float | None:
    """The harness floor's p99 (ms), measured by direct runs; None when not measured."""
    floor = result.harness.floor_ms
    return num(floor.get("p99")) if floor else None


def metric(result: Result, name: str, mode: str | None = None) -> Summary | None:
    """The summary of metric ``name`` over all modes (``mode`` None) or one mode."""
    if mode is None:
        return result.metrics.get(name)
    figures = result.by_mode.get(mode)
    return figures.metrics.get(name) if figures is not None else None


def p99(summary: Summary | LagSummary | None) -> float | None:
    return summary.p99 if summary is not None else None


def _ms(values: Sequence[float | None]) -> str:
    return " / ".join(fmt_num(v) for v in values) + " ms"


def key_figures(result: Result) -> list[tuple[str, str]]:
    """The figures a reviewer looks at first, as ``(label, text)`` rows."""
    req, integ = result.requests, result.integrity
    ovh = metric(result, "overhead_ms")
    rows = [
        ("throughput", fmt_num(req.throughput_rps, "req/s")),
        ("requests sent / failed", f"{fmt_num(req.sent)} / {fmt_num(req.failed)}"),
        ("error rate", fmt_pct(req.error_rate)),
        (
            "overhead p50 / p99 / p99.9",
            _ms([ovh.p50, ovh.p99, ovh.p999] if ovh else [None] * 3),
        ),
        (
            "overhead p99 stream / non-stream",
            _ms([p99(metric(result, "overhead_ms", m)) for m in ("stream", "non_stream")]),
        ),
        ("TTFT overhead p99 (stream)", fmt_num(p99(metric(result, "ttft_overhead_ms")), "ms")),
        (
            "ingress p99 / egress p99",
            _ms([p99(metric(result, m)) for m in ("ingress_ms", "egress_ms")]),
        ),
        ("e2e p99", fmt_num(p99(metric(result, "e2e_ms")), "ms")),
        ("auth-cache hit rate", fmt_pct(result.gateway.auth_cache_hit_rate)),
        ("goodput (every SLO met)", goodput_text(result)),
        # Always both rows: compare's page pairs two runs' key figures row by row.
        ("SLOs missed", goodput_misses(result)),
        (
            "integrity violations / checked",
            f"{fmt_num(integ.violations)} / {fmt_num(integ.checked)}",
        ),
        ("upstream calls per request", fmt_num(result.upstream.calls_per_request)),
        ("harness loop lag p99", fmt_num(p99(result.harness.loop_lag_ms), "ms")),
        ("harness CPU", fmt_num(result.harness.cpu_percent, "%")),
    ]
    floor = floor_p99(result)
    if floor is not None:
        rows.append(("harness floor p99", fmt_num(floor, "ms")))
    return rows
