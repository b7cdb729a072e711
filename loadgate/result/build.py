"""The result, built by one pure function from what the run measured.

``build_result(profile, outcome, facts)``: the load's outcome (histograms,
counters, self-monitoring histograms: :class:`~loadgate.load.generator.EngineOutcome`),
the profile, and the facts the pipeline gathered around the load (times,
gateway, drain, Prometheus scrapes, machine) go in; a judged :class:`Result`
comes out. No sockets, no clock, no files: unit-tested with plain values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hdrh.histogram import HdrHistogram

from loadgate.checks.upstream import assertion_figures
from loadgate.gateway.scrape import HITS, MISSES, ScrapeFigures
from loadgate.histograms.hdr import summarize, summarize_lag
from loadgate.histograms.recorder import BATCHED_METRICS, HISTOGRAM_BATCHES, METRICS, MODES
from loadgate.judge.validity import lag_warnings, send_lag_warnings
from loadgate.judge.verdict import judge
from loadgate.load.outcome import EngineOutcome
from loadgate.load.sessions import conversation_words
from loadgate.load.trace import TraceInfo
from loadgate.profile import Profile
from loadgate.result.model import (
    AuthCacheFigures,
    ClockFigures,
    ControlFigures,
    Drain,
    Environment,
    GatewayFigures,
    Git,
    Goodput,
    Harness,
    HarnessLimits,
    Integrity,
    LagSummary,
    MetricsLint,
    ModeFigures,
    ModeRequests,
    PlacementFigures,
    Probes,
    RealtimeFigures,
    Requests,
    Result,
    RevocationFigures,
    SessionFigures,
    Summary,
    TenantFigures,
    Timeseries,
    TraceFigures,
    TurnFigures,
    Upstream,
    WitnessFigures,
)

__all__ = ["GatewayFacts", "RunFacts", "build_result", "harness_limits"]


@dataclass(frozen=True, slots=True)
class GatewayFacts:
    kind: str
    url: str | None = None
    pid: int | None = None
    #: exit code of a launched gateway that died during the run
    died_with: int | None = None
    log: str | None = None
    drain: Drain | None = None


@dataclass(frozen=True, slots=True)
class RunFacts:
    """What the pipeline knows about a run besides the load's own outcome."""

    started_at: datetime
    wall_s: float
    gateway: GatewayFacts
    environment: Environment
    git: Git | None = None
    run_dir: str | None = None
    #: why the run stopped early (SIGINT, SIGTERM, cancelled, gateway_died, …)
    stop_reason: str | None = None
    scrapes: ScrapeFigures | None = None
    open_file_limit: int | None = None
    #: True when no gateway was in the path (``direct``): overhead is the harness floor
    direct: bool = False
    placement: PlacementFigures | None = None
    #: the control group's share of the load (0: none)
    control_ratio: float = 0.0
    #: load.trace as scanned before the run (None: no trace)
    trace: TraceInfo | None = None
    #: [checks.metrics]: the lint of the gateway's /metrics at the end of the load
    metrics_lint: MetricsLint | None = None
    #: what ``[probes.revocation]`` measured (None: not configured)
    revocation: RevocationFigures | None = None


def harness_limits(profile: Profile) -> HarnessLimits:
    """Every limit the run was judged by, as the result records it (no hidden ones)."""
    return HarnessLimits.model_validate(profile.harness.model_dump())


def _lag(encoded: bytes) -> LagSummary | None:
    s = summarize_lag(encoded)
    return LagSummary(**s) if s is not None else None


def _summary(out: EngineOutcome, metric: str, mode: str | None = None) -> Summary | None:
    s = out.recorder.summary(metric, mode)
    return Summary.model_validate(s) if s is not None else None


def _measured_s(profile: Profile, out: EngineOutcome, stop_reason: str | None) -> float:
    measured = profile.load.duration_s
    if stop_reason is not None and out.wall_s:
        measured = max(1e-9, min(measured, out.wall_s - profile.load.warmup_s))
    return measured


def _requests(profile: Profile, out: EngineOutcome, measured_s: float) -> Requests:
    return Requests(
        sent=out.sent,
        ok=out.ok,
        failed=out.failed,
        error_rate=(out.failed / out.sent) if out.sent else None,
        errors=dict(sorted(out.errors.items())),
        throughput_rps=out.ok / measured_s if measured_s > 0 else None,
        rate_offered=profile.load.rate,
        rate_achieved=out.sent / measured_s if measured_s > 0 else None,
        max_inflight_hits=out.max_inflight_hits,
        warmup_excluded=out.warmup_excluded,
        cooldown_excluded=out.cooldown_excluded,
    )


