"""The reference gateway end to end: a real subprocess between the test and an in-test upstream.

Ordering, not timing: the upstream holds a stream open on an event the client sets
only after it has read the first event through the gateway, so a buffering gateway
would deadlock (and time out), never pass.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from loadgate.errors import DepDownError
from loadgate.gateway.lifecycle import Gateway, start_gateway
from loadgate.gateway.preflight import preflight
from loadgate.gateway.processes import free_port
from loadgate.gateway.scrape import Scraper, Selector, parse_exposition
from loadgate.profile import GatewaySpec, ReferenceSpec

pytestmark = pytest.mark.timeout(60)

FIRST = b'data: {"n":1}\n\n'
LAST = b"data: [DONE]\n\n"


@dataclass
class Upstream:
    url: str = ""
    release: asyncio.Event = field(default_factory=asyncio.Event)
    last_written: asyncio.Event = field(default_factory=asyncio.Event)
    calls: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)


@asynccontextmanager
async def upstream() -> AsyncIterator[Upstream]:
    up = Upstream()

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        up.calls.append((request.path_qs, dict(request.headers), body))
        if body and json.loads(body).get("stream"):
            resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await resp.prepare(request)
            await resp.write(FIRST)
            await up.release.wait()
            await resp.write(LAST)
            up.last_written.set()
            await resp.write_eof()
            return resp
        echo = {
            "path": request.path_qs,
            "body": body.decode(),
            "auth": request.headers.get("authorization"),
        }
        return web.json_response(echo, headers={"x-upstream": "yes"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    up.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield up
    finally:
        up.release.set()
        await runner.cleanup()


def spec(**ref: float) -> GatewaySpec:
    return GatewaySpec(
        kind="reference",
        reference=ReferenceSpec(**ref),  # type: ignore[arg-type]
        ready_timeout_s=30.0,
        stop_timeout_s=10.0,
    )


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def counters(session: aiohttp.ClientSession, gw: Gateway) -> tuple[float, float]:
    assert gw.metrics_url is not None
    async with session.get(gw.metrics_url) as resp:
        samples = parse_exposition(await resp.text())
    hits = samples.value(Selector.parse("auth_cache_hits_total"))
    misses = samples.value(Selector.parse("auth_cache_misses_total"))
    assert hits is not None and misses is not None
    return hits, misses


async def test_body_passes_through_and_answers_come_back(tmp_path: Path) -> None:
    raw = b'{"model":"m","messages":[{"role":"user","content":"h\\u00e9 [loadgate:00ff]"}],  "x":1}'
    async with (
        upstream() as up,
        start_gateway(spec(miss_cost_ms=0.0), stub_url=up.url, run_dir=tmp_path, target=None) as gw,
        aiohttp.ClientSession() as s,
    ):
        assert gw.pid is not None and gw.url.startswith("http://127.0.0.1:")
        headers = {**bearer("sk-lg-1"), "content-type": "application/json", "x-loadgate-id": "00ff"}
        async with s.post(f"{gw.url}/v1/chat/completions?q=1", data=raw, headers=headers) as r:
            assert r.status == 200
            assert r.headers["x-upstream"] == "yes"
            echo = await r.json()
        path, seen, body = up.calls[-1]
        assert body == raw  # byte for byte
        assert path == "/v1/chat/completions?q=1"
        assert seen["x-loadgate-id"] == "00ff"
        assert echo["auth"] is None  # the client's own key never goes upstream
        async with s.get(f"{gw.url}/v1/models", headers={"x-api-key": "sk-lg-2"}) as r:
            assert r.status == 200
        async with s.get(f"{gw.url}/health") as r:
            assert r.status == 200


async def test_stream_passes_through_chunk_by_chunk(tmp_path: Path) -> None:
    async with (
        upstream() as up,
        start_gateway(spec(), stub_url=up.url, run_dir=tmp_path, target=None) as gw,
        aiohttp.ClientSession() as s,
        s.post(
            f"{gw.url}/v1/chat/completions", json={"stream": True}, headers=bearer("sk-lg-a")
        ) as r,
    ):
        assert r.status == 200
        first = await asyncio.wait_for(r.content.readuntil(b"\n\n"), 20)
        assert first == FIRST
        assert not up.last_written.is_set()  # the client saw event 1 before the last was written
        up.release.set()
        rest = await asyncio.wait_for(r.content.read(), 20)
        assert rest == LAST


async def test_invalid_and_missing_keys_get_401_in_provider_shape(tmp_path: Path) -> None:
    async with (
        upstream() as up,
        start_gateway(spec(), stub_url=up.url, run_dir=tmp_path, target=None) as gw,
        aiohttp.ClientSession() as s,
    ):
        async with s.post(
            f"{gw.url}/v1/chat/completions", json={"m": 1}, headers=bearer("invalid-sk-lg-1")
        ) as r:
            assert r.status == 401
            err = (await r.json())["error"]
            assert set(err) == {"message", "type", "param", "code"}
            assert err["code"] == "invalid_api_key"
        async with s.post(
            f"{gw.url}/v1/messages", json={"m": 1}, headers={"x-api-key": "nope"}
        ) as r:
            assert r.status == 401
            body = await r.json()
            assert body["type"] == "error"
            assert body["error"]["type"] == "authentication_error"
        async with s.post(f"{gw.url}/v1/embeddings", json={"m": 1}) as r:
            assert r.status == 401
        assert up.calls == []  # never forwarded


async def test_cache_counters_are_exact_for_a_known_sequence(tmp_path: Path) -> None:
    # LRU of 2: a miss, b miss, a hit, c miss (evicts b), a hit, b miss (evicts c), c miss.
    sequence = ["a", "b", "a", "c", "a", "b", "c"]
    async with (
        upstream() as up,
        start_gateway(spec(cache_size=2), stub_url=up.url, run_dir=tmp_path, target=None) as gw,
        aiohttp.ClientSession() as s,
    ):
        assert await counters(s, gw) == (0.0, 0.0)
        for k in sequence:
            async with s.post(
                f"{gw.url}/v1/chat/completions", json={}, headers=bearer(f"sk-lg-{k}")
            ) as r:
                assert r.status == 200
        assert await counters(s, gw) == (2.0, 5.0)
        assert len(up.calls) == len(sequence)
        async with s.get(gw.metrics_url or "") as r:
            samples = parse_exposition(await r.text())
        ok = Selector.parse('gateway_requests_total{route="chat",status="200"}')
        assert samples.value(ok) == 7.0


async def test_upstream_down_is_502_in_provider_shape(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    async with (
        start_gateway(spec(), stub_url=dead, run_dir=tmp_path, target=None) as gw,
        aiohttp.ClientSession() as s,
    ):
        async with s.post(f"{gw.url}/v1/chat/completions", json={}, headers=bearer("sk-lg-1")) as r:
            assert r.status == 502
            assert (await r.json())["error"]["type"] == "server_error"
        async with s.post(f"{gw.url}/v1/messages", json={}, headers={"x-api-key": "sk-lg-1"}) as r:
            assert r.status == 502
            assert (await r.json())["error"]["type"] == "api_error"
        async with s.get(gw.metrics_url or "") as r:
            samples = parse_exposition(await r.text())
        assert samples.value(Selector.parse("gateway_upstream_errors_total")) == 2.0


def log_has(path: Path, text: str) -> bool:
    return text in path.read_text(errors="replace")


async def wait_for_log(path: Path, text: str) -> None:
    """Poll the gateway's log (bounded by the caller's wait_for) for a line it writes."""
    for _ in range(10_000):
        if log_has(path, text):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{text!r} never appeared in {path}")


async def test_sigterm_drains_an_in_flight_stream(tmp_path: Path) -> None:
    async with (
        upstream() as up,
        start_gateway(spec(), stub_url=up.url, run_dir=tmp_path, target=None) as gw,
        aiohttp.ClientSession() as s,
        s.post(
            f"{gw.url}/v1/chat/completions", json={"stream": True}, headers=bearer("sk-lg-a")
        ) as r,
    ):
        assert await asyncio.wait_for(r.content.readuntil(b"\n\n"), 20) == FIRST
        gw.terminate()
        assert gw.log is not None
        await asyncio.wait_for(wait_for_log(gw.log, "draining 1 in-flight"), 20)
        # The listener is closed while the stream is still open ...
        with pytest.raises(DepDownError, match="connection refused"):
            await preflight(gw.url, timeout_s=5)
        assert gw.returncode() is None
        up.release.set()
        # ... and the stream still completes, then the gateway exits 0.
        assert await asyncio.wait_for(r.content.read(), 20) == LAST
        assert await gw.wait(20) == 0
        assert log_has(gw.log, "drain complete")
        assert log_has(gw.log, "1 request(s) in flight at SIGTERM, 0 abandoned")


async def test_scraper_window_hit_rate_agrees_with_the_gateway(tmp_path: Path) -> None:
    """Warm-up traffic before mark_start is excluded; the window's deltas are exact."""
    async with (
        upstream() as up,
        start_gateway(spec(cache_size=2), stub_url=up.url, run_dir=tmp_path, target=None) as gw,
        aiohttp.ClientSession() as s,
    ):
        assert gw.metrics_url is not None
        sc = Scraper(
            gw.metrics_url,
            {
                "h": "auth_cache_hits_total",
                "m": "auth_cache_misses",
                "ok": 'gateway_requests{status="200"}',
            },
            0.05,
        )
        sc.start()

        async def send(keys: str) -> None:
            for k in keys:
                async with s.post(
                    f"{gw.url}/v1/chat/completions", json={}, headers=bearer(f"sk-lg-{k}")
                ) as r:
                    assert r.status == 200

        try:
            await send("ab")  # warm-up: 2 misses
            await sc.mark_start()
            await send("abababc")  # LRU [a,b]: 6 hits, then c misses
            await sc.mark_end()
            await send("dd")  # after the window
        finally:
            await sc.stop()
        assert sc.deltas() == {"h": 6.0, "m": 1.0, "ok": 7.0}
        assert sc.hit_rate("h", "m") == pytest.approx(6 / 7)
        assert sc.errors == 0
