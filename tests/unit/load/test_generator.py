"""The load generator against a fake transport and a fake ledger: the whole join, no sockets."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from loadgate.client.transport import MockTransport, ScriptedResponse, SentRequest
from loadgate.histograms.hdr import HIGHEST_US, new_histogram
from loadgate.load.generator import CONTROL_SEQ_BASE, Engine, WorkerPlan, _record_us
from loadgate.profile import parse_profile
from stub_upstream.ledger_format import LEDGER_DTYPE
from tests.support.streams import stream_events

MS = 1_000_000
pytestmark = pytest.mark.timeout(30)


class FakeStub:
    """Answers every request 10 ms after it was sent, with a 4-token stream 2 ms apart,
    and keeps the ledger a stub would: received at +1 ms, first write at +3, last at +9."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, int]] = []  # (corr, t_send)
        self.transport = MockTransport(self.answer, clock=time.monotonic_ns)
        self.lost = 0
        self._pulled = 0

    def answer(self, req: SentRequest) -> ScriptedResponse:
        corr = int(dict(req.headers)["x-loadgate-id"], 16)
        self.sent.append((corr, req.t_send))
        events = stream_events("chat", corr, 4)
        return ScriptedResponse(
            status=200,
            head_after_ns=4 * MS,
            pieces=[(4 * MS + i * 2 * MS, e) for i, e in enumerate(events)],
        )

    async def info(self) -> dict[str, Any]:
        return {"stamps": "kernel"}

    async def pull(self) -> np.ndarray[Any, Any]:
        new = self.sent[self._pulled :]
        self._pulled = len(self.sent)
        recs = np.zeros(len(new), dtype=LEDGER_DTYPE)
        for i, (corr, t) in enumerate(new):
            recs[i]["corr"] = corr
            recs[i]["t_recv"] = t + 1 * MS
            recs[i]["t_first_write"] = recs[i]["t_sched_first"] = t + 3 * MS
            recs[i]["t_last_write"] = t + 9 * MS
            recs[i]["status"], recs[i]["stream"], recs[i]["tokens"] = 200, 1, 4
        return recs


def _six_streams(**extra: Any) -> Any:
    """2 workers, 6 four-token streams against the fake stub (``extra``: more sections)."""
    load = {"concurrency": 2, "duration": "10s", "warmup": "0s", "stream_ratio": 1.0}
    load |= {"max_tokens": 4, "max_requests": 6}
    return parse_profile({"load": load, "stub": {"output_tokens": 4}, **extra})


async def test_every_request_is_joined_and_its_overhead_is_exact() -> None:
    profile = _six_streams()
    stub = FakeStub()
    plan = WorkerPlan(profile, "http://gw.invalid", "http://stub.invalid", time.monotonic_ns(), 7)
    engine = Engine(plan, transport=stub.transport, ledger=stub)
    out = await engine.run()
    assert (out.sent, out.ok, out.failed, out.checked) == (6, 6, 0, 6)
    assert out.violations == {} and out.upstream.calls == 6 and out.upstream.unseen == 0
    # 8 events (role, 4 tokens, finish, usage, [DONE]): the last lands 4 + 7·2 = 18 ms
    # after the send; the stub's service was 9 − 1 = 8 ms: overhead 10 ms, every time.
    overhead = out.recorder.summary("overhead_ms")
    assert overhead is not None and overhead["count"] == 6
    assert overhead["min"] == pytest.approx(10.0, abs=0.01)
    assert overhead["max"] == pytest.approx(10.0, abs=0.01)
    ingress, egress = out.recorder.summary("ingress_ms"), out.recorder.summary("egress_ms")
    assert ingress is not None and ingress["p50"] == pytest.approx(1.0, abs=0.01)
    assert egress is not None and egress["p50"] == pytest.approx(9.0, abs=0.01)
    # Inter-token gaps are the transport's arrival gaps.
    itl = out.recorder.summary("itl_ms")
    assert itl is not None and itl["count"] == 6 * 3
    assert itl["min"] == pytest.approx(2.0, abs=0.01) and itl["max"] == pytest.approx(2.0, abs=0.01)
    assert stub.transport.closed is False  # a given transport is the caller's to close


class CoalescingStub(FakeStub):
    """As FakeStub, but every other request's first two tokens arrive in one read."""

    def answer(self, req: SentRequest) -> ScriptedResponse:
        corr = int(dict(req.headers)["x-loadgate-id"], 16)
        self.sent.append((corr, req.t_send))
        events = stream_events("chat", corr, 4)  # role, 4 tokens, finish, usage, [DONE]
        if len(self.sent) % 2:
            events = [events[0], events[1] + events[2], *events[3:]]
        return ScriptedResponse(
            status=200,
            head_after_ns=4 * MS,
            pieces=[(4 * MS + i * 2 * MS, e) for i, e in enumerate(events)],
        )


async def test_first_tokens_read_with_the_next_are_counted() -> None:
    profile = parse_profile(
        {
            "load": {"concurrency": 2, "duration": "10s", "warmup": "0s", "stream_ratio": 1.0,
                     "max_tokens": 4, "max_requests": 6},
            "stub": {"output_tokens": 4},
        }
    )  # fmt: skip
    stub = CoalescingStub()
    plan = WorkerPlan(profile, "http://gw.invalid", "http://stub.invalid", time.monotonic_ns(), 7)
    out = await Engine(plan, transport=stub.transport, ledger=stub).run()
    assert out.ok == 6 and out.violations == {}
    # Three of six streams had tokens 1 and 2 in one read: one shared stamp each,
    # and it is the first token's.
    assert (out.first_tokens_timed, out.first_token_same_read) == (6, 3)
    assert (out.deltas_timed, out.deltas_same_read) == (24, 3)
    itl = out.recorder.summary("itl_ms")
    assert itl is not None and itl["min"] == 0.0 and itl["count"] == 18


