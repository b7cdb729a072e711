"""The verdict: pass (0), fail (1) or invalid (3), and why.

Precedence: invalid beats fail beats pass. ``invalid`` means "this run proves
nothing": the harness was out of its limits, the run was interrupted, or a
latency gate's answer lies within the harness's own noise of its threshold (both
answers possible). A launched gateway that died is the gateway's result: ``fail``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from loadgate.judge.gates import OPS, evaluate_gates, is_latency_gate
from loadgate.judge.validity import control_reasons, invalid_reasons, kernel_stamped
from loadgate.profile import HarnessSpec
from loadgate.result.model import Gate, Result

__all__ = [
    "INTERRUPTIONS",
    "NOISE_FROM_CONTROL",
    "NOISE_FROM_LAG",
    "Verdict",
    "VerdictName",
    "decide_verdict",
    "judge",
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


#: What the noise of a latency figure is, by timestamp source (for the reasons' wording).
NOISE_FROM_LAG = "the harness's own event-loop lag"
NOISE_FROM_CONTROL = "the control group's overhead"


def too_close_to_call(
    gates: Sequence[Gate], noise_ms: float | None, source: str = NOISE_FROM_LAG
) -> dict[str, str]:
    """Gate name → reason, for latency gates whose outcome the harness's noise could flip.

    ``noise_ms`` is the loop lag p99 (user-space timestamps) or the control group's
    overhead p99 (kernel timestamps); ``source`` says which.

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
                f"{g.name} = {value:.4g} is within {source} (p99 "
                f"{noise_ms:.2f} ms) of its threshold {g.op} {g.threshold:g}: the gateway may "
                "be on either side; rerun when the machine is quieter"
            )
    return out


def undecided_reasons(
    gates: Sequence[Gate], noise_ms: float | None, source: str = NOISE_FROM_LAG
) -> list[str]:
    """Invalid reasons from :func:`too_close_to_call`, when the verdict rests on them.

    A gate that failed beyond doubt already makes the run a ``fail``; gates the
    lag could flip cannot change that, so they only invalidate a run that would
    otherwise pass, or fail on them alone.
    """
    close = too_close_to_call(gates, noise_ms, source)
    if any(not g.passed and g.name not in close for g in gates):
        return []
    return list(close.values())


#: How an invalid run's failed gates are listed after its reasons.
INVALID_GATE_PREFIX = "also failed a gate (proves nothing in an invalid run): "


def _describe(gate: Gate) -> str:
    rule = f"{gate.op} {gate.threshold:g}"
    if gate.value is None:
        return f"{gate.name}: {gate.reason or 'no data'} (gate {rule})"
    return f"{gate.name} = {gate.value:.6g} (gate {rule})"


def decide_verdict(gates: Sequence[Gate], invalid_reasons: Sequence[str]) -> Verdict:
    """Invalid (3) beats fail (1) beats pass (0).

    An invalid run still lists its failed gates after the harness reasons, so a
    reader sees both; its gates prove nothing about the gateway either way, and
    each says so (they are not why the run is invalid).
    """
    failed = [_describe(g) for g in gates if not g.passed]
    if invalid_reasons:
        moot = [f"{INVALID_GATE_PREFIX}{text}" for text in failed]
        return Verdict("invalid", [*invalid_reasons, *moot], 3)
    if failed:
        return Verdict("fail", failed, 1)
    return Verdict("pass", [], 0)


def _explain_missing_auth_cache(gates: Sequence[Gate], result: Result) -> None:
    """ "no data" on the auth-cache gate: say which series were missing, and where."""
    spec = result.profile.get("gateway", {})
    selectors = spec.get("auth_cache", {})
    url = result.gateway.url if result.gateway is not None else None
    where = spec.get("metrics_url") or (f"{url}/metrics" if url else None)
    for g in gates:
        if g.name.startswith("gateway.auth_cache") and g.value is None and g.reason == "no data":
            series = " / ".join(str(selectors.get(k, "?")) for k in ("hits", "misses"))
            g.reason = (
                f"no data: no {series} counters at {where or 'the gateway metrics URL'} "
                "(gateway.auth_cache selectors; a gateway without an auth cache cannot pass "
                "this gate)"
            )


def judge(
    result: Result,
    harness_limits: HarnessSpec,
    gate_specs: Mapping[str, str],
    *,
    stop_reason: str | None,
    gateway_died_with: int | None,
) -> tuple[Verdict, list[Gate]]:
    """The whole judgement of one run: its gates, and pass / fail / invalid with why.

    * invalid: the harness spoilt the run (:mod:`loadgate.judge.validity`, by
      timestamp source), it was interrupted, or a latency gate's answer lies within
      the harness's noise of its threshold — the loop lag p99 with user-space
      timestamps, the control group's overhead p99 with kernel ones;
    * a launched gateway that died during the load: ``fail``, whatever else — a crash
      is the gateway's result, not noise to rerun;
    * every gate of an invalid run, and every gate the noise could flip, is undecided.
    """
    h = result.harness
    kernel = kernel_stamped(h)
    invalid = invalid_reasons(h, harness_limits)
    if stop_reason in INTERRUPTIONS:
        invalid.insert(0, f"interrupted by {stop_reason}: partial result")
    gates = evaluate_gates(gate_specs, result)
    _explain_missing_auth_cache(gates, result)
    if kernel:
        invalid += control_reasons(gates, h, harness_limits)
        noise = h.control.p99() if h.control is not None else None
        source = NOISE_FROM_CONTROL
    else:
        noise = h.loop_lag_ms.p99 if h.loop_lag_ms is not None else None
        source = NOISE_FROM_LAG
    close = too_close_to_call(gates, noise, source)
    for g in gates:
        if g.name in close:
            g.decided, g.undecided_reason = False, close[g.name]
    invalid += undecided_reasons(gates, noise, source)
    if stop_reason == "gateway_died":
        died = f"gateway process exited (code {gateway_died_with}) during the run"
        failed = [_describe(g) for g in gates if not g.passed and g.decided]
        verdict = Verdict("fail", [died, *failed], 1)
    else:
        verdict = decide_verdict(gates, invalid)
    why = None
    if stop_reason == "gateway_died":
        why = "the gateway died during the load: its figures stop where it did"
    elif verdict.verdict == "invalid":
        why = "the run is invalid: its gates prove nothing either way"
    for g in gates:
        if why is not None and g.decided:
            g.decided, g.undecided_reason = False, why
    return verdict, gates
