"""Gates: ``"<op> <number>"`` thresholds over result paths, and the verdict.

A gate name is a dotted path into the result (ARCHITECTURE "Result"), looked up
first under ``metrics`` (``overhead_ms.p99``), then under ``by_mode``
(``stream.overhead_ms.p99`` → ``by_mode.stream.metrics.overhead_ms.p99``), then
at the root (``requests.error_rate``, ``gateway.counters.<selector>``). Keys may
themselves contain dots (Prometheus selectors such as ``x{le="0.5"}``), so the
walk tries the longest matching key first.

A gate with nothing to measure fails: a missing figure must never pass a CI gate.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loadgate.histograms.recorder import METRICS, MODES

__all__ = [
    "METRIC_NAMES",
    "MODES",
    "OPS",
    "STATS",
    "GateSpec",
    "check_gate_name",
    "decide_verdict",
    "evaluate_gates",
    "parse_gate",
    "resolve",
    "too_close_to_call",
    "undecided_reasons",
]

OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}

#: One source of truth for metric names and modes: the histograms that make them.
METRIC_NAMES = METRICS
STATS = ("count", "mean", "stdev", "min", "p50", "p90", "p99", "p999", "max")
#: Result sections a root-level gate may start with (typos fail at load, not after a run).
_ROOTS = (
    "requests",
    "integrity",
    "upstream",
    "gateway",
    "harness",
    "duration_s",
    "metrics",
    "by_mode",
)

_EXPR = re.compile(r"\s*(<=|>=|==|!=|<|>)\s*([-+]?(?:[0-9]*\.)?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*")
_MISSING = object()


@dataclass(frozen=True, slots=True)
class GateSpec:
    name: str
    op: str
    threshold: float


def parse_gate(name: str, expr: object) -> GateSpec:
    """``parse_gate("overhead_ms.p99", "< 20")``; ValueError with a one-line reason."""
    if not isinstance(expr, str):
        raise ValueError(f'must be a string like "< 20" (got {expr!r})')
    match = _EXPR.fullmatch(expr)
    if match is None:
        ops = " ".join(OPS)
        raise ValueError(f'must be "<op> <number>" with op one of {ops} (got {expr!r})')
    problem = check_gate_name(name)
    if problem is not None:
        raise ValueError(problem)
    return GateSpec(name, match.group(1), float(match.group(2)))


def check_gate_name(name: str) -> str | None:
    """Why ``name`` can never resolve in a result, or None when it may."""
    parts = name.split(".")
    in_mode = parts[0] in MODES
    if in_mode:
        parts = parts[1:]
        if not parts:
            return f"gate {name!r} names a mode but no figure"
    head = parts[0]
    if head in METRIC_NAMES:
        if len(parts) != 2 or parts[1] not in STATS:
            return f"a metric gate is <metric>.<stat> with stat one of {', '.join(STATS)}"
        return None
    if head == "requests" or (not in_mode and head in _ROOTS):
        return None
    known = ", ".join((*METRIC_NAMES, *_ROOTS))
    return (
        f"unknown figure (a gate name starts with one of {known}; "
        "optionally after stream./non_stream.)"
    )


def _walk(node: Any, parts: Sequence[str]) -> Any:
    if not parts:
        return node
    if not isinstance(node, Mapping):
        return _MISSING
    # Longest key first: selectors like x{le="0.5"} contain dots of their own.
    for i in range(len(parts), 0, -1):
        key = ".".join(parts[:i])
        if key in node:
            found = _walk(node[key], parts[i:])
            if found is not _MISSING:
                return found
    return _MISSING


def resolve(result: Mapping[str, Any], name: str) -> Any:
    """The value a gate named ``name`` reads from ``result`` (None when absent)."""
    parts = name.split(".")
    candidates: list[tuple[Any, Sequence[str]]] = [(result.get("metrics"), parts)]
    by_mode = result.get("by_mode")
    if isinstance(by_mode, Mapping) and parts[0] in by_mode:
        mode = by_mode[parts[0]]
        if isinstance(mode, Mapping):
            candidates.append((mode.get("metrics"), parts[1:]))
            candidates.append((mode, parts[1:]))
    candidates.append((result, parts))
    for node, rest in candidates:
        if rest:
            found = _walk(node, rest)
            if found is not _MISSING:
                return found
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def evaluate_gates(gates: Mapping[str, str], result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One ``{name, op, threshold, value, passed}`` per gate, in the profile's order.

    A gate that cannot be judged (no data, not a number) fails and carries a
    ``reason``.
    """
    out: list[dict[str, Any]] = []
    for name, expr in gates.items():
        spec = parse_gate(name, expr)
        raw = resolve(result, name)
        value = _number(raw)
        row: dict[str, Any] = {
            "name": name,
            "op": spec.op,
            "threshold": spec.threshold,
            "value": value,
            "passed": False,
        }
        if value is None:
            row["reason"] = "no data" if raw is None else f"not a number ({type(raw).__name__})"
        else:
            row["passed"] = OPS[spec.op](value, spec.threshold)
        out.append(row)
    return out


