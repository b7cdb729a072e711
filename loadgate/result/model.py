"""The result as typed data: every figure a run (or a sweep) produced, by section.

This module owns the *shape* of a result: the classes whose attributes every
reader uses (gates, summary, reports, compare, history, sweep) and whose JSON
form is the result file (results/README.md documents each key for users).
Files are read once, at the edge, by :mod:`loadgate.result.versions`.

Why pydantic models: the same library validates profiles (one way of saying
"this key must be a number" across the project), it writes and reads JSON with
the exact key names of the contract (``schema`` via an alias), and it keeps keys
it does not know (``extra="allow"``), so a file written by a newer loadgate
still loads and round-trips without losing anything.

Units: latency summaries in milliseconds (floats), counts as integers, rates as
ratios 0..1 unless a name says ``percent`` or ``rps``.

Longer than 400 lines: it is one class per result section, declarations only,
so the whole shape can be read in one file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

if TYPE_CHECKING:
    from loadgate.histograms.recorder import Recorder

__all__ = [
    "SCHEMA",
    "AuthCacheFigures",
    "ClockFigures",
    "ControlFigures",
    "Drain",
    "Environment",
    "Frontier",
    "FrontierPoint",
    "Gate",
    "GatewayFigures",
    "Git",
    "Goodput",
    "Harness",
    "HarnessLimits",
    "Integrity",
    "Knee",
    "LagSummary",
    "LintProblem",
    "MetricsLint",
    "ModeFigures",
    "ModeRequests",
    "PlacementFigures",
    "Probes",
    "PropagationFigures",
    "RealtimeFigures",
    "Requests",
    "Result",
    "RevocationFigures",
    "RevokedKey",
    "SessionFigures",
    "ShardEntry",
    "ShardFigures",
    "StepGateway",
    "StepHarness",
    "StepRequests",
    "Summary",
    "SweepBudget",
    "SweepResult",
    "SweepStep",
    "TenantFigures",
    "Timeseries",
    "TraceFigures",
    "TurnFigures",
    "Upstream",
    "UpstreamAssertions",
    "WitnessFigures",
]

#: The version every file written by this loadgate carries (history: versions.py).
SCHEMA = "loadgate.result/1"


class Section(BaseModel):
    """Base of every result section: unknown keys are kept, names match the JSON."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class _NamedByProfile:
    """A result is named by its profile (``profile.name``; a generic word when absent)."""

    profile: dict[str, Any]
    UNNAMED: ClassVar[str] = "run"

    @property
    def profile_name(self) -> str:
        name = self.profile.get("name")
        return name if isinstance(name, str) else self.UNNAMED


class Summary(Section):
    """One latency metric (ms): what the histogram says, HdrHistogram's percentile rule."""

    count: int
    mean: float
    stdev: float
    min: float
    p50: float
    p90: float
    p99: float
    p999: float
    max: float


class LagSummary(Section):
    """A self-monitoring figure (ms): p50/p99/max of what was recorded."""

    count: float | None = None
    p50: float
    p99: float
    max: float


class ModeRequests(Section):
    sent: int = 0
    ok: int = 0
    failed: int = 0


class RealtimeFigures(Section):
    """``[checks.streaming]``: were streams relayed as the stub wrote them? (docs/checks.md)

    The per-token delays themselves are the mode's ``token_delay_ms`` metric.
    """

    #: measured streams whose per-token delays were derived
    streams: int = 0
    #: of them, buffered: received over less than half the span the stub wrote them in
    buffered: int = 0
    buffered_examples: list[str] = Field(default_factory=list)
    #: per stream, how much earlier the derived write times may be than the true ones:
    #: each token_delay_ms value is an over-estimate by at most this (ms)
    derivation_bound_ms: LagSummary | None = None


class ModeFigures(Section):
    metrics: dict[str, Summary] = Field(default_factory=dict)
    requests: ModeRequests = Field(default_factory=ModeRequests)
    #: stream mode only; None: [checks.streaming] off (or no stream was timed)
    realtime: RealtimeFigures | None = None


