"""What one load process measured, and how outcomes of several processes add up.

:class:`EngineOutcome` is the load generator's whole measurement: histograms
(a :class:`~loadgate.histograms.recorder.Recorder`), counters, the
self-monitoring histograms and what the join said about the stub's ledger. It
is the input of :func:`loadgate.result.build.build_result`.

Merging is by field type, not by a list of names, so a counter added later
merges without anyone remembering to: integers add, count tables add key by
key, encoded histograms add bucket by bucket, nested counters recurse, lists
concatenate, the first stop reason wins. A field of a type with no rule makes
:meth:`EngineOutcome.merge` raise instead of dropping it silently. The one
exception is CPU: the busiest process's share is the figure that says whether
a process was saturated (``cpu_s``/``wall_s`` are merged as a pair); fields
marked ``merge = "max"`` take the largest.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from loadgate.histograms.recorder import Recorder
from loadgate.join.goodput import GoodputCounts
from loadgate.probes.tenants import TenantCounts
from loadgate.probes.witness import WitnessCounts

__all__ = ["EngineOutcome", "ModeCounts", "TailRequest", "UpstreamCounts", "merge_outcomes"]


@dataclass(slots=True)
class ModeCounts:
    sent: int = 0
    ok: int = 0
    failed: int = 0


@dataclass(frozen=True, slots=True)
class TailRequest:
    """A request that completed after sending stopped: what the drain check needs.

    ``t_forwarded``: when the stub received the gateway's (first) upstream call for
    it (0: never); ``t_done``: its last byte (0: none); both CLOCK_MONOTONIC ns.
    """

    t_forwarded: int
    t_done: int
    failed: bool


@dataclass(slots=True)
class UpstreamCounts:
    """What the ledger join found for the measured requests."""

    calls: int = 0
    unseen: int = 0
    duplicated: int = 0
    late_calls: int = 0
    foreign: int = 0
    ledger_lost: int = 0
    #: upstream calls per request → requests
    calls_hist: dict[int, int] = field(default_factory=dict)
    pull_errors: list[str] = field(default_factory=list)
    #: stub URL → this run's records read from its ledger (only with peer stubs)
    records_by_stub: dict[str, int] = field(default_factory=dict)
    worker_errors: list[str] = field(default_factory=list)
    #: the stub's upstream-rule verdicts ([checks.upstream]; joiner.AssertionCounts)
    assertions_checked: int = 0
    assertions_failed: int = 0
    assertions_by_bit: dict[int, int] = field(default_factory=dict)
    assertion_examples: list[str] = field(default_factory=list)


@dataclass(slots=True)
class EngineOutcome:
    """What one engine measured; outcomes of several processes merge losslessly."""

    recorder: Recorder
    sent: int = 0
    ok: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    by_mode: dict[str, ModeCounts] = field(
        default_factory=lambda: {"stream": ModeCounts(), "non_stream": ModeCounts()}
    )
    checked: int = 0
    violations: dict[str, int] = field(default_factory=dict)
    #: cross-tenant requests (probes.tenants), apart from every figure above
    tenants: TenantCounts = field(default_factory=TenantCounts)
    warmup_excluded: int = 0
    cooldown_excluded: int = 0
    max_inflight_hits: int = 0
    offered: int = 0  # open loop: requests scheduled in the measured window
    #: requests that completed after sending stopped (the drain check reads them)
    tail: list[TailRequest] = field(default_factory=list)
    #: closed loop: Σ over measured requests of their time in flight (Little's law)
    busy_ns: int = 0
    #: the control group: requests sent straight to the stub beside the load
    control: Recorder | None = None
    control_sent: int = 0
    control_failed: int = 0
    upstream: UpstreamCounts = field(default_factory=UpstreamCounts)
    #: per-request SLO outcomes of the measured requests (profile [slo]; zeros without it)
    goodput: GoodputCounts = field(default_factory=GoodputCounts)
    per_interval_done: dict[int, int] = field(default_factory=dict)
    per_interval_errors: dict[int, int] = field(default_factory=dict)
    loop_lag_us: bytes = b""  # encoded HDR histograms (mergeable)
    send_lag_us: bytes = b""
    stub_lateness_us: bytes = b""
    #: connections stamped in user space (TLS, or no kernel stamps): 0 = all kernel
    user_stamped_connections: int = 0
    #: where the stub's t_recv came from ("kernel" | "user"; None: not known)
    stub_stamps: str | None = None
    #: stream content deltas timed, and of them those that arrived in the same read as
    #: the delta before (they share its stamp: an inter-token gap of 0)
    deltas_timed: int = 0
    deltas_same_read: int = 0
    #: streams with two or more deltas, and of them those whose first delta was read
    #: together with the second (their TTFT is the second's arrival: an upper bound)
    first_tokens_timed: int = 0
    first_token_same_read: int = 0
    #: REALTIME − MONOTONIC as the client saw it: spread and largest step over the run
    clock_offset_spread_ns: int = field(default=0, metadata={"merge": "max"})
    clock_largest_step_ns: int = field(default=0, metadata={"merge": "max"})
    clock_clamped: int = 0
    #: measured requests with a call from a stub on another clock: no ingress/egress
    cross_clock_requests: int = 0
    #: stubs whose clock is not the client's ("url: why"), from the clock check
    stub_clocks: list[str] = field(default_factory=list)
    #: the side-effect witness's counts (None: not configured)
    witness: WitnessCounts | None = None
    #: [checks.streaming]: measured streams whose per-token delays were derived, those
    #: of them buffered (checks/streaming.py), a few buffered ids, and the derivation's
    #: error bound per stream (µs, encoded HDR)
    streams_timed: int = 0
    streams_buffered: int = 0
    buffered_examples: list[str] = field(default_factory=list)
    stream_dev_us: bytes = b""
    cpu_s: float = field(default=0.0, metadata={"merge": "busiest"})
    wall_s: float = field(default=0.0, metadata={"merge": "busiest"})
    stopped_by: str | None = None
    #: sessions (load.sessions.turns > 1): per turn index, the measured requests'
    #: counts ("requests", "failed") and encoded histograms (µs) by metric name
    by_turn: dict[int, dict[str, Any]] = field(default_factory=dict)
    sessions_started: int = 0  # sessions whose first turn was in the measured window
    sessions_completed: int = 0  # of those, sessions that answered every turn
    sessions_aborted: int = 0  # of those, sessions a failed turn ended early
    trace_rows_sent: int = 0  # trace replay: rows sent (every window, every pass)
    trace_passes: int = field(default=0, metadata={"merge": "max"})

    def merge(self, other: EngineOutcome) -> None:
        """Add ``other`` into this outcome (see the module docstring for the rules)."""
        _merge_fields(self, other)
        # CPU: the busiest process is the one that limits validity.
        if other.wall_s and (
            not self.wall_s or other.cpu_s / other.wall_s > self.cpu_s / self.wall_s
        ):
            self.cpu_s, self.wall_s = other.cpu_s, other.wall_s


def _add_hist(a: bytes, b: bytes) -> bytes:
    if not a:
        return b
    if not b:
        return a
    h = HdrHistogram.decode(a)
    h.add(HdrHistogram.decode(b))
    return bytes(h.encode())


def _merged(name: str, a: Any, b: Any) -> Any:
    if isinstance(a, Recorder):
        a.merge(b)
        return a
    if isinstance(a, bool) or isinstance(b, bool):
        raise TypeError(f"outcome field {name!r}: no merge rule for bool")
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    if isinstance(a, bytes):
        return _add_hist(a, b)
    if isinstance(a, list):
        return [*a, *b]
    if isinstance(a, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = _merged(f"{name}[{k!r}]", out[k], v) if k in out else v
        return out
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        _merge_fields(a, b)
        return a
    if a is None or isinstance(a, str):
        return a if a is not None else b
    raise TypeError(f"outcome field {name!r}: no merge rule for {type(a).__name__}")


def _merge_fields(dst: Any, src: Any) -> None:
    for f in dataclasses.fields(dst):
        rule = f.metadata.get("merge")
        if rule == "busiest":
            continue
        if rule == "max":
            setattr(dst, f.name, max(getattr(dst, f.name), getattr(src, f.name)))
            continue
        setattr(dst, f.name, _merged(f.name, getattr(dst, f.name), getattr(src, f.name)))


def merge_outcomes(outs: list[EngineOutcome]) -> EngineOutcome:
    """Lossless merge into the first outcome: histogram buckets and counters add up."""
    first = outs[0]
    for o in outs[1:]:
        first.merge(o)
    return first
