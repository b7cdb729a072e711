"""Gates: ``"<op> <number>"`` thresholds over figures of the result.

A gate name is a dotted path into the result's JSON form (the contract: results/
README.md), looked up first under ``metrics`` (``overhead_ms.p99``), then under
``by_mode`` (``stream.overhead_ms.p99`` → ``by_mode.stream.metrics.overhead_ms.p99``),
then at the root (``requests.error_rate``, ``gateway.counters.<selector>``). The
walk reads the typed result's attributes (and the keys of its dict-valued fields);
keys may themselves contain dots (Prometheus selectors such as ``x{le="0.5"}``),
so it tries the longest matching key first.

A gate with nothing to measure fails: a missing figure must never pass a CI gate.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from loadgate.histograms import METRICS, MODES
from loadgate.result.model import Gate

__all__ = [
    "METRIC_NAMES",
    "MODES",
    "OPS",
    "STATS",
    "GateSpec",
    "check_gate_name",
    "evaluate_gates",
    "is_latency_gate",
    "parse_gate",
    "resolve",
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
    "probes",
    "trace",
    "sessions",
)

#: Sections of a mode a gate may read (``stream.realtime.buffered``).
_MODE_SECTIONS = ("requests", "realtime")

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
    if head in _MODE_SECTIONS or (not in_mode and head in _ROOTS):
        return None
    known = ", ".join((*METRIC_NAMES, *_ROOTS))
    return (
        f"unknown figure (a gate name starts with one of {known}; "
        "optionally after stream./non_stream.)"
    )


def is_latency_gate(name: str) -> bool:
    """A gate on a latency statistic (``[<mode>.]<metric>.<stat>``)."""
    parts = name.split(".")
    return len(parts) >= 2 and parts[-2] in METRIC_NAMES


def _children(node: Any) -> Mapping[str, Any] | None:
    """The named children of a result node: a model's fields (JSON names), or a dict."""
    if isinstance(node, BaseModel):
        out: dict[str, Any] = {}
        for name, info in type(node).model_fields.items():
            out[info.alias or name] = getattr(node, name)
        out.update(node.model_extra or {})
        return out
    if isinstance(node, Mapping):
        return node
    return None


def _walk(node: Any, parts: Sequence[str]) -> Any:
    if not parts:
        return node
    children = _children(node)
    if children is None:
        return _MISSING
    # Longest key first: selectors like x{le="0.5"} contain dots of their own.
    for i in range(len(parts), 0, -1):
        key = ".".join(parts[:i])
        if key in children:
            found = _walk(children[key], parts[i:])
            if found is not _MISSING:
                return found
    return _MISSING


def resolve(result: BaseModel, name: str) -> Any:
    """The value a gate named ``name`` reads from ``result`` (None when absent)."""
    parts = name.split(".")
    root = _children(result) or {}
    candidates: list[tuple[Any, Sequence[str]]] = [(root.get("metrics"), parts)]
    by_mode = _children(root.get("by_mode"))
    if by_mode is not None and parts[0] in by_mode:
        mode = by_mode[parts[0]]
        candidates.append(((_children(mode) or {}).get("metrics"), parts[1:]))
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


def evaluate_gates(gates: Mapping[str, str], result: BaseModel) -> list[Gate]:
    """One :class:`Gate` per gate, in the profile's order.

    A gate that cannot be judged (no data, not a number) fails and carries a
    ``reason``.
    """
    out: list[Gate] = []
    for name, expr in gates.items():
        spec = parse_gate(name, expr)
        raw = resolve(result, name)
        value = _number(raw)
        gate = Gate(name=name, op=spec.op, threshold=spec.threshold, value=value)
        if value is None:
            gate.reason = "no data" if raw is None else f"not a number ({type(raw).__name__})"
        else:
            gate.passed = OPS[spec.op](value, spec.threshold)
        out.append(gate)
    return out