class Gate(Section):
    """One gate's outcome: ``value`` is None when there was nothing to measure.

    ``decided`` is False when the run cannot back the answer: the run is
    ``invalid``, or the harness's own noise could flip this gate
    (``undecided_reason`` says which). Outputs show such a gate as undecided,
    never as a plain pass or FAIL.
    """

    name: str
    op: str
    threshold: float
    value: float | None = None
    passed: bool = False
    reason: str | None = None
    decided: bool = True
    undecided_reason: str | None = None


class Requests(Section):
    sent: int = 0
    ok: int = 0
    failed: int = 0
    error_rate: float | None = None
    errors: dict[str, int] = Field(default_factory=dict)
    throughput_rps: float | None = None
    rate_offered: float | None = None
    rate_achieved: float | None = None
    max_inflight_hits: int = 0
    warmup_excluded: int = 0
    cooldown_excluded: int = 0


class Integrity(Section):
    checked: int = 0
    violations: int = 0
    by_class: dict[str, int] = Field(default_factory=dict)


class UpstreamAssertions(Section):
    """``[checks.upstream]``: the stub's rules on every request the gateway forwarded.

    Counted over the whole run (warm-up included), control group excluded.
    """

    checked: int = 0
    failed: int = 0
    #: rule (``require_system``, ``require_headers.<name>``, ``forbid_headers.<name>``)
    #: → requests that failed it; every configured rule is listed
    by_rule: dict[str, int] = Field(default_factory=dict)
    #: a few failing correlation ids (hex)
    examples: list[str] = Field(default_factory=list)


class Goodput(Section):
    """Per-request SLOs (profile ``[slo]``): the share of measured requests meeting all.

    Decided per request at join time (docs/goodput.md): a failed request or one
    with an integrity violation is never good; a bound that does not apply to a
    request (no TTFT without a stream) is met and counted in ``not_applicable``.
    The result's ``goodput`` is None when the profile set no bound.
    """

    #: the bounds judged, ms: ``ttft_ms``, ``itl_ms`` (the request's mean), ``e2e_ms``,
    #: ``overhead_ms`` (only those set)
    slo: dict[str, float] = Field(default_factory=dict)
    #: measured gateway requests judged (= requests.sent)
    requests: int = 0
    good: int = 0
    #: failed or violated integrity (never good)
    failed: int = 0
    #: good / requests (None: no requests)
    ratio: float | None = None
    #: good requests per second of the measured window
    rps: float | None = None
    #: SLO → requests whose figure exceeded the bound, and that as a share of ``requests``
    missed: dict[str, int] = Field(default_factory=dict)
    missed_ratio: dict[str, float] = Field(default_factory=dict)
    #: SLO → completed requests without that figure (the bound counted as met)
    not_applicable: dict[str, int] = Field(default_factory=dict)


class Upstream(Section):
    """What the stub saw of the measured requests (joined by correlation id)."""

    calls: int = 0
    calls_per_request: float | None = None
    unseen: int = 0
    duplicated: int = 0
    late_calls: int = 0
    foreign: int = 0
    ledger_lost: int = 0
    calls_hist: dict[str, int] = Field(default_factory=dict)
    pull_error: str | None = None
    worker_errors: list[str] | None = None
    #: stub URL → this run's ledger records (warm-up and control included) read from
    #: that stub: which stubs served us. None: one stub only (no ``--stub-ledger``)
    records_by_stub: dict[str, int] | None = None
    #: None: [checks.upstream] not configured
    assertions: UpstreamAssertions | None = None


class AuthCacheFigures(Section):
    hits: float | None = None
    misses: float | None = None
    #: ``[seconds since the window opened, hit rate between two scrapes]``
    series: list[tuple[float, float | None]] = Field(default_factory=list)


class Drain(Section):
    """SIGTERM while requests were in flight: did the gateway finish them?"""

    checked: bool = False
    reason: str | None = None
    #: requests the gateway had forwarded upstream and not finished when SIGTERM came
    in_flight_at_term: int | None = None
    #: of those, how many then failed
    dropped: int | None = None
    #: failed requests the gateway had not forwarded before SIGTERM (turned away)
    refused: int | None = None
    exit_code: int | None = None
    ok: bool | None = None


