"""Tenant maps, the cross-tenant share of the mix, and the tally: arithmetic, no sockets."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from loadgate.client.transport import ScriptedResponse, SentRequest
from loadgate.errors import UsageError
from loadgate.load.generator import Engine, WorkerPlan
from loadgate.load.keys import KeyPool
from loadgate.load.mix import RequestMix
from loadgate.probes.tenants import TenantCounts, TenantMap, TenantMix, keys_file_lines
from loadgate.profile import AuthSpec, parse_profile
from tests.unit.load.test_generator import FakeStub

pytestmark = pytest.mark.timeout(30)


def test_generated_tenants_are_rank_modulo_with_one_agent_each() -> None:
    tmap = TenantMap.generated(["a", "b", "c", "d", "e"], 2)
    assert tmap.tenant_of == {"a": "t0", "b": "t1", "c": "t0", "d": "t1", "e": "t0"}
    assert tmap.agents == {"t0": ("agent-t0",), "t1": ("agent-t1",)}
    assert keys_file_lines(tmap, ("a", "b")) == "a t0 agent-t0\nb t1 agent-t1\n"


def test_file_tenants_union_agents_and_reject_half_scoped_files() -> None:
    text = "# keys\nk1 acme a1\nk2 acme a2\nk3 globex g1\n"
    tmap = TenantMap.from_lines(text, "keys.txt")
    assert tmap is not None
    assert tmap.agents == {"acme": ("a1", "a2"), "globex": ("g1",)}
    assert tmap.tenant_of["k2"] == "acme"
    assert TenantMap.from_lines("k1\nk2\n", "keys.txt") is None  # no columns: generate
    with pytest.raises(UsageError, match=r"keys.txt: .*k2.*no tenant"):
        TenantMap.from_lines("k1 acme a1\nk2\n", "keys.txt")
    with pytest.raises(UsageError, match="two tenants"):
        TenantMap.from_lines("k1 acme a1\nk2 acme a2\n", "keys.txt")


def test_the_share_of_cross_tenant_requests_and_their_agents() -> None:
    pool = KeyPool.from_spec(AuthSpec(keys=50), Path("."))
    tmap = TenantMap.generated(pool.keys, 4)
    mix = TenantMix(tmap, header="X-Agent-Id", share=0.02, auth_header="authorization")
    rng = random.Random(11)
    n, cross = 20_000, 0
    for _ in range(n):
        auth = pool.draw(rng)
        assert auth is not None
        tenant = tmap.tenant_of[auth[1].removeprefix("Bearer ")]
        header, crossed = mix.headers(rng, auth)
        assert header is not None and header[0] == "x-agent-id"
        cross += crossed
        # a normal request names its own tenant's agent; a crossing one another's
        assert (header[1] == f"agent-{tenant}") is (not crossed)
    # 2 % of 20 000 = 400, binomial sd ≈ 19.8: within 4 sd (this seed: deterministic)
    assert abs(cross - 400) < 80


def test_a_key_the_map_does_not_know_names_no_agent() -> None:
    mix = TenantMix(
        TenantMap.generated(["k0", "k1"], 2), header="x", share=1.0, auth_header="x-api-key"
    )
    assert mix.headers(random.Random(1), ("x-api-key", "invalid-k0")) == (None, False)
    assert mix.own_agent(("x-api-key", "k1")) == ("x", "agent-t1")


def test_the_mix_marks_cross_tenant_requests() -> None:
    pool = KeyPool.from_spec(AuthSpec(keys=8), Path("."))
    tenants = TenantMix(
        TenantMap.generated(pool.keys, 2),
        header="x-agent-id",
        share=0.5,
        auth_header="authorization",
    )
    mix = RequestMix(
        endpoints={"chat": 1.0}, stream_ratio=0.0, model="m", anthropic_model="a",
        prompt_tokens=8, max_tokens=4, stub_output_tokens=4, nonce=1, seed=2,
        draw_key=pool.draw, extra_headers=(("x-route", "r"),), tenants=tenants,
    )  # fmt: skip
    specs = [mix.next() for _ in range(200)]
    assert 60 < sum(s.cross_tenant for s in specs) < 140
    assert all(s.extra_headers[0] == ("x-route", "r") for s in specs)
    assert all(s.extra_headers[1][0] == "x-agent-id" for s in specs)


def test_the_tally_counts_leaks_and_keeps_few_examples() -> None:
    t = TenantCounts()
    for status in (403, 401, 404, 200, 0, 500, 200, 200, 200, 200, 200):
        t.note("00ab", status, None if status else "timeout")
    assert (t.tried, t.leaked) == (11, 7)  # 200 ×6 and 500: not refused; 0: no answer
    assert t.by_status == {403: 1, 401: 1, 404: 1, 200: 6, 0: 1, 500: 1}
    assert len(t.examples) == 5 and t.examples[0] == "00ab status 200"


class TenantGateway(FakeStub):
    """Refuses (403) a request naming another tenant's agent, unless ``leak``."""

    def __init__(self, leak: bool) -> None:
        super().__init__()
        self.leak = leak
        self.cross = 0

    def answer(self, req: SentRequest) -> ScriptedResponse:
        h = dict(req.headers)
        rank = int(h["authorization"].removeprefix("Bearer sk-lg-")[:6])
        if h["x-agent-id"] != f"agent-t{rank % 4}":
            self.cross += 1
            if not self.leak:
                return ScriptedResponse(
                    status=403, head_after_ns=1_000_000, pieces=[(1_000_000, b"{}")]
                )
        return super().answer(req)


@pytest.mark.parametrize("leak", [False, True])
async def test_cross_tenant_requests_are_not_load_errors_nor_latencies(leak: bool) -> None:
    profile = parse_profile(
        {
            "load": {"concurrency": 4, "duration": "10s", "warmup": "0s", "stream_ratio": 1.0,
                     "max_tokens": 4, "max_requests": 300},
            "stub": {"output_tokens": 4},
            "auth": {"keys": 40},
            "probes": {"tenants": {"share": 0.1}},
        }
    )  # fmt: skip
    gw = TenantGateway(leak)
    plan = WorkerPlan(profile, "http://gw.invalid", "http://stub.invalid", time.monotonic_ns(), 7)
    out = await Engine(plan, transport=gw.transport, ledger=gw).run()
    assert gw.cross > 10
    assert out.tenants.tried == gw.cross
    assert out.tenants.leaked == (gw.cross if leak else 0)
    assert out.sent == 300 - gw.cross and out.failed == 0 and out.errors == {}
    overhead = out.recorder.summary("overhead_ms")
    assert overhead is not None and overhead["count"] == out.sent
    assert out.upstream.unseen == 0
