"""The load generator against a fake transport and a fake ledger: the whole join, no sockets."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from loadgate.client.transport import MockTransport, ScriptedResponse, SentRequest
from loadgate.load.generator import Engine, WorkerPlan
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


async def test_every_request_is_joined_and_its_overhead_is_exact() -> None:
    profile = parse_profile(
        {
            "load": {
                "concurrency": 2,
                "duration": "10s",
                "warmup": "0s",
                "stream_ratio": 1.0,
                "max_tokens": 4,
                "max_requests": 6,
            },
            "stub": {"output_tokens": 4},
        }
    )
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
