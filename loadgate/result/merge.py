"""``loadgate merge``: the shards of one run as one ordinary, judged result (issue 17 §4).

Exact where it can be, conservative where it cannot:

* histograms add bucket for bucket (``result["histograms"]`` carries every shard's
  encoded HDR histogram); every summary is recomputed from the sums, so a merged
  p99 is the p99 of all requests, not an average of p99s. Shards whose histogram
  layouts or profiles differ were not one run: refused (exit 2);
* counters (requests, errors, integrity, upstream calls) add; rates are over the
  union of the shards' measured windows; the checks' and probes' sections (goodput,
  upstream assertions, stream realtime, probes, sessions) merge by the same rules
  (:mod:`loadgate.result.merge_sections`);
* self-monitoring is kept per shard (``shards[]``); the top-level ``harness`` is the
  worst shard's figure for each limit (highest lag, CPU and stub lateness, lowest
  achieved-rate and concurrency ratios, the largest control-group floor), so the
  judgement of the merge is no kinder than the worst shard's;
* the gates are evaluated once, on the merged figures (:func:`loadgate.judge.verdict.judge`);
  the merged verdict is ``invalid`` when any shard was, naming it, when shards are
  missing, or when the windows overlap less than ``min_overlap`` of their union.

The output has the shape of any result: compare, history and report read it.
Pure: results in, a result out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hdrh.histogram import HdrHistogram

from loadgate.errors import UsageError
from loadgate.histograms.hdr import decode, summarize
from loadgate.histograms.recorder import MODES
from loadgate.judge.verdict import judge
from loadgate.profile import HarnessSpec
from loadgate.result.merge_sections import (
    merge_assertions,
    merge_goodput,
    merge_probes,
    merge_realtime,
    merge_sessions,
)
from loadgate.result.model import (
    GatewayFigures,
    Harness,
    Integrity,
    LagSummary,
    ModeFigures,
    ModeRequests,
    Requests,
    Result,
    ShardEntry,
    ShardFigures,
    Summary,
    Timeseries,
    Upstream,
)

__all__ = ["DEFAULT_MIN_OVERLAP", "ShardResult", "add_histograms", "merge_results"]

#: The shards' common measured time as a share of their union, below which the
#: merge is invalid: the shards did not load the gateway together.
DEFAULT_MIN_OVERLAP = 0.9


@dataclass(frozen=True, slots=True)
class ShardResult:
    """One shard's result and the file it came from (named in every message)."""

    file: str
    result: Result

    @property
    def figures(self) -> ShardFigures:
        assert self.result.shard is not None
        return self.result.shard

    @property
    def label(self) -> str:
        f = self.figures
        return f"shard {f.index}/{f.count} ({self.file})"


def _layout(h: HdrHistogram) -> tuple[int, int, int]:
    return (h.lowest_trackable_value, h.highest_trackable_value, h.significant_figures)


def add_histograms(encoded: Sequence[tuple[str, str]], key: str) -> str:
    """The bucket-for-bucket sum of ``(file, base64 HDR)``; different layouts are refused."""
    (first_file, first), *rest = encoded
    total = decode(first)
    for file, b64 in rest:
        h = decode(b64)
        if _layout(h) != _layout(total):
            raise UsageError(
                f"{file}: histogram {key} has layout {_layout(h)}, {first_file} has "
                f"{_layout(total)}: not one configuration, not merged"
            )
        if h.get_total_count():  # hdrh's add() resets min to 0 for an empty source
            total.add(h)
    return bytes(total.encode()).decode("ascii")


#: Profile keys that are where a shard listens, not what it measures: shards sharing
#: one machine must differ there (each its own stub port); pods need not.
_PLACE_KEYS = frozenset({"stub.host", "stub.port"})


def _first_difference(a: Any, b: Any, path: str = "") -> str | None:
    if path in _PLACE_KEYS:
        return None
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            where = f"{path}.{k}" if path else str(k)
            if k not in a or k not in b:
                return where
            found = _first_difference(a[k], b[k], where)
            if found is not None:
                return found
        return None
    return None if a == b else (path or "(root)")


