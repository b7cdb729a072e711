"""Preflight against real loopback servers (seed 004): any HTTP answer is up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from loadgate.errors import DepDownError
from loadgate.gateway.preflight import preflight
from loadgate.gateway.processes import free_port


async def serve_status(status: int) -> tuple[web.AppRunner, str]:
    async def answer(_: web.Request) -> web.Response:
        return web.json_response({"error": "x"}, status=status)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def server(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, int]]:
    runner, url = await serve_status(request.param)
    yield url, request.param
    await runner.cleanup()


@pytest.mark.parametrize("server", [200, 401, 403, 404], indirect=True)
async def test_any_http_answer_proceeds(server: tuple[str, int]) -> None:
    url, status = server
    result = await asyncio.wait_for(preflight(url, timeout_s=10), 20)
    assert (result.url, result.status) == (url, status)


@pytest.mark.parametrize("server", [500, 503], indirect=True)
async def test_5xx_is_dep_down(server: tuple[str, int]) -> None:
    url, status = server
    with pytest.raises(DepDownError) as info:
        await asyncio.wait_for(preflight(url, timeout_s=10), 20)
    assert str(info.value) == f"DEP-DOWN: {url} : HTTP {status} from gateway"
    assert info.value.exit_code == 70


async def test_closed_port_is_dep_down_connection_refused() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(DepDownError) as info:
        await asyncio.wait_for(preflight(url, timeout_s=10), 20)
    assert str(info.value) == f"DEP-DOWN: {url} : connection refused"


async def test_silent_server_is_dep_down_timeout() -> None:
    """A server that accepts and never answers: 0.2 s timeout against forever."""
    conns: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conns.append(writer)

    srv = await asyncio.start_server(hold, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}"
    try:
        with pytest.raises(DepDownError) as info:
            await asyncio.wait_for(preflight(url, timeout_s=0.2), 20)
        assert str(info.value) == f"DEP-DOWN: {url} : no answer within 0.2 s"
    finally:
        for w in conns:
            w.close()
        srv.close()
        await srv.wait_closed()
