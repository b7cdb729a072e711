"""Sessions: the turns' requests, and the engine driving them against a fake stub."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from loadgate.client.observation import RequestSpec
from loadgate.client.transport import MockTransport, ScriptedResponse, SentRequest
from loadgate.load.bodies import build_request
from loadgate.load.generator import Engine, WorkerPlan
from loadgate.load.sessions import Session, SessionShape, conversation_words
from loadgate.profile import parse_profile
from stub_upstream import content
from stub_upstream.history import history_ok
from stub_upstream.ledger_format import FAULT_CODES
from tests.support.fake_ledger import MS, FakeLedger
from tests.support.streams import stream_events

N = 4
pytestmark = pytest.mark.timeout(30)


def first_spec(corr: int = (9 << 32) | 100) -> RequestSpec:
    return RequestSpec(
        corr=corr, endpoint="chat", stream=True, model="m", prompt_tokens=20,
        max_tokens=N, expect_tokens=N, auth=("authorization", "Bearer k1"),
    )  # fmt: skip


def test_each_turn_resends_the_conversation_so_far() -> None:
    s = Session(first_spec(), SessionShape(turns=3, first_words=20, user_words=5,
                                           affinity_header="x-session-id"))  # fmt: skip
    specs = []
    while not s.done:
        specs.append(s.spec())
        s.advance()
    first = specs[0].corr
    assert [sp.corr for sp in specs] == [first, first + 1, first + 2]
    assert all(sp.auth == ("authorization", "Bearer k1") for sp in specs)  # one key
    assert all(("x-session-id", f"{first:016x}") in sp.extra_headers for sp in specs)
    last = json.loads(build_request(specs[2]).body)["messages"]
    assert [m["role"] for m in last] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert last[2]["content"] == content.expected_text(first, N)
    assert last[4]["content"] == content.expected_text(first + 1, N)
    assert last[-1]["content"].endswith(content.marker(first + 2))
    # What the stub checks: the history is exactly what it answered.
    pairs = [(m["role"], m["content"]) for m in last]
    assert history_ok(pairs, first + 2, N) is True
    # Words grow by one answer and one user message a turn (markers not counted).
    for k, sp in enumerate(specs):
        assert sp.prompt_tokens == conversation_words(20, 5, N, k) == 20 + k * (N + 5)
        body = json.loads(build_request(sp).body)["messages"]
        text = " ".join(m["content"] for m in body)
        plain = [w for w in text.split() if not w.startswith(("[loadgate:", "[session:"))]
        assert len(plain) == sp.prompt_tokens


class SessionStub(FakeLedger):
    """Answers every chat stream with N tokens and keeps the ledger; applies the real
    history check to what it receives. ``cut`` drops the last word of the first resent
    answer on the way in, as a gateway mangling history would."""

    def __init__(self, cut: bool = False) -> None:
        super().__init__()
        self.cut = cut
        self.transport = MockTransport(self.answer, clock=time.monotonic_ns)

    def answer(self, req: SentRequest) -> ScriptedResponse:
        body = json.loads(req.body)
        msgs = [(m["role"], m["content"]) for m in body["messages"]]
        if self.cut:
            for i, (role, text) in enumerate(msgs):
                if role == "assistant":
                    msgs[i] = (role, text.rsplit(" ", 1)[0])
                    break
        corr = int(dict(req.headers)["x-loadgate-id"], 16)
        ok = history_ok(msgs, corr, min(N, body["max_tokens"]))
        self.note(corr, req.t_send, N, FAULT_CODES["history"] if ok is False else 0)
        events = stream_events("chat", corr, N)
        return ScriptedResponse(
            status=200, head_after_ns=MS, pieces=[(MS + i * MS, e) for i, e in enumerate(events)]
        )


def session_profile(**load: Any) -> Any:
    base = {
        "concurrency": 2, "duration": "20s", "warmup": "0s", "stream_ratio": 1.0,
        "max_tokens": N, "max_requests": 12, "prompt_tokens": 20,
        "sessions": {"turns": 3, "user_tokens": 5},
    }  # fmt: skip
    return parse_profile({"load": {**base, **load}, "stub": {"output_tokens": N}})


async def run(stub: SessionStub, profile: Any) -> Any:
    plan = WorkerPlan(profile, "http://gw.invalid", "http://stub.invalid", time.monotonic_ns(), 7)
    return await Engine(plan, transport=stub.transport, ledger=stub).run()


async def test_closed_loop_sessions_pass_integrity_turn_by_turn() -> None:
    stub = SessionStub()
    out = await run(stub, session_profile())
    assert (out.sent, out.ok, out.checked, out.violations) == (12, 12, 12, {})
    # 2 users × 2 sessions × 3 turns: every session complete
    assert (out.sessions_started, out.sessions_completed, out.sessions_aborted) == (4, 4, 0)
    assert sorted(out.by_turn) == [0, 1, 2]
    assert [out.by_turn[t]["requests"] for t in (0, 1, 2)] == [4, 4, 4]
    assert all(out.by_turn[t]["failed"] == 0 for t in (0, 1, 2))
    assert all(out.by_turn[t]["overhead_ms"] for t in (0, 1, 2))  # encoded histograms
    assert all(fault == 0 for _c, _t, _n, fault in stub.records)


async def test_a_mangled_history_is_a_history_mismatch_on_every_later_turn() -> None:
    stub = SessionStub(cut=True)
    out = await run(stub, session_profile())
    # Turn 0 resends nothing; turns 1 and 2 of each of the 4 sessions resend a cut answer.
    assert out.violations == {"history_mismatch": 8}
    assert out.checked == 12 and out.ok == 12


async def test_open_loop_sessions_arrive_on_schedule() -> None:
    stub = SessionStub()
    profile = session_profile(concurrency=None, rate=50.0, max_requests=6, duration="1s")
    t0 = time.monotonic_ns()
    plan = WorkerPlan(profile, "http://gw.invalid", "http://stub.invalid", t0, 7)
    seen: list[Any] = []
    engine = Engine(
        plan, transport=stub.transport, ledger=stub, on_observation=lambda o, m: seen.append(o)
    )
    out = await engine.run()
    # max_requests 6 = 2 sessions of 3 turns; sessions arrive 20 ms apart (rate 50/s).
    assert (out.sent, out.violations, out.sessions_completed) == (6, {}, 2)
    # The schedule is of arrivals: 2 offered, 2 first turns sent (achieved ratio 1).
    assert (out.offered, out.sessions_started) == (2, 2)
    firsts = sorted(o.t_intended - t0 for o in seen if (o.corr & 0xFFFFFFFF) % 3 == 1)
    assert firsts == [0, 20 * MS]
    # A later turn is due when the answer before it ended (think time 0).
    by_corr = {o.corr: o for o in seen}
    for o in seen:
        if (o.corr & 0xFFFFFFFF) % 3 != 1:
            assert o.t_intended == by_corr[o.corr - 1].t_last_byte
