"""``loadgate merge`` on synthetic shard results: exact sums, refusals, invalidity by name."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hdrh.histogram import HdrHistogram

from loadgate.errors import UsageError
from loadgate.histograms.hdr import counts_of, decode, new_histogram
from loadgate.result.merge import ShardResult, add_histograms, merge_results
from loadgate.result.model import (
    Harness,
    HarnessLimits,
    LagSummary,
    Requests,
    Result,
    ShardFigures,
    Timeseries,
    Upstream,
)

PROFILE: dict[str, Any] = {
    "load": {"concurrency": 6, "duration": "10s"},
    "gates": {"overhead_ms.p99": "< 20", "requests.error_rate": "<= 0.01"},
}


def _hist(values: list[int]) -> str:
    h = new_histogram()
    for v in values:
        h.record_value(v)
    return bytes(h.encode()).decode("ascii")


def _shard(
    i: int, n: int = 3, *, start: float = 100.0, values: list[int] | None = None, **kw: Any
) -> ShardResult:
    vals = values if values is not None else [1000 * (i + 1)] * 10
    r = Result(
        verdict="pass",
        exit_code=0,
        profile=PROFILE,
        histograms={"overhead_ms": _hist(vals), "stream.overhead_ms": _hist(vals)},
        requests=Requests(sent=10, ok=10 - i, failed=i, errors={"http_5xx": i} if i else {}),
        upstream=Upstream(calls=10, calls_hist={"1": 10}),
        harness=Harness(
            timestamps="kernel",
            loop_lag_ms=LagSummary(p50=0.1, p99=0.5 + i, max=2.0),
            cpu_percent=30.0 + i,
            limits=HarnessLimits(max_loop_lag_p99_ms=5.0, max_cpu_percent=90.0),
        ),
        timeseries=Timeseries(t_s=list(range(10)), rps=[1] * 10, errors=[0] * 10),
        shard=ShardFigures(
            index=i, count=n, start_at=start, measure_start=start, measure_end=start + 10
        ),
        **kw,
    )
    return ShardResult(f"shard-{i}.json", r)


def test_histograms_add_bucket_for_bucket_and_counts_add_up() -> None:
    shards = [_shard(i) for i in range(3)]
    m = merge_results(shards)
    got = counts_of(decode(m.histograms["overhead_ms"]))
    want = sum(
        counts_of(decode(s.result.histograms["overhead_ms"])).astype(np.int64) for s in shards
    )
    assert np.array_equal(got, want)
    assert m.metrics["overhead_ms"].count == 30
    assert m.by_mode["stream"].metrics["overhead_ms"].count == 30
    assert (m.requests.sent, m.requests.ok, m.requests.failed) == (30, 27, 3)
    assert m.requests.errors == {"http_5xx": 3} and m.requests.error_rate == 0.1
    assert m.requests.throughput_rps == 2.7  # over the 10 s union window
    assert m.upstream.calls_hist == {"1": 30} and m.upstream.calls_per_request == 1.0
    assert m.timeseries.rps == [3] * 10 and m.timeseries.overhead_p99_ms == [None] * 10
    # The worst shard's self-monitoring on top; every shard's kept.
    assert m.harness.loop_lag_ms is not None and m.harness.loop_lag_ms.p99 == 2.5
    assert m.harness.cpu_percent == 32.0
    assert m.shards is not None and [e.harness.cpu_percent for e in m.shards] == [30.0, 31.0, 32.0]


def test_gates_are_evaluated_once_on_the_merged_figures() -> None:
    # Each shard alone passes a 1 % error gate or not; the merge is judged on 10 %.
    m = merge_results([_shard(i) for i in range(3)])
    gates = {g.name: g for g in m.gates}
    assert gates["requests.error_rate"].value == 0.1 and not gates["requests.error_rate"].passed
    assert gates["overhead_ms.p99"].value == m.metrics["overhead_ms"].p99
    assert m.verdict == "fail" and m.exit_code == 1


def test_an_invalid_shard_makes_the_merge_invalid_by_name() -> None:
    shards = [_shard(i) for i in range(3)]
    shards[2].result.verdict = "invalid"
    shards[2].result.reasons = ["stub timer lateness p99 40 ms > 5 ms: the stub was short of CPU"]
    m = merge_results(shards)
    assert m.verdict == "invalid" and m.exit_code == 3
    assert m.reasons[0] == (
        "shard 2/3 (shard-2.json) was invalid: stub timer lateness p99 40 ms > 5 ms: "
        "the stub was short of CPU"
    )
    assert all(not g.decided for g in m.gates)


def test_missing_shards_and_poor_overlap_are_invalid() -> None:
    m = merge_results([_shard(0), _shard(2)])
    assert m.verdict == "invalid" and "shard 1/3 missing" in m.reasons[0]
    assert "shards 1/3, 2/3 missing" in merge_results([_shard(0)]).reasons[0]
    late = merge_results([_shard(0), _shard(1), _shard(2, start=102.0)])
    assert late.verdict == "invalid"
    assert "overlap 8.000 s of their 12.000 s union" in late.reasons[0]
    assert "shard 2/3 (shard-2.json) started last" in late.reasons[0]
    ok = merge_results([_shard(0), _shard(1), _shard(2, start=102.0)], min_overlap=0.5)
    assert ok.window == (100.0, 112.0)


def test_what_is_not_one_run_is_refused() -> None:
    with pytest.raises(UsageError, match="did not run together"):
        merge_results([_shard(0), _shard(1, start=200.0), _shard(2)])
    with pytest.raises(UsageError, match="shard 1 given twice"):
        merge_results([_shard(0), _shard(1), _shard(1)])
    other = _shard(1)
    other.result.profile = {**PROFILE, "load": {"concurrency": 7, "duration": "10s"}}
    with pytest.raises(UsageError, match=r"shard-1.json: profile differs .* at load.concurrency"):
        merge_results([_shard(0), other, _shard(2)])
    # Where a shard's stub listens is not what it measures: shards on one machine differ.
    placed = [_shard(i) for i in range(3)]
    for i, s in enumerate(placed):
        s.result.profile = {**PROFILE, "stub": {"port": 18000 + i, "ttft_ms": 5}}
    assert merge_results(placed).profile["stub"] == {"port": 18000, "ttft_ms": 5}
    placed[2].result.profile = {**PROFILE, "stub": {"port": 18002, "ttft_ms": 6}}
    with pytest.raises(UsageError, match=r"shard-2.json: profile differs .* at stub.ttft_ms"):
        merge_results(placed)
    plain = ShardResult("plain.json", Result(profile=PROFILE))
    with pytest.raises(UsageError, match=r"plain\.json: not a shard's result"):
        merge_results([_shard(0), plain])
    with pytest.raises(UsageError, match="different shard counts"):
        merge_results([_shard(0, 2), _shard(1, 3)])


def test_histograms_of_another_layout_are_refused() -> None:
    odd = HdrHistogram(1, 60_000_000, 2)
    odd.record_value(5)
    b64 = bytes(odd.encode()).decode("ascii")
    with pytest.raises(UsageError, match=r"b\.json: histogram overhead_ms has layout"):
        add_histograms([("a.json", _hist([5])), ("b.json", b64)], "overhead_ms")


def test_checks_and_probes_sections_add_up_rather_than_vanish() -> None:
    """Issues 16/18's sections survive the merge: summed, not silently "not configured"."""
    from loadgate.result.model import (
        Goodput,
        ModeFigures,
        Probes,
        RealtimeFigures,
        SessionFigures,
        TenantFigures,
        TurnFigures,
        UpstreamAssertions,
    )

    def extra(i: int) -> dict[str, Any]:
        return {
            "goodput": Goodput(
                slo={"e2e_ms": 50.0},
                requests=10,
                good=8 - i,
                failed=i,
                missed={"e2e_ms": 2},
                not_applicable={"e2e_ms": 0},
            ),
            "probes": Probes(
                tenants=TenantFigures(tried=4, leaked=i, by_status={"403": 4 - i, "200": i})
            ),
            "sessions": SessionFigures(
                turns=2,
                started=3,
                completed=3 - i,
                aborted=i,
                by_turn=[TurnFigures(turn=0, requests=3), TurnFigures(turn=1, requests=2)],
            ),
            "by_mode": {
                "stream": ModeFigures(
                    realtime=RealtimeFigures(
                        streams=5,
                        buffered=i,
                        derivation_bound_ms=LagSummary(p50=0.1, p99=0.2 + i, max=1.0),
                    )
                )
            },
        }

    shards = [_shard(i, **extra(i)) for i in range(3)]
    for i, s in enumerate(shards):
        s.result.upstream.assertions = UpstreamAssertions(
            checked=10, failed=i, by_rule={"require_system": i}
        )
    m = merge_results(shards)
    g = m.goodput
    assert g is not None
    assert (g.requests, g.good, g.failed) == (30, 21, 3)
    assert g.ratio == 0.7 and g.rps == 2.1  # over the 10 s union window
    assert g.missed == {"e2e_ms": 6} and g.missed_ratio == {"e2e_ms": 0.2}
    a = m.upstream.assertions
    assert a is not None and (a.checked, a.failed, a.by_rule) == (30, 3, {"require_system": 3})
    t = m.probes.tenants
    assert t is not None and (t.tried, t.leaked) == (12, 3)
    assert t.by_status == {"200": 3, "403": 9}
    rt = m.by_mode["stream"].realtime
    assert rt is not None and (rt.streams, rt.buffered) == (15, 3)
    assert rt.derivation_bound_ms is not None and rt.derivation_bound_ms.p99 == 2.2
    ss = m.sessions
    assert ss is not None and (ss.started, ss.completed, ss.aborted) == (9, 6, 3)
    assert [(b.turn, b.requests) for b in ss.by_turn] == [(0, 9), (1, 6)]
    # Not configured in any shard: still None after the merge.
    plain = merge_results([_shard(i) for i in range(3)])
    assert plain.goodput is None and plain.sessions is None and plain.probes.tenants is None
    assert plain.upstream.assertions is None and plain.by_mode["stream"].realtime is None


