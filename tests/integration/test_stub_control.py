"""The stub's control endpoints answer JSON errors as JSON (content type included)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio

from stub_upstream import StubConfig, StubProcess
from stub_upstream.ledger_format import CONTROL_PREFIX

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(60)]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stub() -> AsyncIterator[StubProcess]:
    async with StubProcess(StubConfig(port=0)) as s:
        yield s


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/nope", 404), ("POST", "/ledger", 405)],
)
async def test_control_errors_are_json(
    stub: StubProcess, method: str, path: str, status: int
) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, stub.url + CONTROL_PREFIX + path) as r,
    ):
        assert r.status == status
        assert r.headers["content-type"].startswith("application/json")
        assert "error" in json.loads(await r.read())
