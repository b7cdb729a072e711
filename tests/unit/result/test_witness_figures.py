"""``probes.witness`` in the result: built from the load's counts, gated, or not configured."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from loadgate.histograms.hdr import bulk_record, new_histogram
from loadgate.histograms.recorder import Recorder
from loadgate.load.outcome import EngineOutcome
from loadgate.probes.witness import WitnessCounts
from loadgate.profile import parse_profile
from loadgate.result.build import GatewayFacts, RunFacts, build_result
from loadgate.result.model import Environment, Result

GATES = {"probes.witness.latency_ms.p99": "< 500", "probes.witness.missing": "== 0"}


def _hist(values_us: list[int]) -> bytes:
    h = new_histogram()
    bulk_record(h, np.array(values_us, dtype=np.int64))
    return bytes(h.encode())


def _result(witness: dict[str, object] | None, counts: WitnessCounts | None) -> Result:
    data: dict[str, object] = {"gates": GATES, "gateway": {"reference": {"trace_db": True}}}
    if witness is not None:
        data["probes"] = {"witness": witness}
    profile = parse_profile(data)
    out = EngineOutcome(Recorder(0), sent=100, ok=100, witness=counts)
    facts = RunFacts(
        started_at=datetime.now(UTC),
        wall_s=3.0,
        gateway=GatewayFacts(kind="reference"),
        environment=Environment(),
    )
    return build_result(profile, out, facts)


def test_the_witness_figures_and_their_gates() -> None:
    counts = WitnessCounts(
        sampled=5,
        found=4,
        missing=1,
        polls=20,
        span_ns=2_000_000_000,
        max_in_flight=3,
        latency_us=_hist([20_000, 30_000, 40_000, 900_000]),
        error_us=_hist([10_000] * 4),
        upper_us=_hist([30_000, 40_000, 50_000, 910_000]),
        rtt_us=_hist([500] * 20),
    )
    r = _result({"kind": "sql", "dsn": "auto", "sample": 0.05}, counts)
    w = r.probes.witness
    assert w is not None and w.configured
    assert (w.kind, w.sample, w.interval_ms, w.timeout_ms) == ("sql", 0.05, 20.0, 5000.0)
    assert (w.sampled, w.found, w.missing, w.polls, w.polls_per_s) == (5, 4, 1, 20, 10.0)
    assert w.latency_ms is not None and w.latency_ms.count == 4
    assert 899 < w.latency_ms.p99 < 901  # HdrHistogram's 3 significant digits
    gates = {g.name: g for g in r.gates}
    assert gates["probes.witness.latency_ms.p99"].passed is False
    assert gates["probes.witness.missing"].value == 1 and not gates["probes.witness.missing"].passed
    assert r.verdict == "fail"


def test_not_configured_is_null_and_its_gates_have_no_data() -> None:
    r = _result(None, None)
    assert r.probes.witness is None
    assert Result.model_validate_json(r.model_dump_json(by_alias=True)).probes.witness is None
    gates = {g.name: g for g in r.gates}
    assert all(not g.passed and g.reason == "no data" for g in gates.values())


def test_a_file_from_before_the_witness_loads_as_not_configured() -> None:
    assert Result.model_validate({"schema": "loadgate.result/1"}).probes.witness is None
