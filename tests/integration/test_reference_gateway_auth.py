"""The reference gateway's tenant-scoped keys and key revocation, in-process and over Redis.

In-process tests run ``GatewayServer`` in the test's loop between a raw client and a
scripted upstream. The Redis tests start a throwaway ``redis-server``
(:mod:`loadgate.gateway.redis_server`) and skip when Debian's package is absent
(``scripts/dev.py test`` installs it). Waits are bounded lopsidedly; nothing asserts
speed.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from loadgate.gateway.redis_server import find_redis_server, throwaway_redis
from tests.integration.test_reference_gateway_http import CHAT, WAIT, exchange, gateway
from tests.support.rawhttp_peers import raw_request, upstream

pytestmark = pytest.mark.timeout(60)
needs_redis = pytest.mark.skipif(
    find_redis_server() is None, reason="redis-server not installed (scripts/dev.py test does)"
)

KEYS = "ka1 acme agent-a1\nka2 acme agent-a2\nkg1 globex agent-g1\nplain-key\n"
REVOKE = "/admin/keys/revoke"


def chat(key: str, agent: str | None = None) -> bytes:
    headers = {"Authorization": f"Bearer {key}"}
    if agent is not None:
        headers["X-Agent-Id"] = agent
    return raw_request("POST", CHAT, b"{}", headers)


def revoke(key: str, admin: str = "adm", body: bytes | None = None) -> bytes:
    data = body if body is not None else json.dumps({"key": key}).encode()
    return raw_request("POST", REVOKE, data, {"Authorization": f"Bearer {admin}"})


async def test_a_scoped_key_may_name_only_its_tenants_agents(tmp_path: Path) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text(KEYS)
    async with upstream() as up, gateway(up, keys_file=keys) as gw:
        own = await exchange(gw, chat("ka1", "agent-a1"))
        sibling = await exchange(gw, chat("ka1", "agent-a2"))  # same tenant, other line
        foreign = await exchange(gw, chat("ka1", "agent-g1"))
        missing = await exchange(gw, chat("ka1"))
        cached = await exchange(gw, chat("ka1", "agent-g1"))  # a cache hit checks too
        unscoped = await exchange(gw, chat("plain-key"))
    assert [r.status for r in (own, sibling, foreign, missing, cached, unscoped)] == [
        200, 200, 403, 403, 403, 200,
    ]  # fmt: skip
    assert json.loads(foreign.body)["error"]["code"] == "permission_denied"
    assert len(up.requests) == 3  # refused requests never reach the upstream


async def test_the_leak_defect_admits_its_share_of_cross_tenant_requests(tmp_path: Path) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text(KEYS)
    async with upstream() as up, gateway(up, keys_file=keys, tenant_leak_share=0.25) as gw:
        statuses = [(await exchange(gw, chat("kg1", "agent-a1"))).status for _ in range(8)]
    assert statuses.count(200) == 2 and statuses.count(403) == 6
    assert len(up.requests) == 2


async def test_revoke_needs_the_admin_key_and_a_key() -> None:
    async with upstream() as up, gateway(up, admin_key="adm") as gw:
        wrong = await exchange(gw, revoke("sk-lg-a", admin="nope"))
        bad = await exchange(gw, revoke("", body=b"[1]"))
        ok = await exchange(gw, revoke("sk-lg-a"))
    assert (wrong.status, bad.status, ok.status) == (401, 400, 200)
    async with upstream() as up, gateway(up) as gw:  # no --admin-key: no endpoint
        assert (await exchange(gw, revoke("sk-lg-a"))).status == 404


async def test_a_revoked_key_is_rejected_even_when_cached() -> None:
    async with upstream() as up, gateway(up, admin_key="adm") as gw:
        before = await exchange(gw, chat("sk-lg-a"))  # cached now
        assert (await exchange(gw, revoke("sk-lg-a"))).status == 200
        after = await exchange(gw, chat("sk-lg-a"))
        other = await exchange(gw, chat("sk-lg-b"))
    assert (before.status, after.status, other.status) == (200, 401, 200)


async def test_propagation_delay_keeps_the_key_valid_until_it_lands() -> None:
    # A 60 s propagation: right after the admin call, the key is still accepted.
    async with upstream() as up, gateway(up, admin_key="adm", revoke_propagation_ms=60_000) as gw:
        await exchange(gw, chat("sk-lg-a"))
        assert (await exchange(gw, revoke("sk-lg-a"))).status == 200
        assert (await exchange(gw, chat("sk-lg-a"))).status == 200
        gw.apply_revocation("sk-lg-a")  # what the timer does when it fires
        assert (await exchange(gw, chat("sk-lg-a"))).status == 401


async def _until_rejected(gw: Any, key: str) -> int:
    for _ in range(int(WAIT / 0.01)):
        status = int((await exchange(gw, chat(key))).status)
        if status == 401:
            return status
        await asyncio.sleep(0.01)
    return status


@needs_redis
@pytest.mark.redis
async def test_a_revocation_reaches_every_worker_over_redis() -> None:
    with throwaway_redis() as redis:
        async with (
            upstream() as up,
            gateway(up, admin_key="adm", redis_url=redis.url) as one,
            gateway(up, admin_key="adm", redis_url=redis.url) as two,
        ):
            for gw in (one, two):
                assert (await exchange(gw, chat("sk-lg-a"))).status == 200
            assert (await exchange(one, revoke("sk-lg-a"))).status == 200
            assert await _until_rejected(one, "sk-lg-a") == 401
            assert await _until_rejected(two, "sk-lg-a") == 401  # told over pub/sub only
            assert (await exchange(two, chat("sk-lg-b"))).status == 200
            assert two.validator.revoked == {"sk-lg-a"}


@needs_redis
@pytest.mark.redis
@pytest.mark.slow
def test_workers_share_a_port_and_each_learns_of_a_revocation(tmp_path: Path) -> None:
    log = tmp_path / "gateway.log"
    with throwaway_redis() as redis, log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "reference_gateway", "--upstream", "http://127.0.0.1:9",
             "--port", "0", "--workers", "2", "--redis-url", redis.url, "--admin-key", "adm"],
            stdout=subprocess.PIPE, stderr=err,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().decode()
            assert "listening on http://127.0.0.1:" in line
            port = int(line.rsplit(":", 1)[1])
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}{REVOKE}",
                data=json.dumps({"key": "sk-lg-gone"}).encode(),
                headers={"authorization": "Bearer adm", "content-type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=WAIT) as resp:
                assert resp.status == 200
            # Both workers log the landing; bounded wait, not a sleep that must be long enough.
            deadline = time.monotonic() + WAIT
            while log.read_text().count("key revoked: sk-lg-gone") < 2:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.02)
        finally:
            proc.terminate()
            rc = proc.wait(WAIT)
    text = log.read_text()
    assert rc == 0
    assert text.count("key revoked: sk-lg-gone") == 2  # both workers, one admin call
    assert "2 workers on port" in text