def _realtime(profile: Profile, out: EngineOutcome) -> RealtimeFigures | None:
    """``stream.realtime``: None when [checks.streaming] is off or no stream was timed."""
    if not profile.checks.streaming.enabled or not out.streams_timed:
        return None
    return RealtimeFigures(
        streams=out.streams_timed,
        buffered=out.streams_buffered,
        buffered_examples=out.buffered_examples[:5],
        derivation_bound_ms=_lag(out.stream_dev_us),
    )


def _goodput(profile: Profile, out: EngineOutcome, measured_s: float) -> Goodput | None:
    """The [slo] outcome from the per-request counts (None: no bound set)."""
    slo = {k: v for k, v in profile.slo.model_dump().items() if v is not None}
    if not slo:
        return None
    g = out.goodput
    n = g.judged
    return Goodput(
        slo=slo,
        requests=n,
        good=g.good,
        failed=g.failed,
        ratio=g.good / n if n else None,
        rps=g.good / measured_s if measured_s > 0 else None,
        missed={k: g.missed.get(k, 0) for k in slo},
        missed_ratio={k: g.missed.get(k, 0) / n for k in slo} if n else {},
        not_applicable={k: g.not_applicable.get(k, 0) for k in slo},
    )


def _upstream(profile: Profile, out: EngineOutcome) -> Upstream:
    u = out.upstream
    return Upstream(
        calls=u.calls,
        calls_per_request=(u.calls / out.sent) if out.sent else None,
        unseen=u.unseen,
        duplicated=u.duplicated,
        late_calls=u.late_calls,
        foreign=u.foreign,
        ledger_lost=u.ledger_lost,
        calls_hist={str(k): v for k, v in sorted(u.calls_hist.items())},
        pull_error="; ".join(u.pull_errors) or None,
        worker_errors=u.worker_errors or None,
        records_by_stub=dict(sorted(u.records_by_stub.items())) or None,
        assertions=assertion_figures(profile.checks.upstream.rules(), u),
    )


def _gateway(profile: Profile, out: EngineOutcome | None, facts: RunFacts) -> GatewayFigures:
    g = facts.gateway
    figures = GatewayFigures(
        kind=g.kind, url=g.url, pid=g.pid, drain=g.drain, log=g.log, exit_code=g.died_with
    )
    figures.metrics_lint = facts.metrics_lint
    sc = facts.scrapes
    if sc is None:
        return figures
    ac = profile.gateway.auth_cache
    if ac.hits and ac.misses:
        figures.auth_cache = AuthCacheFigures(
            hits=sc.deltas.get(HITS),
            misses=sc.deltas.get(MISSES),
            series=[(round(t, 3), r) for t, r in sc.auth_cache_series],
        )
        figures.auth_cache_hit_rate = sc.auth_cache_hit_rate
    sent = out.sent if out is not None else 0
    figures.counters = {name: sc.deltas.get(name) for name in profile.gateway.counters}
    figures.counters_per_request = {
        k: (v / sent if v is not None and sent else None) for k, v in figures.counters.items()
    }
    figures.scrape_errors = sc.errors
    return figures


