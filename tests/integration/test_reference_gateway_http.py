"""The reference gateway's HTTP/1.1 handling, byte by byte, in the test's own event loop.

The gateway (``GatewayServer``) runs in-process on port 0 between a raw client and a
scripted upstream (tests/support/rawhttp_peers.py), so each test controls exact bytes
and orderings: framing, pipelining, keep-alive, early closes on either side, large
bodies, hop-by-hop headers, timeouts, drain. Orderings are enforced with events, never
with sleeps; the only timeouts are lopsided bounds on waits that must end.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from loadgate.checks.metrics_lint import lint_metrics
from reference_gateway import Config, GatewayServer
from reference_gateway._downstream import MAX_BODY_BYTES
from tests.support.rawhttp_peers import (
    RawRequest,
    RawUpstream,
    chunked,
    raw_request,
    read_chunk,
    read_response,
    upstream,
)

pytestmark = pytest.mark.timeout(30)

WAIT = 10.0  # bound on a wait that must end (lopsided against the ms it needs)


@asynccontextmanager
async def gateway(up: RawUpstream | str, **kw: Any) -> AsyncIterator[GatewayServer]:
    url = up if isinstance(up, str) else up.url
    gw = GatewayServer(Config(upstreams=(url,), port=0, **{"miss_cost_ms": 0.0, **kw}))
    await gw.start()
    try:
        yield gw
    finally:
        await gw.close()


@asynccontextmanager
async def client(
    gw: GatewayServer,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    try:
        yield reader, writer
    finally:
        writer.close()


async def exchange(gw: GatewayServer, data: bytes) -> Any:
    async with client(gw) as (r, w):
        w.write(data)
        return await asyncio.wait_for(read_response(r), WAIT)


CHAT = "/v1/chat/completions"


async def test_pipelined_requests_are_answered_in_order_on_one_upstream_connection() -> None:
    async with upstream() as up, gateway(up) as gw, client(gw) as (r, w):
        w.write(b"".join(raw_request("POST", CHAT, f"body-{i}".encode()) for i in range(3)))
        bodies = [(await asyncio.wait_for(read_response(r), WAIT)).body for _ in range(3)]
    assert bodies == [b"body-0", b"body-1", b"body-2"]
    assert [q.body for q in up.requests] == bodies
    assert up.accepted == 1  # each waited for the one before it


async def test_keep_alive_reuses_client_and_upstream_connections() -> None:
    async with upstream() as up, gateway(up) as gw, client(gw) as (r, w):
        for i in range(5):
            w.write(raw_request("POST", CHAT, b"x" * i))
            resp = await asyncio.wait_for(read_response(r), WAIT)
            assert resp.status == 200 and resp.body == b"x" * i
            assert resp.header("connection") is None  # keep-alive is HTTP/1.1's default
        assert gw.pools[0].open_connections == 1
    assert up.accepted == 1 and len(up.requests) == 5


async def test_several_upstreams_take_requests_in_turn_each_on_its_own_pool() -> None:
    async with upstream() as a, upstream() as b, upstream() as c:
        ups = (a, b, c)
        urls = (a.url, f"{b.url}/b", c.url)  # a path prefix applies to its upstream only
        gw = GatewayServer(Config(upstreams=urls, port=0, miss_cost_ms=0.0))
        await gw.start()
        try:
            async with client(gw) as (r, w):
                for i in range(7):
                    w.write(raw_request("POST", CHAT, b"n%d" % i))
                    assert (await asyncio.wait_for(read_response(r), WAIT)).status == 200
            exposition = gw.metrics.exposition().decode()
            opened = [p.open_connections for p in gw.pools]
        finally:
            await gw.close()
    # Round-robin per request, on one client connection: 0→a 1→b 2→c 3→a ...
    assert [[q.body for q in u.requests] for u in ups] == [
        [b"n0", b"n3", b"n6"], [b"n1", b"n4"], [b"n2", b"n5"]
    ]  # fmt: skip
    assert [q.target for q in b.requests] == ["/b" + CHAT] * 2
    assert {q.target for q in a.requests + c.requests} == {CHAT}
    assert [{q.header("host") for q in u.requests} for u in ups] == [
        {f"127.0.0.1:{u.port}"} for u in ups
    ]
    assert opened == [1, 1, 1] and [u.accepted for u in ups] == [1, 1, 1]  # kept alive
    for u, n in zip(ups, (3, 2, 2), strict=True):
        assert f'gateway_upstream_requests_total{{upstream="127.0.0.1:{u.port}"}} {n}.0' in (
            exposition
        )
    lint = lint_metrics(exposition, ["gateway_upstream_requests_total{upstream}"])
    assert lint.findings == [] and lint.missing == []


async def test_chunked_upstream_body_is_relayed_as_each_chunk_arrives() -> None:
    parts = [b'data: {"n":1}\n\n', b'data: {"n":2}\n\n', b"data: [DONE]\n\n"]
    step = [asyncio.Event() for _ in parts]

    async def stream(req: RawRequest, _r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")
        w.write(b"Transfer-Encoding: chunked\r\n\r\n")
        for i, p in enumerate(parts):
            await step[i].wait()  # the client has read the chunk before
            w.write(b"%x\r\n%s\r\n" % (len(p), p))
            await w.drain()
        w.write(b"0\r\n\r\n")
        return True

    async with upstream(stream) as up, gateway(up) as gw, client(gw) as (r, w):
        w.write(raw_request("POST", CHAT, b"{}"))
        step[0].set()
        head = await asyncio.wait_for(read_response(r, head_only=True), WAIT)
        assert head.framing == "chunked"
        assert head.header("content-type") == "text/event-stream"
        got = []
        for i in range(len(parts)):
            got.append(await asyncio.wait_for(read_chunk(r), WAIT))
            if i + 1 < len(parts):
                step[i + 1].set()
        assert got == parts
        assert await asyncio.wait_for(read_chunk(r), WAIT) == b""  # terminal chunk
    assert gw.metrics.requests[("chat", 200)] == 1


async def test_client_closing_mid_stream_closes_the_upstream_connection() -> None:
    async def stream(req: RawRequest, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await w.drain()
        assert await r.read() == b""  # EOF: the gateway closed this connection
        return False

    async with upstream(stream) as up, gateway(up) as gw:
        async with client(gw) as (r, w):
            w.write(raw_request("POST", CHAT, b"{}"))
            await asyncio.wait_for(read_response(r, head_only=True), WAIT)
            assert await asyncio.wait_for(read_chunk(r), WAIT) == b"first"
        await asyncio.wait_for(wait_until(lambda: up.open_now == 0 and up.accepted == 1), WAIT)
        await asyncio.wait_for(wait_until(lambda: gw.proxy.in_flight == 0), WAIT)
        assert gw.metrics.requests == {("chat", 499): 1}
        assert gw.pools[0].open_connections == 0


async def test_upstream_closing_mid_stream_truncates_the_client_stream() -> None:
    async def stream(req: RawRequest, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await w.drain()
        return False  # close without the terminal chunk

    async with upstream(stream) as up, gateway(up) as gw, client(gw) as (r, w):
        w.write(raw_request("POST", CHAT, b"{}"))
        resp = await asyncio.wait_for(read_response(r), WAIT)
        assert resp.status == 200 and resp.body == b"first"
        assert not resp.complete  # no terminal chunk: the client sees the cut
        assert await asyncio.wait_for(r.read(), WAIT) == b""
        assert sum(gw.metrics.upstream_errors.values()) == 1


async def test_large_bodies_pass_byte_for_byte_both_ways() -> None:
    blob = random.Random(5).randbytes(5 * 1024 * 1024)

    async def echo_chunked(
        req: RawRequest, _r: asyncio.StreamReader, w: asyncio.StreamWriter
    ) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        view = memoryview(req.body)
        w.write(chunked(*(bytes(view[i : i + 65536]) for i in range(0, len(view), 65536))))
        await w.drain()
        return True

    async with upstream() as up, gateway(up) as gw, client(gw) as (r, w):
        w.write(raw_request("POST", CHAT, blob))
        resp = await asyncio.wait_for(read_response(r), WAIT)
        assert resp.framing == "length" and resp.body == blob
        assert up.requests[0].body == blob
        up.handler = echo_chunked
        w.write(raw_request("POST", CHAT, blob))
        resp = await asyncio.wait_for(read_response(r), WAIT)
        assert resp.framing == "chunked" and resp.body == blob


async def test_chunked_request_body_goes_upstream_with_a_content_length() -> None:
    async with upstream() as up, gateway(up) as gw, client(gw) as (r, w):
        head = f"POST {CHAT} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer sk-lg-1\r\n"
        w.write(head.encode() + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(b"ab", b"cd"))
        resp = await asyncio.wait_for(read_response(r), WAIT)
    assert resp.body == b"abcd"
    assert up.requests[0].header("content-length") == "4"
    assert "transfer-encoding" not in up.requests[0].names()


async def test_http10_client_gets_a_close_delimited_body() -> None:
    async def stream(req: RawRequest, _r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(b"ab", b"cd"))
        await w.drain()
        return True

    async with upstream(stream) as up, gateway(up) as gw:
        resp = await exchange(gw, raw_request("POST", CHAT, b"{}", version="1.0"))
    assert resp.framing == "close" and resp.body == b"abcd"
    assert resp.header("connection") == "close"


async def test_eof_delimited_upstream_body_reaches_the_client_complete_and_chunked() -> None:
    async def unframed(req: RawRequest, _r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
        await w.drain()
        return False

    async with upstream(unframed) as up, gateway(up) as gw:
        resp = await exchange(gw, raw_request("POST", CHAT, b"{}"))
    assert resp.framing == "chunked" and resp.complete and resp.body == b"until the end"


async def test_expect_100_continue_is_answered_before_the_body() -> None:
    async with upstream() as up, gateway(up) as gw, client(gw) as (r, w):
        req = raw_request("POST", CHAT, b"hello", {"Expect": "100-continue"})
        head, body = req.split(b"\r\n\r\n", 1)
        w.write(head + b"\r\n\r\n")
        interim = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), WAIT)
        assert interim.startswith(b"HTTP/1.1 100 ")
        w.write(body)
        resp = await asyncio.wait_for(read_response(r), WAIT)
    assert resp.body == b"hello"
    assert "expect" not in up.requests[0].names()


async def test_malformed_request_is_400_and_the_connection_closes() -> None:
    async with upstream() as up, gateway(up) as gw, client(gw) as (r, w):
        w.write(b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: x\r\n\r\n")
        resp = await asyncio.wait_for(read_response(r), WAIT)
        assert resp.status == 400 and resp.header("connection") == "close"
        assert await asyncio.wait_for(r.read(), WAIT) == b""
    assert up.requests == []


async def test_a_malformed_request_in_a_pipeline_is_answered_after_the_ones_before_it() -> None:
    async with upstream() as up, gateway(up) as gw, client(gw) as (r, w):
        w.write(raw_request("POST", CHAT, b"one") + b"BREW /x HTCPCP/1.0\r\n\r\n")
        first = await asyncio.wait_for(read_response(r), WAIT)
        assert first.status == 200 and first.body == b"one"
        assert first.header("connection") is None
        second = await asyncio.wait_for(read_response(r), WAIT)
        assert second.status == 400 and second.header("connection") == "close"
        assert await asyncio.wait_for(r.read(), WAIT) == b""


async def test_oversized_body_is_413_without_reading_it() -> None:
    async with upstream() as up, gateway(up) as gw:
        too_big = {"Content-Length": str(MAX_BODY_BYTES + 1)}
        resp = await exchange(gw, raw_request("POST", CHAT, headers=too_big))
    assert resp.status == 413
    assert up.requests == []


async def test_hop_by_hop_headers_stay_on_their_hop() -> None:
    async def reply(req: RawRequest, _r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: X-Up-Hop\r\n")
        w.write(b"X-Up-Hop: 1\r\nKeep-Alive: timeout=5\r\nX-End: yes\r\n\r\nok")
        return True

    headers = {"Connection": "X-Hop", "X-Hop": "1", "Keep-Alive": "timeout=5", "TE": "trailers",
               "Proxy-Authorization": "Basic x", "X-End": "yes"}  # fmt: skip
    async with upstream(reply) as up, gateway(up) as gw:
        resp = await exchange(gw, raw_request("POST", CHAT + "?a=1", b"{}", headers))
    seen = up.requests[0]
    assert seen.target == CHAT + "?a=1"
    assert (
        seen.header("x-end") == "yes" and seen.header("authorization") is None
    )  # never the client's key
    assert not {"connection", "x-hop", "keep-alive", "te", "proxy-authorization"} & seen.names()
    assert seen.header("host") == f"127.0.0.1:{up.port}"
    assert resp.body == b"ok" and resp.header("x-end") == "yes"
    assert resp.header("x-up-hop") is None and resp.header("keep-alive") is None


async def test_upstream_url_path_prefixes_the_request_target() -> None:
    async with upstream() as up, gateway(up.url + "/base/") as gw:
        resp = await exchange(gw, raw_request("GET", "/v1/models?x=%20"))
    assert resp.status == 200
    assert up.requests[0].target == "/base/v1/models?x=%20"
    assert "content-length" not in up.requests[0].names()  # a GET without a body


async def test_upstream_key_replaces_every_client_key_header() -> None:
    sent = {"x-api-key": "sk-lg-c", "api-key": "sk-lg-c"}
    async with upstream() as up, gateway(up, upstream_key="UP") as gw:
        await exchange(gw, raw_request("POST", CHAT, b"{}", sent))
        await exchange(gw, raw_request("POST", "/v1/messages", b"{}", sent))
    chat, messages = up.requests
    assert chat.header("authorization") == "Bearer UP" and "x-api-key" not in chat.names()
    assert messages.header("x-api-key") == "UP" and "authorization" not in messages.names()
    assert "api-key" not in chat.names() | messages.names()


async def test_upstream_timeout_before_the_head_is_504_in_provider_shape() -> None:
    async def never(req: RawRequest, _r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        await up.release.wait()
        return False

    async with upstream(never) as up, gateway(up, upstream_timeout_s=0.2) as gw:
        resp = await exchange(gw, raw_request("POST", "/v1/messages", b"{}"))
        assert resp.status == 504
        assert b'"timeout_error"' in resp.body
        assert gw.metrics.upstream_errors == {("messages", "TimeoutError"): 1}


async def test_pool_size_bounds_upstream_connections_and_waiters_are_served() -> None:
    async def slow(req: RawRequest, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        await up.release.wait()
        return await echo_once(req, w)

    async with upstream(slow) as up, gateway(up, pool_size=1) as gw:
        tasks = [asyncio.create_task(exchange(gw, raw_request("POST", CHAT, b"%d" % i)))
                 for i in range(3)]  # fmt: skip
        await asyncio.wait_for(wait_until(lambda: gw.proxy.in_flight == 3), WAIT)
        up.release.set()
        bodies = sorted(r.body for r in await asyncio.wait_for(asyncio.gather(*tasks), WAIT))
    assert bodies == [b"0", b"1", b"2"]
    assert up.max_open == 1


async def test_auth_miss_cost_does_not_block_other_requests() -> None:
    async with upstream() as up, gateway(up, miss_cost_ms=3000.0) as gw:
        slow = asyncio.create_task(exchange(gw, raw_request("POST", CHAT, b"a")))
        await asyncio.wait_for(wait_until(lambda: gw.cache.misses == 1), WAIT)
        # A cached key is served while the miss is still paying its 3 s.
        gw.cache._lru["sk-lg-hot"] = True
        hot = await exchange(
            gw, raw_request("POST", CHAT, b"b", {"Authorization": "Bearer sk-lg-hot"})
        )
        assert hot.status == 200 and not slow.done()
        slow.cancel()


async def test_delay_is_counted_as_slept() -> None:
    async with upstream() as up, gateway(up, delay_ms=20.0) as gw:
        for _ in range(3):
            assert (await exchange(gw, raw_request("POST", CHAT, b"{}"))).status == 200
    assert gw.metrics.added_delay_count == 3
    assert gw.metrics.added_delay_s >= 3 * 0.02


async def test_keys_file_is_the_exact_set_of_valid_keys(tmp_path: Path) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text("# provisioned\nk-one\n")
    async with upstream() as up, gateway(up, keys_file=keys) as gw:
        ok = await exchange(gw, raw_request("POST", CHAT, b"{}", {"Authorization": "Bearer k-one"}))
        bad = await exchange(gw, raw_request("POST", CHAT, b"{}"))  # sk-lg-test: not in file
    assert (ok.status, bad.status) == (200, 401)
    assert len(up.requests) == 1


async def test_drain_closes_the_listener_and_finishes_the_stream() -> None:
    async def stream(req: RawRequest, _r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await up.release.wait()
        w.write(b"4\r\nlast\r\n0\r\n\r\n")
        return True

    async with (
        upstream(stream) as up,
        gateway(up) as gw,
        client(gw) as (r, w),
        client(gw) as (hr, hw),  # an idle keep-alive connection, opened before the drain
    ):
        w.write(raw_request("POST", CHAT, b"{}"))
        await asyncio.wait_for(read_response(r, head_only=True), WAIT)
        assert await asyncio.wait_for(read_chunk(r), WAIT) == b"first"
        drain = asyncio.create_task(gw.drain(WAIT))
        await asyncio.wait_for(wait_until(lambda: gw.proxy.draining), WAIT)
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", gw.port)
        hw.write(raw_request("GET", "/health"))
        health = await asyncio.wait_for(read_response(hr), WAIT)
        assert health.status == 503 and health.header("connection") == "close"
        assert not drain.done()
        up.release.set()
        assert await asyncio.wait_for(read_chunk(r), WAIT) == b"last"
        assert await asyncio.wait_for(drain, WAIT) == (True, 0)


async def test_unknown_route_is_404_and_counted() -> None:
    async with upstream() as up, gateway(up) as gw:
        resp = await exchange(gw, raw_request("GET", CHAT))
    assert resp.status == 404 and up.requests == []
    assert gw.metrics.requests == {("other", 404): 1}


async def echo_once(req: RawRequest, w: asyncio.StreamWriter) -> bool:
    w.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(req.body) + req.body)
    await w.drain()
    return True


async def wait_until(cond: Any) -> None:
    """Poll ``cond`` each loop turn (callers bound it with wait_for)."""
    while not cond():  # noqa: ASYNC110 - gateway state has no event to wait on
        await asyncio.sleep(0.005)