def _check_shards(shards: Sequence[ShardResult]) -> list[str]:
    """Refuse what is not one run; return the invalid reasons of what is, but incomplete."""
    if not shards:
        raise UsageError("merge: no shard files given")
    for s in shards:
        if s.result.shard is None:
            raise UsageError(f"{s.file}: not a shard's result (no `shard` section: run --shard)")
    head = shards[0]
    counts = {s.figures.count for s in shards}
    if len(counts) > 1:
        raise UsageError(f"merge: shard files of different shard counts {sorted(counts)}")
    seen: dict[int, str] = {}
    for s in shards:
        where = _first_difference(head.result.profile, s.result.profile)
        if where is not None:
            raise UsageError(
                f"{s.file}: profile differs from {head.file}'s at {where}: the shards of one "
                "run share one profile"
            )
        if s.figures.index in seen:
            raise UsageError(
                f"{s.file}: shard {s.figures.index} given twice (also {seen[s.figures.index]})"
            )
        seen[s.figures.index] = s.file
    count = counts.pop()
    missing = sorted(set(range(count)) - set(seen))
    reasons = []
    if missing:
        names = ", ".join(f"{i}/{count}" for i in missing)
        reasons.append(
            f"shard{'s' if len(missing) > 1 else ''} {names} missing: the merged load "
            "is not the profile's"
        )
    return reasons


def _window(shards: Sequence[ShardResult], min_overlap: float) -> tuple[float, float, list[str]]:
    starts = [s.figures.measure_start for s in shards]
    ends = [s.figures.measure_end for s in shards]
    lo, hi = min(starts), max(ends)
    overlap = min(ends) - max(starts)
    late = max(shards, key=lambda s: s.figures.measure_start)
    early = min(shards, key=lambda s: s.figures.measure_end)
    if overlap <= 0:
        raise UsageError(
            f"merge: {early.label} ended its window before {late.label} began its own: "
            "the shards did not run together (check --start-at and the machines' clocks)"
        )
    share = overlap / (hi - lo)
    reasons = []
    if share < min_overlap:
        reasons.append(
            f"the shards' windows overlap {overlap:.3f} s of their {hi - lo:.3f} s union "
            f"({100 * share:.1f} % < {100 * min_overlap:.0f} %, merge --min-overlap): "
            f"{late.label} started last, {early.label} ended first"
        )
    return lo, hi, reasons


def _lag(values: list[LagSummary | None]) -> LagSummary | None:
    present = [v for v in values if v is not None]
    return max(present, key=lambda v: v.p99) if present else None


def _extreme(values: list[float | None], pick: Any) -> float | None:
    present = [v for v in values if v is not None]
    return pick(present) if present else None


def _timestamp_sources(
    per_shard: list[dict[str, str | None] | None],
) -> dict[str, str | None] | None:
    """Each side's source across the shards: the worst one ("user" beats "kernel")."""
    known = [d for d in per_shard if d is not None]
    if not known:
        return None
    out: dict[str, str | None] = {}
    for side in sorted({k for d in known for k in d}):
        seen = {d.get(side) for d in known}
        out[side] = "user" if "user" in seen else (None if None in seen else "kernel")
    return out


def _harness(shards: Sequence[ShardResult]) -> Harness:
    hs = [(s, s.result.harness) for s in shards]
    controls = [h.control for _, h in hs if h.control is not None]
    cross = [h.cross_clock_requests for _, h in hs if h.cross_clock_requests is not None]
    kernel = all(h.timestamps == "kernel" for _, h in hs)
    merged = Harness(
        timestamps="kernel" if kernel else "user",
        timestamp_sources=_timestamp_sources([h.timestamp_sources for _, h in hs]),
        clock=max(
            (h.clock for _, h in hs if h.clock), key=lambda c: c.offset_spread_us, default=None
        ),
        deltas_same_read_ratio=_extreme([h.deltas_same_read_ratio for _, h in hs], max),
        first_token_same_read_ratio=_extreme([h.first_token_same_read_ratio for _, h in hs], max),
        control=max(controls, key=lambda c: c.p99() or 0.0) if controls else None,
        concurrency_ratio=_extreme([h.concurrency_ratio for _, h in hs], min),
        cross_clock_requests=sum(cross) if cross else None,
        stub_clocks=sorted({c for _, h in hs for c in h.stub_clocks or ()}) or None,
        loop_lag_ms=_lag([h.loop_lag_ms for _, h in hs]),
        send_lag_ms=_lag([h.send_lag_ms for _, h in hs]),
        stub_timer_lateness_ms=_lag([h.stub_timer_lateness_ms for _, h in hs]),
        cpu_percent=_extreme([h.cpu_percent for _, h in hs], max),
        workers=sum(h.workers or 0 for _, h in hs) or None,
        achieved_rate_ratio=_extreme([h.achieved_rate_ratio for _, h in hs], min),
        open_file_limit=min((h.open_file_limit for _, h in hs if h.open_file_limit), default=None),
        limits=hs[0][1].limits,
        warnings=[f"{s.label}: {w}" for s, h in hs for w in h.warnings],
    )
    if len(shards) > 1:
        merged.warnings.append(
            "harness figures are each the worst shard's (per shard: shards[].harness)"
        )
    return merged


