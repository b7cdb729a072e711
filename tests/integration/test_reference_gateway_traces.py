"""The reference gateway's trace rows in a real (throwaway) PostgreSQL.

The writer in-process (exact counts of written, dropped and held-back rows) and the
gateway as a subprocess (``--trace-dsn``: one row per proxied request, read back over
``GET /admin/traces``, counted in ``/metrics``). Waits are bounded polls for a state,
never a sleep that a slow machine could outlast.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from loadgate.gateway.lifecycle import start_gateway
from loadgate.gateway.postgres_server import PostgresServer
from loadgate.gateway.scrape import Selector, parse_exposition
from loadgate.profile import GatewaySpec, ReferenceSpec
from reference_gateway._traces import TraceWriter
from tests.support.postgres import postgres_or_skip

pytestmark = [pytest.mark.timeout(60), pytest.mark.postgres]


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    yield from postgres_or_skip()


async def rows(dsn: str, corr_prefix: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        exists = await conn.fetchval("select to_regclass('traces') is not null")
        if not exists:
            return []
        return await conn.fetch(
            "select corr_id, route, status from traces where corr_id like $1 order by corr_id",
            corr_prefix + "%",
        )
    finally:
        await conn.close()


async def until(check: object, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_rows_are_written_in_batches_and_the_defect_drops_an_exact_share(
    pg: PostgresServer,
) -> None:
    w = TraceWriter(pg.dsn, flush_ms=10, batch_rows=7, drop_share=0.25)
    await w.start()
    try:
        for i in range(100):
            w.add(f"batch-{i:03d}", "chat", 200, time.time())

        async def all_there() -> bool:
            return len(await rows(pg.dsn, "batch-")) == 75

        await until(all_there)
    finally:
        await w.close()
    f = w.figures
    assert (f.written, f.dropped["defect"], f.dropped["queue_full"]) == (75, 25, 0)
    assert f.batches >= 75 // 7  # never more than batch_rows at once
    # Evenly spread: every fourth row is the one missing.
    got = {r["corr_id"] for r in await rows(pg.dsn, "batch-")}
    assert [i for i in range(100) if f"batch-{i:03d}" not in got] == list(range(3, 100, 4))


async def test_a_full_queue_drops_and_held_rows_wait_out_their_delay(pg: PostgresServer) -> None:
    # 60 s against a check 0.3 s later: lopsided, the row cannot have been written yet.
    w = TraceWriter(pg.dsn, flush_ms=10, queue_rows=3, delay_ms=60_000)
    await w.start()
    for i in range(5):
        w.add(f"held-{i}", "chat", 200, time.time())
    await asyncio.sleep(0.3)
    assert await rows(pg.dsn, "held-") == []
    assert w.figures.dropped["queue_full"] == 2 and w.queued == 3
    await w.close(timeout_s=0.2)  # shutting down before the delay: counted, not hidden
    assert w.figures.dropped["shutdown"] == 3 and w.figures.written == 0


@asynccontextmanager
async def echo_upstream() -> AsyncIterator[str]:
    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"id": "chatcmpl-1", "choices": []})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_the_gateway_writes_one_row_per_request_and_serves_them(
    pg: PostgresServer, tmp_path: Path
) -> None:
    spec = GatewaySpec(kind="reference", reference=ReferenceSpec(miss_cost_ms=0.0))
    corr = "00000000deadbe01"
    async with (
        echo_upstream() as up,
        start_gateway(spec, stub_url=up, run_dir=tmp_path, target=None, trace_dsn=pg.dsn) as gw,
        aiohttp.ClientSession() as s,
    ):
        headers = {"authorization": "Bearer sk-lg-1", "x-loadgate-id": corr}
        async with s.post(f"{gw.url}/v1/chat/completions", json={}, headers=headers) as r:
            assert r.status == 200
        async with s.post(f"{gw.url}/v1/chat/completions", json={}) as r:
            assert r.status == 401  # answered by the gateway: still one row

        async def served() -> bool:
            async with s.get(f"{gw.url}/admin/traces?corr_id={corr}") as r:
                return r.status == 200 and bool((await r.read()).strip())

        await until(served)
        async with s.get(f"{gw.url}/admin/traces?corr_id={corr}") as r:
            assert r.headers["content-type"].startswith("text/tab-separated-values")
            cells = (await r.text()).splitlines()
        assert len(cells) == 1 and cells[0].split("\t")[:3] == [corr, "chat", "200"]
        async with s.get(f"{gw.url}/admin/traces?corr_id=0000000000000000") as r:
            assert r.status == 200 and await r.read() == b""  # ClickHouse's "no rows"
        async with s.get(f"{gw.url}/admin/traces") as r:
            assert r.status == 400
        metrics_url = gw.metrics_url
        assert metrics_url is not None

        async def counter(selector: str) -> float | None:
            async with s.get(metrics_url) as r:
                return parse_exposition(await r.text()).value(Selector.parse(selector))

        async def both_written() -> bool:
            return await counter("gateway_trace_rows_written_total") == 2

        await until(both_written)  # the 401's row may be in the next batch
        for reason in ("queue_full", "write_error", "shutdown", "defect"):
            assert await counter(f'gateway_trace_rows_dropped_total{{reason="{reason}"}}') == 0
    assert [tuple(r) for r in await rows(pg.dsn, corr)] == [(corr, "chat", 200)]