def test_a_gate_on_a_shard_measured_leak_is_judged_on_the_merge() -> None:
    from loadgate.result.model import Probes, TenantFigures

    profile = {**PROFILE, "gates": {"probes.tenants.leaked": "== 0"}}
    shards = [_shard(i, 2) for i in range(2)]
    for i, s in enumerate(shards):
        s.result.profile = profile
        s.result.probes = Probes(tenants=TenantFigures(tried=4, leaked=i))
    m = merge_results(shards)
    (gate,) = m.gates
    assert gate.value == 1.0 and not gate.passed and m.verdict == "fail"


def test_timestamp_sources_are_each_sides_worst_across_shards() -> None:
    shards = [_shard(i) for i in range(3)]
    for s in shards:
        s.result.harness.timestamp_sources = {"client": "kernel", "stub": "kernel"}
    assert merge_results(shards).harness.timestamp_sources == {"client": "kernel", "stub": "kernel"}
    shards[1].result.harness.timestamp_sources = {"client": "user", "stub": "kernel"}
    shards[2].result.harness.timestamp_sources = {"client": "kernel", "stub": None}
    assert merge_results(shards).harness.timestamp_sources == {"client": "user", "stub": None}
    for s in shards:
        s.result.harness.timestamp_sources = None  # results from before the field
    assert merge_results(shards).harness.timestamp_sources is None
