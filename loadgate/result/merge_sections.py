"""The merge of the checks' and probes' sections of a sharded run's results.

:mod:`loadgate.result.merge` adds histograms and the core counters; this module
does the same for the sections issues 16 and 18 added, so a merged result says
what its shards measured rather than "not configured":

* counts add (goodput, upstream assertions, stream realtime, tenants, witness,
  sessions' counters): each shard counted its own requests;
* the revocation probe is not a share of the load: one shard ran it for the whole
  run (``probes.revocation.REVOCATION_SHARD``), and its section is the merge's as it
  is. Files of shards that each ran it (before that rule) revoked the same keys once
  per shard: the lowest-indexed shard's section is taken, never a sum;
* a ratio is recomputed from the sums (goodput ratio over the merged requests,
  goodput rps over the union window);
* a distribution that was not kept as a histogram (the witness's latencies, the
  streams' derivation bound) cannot be added: the worst shard's (highest p99) is
  kept, as for the harness figures, so the merge is no kinder than any shard;
* per-turn latency summaries of sessions were not kept as histograms in the file:
  with more than one shard they are left out, not invented.

A section is None in the merge only when it is None in every shard (not configured).
Pure: sections in, a section out.
"""

from __future__ import annotations

from collections.abc import Sequence

from loadgate.result.model import (
    Goodput,
    LagSummary,
    Probes,
    RealtimeFigures,
    Result,
    RevocationFigures,
    SessionFigures,
    TenantFigures,
    TurnFigures,
    UpstreamAssertions,
    WitnessFigures,
)

__all__ = [
    "merge_assertions",
    "merge_goodput",
    "merge_probes",
    "merge_realtime",
    "merge_sessions",
]

#: Examples kept from all shards together (each shard already kept a few).
_EXAMPLES = 5


def _add(tables: Sequence[dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in tables:
        for k, v in t.items():
            out[k] = out.get(k, 0) + v
    return out


def _worst(values: Sequence[LagSummary | None]) -> LagSummary | None:
    present = [v for v in values if v is not None]
    return max(present, key=lambda v: v.p99) if present else None


def merge_goodput(results: Sequence[Result], window_s: float) -> Goodput | None:
    gs = [r.goodput for r in results if r.goodput is not None]
    if not gs:
        return None
    n = sum(g.requests for g in gs)
    good = sum(g.good for g in gs)
    slo = gs[0].slo
    missed = _add([g.missed for g in gs])
    return Goodput(
        slo=slo,
        requests=n,
        good=good,
        failed=sum(g.failed for g in gs),
        ratio=good / n if n else None,
        rps=good / window_s if window_s > 0 else None,
        missed={k: missed.get(k, 0) for k in slo},
        missed_ratio={k: missed.get(k, 0) / n for k in slo} if n else {},
        not_applicable=_add([g.not_applicable for g in gs]),
    )


def merge_assertions(results: Sequence[Result]) -> UpstreamAssertions | None:
    us = [r.upstream.assertions for r in results if r.upstream.assertions is not None]
    if not us:
        return None
    return UpstreamAssertions(
        checked=sum(u.checked for u in us),
        failed=sum(u.failed for u in us),
        by_rule=dict(sorted(_add([u.by_rule for u in us]).items())),
        examples=[e for u in us for e in u.examples][:_EXAMPLES],
    )


def merge_realtime(results: Sequence[Result], mode: str) -> RealtimeFigures | None:
    rs = [
        f.realtime
        for r in results
        if (f := r.by_mode.get(mode)) is not None and f.realtime is not None
    ]
    if not rs:
        return None
    return RealtimeFigures(
        streams=sum(r.streams for r in rs),
        buffered=sum(r.buffered for r in rs),
        buffered_examples=[e for r in rs for e in r.buffered_examples][:_EXAMPLES],
        derivation_bound_ms=_worst([r.derivation_bound_ms for r in rs]),
    )


def _witness(ws: Sequence[WitnessFigures], window_s: float) -> WitnessFigures | None:
    if not ws:
        return None
    head = ws[0]
    polls = sum(w.polls for w in ws)
    return WitnessFigures(
        configured=head.configured,
        kind=head.kind,
        sample=head.sample,
        interval_ms=head.interval_ms,
        timeout_ms=head.timeout_ms,
        sampled=sum(w.sampled for w in ws),
        found=sum(w.found for w in ws),
        missing=sum(w.missing for w in ws),
        skipped=sum(w.skipped for w in ws),
        first_look=sum(w.first_look for w in ws),
        latency_ms=_worst([w.latency_ms for w in ws]),
        error_ms=_worst([w.error_ms for w in ws]),
        upper_ms=_worst([w.upper_ms for w in ws]),
        polls=polls,
        poll_errors=sum(w.poll_errors for w in ws),
        polls_per_s=round(polls / window_s, 1) if window_s > 0 else None,
        rtt_ms=_worst([w.rtt_ms for w in ws]),
        max_in_flight=sum(w.max_in_flight for w in ws),  # the shards polled at once
        errors=[e for w in ws for e in w.errors],
    )


def _revocation(rs: Sequence[RevocationFigures]) -> RevocationFigures | None:
    """The one probing shard's section (``rs`` in shard order): keys are not shares."""
    return rs[0].model_copy(deep=True) if rs else None


def _tenants(ts: Sequence[TenantFigures]) -> TenantFigures | None:
    if not ts:
        return None
    return TenantFigures(
        tried=sum(t.tried for t in ts),
        leaked=sum(t.leaked for t in ts),
        by_status=dict(sorted(_add([t.by_status for t in ts]).items())),
        examples=[e for t in ts for e in t.examples][:_EXAMPLES],
    )


def merge_probes(results: Sequence[Result], window_s: float) -> Probes:
    """The probes' sections of ``results`` (in shard order)."""
    ps = [r.probes for r in results]
    return Probes(
        witness=_witness([p.witness for p in ps if p.witness is not None], window_s),
        revocation=_revocation([p.revocation for p in ps if p.revocation is not None]),
        tenants=_tenants([p.tenants for p in ps if p.tenants is not None]),
    )


def merge_sessions(results: Sequence[Result]) -> SessionFigures | None:
    ss = [r.sessions for r in results if r.sessions is not None]
    if not ss:
        return None
    head = ss[0]
    turns: dict[int, TurnFigures] = {}
    for s in ss:
        for t in s.by_turn:
            got = turns.get(t.turn)
            if got is None:
                # One shard's summaries stand for themselves; two cannot be added.
                metrics = t.metrics if len(ss) == 1 else {}
                turns[t.turn] = t.model_copy(update={"metrics": metrics})
            else:
                got.requests += t.requests
                got.failed += t.failed
    return SessionFigures(
        turns=head.turns,
        think_time_s=head.think_time_s,
        user_tokens=head.user_tokens,
        affinity_header=head.affinity_header,
        started=sum(s.started for s in ss),
        completed=sum(s.completed for s in ss),
        aborted=sum(s.aborted for s in ss),
        history_mismatches=sum(s.history_mismatches for s in ss),
        by_turn=[turns[k] for k in sorted(turns)],
    )
