"""One request end to end over real loopback sockets.

Part 1 drives :class:`loadgate.client.http1.ConnectionPool` against small raw asyncio
servers that misbehave on purpose (stale keep-alive, reset mid-body, garbage,
silence). Part 2 runs :func:`loadgate.client.request.perform` against the upstream,
directly and through each mode of ``tests/support/defect_proxy.py``: each
defect must be reported in its class, and nothing else.

The upstream is the stub (``stub_upstream.process.StubProcess``) when that
package provides it, else a minimal server speaking the same wire format
(built from ``tests/support/streams.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from loadgate.client.http1 import ConnectionPool
from loadgate.client.observation import RequestSpec
from loadgate.client.request import perform
from loadgate.client.transport import ConnectError, ResetError
from stub_upstream import content
from tests.support.defect_proxy import DefectProxy
from tests.support.streams import stream_events

ENDPOINT_MODES = [
    ("chat", True),
    ("chat", False),
    ("responses", True),
    ("responses", False),
    ("messages", True),
    ("messages", False),
    ("embeddings", False),
]
OUTPUT_TOKENS = 8
_seq = iter(range(1, 1 << 30))


def make_spec(endpoint: str, stream: bool, max_tokens: int = 16) -> RequestSpec:
    return RequestSpec(
        corr=(0x7AB1 << 32) | next(_seq),
        endpoint=endpoint,
        stream=stream,
        model="claude-3-5-haiku-20241022" if endpoint == "messages" else "gpt-4o-mini",
        prompt_tokens=32,
        max_tokens=max_tokens,
        expect_tokens=0 if endpoint == "embeddings" else min(OUTPUT_TOKENS, max_tokens),
        auth=("authorization", "Bearer sk-lg-test"),
    )


# -- part 1: transport against raw servers ----------------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[str]:
    tasks: set[asyncio.Task[None]] = set()

    async def wrapped(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(r, w)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            w.close()

    server = await asyncio.start_server(wrapped, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


async def read_request(r: asyncio.StreamReader) -> bytes:
    head = await r.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + await r.readexactly(length)


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def test_keep_alive_reuses_one_connection() -> None:
    async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while True:
            await read_request(r)
            w.write(OK)

    async with raw_server(serve) as url:
        pool = ConnectionPool(url, limit=4, connect_timeout_s=5)
        for i in range(5):
            resp = await pool.request("GET", "/", timeout_s=10)
            assert resp.body == b"ok" and resp.reused == (i > 0)
        assert pool.opened == 1
        await pool.close()
        assert pool.open_connections == 0


async def test_pool_never_exceeds_its_limit() -> None:
    async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while True:
            await read_request(r)
            w.write(OK)

    async with raw_server(serve) as url:
        pool = ConnectionPool(url, limit=2, connect_timeout_s=5)
        results = await asyncio.gather(*(pool.request("GET", "/", timeout_s=10) for _ in range(7)))
        assert [r.body for r in results] == [b"ok"] * 7
        assert pool.opened == 2
        await pool.close()


async def test_stale_keep_alive_is_retried_once_on_a_fresh_connection() -> None:
    """The server answers once, then closes the connection on the next request."""
    connections = 0

    async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_request(r)
        w.write(OK)
        await read_request(r)  # the reused connection's request: close, zero bytes

    async with raw_server(serve) as url:
        pool = ConnectionPool(url, limit=4, connect_timeout_s=5)
        first = await pool.request("GET", "/", timeout_s=10)
        second = await pool.request("GET", "/", timeout_s=10)
        assert not first.retried and second.retried and not second.reused
        assert second.body == b"ok" and pool.retries == 1 and connections == 2
        await pool.close()


async def test_fresh_connection_closed_without_answer_is_not_retried() -> None:
    async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await read_request(r)

    async with raw_server(serve) as url:
        pool = ConnectionPool(url, limit=4, connect_timeout_s=5)
        with pytest.raises(ResetError):
            await pool.request("GET", "/", timeout_s=10)
        assert pool.retries == 0
        await pool.close()


async def test_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once closed
    pool = ConnectionPool(f"http://127.0.0.1:{port}", limit=4, connect_timeout_s=5)
    with pytest.raises(ConnectError):
        await pool.request("GET", "/", timeout_s=10)
    obs = await perform(pool, make_spec("chat", True), 123, 10)
    assert obs.error == "connect" and obs.t_intended == 123 and obs.status == 0
    assert pool._slots == 0  # failed connects give their slot back
    await pool.close()


async def _perform_against(serve: Handler, spec: RequestSpec, timeout_s: float = 10) -> Any:
    async with raw_server(serve) as url:
        pool = ConnectionPool(url, limit=4, connect_timeout_s=5)
        try:
            return await perform(pool, spec, 1, timeout_s)
        finally:
            await pool.close()


async def test_reset_mid_body() -> None:
    async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await read_request(r)
        w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        w.write(b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in stream_events("chat")[:3]))
        await w.drain()

    obs = await _perform_against(serve, make_spec("chat", True))
    assert obs.error == "reset" and obs.violation is None and obs.status == 200
    assert obs.t_first_byte > 0 and obs.t_last_byte == 0 and obs.bytes_in > 0
    assert len(obs.token_times) == 2  # tokens 0 and 1 arrived before the cut


async def test_silent_server_times_out() -> None:
    async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await read_request(r)
        await asyncio.sleep(3600)

    obs = await _perform_against(serve, make_spec("chat", False), timeout_s=0.2)
    assert obs.error == "timeout" and obs.t_send > 0 and obs.t_first_byte == 0


async def test_garbage_is_a_protocol_error() -> None:
    async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await read_request(r)
        w.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        await w.drain()
        await asyncio.sleep(3600)

    obs = await _perform_against(serve, make_spec("chat", False))
    assert obs.error == "protocol"


@pytest.mark.parametrize(
    ("status", "cls"), [(429, "http_429"), (404, "http_4xx"), (401, "http_4xx"), (503, "http_5xx")]
)
async def test_status_classes(status: int, cls: str) -> None:
    async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await read_request(r)
        body = b'{"error":{"message":"no","type":"x","param":null,"code":null}}'
        w.write(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body))
        await w.drain()

    obs = await _perform_against(serve, make_spec("chat", True))
    assert obs.error == cls and obs.status == status and obs.violation is None


# -- part 2: the upstream, directly and through a defect ---------------------------


class MiniUpstream:
    """Stand-in for the stub: same wire format, no latency model, no ledger."""

    def __init__(self) -> None:
        self._runner: web.ServerRunner | None = None
        self.url = ""

    async def __aenter__(self) -> MiniUpstream:
        self._runner = web.ServerRunner(web.Server(self._handle), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        raw = await request.read()
        req = json.loads(raw)
        cid = content.find_corr_id(raw) or 0
        endpoint = {
            "/v1/chat/completions": "chat",
            "/v1/responses": "responses",
            "/v1/messages": "messages",
            "/v1/embeddings": "embeddings",
        }[request.path]
        if endpoint == "embeddings":
            vec = content.embedding(cid, 16)
            return web.json_response({"object": "list", "data": [{"embedding": vec}]})
        n = min(OUTPUT_TOKENS, req.get("max_tokens") or req.get("max_output_tokens") or 16)
        if not req.get("stream"):
            text = content.expected_text(cid, n)
            bodies = {
                "chat": {"choices": [{"message": {"content": text}}], "usage": {}},
                "responses": {"output": [{"content": [{"type": "output_text", "text": text}]}]},
                "messages": {"content": [{"type": "text", "text": text}]},
            }
            return web.json_response(bodies[endpoint])
        resp = web.StreamResponse(headers={"content-type": "text/event-stream; charset=utf-8"})
        await resp.prepare(request)
        for event in stream_events(endpoint, cid, n):
            await resp.write(event)
        await resp.write_eof()
        return resp


@pytest.fixture
async def upstream() -> AsyncIterator[str]:
    try:
        from stub_upstream.config import StubConfig
        from stub_upstream.process import StubProcess  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        async with MiniUpstream() as mini:
            yield mini.url
        return
    cfg = StubConfig(port=0, ttft_ms=2, itl_ms=1, output_tokens=OUTPUT_TOKENS)
    async with StubProcess(cfg) as stub:
        yield stub.url


async def run_all(url: str, specs: list[RequestSpec]) -> list[Any]:
    pool = ConnectionPool(url, limit=8, connect_timeout_s=5)
    try:
        return [await perform(pool, s, 0, 20) for s in specs]
    finally:
        await pool.close()


def assert_clean(obs: Any, spec: RequestSpec) -> None:
    assert obs.error is None and obs.violation is None, (spec, obs)
    assert obs.status == 200 and obs.corr == spec.corr
    assert obs.tokens == spec.expect_tokens
    assert 0 < obs.t_send < obs.t_first_byte <= obs.t_last_byte
    if spec.stream:
        assert len(obs.token_times) >= 1
        assert obs.t_first_token == obs.token_times[0]
        assert obs.token_times == sorted(obs.token_times)
        assert obs.t_first_byte <= obs.t_first_token <= obs.t_last_byte


@pytest.mark.parametrize(("endpoint", "stream"), ENDPOINT_MODES)
async def test_direct_is_clean(upstream: str, endpoint: str, stream: bool) -> None:
    specs = [make_spec(endpoint, stream), make_spec(endpoint, stream, max_tokens=3)]
    for spec, obs in zip(specs, await run_all(upstream, specs), strict=True):
        assert_clean(obs, spec)


async def test_through_pass_through_proxy_is_clean(upstream: str) -> None:
    specs = [make_spec(e, s) for e, s in ENDPOINT_MODES]
    async with DefectProxy(upstream, "none") as proxy:
        for spec, obs in zip(specs, await run_all(proxy.url, specs), strict=True):
            assert_clean(obs, spec)


async def test_delay_is_visible_and_nothing_else(upstream: str) -> None:
    specs = [make_spec("chat", True), make_spec("messages", False)]
    async with DefectProxy(upstream, "delay", delay_ms=60) as proxy:
        for spec, obs in zip(specs, await run_all(proxy.url, specs), strict=True):
            assert_clean(obs, spec)
            assert obs.t_first_byte - obs.t_send >= 60_000_000 * 0.95


@pytest.mark.parametrize("endpoint", ["chat", "responses", "messages"])
async def test_dropped_event_is_missing_tokens(upstream: str, endpoint: str) -> None:
    specs = [make_spec(endpoint, True), make_spec(endpoint, False)]
    async with DefectProxy(upstream, "drop") as proxy:
        stream_obs, plain_obs = await run_all(proxy.url, specs)
        assert proxy.dropped == 1
    assert stream_obs.error is None and stream_obs.violation == "missing_tokens"
    # one token per event from the stub: one fewer (a coalescing upstream would lose more)
    assert 0 < stream_obs.tokens < specs[0].expect_tokens
    assert_clean(plain_obs, specs[1])  # non-stream bodies are passed through


@pytest.mark.parametrize(
    ("endpoint", "stream"), [m for m in ENDPOINT_MODES if m[0] != "embeddings"]
)
async def test_truncation_is_truncated(upstream: str, endpoint: str, stream: bool) -> None:
    spec = make_spec(endpoint, stream)
    async with DefectProxy(upstream, "truncate") as proxy:
        (obs,) = await run_all(proxy.url, [spec])
        assert proxy.truncated == 1
    assert obs.error is None and obs.violation == "truncated", obs


async def test_truncated_embedding_body(upstream: str) -> None:
    spec = make_spec("embeddings", False)
    async with DefectProxy(upstream, "truncate") as proxy:
        (obs,) = await run_all(proxy.url, [spec])
    assert obs.error is None and obs.violation == "truncated"


@pytest.mark.parametrize(("endpoint", "stream"), [("chat", True), ("messages", False)])
async def test_swapped_responses_are_cross_talk(upstream: str, endpoint: str, stream: bool) -> None:
    specs = [make_spec(endpoint, stream) for _ in range(4)]
    async with DefectProxy(upstream, "swap") as proxy:
        pool = ConnectionPool(proxy.url, limit=8, connect_timeout_s=5)
        try:
            swapped = await asyncio.gather(*(perform(pool, s, 0, 20) for s in specs[:2]))
            after = [await perform(pool, s, 0, 20) for s in specs[2:]]
        finally:
            await pool.close()
        assert proxy.swapped == 2
    assert [(o.error, o.violation) for o in swapped] == [(None, "cross_talk")] * 2
    for spec, obs in zip(specs[2:], after, strict=True):
        assert_clean(obs, spec)


def test_runs_on_uvloop() -> None:
    """The harness runs on uvloop, whose transports are not asyncio.Transport subclasses."""
    import uvloop

    async def go() -> tuple[Any, int]:
        async with MiniUpstream() as mini:
            pool = ConnectionPool(mini.url, limit=4, connect_timeout_s=5)
            try:
                specs = [make_spec("chat", True), make_spec("chat", True)]
                return [await perform(pool, s, 0, 20) for s in specs], pool.opened
            finally:
                await pool.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        observations, opened = runner.run(go())
    assert [(o.error, o.violation, o.tokens) for o in observations] == [(None, None, 8)] * 2
    assert opened == 1