def _requests(shards: Sequence[ShardResult], window_s: float, rate: float | None) -> Requests:
    rs = [s.result.requests for s in shards]
    sent, ok, failed = (sum(getattr(r, k) for r in rs) for k in ("sent", "ok", "failed"))
    errors: dict[str, int] = {}
    for r in rs:
        for k, v in r.errors.items():
            errors[k] = errors.get(k, 0) + v
    return Requests(
        sent=sent,
        ok=ok,
        failed=failed,
        error_rate=failed / sent if sent else None,
        errors=dict(sorted(errors.items())),
        throughput_rps=ok / window_s,
        rate_offered=rate,
        rate_achieved=sent / window_s,
        max_inflight_hits=sum(r.max_inflight_hits for r in rs),
        warmup_excluded=sum(r.warmup_excluded for r in rs),
        cooldown_excluded=sum(r.cooldown_excluded for r in rs),
    )


def _add_counts(tables: list[dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in tables:
        for k, v in t.items():
            out[k] = out.get(k, 0) + v
    return dict(sorted(out.items()))


def _upstream(shards: Sequence[ShardResult], sent: int) -> Upstream:
    us = [s.result.upstream for s in shards]
    calls = sum(u.calls for u in us)
    errors = [
        f"{s.label}: {s.result.upstream.pull_error}" for s in shards if s.result.upstream.pull_error
    ]
    workers = [e for u in us for e in u.worker_errors or ()]
    return Upstream(
        calls=calls,
        calls_per_request=calls / sent if sent else None,
        unseen=sum(u.unseen for u in us),
        duplicated=sum(u.duplicated for u in us),
        late_calls=sum(u.late_calls for u in us),
        foreign=sum(u.foreign for u in us),
        ledger_lost=sum(u.ledger_lost for u in us),
        calls_hist=_add_counts([u.calls_hist for u in us]),
        pull_error="; ".join(errors) or None,
        worker_errors=workers or None,
        records_by_stub=_add_counts([u.records_by_stub or {} for u in us]) or None,
    )


def _timeseries(shards: Sequence[ShardResult], start: float, end: float) -> Timeseries:
    n = max(0, round(end - start))
    rps, errors = [0] * n, [0] * n
    for s in shards:
        shift = round(s.figures.measure_start - start)
        ts = s.result.timeseries
        for i, (r, e) in enumerate(zip(ts.rps, ts.errors, strict=False)):
            if 0 <= i + shift < n:
                rps[i + shift] += r
                errors[i + shift] += e
    # Per-second p99s cannot be added: not recorded rather than wrong.
    return Timeseries(t_s=list(range(n)), rps=rps, errors=errors, overhead_p99_ms=[None] * n)


def _histograms(shards: Sequence[ShardResult]) -> dict[str, str]:
    keys = sorted({k for s in shards for k in s.result.histograms})
    return {
        k: add_histograms(
            [(s.file, s.result.histograms[k]) for s in shards if k in s.result.histograms], k
        )
        for k in keys
    }


def _batches(shards: Sequence[ShardResult]) -> dict[str, list[str]]:
    """Time batches added index by index, where every shard cut its window alike."""
    out: dict[str, list[str]] = {}
    for k in sorted({k for s in shards for k in s.result.histogram_batches}):
        lists = [(s.file, s.result.histogram_batches.get(k)) for s in shards]
        lengths = {len(b) for _, b in lists if b is not None}
        if len(lengths) != 1 or any(b is None for _, b in lists):
            continue  # compare falls back to the whole-window histogram
        out[k] = [
            add_histograms([(f, b[i]) for f, b in lists if b is not None], f"{k}[{i}]")
            for i in range(lengths.pop())
        ]
    return out


def _summaries(histograms: dict[str, str], prefix: str = "") -> dict[str, Summary]:
    out: dict[str, Summary] = {}
    for key, b64 in histograms.items():
        mode, _, metric = key.rpartition(".")
        if mode != prefix:
            continue
        s = summarize(decode(b64))
        if s is not None:
            out[metric] = Summary.model_validate(s)
    return out


def _gateway(shards: Sequence[ShardResult], sent: int) -> GatewayFigures:
    # Every shard scraped the one gateway over (nearly) one window: shard 0's deltas
    # are the gateway's; adding N scrapes of the same counters would count N times.
    g = shards[0].result.gateway.model_copy(deep=True)
    g.counters_per_request = {
        k: (v / sent if v is not None and sent else None) for k, v in g.counters.items()
    }
    return g


def _shard_reasons(shards: Sequence[ShardResult]) -> list[str]:
    out = []
    for s in shards:
        if s.result.verdict == "invalid":
            why = s.result.reasons[0] if s.result.reasons else "no reason given"
            out.append(f"{s.label} was invalid: {why}")
    return out


def merge_results(
    shard_results: Sequence[ShardResult], *, min_overlap: float = DEFAULT_MIN_OVERLAP
) -> Result:
    """The judged result of the whole run from its shards' results."""
    reasons = _check_shards(shard_results)
    shards = sorted(shard_results, key=lambda s: s.figures.index)
    start, end, overlap_reasons = _window(shards, min_overlap)
    head = shards[0].result
    rate = head.profile.get("load", {}).get("rate")
    merged = Result(
        profile=head.profile,
        environment=head.environment,
        git=head.git if all(s.result.git == head.git for s in shards) else None,
        started_at=min(s.result.started_at for s in shards),
        duration_s=max(s.result.duration_s for s in shards),
        window=(start, end),
    )
    merged.histograms = _histograms(shards)
    merged.histogram_batches = _batches(shards)
    merged.metrics = _summaries(merged.histograms)
    merged.by_mode = {
        mode: ModeFigures(
            metrics=_summaries(merged.histograms, mode),
            requests=ModeRequests(
                **{
                    k: sum(
                        getattr(s.result.by_mode[mode].requests, k)
                        for s in shards
                        if mode in s.result.by_mode
                    )
                    for k in ("sent", "ok", "failed")
                }
            ),
            realtime=merge_realtime([s.result for s in shards], mode),
        )
        for mode in MODES
    }
    merged.requests = _requests(shards, end - start, float(rate) if rate is not None else None)
    merged.integrity = Integrity(
        checked=sum(s.result.integrity.checked for s in shards),
        violations=sum(s.result.integrity.violations for s in shards),
        by_class=_add_counts([s.result.integrity.by_class for s in shards]),
    )
    merged.upstream = _upstream(shards, merged.requests.sent)
    results = [s.result for s in shards]
    merged.upstream.assertions = merge_assertions(results)
    merged.goodput = merge_goodput(results, end - start)
    merged.probes = merge_probes(results, end - start)
    merged.sessions = merge_sessions(results)
    merged.gateway = _gateway(shards, merged.requests.sent)
    merged.harness = _harness(shards)
    merged.timeseries = _timeseries(shards, start, end)
    merged.shards = [
        ShardEntry(
            file=s.file,
            shard=s.figures,
            verdict=s.result.verdict,
            reasons=s.result.reasons,
            requests=s.result.requests,
            harness=s.result.harness,
            host=s.result.environment.host,
        )
        for s in shards
    ]
    _judge(merged, [*reasons, *_shard_reasons(shards), *overlap_reasons])
    return merged


def _judge(merged: Result, shard_reasons: list[str]) -> None:
    limits = merged.harness.limits
    spec = HarnessSpec.model_validate(limits.model_dump(exclude_none=True) if limits else {})
    gates = {str(k): str(v) for k, v in merged.profile.get("gates", {}).items()}
    verdict, evaluated = judge(merged, spec, gates, stop_reason=None, gateway_died_with=None)
    merged.gates = evaluated
    if not shard_reasons:
        merged.verdict, merged.reasons, merged.exit_code = (
            verdict.verdict,
            verdict.reasons,
            verdict.exit_code,
        )
        return
    merged.verdict, merged.exit_code = "invalid", 3
    merged.reasons = [*shard_reasons, *(r for r in verdict.reasons if r not in shard_reasons)]
    for g in merged.gates:
        if g.decided:
            g.decided, g.undecided_reason = (
                False,
                "a shard or the merge is invalid: gates prove nothing",
            )