def _harness(profile: Profile, out: EngineOutcome, facts: RunFacts) -> Harness:
    p = profile
    h = Harness(
        loop_lag_ms=_lag(out.loop_lag_us),
        send_lag_ms=_lag(out.send_lag_us),
        stub_timer_lateness_ms=_lag(out.stub_lateness_us),
        cpu_percent=round(100.0 * out.cpu_s / out.wall_s, 1) if out.wall_s else None,
        workers=p.load.workers,
        open_file_limit=facts.open_file_limit,
        limits=harness_limits(p),
    )
    if p.load.open_loop and out.offered:
        # Open-loop sessions: the schedule is of session arrivals, kept by their first turns.
        sent = out.sessions_started if p.load.sessions.turns > 1 else out.sent
        h.achieved_rate_ratio = round(sent / out.offered, 4)
    if p.load.concurrency and out.busy_ns:
        window_ns = _measured_s(profile, out, facts.stop_reason) * 1e9
        h.concurrency_ratio = round(out.busy_ns / (window_ns * p.load.concurrency), 4)
    if out.control is not None:
        h.control = ControlFigures(
            ratio=facts.control_ratio,
            requests=out.control_sent,
            failed=out.control_failed,
            metrics={
                m: Summary.model_validate(s)
                for m in METRICS
                if (s := out.control.summary(m)) is not None
            },
        )
    h.placement = facts.placement
    client = "user" if out.user_stamped_connections else "kernel"
    h.timestamp_sources = {"client": client, "stub": out.stub_stamps}
    h.timestamps = "kernel" if client == out.stub_stamps == "kernel" else "user"
    h.clock = ClockFigures(
        offset_spread_us=round(out.clock_offset_spread_ns / 1000, 3),
        largest_step_us=round(out.clock_largest_step_ns / 1000, 3),
        clamped=out.clock_clamped,
    )
    if out.deltas_timed:
        h.deltas_same_read_ratio = round(out.deltas_same_read / out.deltas_timed, 4)
    if out.first_tokens_timed:
        h.first_token_same_read_ratio = round(out.first_token_same_read / out.first_tokens_timed, 4)
    if facts.direct:
        s = out.recorder.summary("overhead_ms")
        if s is not None:
            h.floor_ms = {"p50": s["p50"], "p99": s["p99"]}
    nofile = facts.open_file_limit
    want = (p.load.concurrency or p.load.max_inflight) + 64
    if nofile is not None and want > nofile:
        h.warnings.append(
            f"open-file limit {nofile} is below the ~{want} sockets this load needs: "
            "connect errors may be the harness's, not the gateway's (raise ulimit -n)"
        )
    if out.stub_clocks or out.cross_clock_requests:
        h.cross_clock_requests = out.cross_clock_requests
        h.stub_clocks = sorted(set(out.stub_clocks))
        h.warnings.append(
            f"{out.cross_clock_requests} measured requests reached a stub on another clock "
            f"({'; '.join(h.stub_clocks)}): their overhead is measured (durations on each "
            "clock), their ingress/egress are not recorded"
        )
    lost = out.upstream.ledger_lost
    if lost:
        h.warnings.append(
            f"stub ledger overwrote {lost} records before they were read: "
            "raise stub.ledger_capacity"
        )
    return h


def _timeseries(profile: Profile, out: EngineOutcome, facts: RunFacts) -> Timeseries:
    n = int(profile.load.duration_s)
    if n <= 0:
        return Timeseries()
    p99 = dict(out.recorder.interval_percentile("overhead_ms", 99.0))
    ts = Timeseries(
        t_s=list(range(n)),
        rps=[out.per_interval_done.get(i, 0) for i in range(n)],
        errors=[out.per_interval_errors.get(i, 0) for i in range(n)],
        overhead_p99_ms=[p99.get(i) for i in range(n)],
    )
    ac = profile.gateway.auth_cache
    if facts.scrapes is not None and ac.hits and ac.misses:
        ts.auth_cache_hit_rate = [(round(t, 3), r) for t, r in facts.scrapes.auth_cache_series]
    return ts


def _trace(profile: Profile, out: EngineOutcome, info: TraceInfo | None) -> TraceFigures | None:
    if info is None or profile.load.trace is None:
        return None
    r = profile.load.replay
    return TraceFigures(
        file=profile.load.trace,
        format=info.format,
        rows=info.rows,
        skipped=dict(sorted(info.skipped.items())),
        rows_in_window=info.in_window,
        rows_sent=out.trace_rows_sent,
        passes=out.trace_passes,
        speedup=r.speedup,
        start_s=r.start_s,
        end_s=r.end_s or None,
        loop=r.loop,
        span_s=round(info.period_us / 1e6, 6),
        block_tokens=r.block_tokens if info.hash_rows else None,
        rows_with_prefix=info.hash_rows,
        max_input_tokens=info.max_input,
        max_output_tokens=info.max_output,
    )


def _sessions(profile: Profile, out: EngineOutcome) -> SessionFigures | None:
    s = profile.load.sessions
    if s.turns <= 1:
        return None
    load = profile.load
    answer = min(profile.stub.output_tokens, load.max_tokens)
    user = s.user_tokens or load.prompt_tokens
    by_turn = []
    for turn in sorted(out.by_turn):
        entry = out.by_turn[turn]
        metrics = {}
        for name, value in entry.items():
            if isinstance(value, bytes) and value:
                summary = summarize(HdrHistogram.decode(value))
                if summary is not None:
                    metrics[name] = Summary.model_validate(summary)
        by_turn.append(
            TurnFigures(
                turn=turn,
                requests=int(entry.get("requests", 0)),
                failed=int(entry.get("failed", 0)),
                prompt_words=conversation_words(load.prompt_tokens, user, answer, turn),
                metrics=metrics,
            )
        )
    return SessionFigures(
        turns=s.turns,
        think_time_s=s.think_time_s,
        user_tokens=user,
        affinity_header=s.affinity_header or None,
        started=out.sessions_started,
        completed=out.sessions_completed,
        aborted=out.sessions_aborted,
        history_mismatches=out.violations.get("history_mismatch", 0),
        by_turn=by_turn,
    )