class LintProblem(Section):
    metric: str
    rule: str
    detail: str


class MetricsLint(Section):
    """``[checks.metrics]``: the gateway's /metrics against Prometheus conventions.

    ``problems`` counts every finding, missing required series included; None
    (with ``error``) when the endpoint could not be scraped.
    """

    url: str | None = None
    series: int | None = None
    problems: int | None = None
    missing: int | None = None
    details: list[LintProblem] = Field(default_factory=list)
    missing_series: list[str] = Field(default_factory=list)
    error: str | None = None


class GatewayFigures(Section):
    #: reference | direct | command | target
    kind: str = "unknown"
    url: str | None = None
    pid: int | None = None
    auth_cache_hit_rate: float | None = None
    auth_cache: AuthCacheFigures | None = None
    counters: dict[str, float | None] = Field(default_factory=dict)
    counters_per_request: dict[str, float | None] = Field(default_factory=dict)
    scrape_errors: int | None = None
    drain: Drain | None = None
    log: str | None = None
    exit_code: int | None = None
    #: None: [checks.metrics] not configured
    metrics_lint: MetricsLint | None = None


class HarnessLimits(Section):
    """The limits a run was judged by (profile ``[harness]``); every one is written.

    None only in files written before the limit was recorded.
    """

    max_loop_lag_p99_ms: float | None = None
    max_cpu_percent: float | None = None
    min_achieved_rate_ratio: float | None = None
    max_stub_lateness_p99_ms: float | None = None
    max_send_lag_p99_ms: float | None = None
    min_concurrency_ratio: float | None = None
    max_control_share: float | None = None
    floor_warn_share: float | None = None


class ClockFigures(Section):
    """The kernel's REALTIME stamps, converted to MONOTONIC: how steady that was (µs)."""

    offset_spread_us: float
    largest_step_us: float
    clamped: int = 0


class ControlFigures(Section):
    """The same-run control group: requests sent straight to the stub beside the load.

    The harness + loopback + stub floor, measured at the same moment and under the
    same contention as the gateway's figures (ms).
    """

    ratio: float
    requests: int = 0
    failed: int = 0
    metrics: dict[str, Summary] = Field(default_factory=dict)

    def p99(self, metric: str = "overhead_ms") -> float | None:
        s = self.metrics.get(metric)
        return s.p99 if s is not None else None


class PlacementFigures(Section):
    """Which CPUs each process ran on (None: not pinned; ``gateway_known`` False: --target)."""

    harness: list[int] | None = None
    stub: list[int] | None = None
    gateway: list[int] | None = None
    gateway_known: bool = True
    note: str = ""


class Harness(Section):
    """loadgate watching itself: could it have been the bottleneck?"""

    #: where arrival times came from: "kernel" (both the client's reads and the
    #: stub's t_recv stamped by the kernel), else "user" (stamped when read)
    timestamps: Literal["kernel", "user"] | None = None
    timestamp_sources: dict[str, str | None] | None = None
    clock: ClockFigures | None = None
    #: share of stream content deltas read together with the one before (shared stamp)
    deltas_same_read_ratio: float | None = None
    #: share of streams whose first delta was read with the second: their TTFT is the
    #: second delta's arrival, an upper bound late by up to one inter-token gap or more
    first_token_same_read_ratio: float | None = None
    control: ControlFigures | None = None
    placement: PlacementFigures | None = None
    #: closed loop: mean requests in flight over the window / load.concurrency
    concurrency_ratio: float | None = None
    #: measured requests with an upstream call stamped by a stub on another clock:
    #: their ingress/egress are not recorded (None: every stub was on this clock)
    cross_clock_requests: int | None = None
    #: stubs whose ledger clock is not the client's: ``"url: why"``
    stub_clocks: list[str] | None = None

    loop_lag_ms: LagSummary | None = None
    send_lag_ms: LagSummary | None = None
    stub_timer_lateness_ms: LagSummary | None = None
    cpu_percent: float | None = None
    workers: int | None = None
    floor_ms: dict[str, float] | None = None
    achieved_rate_ratio: float | None = None
    open_file_limit: int | None = None
    limits: HarnessLimits | None = None
    warnings: list[str] = Field(default_factory=list)