async def test_the_control_group_is_counted_apart_with_the_stubs_key() -> None:
    # 10 workers, 20 requests, control_ratio 0.2: 2 extra workers send 4 requests
    # straight to the stub, with the stub's key, recorded in their own histograms.
    profile = parse_profile(
        {
            "load": {
                "concurrency": 10,
                "duration": "10s",
                "warmup": "0s",
                "stream_ratio": 1.0,
                "max_tokens": 4,
                "max_requests": 20,
            },
            "stub": {"output_tokens": 4, "expected_keys": ["sk-upstream"]},
        }
    )
    stub = FakeStub()
    plan = WorkerPlan(
        profile, "http://gw.invalid", "http://stub.invalid", time.monotonic_ns(), 7,
        control_ratio=0.2,
    )  # fmt: skip
    out = await Engine(plan, transport=stub.transport, ledger=stub).run()
    assert (out.sent, out.ok, out.control_sent, out.control_failed) == (20, 20, 4, 0)
    assert len(stub.sent) == 24
    assert out.control is not None
    control = out.control.summary("overhead_ms")
    gateway = out.recorder.summary("overhead_ms")
    assert control is not None and control["count"] == 4
    assert gateway is not None and gateway["count"] == 20
    auths = [dict(r.headers).get("authorization") for r in stub.transport.sent]
    assert auths.count("Bearer sk-upstream") == 4
    # Busy time (the concurrency figure) is the gateway's 20 requests' 18 ms each only.
    assert out.busy_ns == 20 * 18 * MS


async def test_the_control_group_leaves_the_gateways_requests_unchanged() -> None:
    # Same seed with and without a control group: the gateway sees the same keys in
    # the same order, and no correlation id is used twice.
    def run_profile() -> Any:
        return parse_profile(
            {
                "load": {"concurrency": 1, "duration": "10s", "warmup": "0s", "max_requests": 8},
                "stub": {"output_tokens": 4},
                "auth": {"keys": 50},
            }
        )

    def keys(sent: list[SentRequest], control: bool) -> list[str | None]:
        return [
            dict(r.headers).get("authorization")
            for r in sent
            if (int(dict(r.headers)["x-loadgate-id"], 16) & CONTROL_SEQ_BASE != 0) == control
        ]

    seen = []
    for ratio in (0.0, 1.0):
        stub = FakeStub()
        plan = WorkerPlan(
            run_profile(), "http://gw.invalid", "http://stub.invalid", time.monotonic_ns(), 7,
            control_ratio=ratio,
        )  # fmt: skip
        await Engine(plan, transport=stub.transport, ledger=stub).run()
        corrs = [corr for corr, _ in stub.sent]
        assert len(corrs) == len(set(corrs))
        seen.append(keys(stub.transport.sent, control=False))
        assert len(keys(stub.transport.sent, control=True)) == (8 if ratio else 0)
    assert seen[0] == seen[1] and len(seen[0]) == 8


def test_bulk_send_lag_and_lateness_recording_equals_record_value() -> None:
    values = [0, -5, 1, 999, 1000, 123_456, 7, HIGHEST_US, HIGHEST_US * 2, 7]
    one, bulk = new_histogram(), new_histogram()
    for v in values:
        one.record_value(max(0, v))  # hdrh drops what is beyond its range
    _record_us(bulk, values)
    _record_us(bulk, [])
    assert bulk.get_total_count() == one.get_total_count() == len(values) - 1
    assert bulk.encode() == one.encode()


async def _slo_run(slo: dict[str, float]) -> Any:
    profile = _six_streams(slo=slo)
    stub = FakeStub()
    plan = WorkerPlan(profile, "http://gw.invalid", "http://stub.invalid", time.monotonic_ns(), 7)
    return await Engine(plan, transport=stub.transport, ledger=stub).run()


async def test_each_request_is_judged_against_the_slos_at_join_time() -> None:
    # Every request: overhead 10 ms, mean ITL 2 ms, TTFT and e2e under 20 ms.
    loose = {"ttft_ms": 10_000.0, "itl_ms": 10_000.0, "e2e_ms": 10_000.0}
    out = await _slo_run({**loose, "overhead_ms": 10_000.0})
    g = out.goodput
    assert (g.judged, g.good, g.failed, g.missed, g.not_applicable) == (6, 6, 0, {}, {})
    # Three of four met, the overhead bound (5 ms) missed by every request: none good.
    out = await _slo_run({**loose, "overhead_ms": 5.0})
    assert (out.goodput.judged, out.goodput.good, out.goodput.missed) == (6, 0, {"overhead_ms": 6})
    # The mean ITL (2 ms) against a 1 ms bound: missed; against 3 ms: met.
    assert (await _slo_run({"itl_ms": 1.0})).goodput.missed == {"itl_ms": 6}
    assert (await _slo_run({"itl_ms": 3.0})).goodput.good == 6


async def test_without_slo_nothing_is_judged() -> None:
    out = await _slo_run({})
    assert (out.goodput.judged, out.goodput.good) == (0, 0)
