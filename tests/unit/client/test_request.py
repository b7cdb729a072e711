"""One request end to end through the transport seam, on a fake clock: no sockets."""

from __future__ import annotations

import pytest

from loadgate.client.observation import RequestSpec
from loadgate.client.request import perform
from loadgate.client.transport import MockTransport, ResetError, ScriptedResponse, SentRequest
from stub_upstream import content
from tests.support.streams import stream_events

CID = (0x7AB1 << 32) | 5
MS = 1_000_000
pytestmark = pytest.mark.timeout(10)


def _spec(stream: bool) -> RequestSpec:
    return RequestSpec(
        corr=CID,
        endpoint="chat",
        stream=stream,
        model="gpt-4o-mini",
        prompt_tokens=8,
        max_tokens=4,
        expect_tokens=4,
        auth=("authorization", "Bearer sk-lg-1"),
    )


def _sse(cid: int, n: int, gap_ms: int) -> ScriptedResponse:
    events = stream_events("chat", cid, n)
    return ScriptedResponse(
        status=200,
        headers={"content-type": "text/event-stream"},
        head_after_ns=10 * MS,
        pieces=[(10 * MS + i * gap_ms * MS, e) for i, e in enumerate(events)],
    )


async def test_a_stream_is_timed_by_its_arrivals_and_checked() -> None:
    sent: list[SentRequest] = []

    def handler(req: SentRequest) -> ScriptedResponse:
        sent.append(req)
        return _sse(CID, 4, gap_ms=5)

    t = MockTransport(handler)
    obs = await perform(t, _spec(stream=True), t_intended=t.now_ns, timeout_s=5)
    assert obs.error is None and obs.violation is None
    assert obs.status == 200 and obs.tokens == 4
    t0 = t.now_ns
    assert obs.t_send == t0 and obs.t_first_byte == t0 + 10 * MS
    # Event 0 is the role chunk (empty content): token k arrives with event k + 1.
    assert obs.token_times == [t0 + 10 * MS + k * 5 * MS for k in range(1, 5)]
    assert obs.t_first_token == obs.token_times[0]
    # The correlation id travels in the body and in a header.
    (req,) = sent
    assert ("x-loadgate-id", content.format_corr_id(CID)) in req.headers
    assert content.marker(CID).encode() in req.body


async def test_another_requests_answer_is_cross_talk() -> None:
    t = MockTransport(lambda req: _sse(CID + 1, 4, gap_ms=1))
    obs = await perform(t, _spec(stream=True), t_intended=t.now_ns, timeout_s=5)
    assert obs.error is None and obs.violation == "cross_talk"


async def test_a_stream_cut_mid_way_is_a_reset_with_its_partial_timing() -> None:
    def handler(req: SentRequest) -> ScriptedResponse:
        script = _sse(CID, 4, gap_ms=2)
        script.pieces = script.pieces[:3]
        script.error = ResetError
        return script

    t = MockTransport(handler)
    obs = await perform(t, _spec(stream=True), t_intended=t.now_ns, timeout_s=5)
    assert obs.error == "reset"
    assert obs.t_first_byte == t.now_ns + 10 * MS and obs.bytes_in > 0


async def test_status_classes() -> None:
    for status, cls in ((429, "http_429"), (404, "http_4xx"), (503, "http_5xx")):
        answer = ScriptedResponse(status=status, pieces=[(1, b"{}")])

        def handler(req: SentRequest, a: ScriptedResponse = answer) -> ScriptedResponse:
            return a

        t = MockTransport(handler)
        obs = await perform(t, _spec(stream=False), t_intended=t.now_ns, timeout_s=5)
        assert (obs.error, obs.status) == (cls, status)