class WitnessFigures(Section):
    """``probes.witness``: sampled requests' records, looked for by correlation id.

    ``latency_ms``: completion → first seen, each the midpoint of the interval the
    record appeared in; ``error_ms``: those intervals' half-widths (the figure's error
    bound, request by request); ``upper_ms``: their upper ends (the conservative
    figure). ``rtt_ms``: the witness's queries' round trips (docs/checks.md).
    """

    configured: bool = True
    kind: str = "sql"
    sample: float | None = None
    interval_ms: float | None = None
    timeout_ms: float | None = None
    sampled: int = 0
    found: int = 0
    missing: int = 0
    skipped: int = 0
    first_look: int = 0
    latency_ms: LagSummary | None = None
    error_ms: LagSummary | None = None
    upper_ms: LagSummary | None = None
    #: the witness's own work: queries, failed ones, round trips, rate, concurrency
    polls: int = 0
    poll_errors: int = 0
    polls_per_s: float | None = None
    rtt_ms: LagSummary | None = None
    max_in_flight: int = 0
    errors: list[str] = Field(default_factory=list)


class PropagationFigures(Section):
    """Seconds from the revoke hook's return to the key's lasting rejection, over keys."""

    p50: float | None = None
    max: float | None = None


class RevokedKey(Section):
    """One revoked key (``probes.revocation.keys``): its probes and what they showed."""

    key: str  # the key's first 12 characters
    rank: int  # its popularity rank in the key pool (0: most used)
    #: when the hook was called, seconds after the window opened
    revoked_at_s: float | None = None
    baseline_status: int = 0  # the request just before the hook (must be 2xx)
    hook_s: float | None = None  # how long the hook took
    hook_error: str | None = None
    #: hook return → first rejection followed only by rejections (None: never)
    propagation_s: float | None = None
    #: the figure is at most this much above the true moment (the probe gap there)
    bound_s: float | None = None
    probes: int = 0
    rejections: int = 0
    flaps: int = 0  # rejected → accepted again
    observed_s: float = 0.0  # hook return → last probe sent


class RevocationFigures(Section):
    """``[probes.revocation]``: revoked keys rejected how soon (docs/checks.md)."""

    revoked: int = 0
    #: revoked, baseline accepted, never rejected for good by the end of sending
    never_rejected: int = 0
    baseline_rejected: int = 0  # keys refused already before the hook: not usable
    hook_failed: int = 0
    #: p50 / max: None unless every key has a propagation time
    propagation_s: PropagationFigures = Field(default_factory=PropagationFigures)
    interval_ms: float = 0.0
    #: the largest per-key error of propagation_s (probe quantisation), seconds
    bound_s: float | None = None
    keys: list[RevokedKey] = Field(default_factory=list)


class TenantFigures(Section):
    """``[probes.tenants]``: cross-tenant requests and how many the gateway let through."""

    tried: int = 0
    leaked: int = 0  # answered anything but 401 / 403 / 404
    #: HTTP status ("0": no answer) → cross-tenant requests
    by_status: dict[str, int] = Field(default_factory=dict)
    examples: list[str] = Field(default_factory=list)


class Probes(Section):
    """``probes``: checks that act beside the load (None: that probe not configured)."""

    witness: WitnessFigures | None = None
    revocation: RevocationFigures | None = None
    tenants: TenantFigures | None = None


class Timeseries(Section):
    """Per second of the measured window (index = second)."""

    t_s: list[int] = Field(default_factory=list)
    rps: list[int] = Field(default_factory=list)
    errors: list[int] = Field(default_factory=list)
    overhead_p99_ms: list[float | None] = Field(default_factory=list)
    auth_cache_hit_rate: list[tuple[float, float | None]] | None = None


