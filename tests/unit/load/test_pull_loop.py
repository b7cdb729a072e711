"""The join while a peer stub does not answer: nothing is finalised that it may hold."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from loadgate.client.transport import MockTransport, ScriptedResponse, SentRequest
from loadgate.load import generator
from loadgate.load.generator import Engine, WorkerPlan
from loadgate.profile import parse_profile
from stub_upstream import content
from stub_upstream.ledger_format import LEDGER_DTYPE
from tests.support.fake_ledger import MS, FakeLedger

N = 4


class PeerDownLedger(FakeLedger):
    """Every request's record lives on a "peer" that fails its first ``down_pulls`` pulls.

    A failed peer pull is what ``StubLedgers`` does: no exception, one more entry in
    ``errors``, and no records from that peer this time.
    """

    def __init__(self, down_pulls: int) -> None:
        super().__init__()
        self.down_pulls = down_pulls
        self.errors: list[str] = []
        self.transport = MockTransport(self.answer, clock=time.monotonic_ns)

    def answer(self, req: SentRequest) -> ScriptedResponse:
        corr = int(dict(req.headers)["x-loadgate-id"], 16)
        self.note(corr, req.t_send, N)
        text = content.expected_text(corr, N)
        body = {"choices": [{"message": {"role": "assistant", "content": text}}]}
        return ScriptedResponse(
            status=200, head_after_ns=MS, pieces=[(MS, json.dumps(body).encode())]
        )

    async def pull(self) -> np.ndarray[Any, Any]:
        if len(self.errors) < self.down_pulls:
            self.errors.append("http://peer.invalid: connection refused")
            return np.zeros(0, dtype=LEDGER_DTYPE)
        return await super().pull()


def _profile() -> Any:
    load = {"rate": 20.0, "duration": "2s", "warmup": "0s", "stream_ratio": 0.0, "max_tokens": N}
    return parse_profile({"load": load, "stub": {"output_tokens": N}})


async def test_requests_are_not_finalised_while_a_peer_is_down(monkeypatch: Any) -> None:
    # Pulls every 10 ms over a 2 s run: the 5 failed ones are the loop's, mid-load,
    # however slow the machine (each used to finalise what was done before it).
    monkeypatch.setattr(generator, "PULL_INTERVAL_S", 0.01)
    t0 = time.monotonic_ns()
    ledger = PeerDownLedger(down_pulls=5)
    plan = WorkerPlan(_profile(), "http://gw.invalid", "http://stub.invalid", t0, 7)
    out = await Engine(plan, transport=ledger.transport, ledger=ledger).run()
    assert len(ledger.errors) == 5
    assert out.sent >= 30 and out.failed == 0
    assert (out.upstream.calls, out.upstream.unseen) == (out.sent, 0)


async def test_a_peer_down_for_good_is_waited_for_only_so_long(monkeypatch: Any) -> None:
    monkeypatch.setattr(generator, "PULL_INTERVAL_S", 0.01)
    monkeypatch.setattr(generator, "PEER_WAIT_NS", 600_000_000)
    monkeypatch.setattr(generator, "FINAL_PULL_PAUSE_S", 0.01)
    t0 = time.monotonic_ns()
    ledger = PeerDownLedger(down_pulls=10**9)  # never up
    plan = WorkerPlan(_profile(), "http://gw.invalid", "http://stub.invalid", t0, 7)
    out = await Engine(plan, transport=ledger.transport, ledger=ledger).run()
    # Past the wait the join goes on: the peer's requests are unseen, and say so.
    assert out.upstream.unseen == out.sent > 0
    assert len(ledger.errors) >= 3 + generator.FINAL_PULL_TRIES - 1
