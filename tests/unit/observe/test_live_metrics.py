"""LiveMetrics: the endpoint scraped over loopback (port 0) reflects every update."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from loadgate.observe.live_metrics import LiveMetrics


@dataclass
class _Obs:
    stream: bool
    error: str | None
    violation: str | None


async def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.get(url) as resp,
    ):
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@pytest.mark.timeout(30)
async def test_scrape_reflects_updates() -> None:
    lm = LiveMetrics(port=0)
    await lm.start()
    try:
        assert lm.port > 0
        for _ in range(3):
            lm.request_done(stream=True, ok=True)
        lm.request_done(stream=False, ok=False)
        lm.observe(_Obs(stream=False, error=None, violation="cross_talk"))
        lm.observe(_Obs(stream=True, error="timeout", violation=None))
        lm.violation("truncated")
        lm.set_inflight(17)
        lm.set_overhead_p99_ms(12.5)
        lm.set_loop_lag_ms(0.25)
        got = await _scrape(lm.url)
    finally:
        await lm.stop()
    req = "loadgate_requests_total"
    assert got[(req, (("mode", "stream"), ("outcome", "ok")))] == 3
    assert got[(req, (("mode", "stream"), ("outcome", "error")))] == 1
    assert got[(req, (("mode", "non_stream"), ("outcome", "ok")))] == 1
    assert got[(req, (("mode", "non_stream"), ("outcome", "error")))] == 1
    viol = "loadgate_integrity_violations_total"
    assert got[(viol, (("class", "cross_talk"),))] == 1
    assert got[(viol, (("class", "truncated"),))] == 1
    assert got[("loadgate_inflight", ())] == 17
    assert got[("loadgate_overhead_p99_ms", ())] == 12.5
    assert got[("loadgate_loop_lag_ms", ())] == 0.25


@pytest.mark.timeout(30)
async def test_two_instances_are_independent_and_stop_frees_the_port() -> None:
    a, b = LiveMetrics(port=0), LiveMetrics(port=0)
    await a.start()
    await b.start()
    try:
        a.set_inflight(5)
        assert (await _scrape(b.url))[("loadgate_inflight", ())] == 0
        assert (await _scrape(a.url))[("loadgate_inflight", ())] == 5
    finally:
        await a.stop()
        await b.stop()
    with pytest.raises(aiohttp.ClientConnectionError):
        await _scrape(a.url)
    await asyncio.sleep(0)


def test_port_before_start_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="after start"):
        _ = LiveMetrics(port=0).port