class TraceFigures(Section):
    """Trace replay (``load.trace``): which trace, and how much of it the run sent."""

    file: str
    format: str
    #: rows in the file (header excluded), and those skipped by reason: ``failed``
    #: (BurstGPT rows with 0 response tokens: failures in the trace), ``zero_output``
    rows: int = 0
    skipped: dict[str, int] = Field(default_factory=dict)
    #: usable rows between load.replay's start and end (one pass)
    rows_in_window: int = 0
    #: rows sent, every pass counted (the run's window may end before the trace)
    rows_sent: int = 0
    passes: int = 0
    speedup: float = 1.0
    start_s: float = 0.0
    end_s: float | None = None
    loop: bool = False
    #: one pass in trace time, s (at speedup 1)
    span_s: float | None = None
    block_tokens: int | None = None
    rows_with_prefix: int = 0
    max_input_tokens: int = 0
    max_output_tokens: int = 0


class TurnFigures(Section):
    """One turn index of the run's sessions: its measured requests."""

    turn: int
    requests: int = 0
    failed: int = 0
    #: the conversation's size at this turn, words (markers not counted)
    prompt_words: int | None = None
    #: e2e_ms, overhead_ms, ttft_ms, ttft_overhead_ms of this turn's successful requests
    metrics: dict[str, Summary] = Field(default_factory=dict)


class SessionFigures(Section):
    """Multi-turn sessions (``load.sessions``): sessions, history checks, figures per turn."""

    turns: int
    think_time_s: float = 0.0
    user_tokens: int | None = None
    affinity_header: str | None = None
    #: sessions whose first turn was in the measured window; completed: every turn
    #: answered; aborted: a failed turn ended it (its later turns were not sent)
    started: int = 0
    completed: int = 0
    aborted: int = 0
    #: turns whose resent history the stub found wrong (integrity class history_mismatch)
    history_mismatches: int = 0
    by_turn: list[TurnFigures] = Field(default_factory=list)


class Environment(Section):
    """Who measured: enough to group results by machine and to explain a difference."""

    host: str | None = None
    machine_id: str | None = None
    cpus: int | None = None
    cpu_model: str | None = None
    python: str | None = None
    platform: str | None = None
    kernel: str | None = None
    packages: dict[str, str | None] = Field(default_factory=dict)
    cpus_usable: int | None = None
    loadavg: list[float] | None = None


class Git(Section):
    commit: str | None = None
    dirty: bool | None = None
    source: str | None = None


class ShardFigures(Section):
    """One shard of a sharded run (``--shard i/N``): its share and its window.

    Window edges are UNIX seconds (this machine's wall clock at the shard's start,
    carried on its monotonic clock): only the merge's overlap check reads them.
    """

    index: int
    count: int
    #: the common measured window's start every shard aimed at
    start_at: float
    start_derived: bool = False
    measure_start: float
    measure_end: float
    #: how late this shard's measured window began (0: on time)
    missed_start_s: float = 0.0
    #: this shard's share of the load (the profile in the result is the whole run's)
    concurrency: int | None = None
    rate: float | None = None
    max_requests: int | None = None
    #: peer stubs whose ledgers were joined
    peers: list[str] = Field(default_factory=list)


class ShardEntry(Section):
    """A merged result's record of one shard: its own verdict and self-monitoring, kept."""

    file: str
    shard: ShardFigures
    verdict: Literal["pass", "fail", "invalid"]
    reasons: list[str] = Field(default_factory=list)
    requests: Requests = Field(default_factory=Requests)
    harness: Harness = Field(default_factory=Harness)
    host: str | None = None


