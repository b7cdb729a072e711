"""Number and gate wording shared by every report format (HTML, JUnit, Markdown).

One place decides how a figure is printed, so a gate reads the same in the CI
log, the pull-request comment and the HTML page.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from loadgate.result.legacy import dig

__all__ = [
    "dig",
    "fmt_num",
    "fmt_pct",
    "gate_line",
    "gate_measured",
    "gate_rule",
    "gate_value",
    "key_figures",
    "num",
    "unit_of",
    "warnings_of",
]


def num(value: Any) -> float | None:
    """A finite float, or None for anything else (missing, null, bool, text, NaN)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def fmt_num(value: Any, unit: str = "") -> str:
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


def unit_of(gate_name: str) -> str:
    """Gate figures named ``*_ms.*`` are milliseconds; everything else is unitless."""
    return "ms" if "_ms" in gate_name else ""


def gate_rule(gate: Mapping[str, Any]) -> str:
    """``"< 20"``: the gate's operator and threshold."""
    return f"{gate.get('op', '?')} {fmt_num(gate.get('threshold'))}"


def gate_value(gate: Mapping[str, Any]) -> str:
    """The measured figure with its unit (``"23.4 ms"``), or why there is none."""
    value = num(gate.get("value"))
    if value is None:
        return str(gate.get("reason") or "no data")
    return fmt_num(value, unit_of(str(gate.get("name", ""))))


def gate_measured(gate: Mapping[str, Any]) -> str:
    """``"measured 23.4 ms, budget < 20"`` (or ``"no data, budget < 20"``)."""
    what = gate_value(gate)
    if num(gate.get("value")) is not None:
        what = f"measured {what}"
    return f"{what}, budget {gate_rule(gate)}"


def gate_line(gate: Mapping[str, Any]) -> str:
    """``"overhead_ms.p99: measured 23.4 ms, budget < 20"``."""
    return f"{gate.get('name', '?')}: {gate_measured(gate)}"


def fmt_pct(ratio: Any) -> str:
    """A 0..1 ratio as a percentage: ``0.956`` → ``"95.6 %"``, ``0.00182`` → ``"0.182 %"``."""
    f = num(ratio)
    if f is None:
        return "–"
    return f"{100.0 * f:.3g} %" if abs(f) < 0.01 else f"{100.0 * f:.1f} %"


def _ms(data: Mapping[str, Any], *path: str) -> str:
    return fmt_num(dig(data, *path), "ms")


def key_figures(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The figures a reviewer looks at first, as ``(label, text)`` rows."""
    req = dig(data, "requests") or {}
    floor = dig(data, "harness", "floor_ms")
    floor_p99 = floor.get("p99") if isinstance(floor, Mapping) else floor
    rows = [
        ("throughput", fmt_num(num(req.get("throughput_rps")), "req/s")),
        ("requests sent / failed", f"{fmt_num(req.get('sent'))} / {fmt_num(req.get('failed'))}"),
        ("error rate", fmt_pct(req.get("error_rate"))),
        (
            "overhead p50 / p99 / p99.9",
            " / ".join(
                fmt_num(dig(data, "metrics", "overhead_ms", k)) for k in ("p50", "p99", "p999")
            )
            + " ms",
        ),
        (
            "overhead p99 stream / non-stream",
            " / ".join(
                fmt_num(dig(data, "by_mode", m, "metrics", "overhead_ms", "p99"))
                for m in ("stream", "non_stream")
            )
            + " ms",
        ),
        ("TTFT overhead p99 (stream)", _ms(data, "metrics", "ttft_overhead_ms", "p99")),
        (
            "ingress p99 / egress p99",
            " / ".join(fmt_num(dig(data, "metrics", m, "p99")) for m in ("ingress_ms", "egress_ms"))
            + " ms",
        ),
        ("e2e p99", _ms(data, "metrics", "e2e_ms", "p99")),
        ("auth-cache hit rate", fmt_pct(dig(data, "gateway", "auth_cache_hit_rate"))),
        (
            "integrity violations / checked",
            f"{fmt_num(dig(data, 'integrity', 'violations'))}"
            f" / {fmt_num(dig(data, 'integrity', 'checked'))}",
        ),
        ("upstream calls per request", fmt_num(dig(data, "upstream", "calls_per_request"))),
        ("harness loop lag p99", _ms(data, "harness", "loop_lag_ms", "p99")),
        ("harness CPU", fmt_num(dig(data, "harness", "cpu_percent"), "%")),
    ]
    if num(floor_p99) is not None:
        rows.append(("harness floor p99", fmt_num(floor_p99, "ms")))
    return rows


def warnings_of(data: Mapping[str, Any]) -> list[str]:
    """Harness warnings (stability, floor share, lost ledger records) as printed."""
    found = dig(data, "harness", "warnings")
    return [str(w) for w in found] if isinstance(found, list) else []