def too_close_to_call(gates: Sequence[Mapping[str, Any]], noise_ms: float | None) -> dict[str, str]:
    """Gate name → reason, for latency gates whose outcome the harness's lag could flip.

    A late event loop only ever *adds* to a latency (responses are stamped when
    the loop reads them), by up to its lag: the true value of a latency figure
    (``overhead_ms.p99``, ``stream.ttft_ms.p50`` …) lies in
    ``[value − noise_ms, value]``, ``noise_ms`` being the loop lag p99. When the
    gate's answer differs across that interval — a ``< 20`` gate measured at
    21.7 with 4.9 ms of lag — the run cannot say pass or fail: it is
    ``invalid`` — unless another gate failed beyond doubt (:func:`undecided_reasons`).
    Answers the lag cannot flip (a pass of a ``<`` gate) stand.
    """
    out: dict[str, str] = {}
    if noise_ms is None or noise_ms <= 0:
        return out
    for g in gates:
        name, value, threshold, op = g["name"], g.get("value"), g["threshold"], g["op"]
        parts = str(name).split(".")
        latency = len(parts) >= 2 and parts[-2] in METRIC_NAMES
        if value is None or not latency or op not in ("<", "<=", ">", ">="):
            continue
        if OPS[op](value, threshold) != OPS[op](value - noise_ms, threshold):
            out[str(name)] = (
                f"{name} = {value:.4g} is within the harness's own event-loop lag (p99 "
                f"{noise_ms:.2f} ms) of its threshold {op} {threshold:g}: the gateway may "
                "be on either side; rerun when the machine is quieter"
            )
    return out


def undecided_reasons(gates: Sequence[Mapping[str, Any]], noise_ms: float | None) -> list[str]:
    """Invalid reasons from :func:`too_close_to_call`, when the verdict rests on them.

    A gate that failed beyond doubt already makes the run a ``fail``; gates the
    lag could flip cannot change that, so they only invalidate a run that would
    otherwise pass, or fail on them alone.
    """
    close = too_close_to_call(gates, noise_ms)
    if any(not g.get("passed") and g["name"] not in close for g in gates):
        return []
    return list(close.values())


def _describe(gate: Mapping[str, Any]) -> str:
    rule = f"{gate['op']} {gate['threshold']:g}"
    if gate.get("value") is None:
        return f"{gate['name']}: {gate.get('reason', 'no data')} (gate {rule})"
    return f"{gate['name']} = {gate['value']:.6g} (gate {rule})"


def decide_verdict(
    gates: Sequence[Mapping[str, Any]], invalid_reasons: Sequence[str]
) -> tuple[str, list[str], int]:
    """``(verdict, reasons, exit_code)``: invalid (3) beats fail (1) beats pass (0).

    An invalid run still lists its failed gates after the harness reasons, so a
    reader sees both; its gates prove nothing about the gateway either way.
    """
    failed = [_describe(g) for g in gates if not g.get("passed")]
    if invalid_reasons:
        return "invalid", [*invalid_reasons, *failed], 3
    if failed:
        return "fail", failed, 1
    return "pass", [], 0