class Result(_NamedByProfile, Section):
    """One run's result (``loadgate run``); the file is its JSON form."""

    schema_: str = Field(default=SCHEMA, alias="schema")
    verdict: Literal["pass", "fail", "invalid"] = "invalid"
    reasons: list[str] = Field(default_factory=list)
    exit_code: int = 3
    #: Why the run stopped early: ``SIGINT``, ``SIGTERM``, ``gateway_died``, … (None: it didn't)
    interrupted: str | None = None
    gates: list[Gate] = Field(default_factory=list)
    metrics: dict[str, Summary] = Field(default_factory=dict)
    by_mode: dict[str, ModeFigures] = Field(default_factory=dict)
    requests: Requests = Field(default_factory=Requests)
    integrity: Integrity = Field(default_factory=Integrity)
    #: per-request SLOs (None: the profile has no [slo], or an older file)
    goodput: Goodput | None = None
    upstream: Upstream = Field(default_factory=Upstream)
    gateway: GatewayFigures = Field(default_factory=GatewayFigures)
    harness: Harness = Field(default_factory=Harness)
    timeseries: Timeseries = Field(default_factory=Timeseries)
    probes: Probes = Field(default_factory=Probes)
    #: trace replay: None when the run replayed no trace
    trace: TraceFigures | None = None
    #: multi-turn sessions: None when load.sessions.turns is 1
    sessions: SessionFigures | None = None
    #: base64 HdrHistogram (µs) per ``<metric>`` and ``<mode>.<metric>``
    histograms: dict[str, str] = Field(default_factory=dict)
    #: the compared histograms as 20 time batches of the window (compare's batch means)
    histogram_batches: dict[str, list[str]] = Field(default_factory=dict)
    hlogs: list[str] = Field(default_factory=list)
    #: the resolved profile, TOML-shaped, secrets as "***"
    profile: dict[str, Any] = Field(default_factory=dict)
    environment: Environment = Field(default_factory=Environment)
    git: Git | None = None
    started_at: str = ""
    duration_s: float = 0.0
    run_dir: str | None = None
    #: a shard's result: which shard, its share and window (None: not sharded)
    shard: ShardFigures | None = None
    #: a merged result (``loadgate merge``): every shard, as it judged itself
    shards: list[ShardEntry] | None = None
    #: a merged result: the union of the shards' measured windows, UNIX seconds
    window: tuple[float, float] | None = None
    #: the run's live histograms (interval histograms for .hlog files); never in the file
    _recorder: Any = PrivateAttr(default=None)

    def attach_recorder(self, recorder: Recorder) -> None:
        self._recorder = recorder

    @property
    def recorder(self) -> Recorder | None:
        """The histograms this run recorded (None for a result read from a file)."""
        rec: Recorder | None = self._recorder
        return rec


class StepRequests(Section):
    sent: int | None = None
    ok: int | None = None
    failed: int | None = None
    error_rate: float | None = None
    throughput_rps: float | None = None


class StepHarness(Section):
    valid: bool = True
    cpu_percent: float | None = None
    loop_lag_p99_ms: float | None = None
    #: the step's same-run control group overhead p99 (ms): the harness floor beside
    #: the step's overhead p99; None without a control group (or in older files)
    control_overhead_p99_ms: float | None = None


class StepGateway(Section):
    kind: str | None = None
    pid: int | None = None
    cpu_percent: float | None = None
    rss_mb: float | None = None


class SweepStep(Section):
    """One step of a sweep, summarised from its run's result (``steps[]``).

    The step's load value is also stored under its mode's name (``concurrency``
    or ``rate``), as extra key, for readers of the JSON.
    """

    value: float
    verdict: Literal["pass", "fail", "invalid"]
    exit_code: int | None = None
    reasons: list[str] = Field(default_factory=list)
    gates: list[Gate] = Field(default_factory=list)
    requests: StepRequests = Field(default_factory=StepRequests)
    #: ``overhead_ms`` / ``ttft_overhead_ms`` → ``{"p50": …, "p99": …}``; overhead also
    #: ``p99_low`` / ``p99_high``, the 95 % interval of its p99 (newer files)
    metrics: dict[str, dict[str, float | None]] = Field(default_factory=dict)
    #: the step's ``goodput.ratio`` (None: no [slo], or an older file)
    goodput_ratio: float | None = None
    harness: StepHarness = Field(default_factory=StepHarness)
    gateway: StepGateway = Field(default_factory=StepGateway)
    interrupted: str | None = None
    #: the step's result file, relative to the sweep directory
    result: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _value_from_mode(cls, data: Any) -> Any:
        # Early sweep files name the step only by its mode's key.
        if isinstance(data, dict) and "value" not in data:
            for key in ("concurrency", "rate"):
                if key in data:
                    return {**data, "value": data[key]}
        return data

    def metric(self, name: str, stat: str) -> float | None:
        return self.metrics.get(name, {}).get(stat)


