"""The verdict: pass (0), fail (1) or invalid (3), and why.

Precedence: invalid beats fail beats pass. ``invalid`` means "this run proves
nothing": the harness was out of its limits, the run was interrupted, or a
latency gate's answer lies within the harness's own noise of its threshold (both
answers possible). A launched gateway that died is the gateway's result: ``fail``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from loadgate.judge.gates import OPS, is_latency_gate
from loadgate.result.model import Gate

__all__ = [
    "INTERRUPTIONS",
    "Verdict",
    "VerdictName",
    "decide_verdict",
    "too_close_to_call",
    "undecided_reasons",
]

VerdictName = Literal["pass", "fail", "invalid"]

#: Stop reasons that make a partial run (a person or a supervisor stopped it).
INTERRUPTIONS = ("SIGINT", "SIGTERM", "cancelled")


@dataclass(frozen=True, slots=True)
class Verdict:
    verdict: VerdictName
    reasons: list[str]
    exit_code: int


def too_close_to_call(gates: Sequence[Gate], noise_ms: float | None) -> dict[str, str]:
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
        value = g.value
        if value is None or not is_latency_gate(g.name) or g.op not in ("<", "<=", ">", ">="):
            continue
        if OPS[g.op](value, g.threshold) != OPS[g.op](value - noise_ms, g.threshold):
            out[g.name] = (
                f"{g.name} = {value:.4g} is within the harness's own event-loop lag (p99 "
                f"{noise_ms:.2f} ms) of its threshold {g.op} {g.threshold:g}: the gateway may "
                "be on either side; rerun when the machine is quieter"
            )
    return out


def undecided_reasons(gates: Sequence[Gate], noise_ms: float | None) -> list[str]:
    """Invalid reasons from :func:`too_close_to_call`, when the verdict rests on them.

    A gate that failed beyond doubt already makes the run a ``fail``; gates the
    lag could flip cannot change that, so they only invalidate a run that would
    otherwise pass, or fail on them alone.
    """
    close = too_close_to_call(gates, noise_ms)
    if any(not g.passed and g.name not in close for g in gates):
        return []
    return list(close.values())


def _describe(gate: Gate) -> str:
    rule = f"{gate.op} {gate.threshold:g}"
    if gate.value is None:
        return f"{gate.name}: {gate.reason or 'no data'} (gate {rule})"
    return f"{gate.name} = {gate.value:.6g} (gate {rule})"


def decide_verdict(gates: Sequence[Gate], invalid_reasons: Sequence[str]) -> Verdict:
    """Invalid (3) beats fail (1) beats pass (0).

    An invalid run still lists its failed gates after the harness reasons, so a
    reader sees both; its gates prove nothing about the gateway either way.
    """
    failed = [_describe(g) for g in gates if not g.passed]
    if invalid_reasons:
        return Verdict("invalid", [*invalid_reasons, *failed], 3)
    if failed:
        return Verdict("fail", failed, 1)
    return Verdict("pass", [], 0)
