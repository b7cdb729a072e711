"""The checks and probes beside the latency figures, worded once for every output.

One row per check docs/checks.md describes: upstream assertions, real-time
streams, metrics lint (:func:`check_rows`), the side-effect witness, key
revocation and tenant isolation (:func:`probe_rows`). A check that was not
configured says so ("not configured"), never a silent zero; results from before
the checks existed read as not configured too. The Markdown and the HTML report
print these rows; the terminal summary has its own, wider tables of the same.
"""

from __future__ import annotations

from typing import Any

from loadgate.probes.revocation import REVOCATION_SHARD
from loadgate.report._fmt import fmt_num, metric
from loadgate.result.model import Result

__all__ = ["NOT_CONFIGURED", "check_rows", "lint_lines", "probe_rows", "revoked_elsewhere"]

NOT_CONFIGURED = "not configured"


def _streaming_on(result: Result) -> bool:
    checks: Any = result.profile.get("checks")
    streaming = checks.get("streaming") if isinstance(checks, dict) else None
    enabled = streaming.get("enabled", True) if isinstance(streaming, dict) else True
    return bool(enabled) and isinstance(checks, dict)


def _assertions(result: Result) -> str:
    a = result.upstream.assertions
    if a is None:
        return NOT_CONFIGURED
    text = f"{a.checked} checked, {a.failed} failed"
    failing = [f"{rule} {n}" for rule, n in a.by_rule.items() if n]
    if failing:
        text += f" ({', '.join(failing)}; e.g. {', '.join(a.examples[:3])})"
    return text


def _streams(result: Result) -> str:
    mode = result.by_mode.get("stream")
    rt = mode.realtime if mode is not None else None
    if rt is None:
        return NOT_CONFIGURED if not _streaming_on(result) else "no stream timed"
    s = metric(result, "token_delay_ms", "stream")
    text = ""
    if s is not None:
        text = (
            f"token delay p50 {fmt_num(s.p50)} / p99 {fmt_num(s.p99)} / max {fmt_num(s.max)} ms; "
        )
    text += f"{rt.buffered} of {rt.streams} streams buffered"
    if rt.buffered_examples:
        text += f" (e.g. {', '.join(rt.buffered_examples[:3])})"
    b = rt.derivation_bound_ms
    if b is not None:
        text += f"; delays over-estimated by at most p99 {fmt_num(b.p99)} / max {fmt_num(b.max)} ms"
    return text


def _lint(result: Result) -> str:
    lint = result.gateway.metrics_lint
    if lint is None:
        return NOT_CONFIGURED
    if lint.error is not None:
        return f"not scraped: {lint.error}"
    text = f"{fmt_num(lint.series)} series, {fmt_num(lint.problems)} problems"
    if lint.missing:
        text += f" ({lint.missing} required series missing)"
    return text


def check_rows(result: Result) -> list[tuple[str, str]]:
    """``(check, what it found)`` for every check, configured or not."""
    return [
        ("upstream assertions", _assertions(result)),
        ("real-time streams", _streams(result)),
        ("metrics lint", _lint(result)),
    ]


def lint_lines(result: Result) -> list[str]:
    """Each metrics-lint problem as one line (none when the lint found none or did not run)."""
    lint = result.gateway.metrics_lint
    if lint is None:
        return []
    return [f"{p.metric}: {p.rule}: {p.detail}" for p in lint.details]


def _witness(result: Result) -> str:
    w = result.probes.witness
    if w is None:
        return NOT_CONFIGURED
    text = f"{w.sampled} sampled, {w.found} found, {w.missing} missing"
    lat, err = w.latency_ms, w.error_ms
    if lat is not None:
        text += f"; latency p50 {fmt_num(lat.p50)} / p99 {fmt_num(lat.p99)} ms"
        if err is not None:
            text += f" (± {fmt_num(err.p50)} typical, ± {fmt_num(err.max)} at most)"
    return text


def revoked_elsewhere(result: Result) -> str | None:
    """A shard's result without the revocation probe it is configured with: who ran it."""
    shard = result.shard
    probes: Any = result.profile.get("probes")
    spec = probes.get("revocation") if isinstance(probes, dict) else None
    configured = isinstance(spec, dict) and bool(spec.get("url") or spec.get("command"))
    if shard is None or shard.index == REVOCATION_SHARD or not configured:
        return None
    return f"run by shard {REVOCATION_SHARD}/{shard.count} only (the merged result has it)"


def _revocation(result: Result) -> str:
    r = result.probes.revocation
    if r is None:
        return revoked_elsewhere(result) or NOT_CONFIGURED
    text = f"{r.revoked} revoked, {r.never_rejected} never rejected"
    if r.baseline_rejected or r.hook_failed:
        text += f", {r.baseline_rejected} refused before, {r.hook_failed} hook failed"
    p = r.propagation_s
    if p.max is None:
        return text + "; propagation unknown (not every key was rejected)"
    text += f"; propagation p50 {fmt_num(p.p50)} / max {fmt_num(p.max)} s"
    if r.bound_s is not None:
        text += f" (each at most {fmt_num(r.bound_s)} s late)"
    return text


def _tenants(result: Result) -> str:
    t = result.probes.tenants
    if t is None:
        return NOT_CONFIGURED
    text = f"{t.tried} cross-tenant requests, {t.leaked} leaked"
    if t.leaked and t.examples:
        text += f" (e.g. {', '.join(t.examples[:3])})"
    return text


def probe_rows(result: Result) -> list[tuple[str, str]]:
    """``(probe, what it found)`` for every probe, configured or not."""
    return [
        ("side-effect witness", _witness(result)),
        ("key revocation", _revocation(result)),
        ("tenant isolation", _tenants(result)),
    ]