class Knee(Section):
    """The largest step of the unbroken run of passes from the smallest step."""

    max_concurrency: float | None = None
    max_rate: float | None = None
    throughput_rps: float | None = None
    overhead_p99_ms: float | None = None
    first_not_passing: float | None = None
    limited_by: Literal["none", "untested", "harness", "gateway"] = "none"
    reason: str = ""

    @property
    def value(self) -> float | None:
        return self.max_concurrency if self.max_concurrency is not None else self.max_rate


class SweepBudget(Section):
    name: str
    op: str
    threshold: float


class FrontierPoint(Section):
    """One p99 overhead bound of ``loadgate sweep --frontier``: the highest rate kept under it.

    ``max_rate`` is the largest offered rate (req/s) of the unbroken run of steps,
    from the lowest one, whose overhead p99 stayed under ``bound_ms``;
    ``first_over`` the lowest measured rate above it that did not (None: none
    did). ``status``: ``found`` (the two are within the search resolution),
    ``unresolved`` (steps ran out first), ``not_reached`` (even the lowest rate
    tried was over), ``above_tried`` (every rate tried was under: the frontier is
    above the highest), ``harness`` (the rate above was harness-bound: the
    gateway's frontier is at or above ``max_rate``), ``none`` (no steps).
    """

    bound_ms: float
    status: Literal["found", "unresolved", "not_reached", "above_tried", "harness", "none"] = "none"
    max_rate: float | None = None
    throughput_rps: float | None = None
    overhead_p99_ms: float | None = None
    #: 95 % interval of the overhead p99 at ``max_rate`` (order statistics / batch means)
    p99_low_ms: float | None = None
    p99_high_ms: float | None = None
    first_over: float | None = None
    first_over_p99_ms: float | None = None
    #: the interval at ``max_rate`` or at ``first_over`` reaches across the bound:
    #: a longer step could move the answer by one step
    marginal: bool = False
    reason: str = ""


class Frontier(Section):
    """``loadgate sweep --frontier``: the highest open-loop rate under each p99 bound."""

    bounds_ms: list[float] = Field(default_factory=list)
    points: list[FrontierPoint] = Field(default_factory=list)
    #: bisection stops when first_over − max_rate ≤ this share of max_rate
    resolution: float | None = None
    plot: str | None = "frontier.svg"


class SweepResult(_NamedByProfile, Section):
    """A sweep's result (``loadgate sweep``): same schema family, ``kind = "sweep"``."""

    UNNAMED: ClassVar[str] = "sweep"
    schema_: str = Field(default=SCHEMA, alias="schema")
    kind: Literal["sweep"] = "sweep"
    verdict: Literal["pass", "fail", "invalid"] = "invalid"
    reasons: list[str] = Field(default_factory=list)
    exit_code: int = 3
    mode: Literal["concurrency", "rate"] = "concurrency"
    steps: list[SweepStep] = Field(default_factory=list)
    skipped: list[float] = Field(default_factory=list)
    stopped: str | None = None
    knee: Knee = Field(default_factory=Knee)
    #: ``--frontier``: the highest rate under each p99 overhead bound (None: not asked)
    frontier: Frontier | None = None
    recommendation: str = ""
    budget: SweepBudget | None = None
    policy: dict[str, Any] = Field(default_factory=dict)
    gates: list[Gate] = Field(default_factory=list)
    plot: str | None = "sweep.svg"
    csv: str | None = "sweep.csv"
    report: str | None = "report.html"
    profile: dict[str, Any] = Field(default_factory=dict)
    environment: Environment = Field(default_factory=Environment)
    git: Git | None = None
    started_at: str = ""
    duration_s: float = 0.0
    run_dir: str | None = None