def _measured(result: Result, profile: Profile, out: EngineOutcome, facts: RunFacts) -> None:
    """Fill every figure the load measured into ``result``."""
    # Assigned whole, not filled in place: assignment is what marks a field as set.
    result.metrics = {m: s for m in METRICS if (s := _summary(out, m)) is not None}
    result.by_mode = {
        mode: ModeFigures(
            metrics={m: s for m in METRICS if (s := _summary(out, m, mode)) is not None},
            requests=ModeRequests(
                sent=out.by_mode[mode].sent,
                ok=out.by_mode[mode].ok,
                failed=out.by_mode[mode].failed,
            ),
        )
        for mode in MODES
    }
    measured_s = _measured_s(profile, out, facts.stop_reason)
    result.requests = _requests(profile, out, measured_s)
    if (goodput := _goodput(profile, out, measured_s)) is not None:
        result.goodput = goodput
    result.integrity = Integrity(
        checked=out.checked,
        violations=sum(out.violations.values()),
        by_class=dict(sorted(out.violations.items())),
    )
    result.upstream = _upstream(profile, out)
    result.by_mode["stream"].realtime = _realtime(profile, out)
    result.harness = _harness(profile, out, facts)
    result.timeseries = _timeseries(profile, out, facts)
    result.probes = Probes(witness=_witness(profile, out))
    result.trace = _trace(profile, out, facts.trace)
    result.sessions = _sessions(profile, out)
    result.histograms = out.recorder.encode()
    # Time batches of the figures compare tests: their spread is the run's own drift.
    result.histogram_batches = out.recorder.encode_batches(BATCHED_METRICS, HISTOGRAM_BATCHES)


def _witness(profile: Profile, out: EngineOutcome) -> WitnessFigures | None:
    w = profile.probes.witness
    c = out.witness
    if w.kind == "off" or c is None:
        return None
    return WitnessFigures(
        kind=w.kind,
        sample=w.sample,
        interval_ms=w.interval_s * 1000.0,
        timeout_ms=w.timeout_s * 1000.0,
        sampled=c.sampled,
        found=c.found,
        missing=c.missing,
        skipped=c.skipped,
        first_look=c.first_look,
        latency_ms=_lag(c.latency_us),
        error_ms=_lag(c.error_us),
        upper_ms=_lag(c.upper_us),
        polls=c.polls,
        poll_errors=c.poll_errors,
        polls_per_s=round(c.polls / (c.span_ns / 1e9), 1) if c.span_ns > 0 else None,
        rtt_ms=_lag(c.rtt_us),
        max_in_flight=c.max_in_flight,
        errors=c.errors,
    )


def _judge(result: Result, profile: Profile, facts: RunFacts) -> None:
    verdict, gates = judge(
        result,
        profile.harness,
        profile.gates,
        stop_reason=facts.stop_reason,
        gateway_died_with=facts.gateway.died_with,
    )
    result.verdict, result.reasons = verdict.verdict, verdict.reasons
    result.exit_code, result.gates = verdict.exit_code, gates
    result.harness.warnings += lag_warnings(result.harness, profile.harness)
    result.harness.warnings += send_lag_warnings(result.harness, profile.harness)


def build_result(profile: Profile, outcome: EngineOutcome | None, facts: RunFacts) -> Result:
    """The judged result of one run (``outcome`` None: the load never started)."""
    result = Result(
        interrupted=facts.stop_reason,
        started_at=facts.started_at.isoformat(),
        duration_s=round(facts.wall_s, 3),
        run_dir=facts.run_dir,
        profile=profile.redacted(),
        environment=facts.environment,
        git=facts.git,
    )
    result.gateway = _gateway(profile, outcome, facts)
    if outcome is None:
        result.verdict, result.exit_code = "invalid", 3
        result.reasons = [f"run did not start measuring ({facts.stop_reason or 'error'})"]
        return result
    _measured(result, profile, outcome, facts)
    result.probes = Probes(
        witness=result.probes.witness,
        revocation=facts.revocation,
        tenants=_tenants(profile, outcome),
    )
    _judge(result, profile, facts)
    return result


def _tenants(profile: Profile, out: EngineOutcome) -> TenantFigures | None:
    if profile.probes.tenants.share <= 0:
        return None
    t = out.tenants
    return TenantFigures(
        tried=t.tried,
        leaked=t.leaked,
        by_status={str(k): v for k, v in sorted(t.by_status.items())},
        examples=t.examples,
    )
