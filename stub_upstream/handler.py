"""One worker's request handling: routing, validation, latency model, faults, ledger.

A single coroutine handles every request a :class:`~stub_upstream.connection.Connection`
has parsed (no router, no middleware); the body is already read and ``t_recv``
stamped by then. API calls follow one path:

    auth -> parse/validate -> fault draw -> wait/stream -> ledger

Every answer is written straight to the transport (head + body in one write).

Every API answer, error or not, leaves exactly one ledger record; health,
metrics and control requests leave none (they would pollute the join).

Longer than the house's 400 lines because the one request path (auth, parse,
fault, wait/stream, ledger) is kept in one place, where every answer can be seen
to leave exactly one ledger record; the wire formats, validation and streaming
are their own modules.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import json
import os
import random
import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from stub_upstream import content, history, stamped, validate, vectors, wire
from stub_upstream.assertions import Rules
from stub_upstream.config import INJECTABLE_FAULTS, StubConfig
from stub_upstream.connection import Connection
from stub_upstream.faults import FaultPicker
from stub_upstream.h1 import Request
from stub_upstream.ledger import LedgerRing, read_all, reset_all, shift_clock
from stub_upstream.ledger_format import BOOT_ID, CONTROL_PREFIX, ENDPOINT_CODES, FAULT_CODES
from stub_upstream.metrics import WorkerMetrics, render
from stub_upstream.rawhttp import Written, head, json_ok_head, request_id
from stub_upstream.streaming import RESET, SseStream, abort_with_rst, frame
from stub_upstream.ticker import Ticker

__all__ = ["Worker", "auth_hash"]

_MS = 1_000_000
_MAX_OVERRIDE = 3_600_000.0  # ms (and tokens) an override header may ask for
_JSON = "application/json"
_ROUTES: dict[str, str] = {
    "/v1/chat/completions": "chat",
    "/v1/responses": "responses",
    "/v1/messages": "messages",
    "/v1/embeddings": "embeddings",
    "/v1/models": "models",
}
#: Answers up to this size are held for the end of the loop turn (flush); larger
#: ones go at once, so the transport's flow control sees them when they are made.
_DEFER_MAX = 16_384
_ERROR_FAULTS = {"429": 429, "500": 500, "503": 503, "529": 529}
_MID_FAULTS = ("midstream_error", "stall", "reset")
_HAS_SYSTEM = frozenset({"chat", "responses", "messages"})


def auth_hash(value: str) -> int:
    """Ledger ``auth_hash``: first 8 bytes of blake2b(value) as a little-endian u64."""
    # Only short values are cached (<= 32 MiB for a full cache): 65,536 distinct 60 KiB
    # headers would hold GiBs. A long one (a JWT, say) costs a µs or two to hash afresh.
    if len(value) > 512:
        return _blake64(value)
    return _cached_blake64(value)


def _blake64(value: str) -> int:
    if not value:
        return 0
    # surrogateescape: a parser may decode header bytes that way; strict would raise on them.
    raw = value.encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.blake2b(raw).digest()[:8], "little")


_cached_blake64 = functools.lru_cache(maxsize=65536)(_blake64)
_BadRequest = validate.BadRequest


class _Call:
    """What the ledger will say about one API request."""

    __slots__ = (
        "anthropic", "auth", "checked", "cid", "dev", "endpoint", "failed", "fault", "model",
        "nbytes", "status", "stream", "t_first", "t_last", "t_recv", "t_sched", "tokens",
    )  # fmt: skip

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.anthropic = endpoint == "messages"
        self.cid = 0
        self.t_recv = 0
        self.t_first = 0
        self.t_last = 0
        self.t_sched = 0
        self.auth = 0
        self.nbytes = 0
        self.tokens = 0
        self.status = 0
        self.stream = False
        self.fault = "none"
        self.model = b""
        self.dev = 0  # streams: SseStream.dev_max, ns
        self.checked = 0
        self.failed = 0  # upstream rules' bits (assertions.Rules)


def _header_float(request: Request, name: str) -> float | None:
    raw = request.headers.get(name)
    if raw is None:
        return None
    try:
        v = float(raw)
    except ValueError:
        raise _BadRequest(400, f"header {name}: not a number") from None
    if not 0 <= v <= _MAX_OVERRIDE:  # also rejects NaN and inf
        raise _BadRequest(400, f"header {name}: must be in 0..{_MAX_OVERRIDE:g}")
    return v


class Worker:
    """Request handler state of one worker process."""

    def __init__(
        self,
        cfg: StubConfig,
        index: int,
        rings: list[LedgerRing],
        metrics: list[WorkerMetrics],
        instance: str,
        ticker: Ticker,
    ) -> None:
        self.cfg = cfg
        self.index = index
        self.rings = rings
        self.ring = rings[index]
        self.all_metrics = metrics
        self.metrics = metrics[index]
        self.instance = instance
        self.ticker = ticker
        #: where this worker's t_recv stamps come from (the server sets it once serving)
        self.stamp_mode = "kernel"
        self.faults = FaultPicker(cfg.faults, cfg.seed, index)
        self._jitter = random.Random(f"jitter:{cfg.seed}:{index}")
        self._keys = frozenset(cfg.expected_keys)
        rules = cfg.assertions
        self._rules = Rules(rules) if rules is not None and rules.configured else None
        self._seq = 0
        self._ttft_ns = int(cfg.ttft_ms * _MS)
        self._itl_ns = int(cfg.itl_ms * _MS)
        self._stall_ns = int(cfg.stall_ms * _MS)
        self._retry = {"x-should-retry": "false"} if cfg.no_retry else {}
        # Answers held for flush(): (transport, bytes, call); the transport last held.
        self._pending: list[tuple[Any, bytes, _Call]] = []
        self._last: Any = None

    # ----------------------------------------------------------- dispatch

    async def handle(self, request: Request) -> Written:
        path = request.path
        endpoint = _ROUTES.get(path)
        if endpoint is not None and not request.bad_status:
            method = "GET" if endpoint == "models" else "POST"
            if request.method != method:
                return await self._reject(request, endpoint, 405, f"use {method} on {path}")
            return await self._api(request, endpoint)
        # Not an API call: written directly (_plain), so held answers go first; a
        # ledger read then also sees their records.
        self.flush()
        if request.bad_status:
            return self._malformed(request)
        if path in ("/health", "/v1/health"):
            return _plain(request, 200, b'{"status":"ok"}', _JSON)
        if path == "/metrics":
            return _plain(request, 200, render(self.all_metrics), CONTENT_TYPE_LATEST)
        if path.startswith(CONTROL_PREFIX + "/"):
            return self._control(request, path[len(CONTROL_PREFIX) + 1 :])
        return await self._reject(request, "other", 404, f"unknown path {path}")

    def _malformed(self, request: Request) -> Written:
        """Unparseable request (or head too large): 400/431, provider-shaped, then close.

        Not ledgered: there is no request to account for.
        """
        anthropic = request.path.startswith("/v1/messages")
        body = wire.error_body(anthropic, request.bad_status, request.bad_message)
        return _plain(request, request.bad_status, body, _JSON)

    def _control(self, request: Request, what: str) -> Written:
        want = {"ledger": "GET", "reset": "POST", "info": "GET"}.get(what)
        if want is None:
            return _plain(request, 404, b'{"error":"unknown control path"}', _JSON)
        if request.method != want:
            return _plain(request, 405, b'{"error":"wrong method"}', _JSON)
        if what == "ledger":
            view = read_all(self.rings, request.query.get("cursor", ""), self.instance)
            headers = {"x-loadgate-cursor": view.cursor, "x-loadgate-lost": str(view.lost)}
            data = shift_clock(view.data, self.cfg.clock_offset_ns)
            return _plain(request, 200, data, _OCTETS, headers)
        if what == "reset":
            reset_all(self.rings)
            return _plain(request, 200, b'{"ok":true}', _JSON)
        cfg = self.cfg.model_dump()
        cfg["expected_keys"] = len(self.cfg.expected_keys)  # never echo secrets
        info = {
            "workers": len(self.rings),
            "capacity": self.ring.capacity,
            "worker": self.index,
            "pid": os.getpid(),
            "instance": self.instance,
            "config": cfg,
            # where t_recv comes from, and how this process's clock conversion went
            "stamps": "user" if stamped.user_stamps_forced() else self.stamp_mode,
            "clock": dataclasses.asdict(stamped.clock_bridge().stats()),
            # Which clock the ledger's times are on: a reader on the same kernel (same
            # boot id, this value inside its own before/after reads) shares it.
            "monotonic_ns": time.monotonic_ns() + self.cfg.clock_offset_ns,
            "boot_id": BOOT_ID,
        }
        return _plain(request, 200, json.dumps(info).encode(), _JSON)

    # ---------------------------------------------------------- API calls

    async def _reject(self, request: Request, endpoint: str, status: int, message: str) -> Written:
        """404/405: answered without looking at the body, still ledgered."""
        call = _Call(endpoint)
        call.t_recv = request.t_recv
        call.fault = "bad_request"
        call.cid = self._header_cid(request)
        headers = {"allow": "GET" if endpoint == "models" else "POST"} if status == 405 else {}
        return await self._error(request, call, status, message, headers=headers)

    def _header_cid(self, request: Request) -> int:
        h = request.headers.get(content.CORR_HEADER)
        return (content.parse_corr_id(h) or 0) if h else 0

    async def _api(self, request: Request, endpoint: str) -> Written:
        self.metrics.in_flight(1)
        try:
            return await self._api_call(request, endpoint)
        finally:
            self.metrics.in_flight(-1)

    async def _api_call(self, request: Request, endpoint: str) -> Written:
        call = _Call(endpoint)
        call.t_recv = request.t_recv
        if request.too_big:
            call.fault = "bad_request"
            call.cid = self._header_cid(request)
            msg = f"request body exceeds {self.cfg.max_body_bytes} bytes"
            return await self._error(request, call, 413, msg, headers={"connection": "close"})
        h = request.headers
        raw = request.body
        cid = content.find_corr_id(raw)
        call.cid = cid if cid is not None else self._header_cid(request)
        key_header = h.get("authorization") or h.get("x-api-key") or h.get("api-key") or ""
        call.auth = auth_hash(key_header)
        if self._rules is not None:  # only when configured: this is the hot path
            call.checked = 1
            call.failed = self._rules.evaluate(h, raw, endpoint in _HAS_SYSTEM)
        if self._keys and not self._key_ok(key_header, h.get("x-api-key"), h.get("api-key")):
            call.fault = "auth"
            return await self._error(request, call, 401, "Incorrect API key provided")
        try:
            body = (
                validate.parse(raw, endpoint, self.cfg.embedding_dims)
                if endpoint != "models"
                else validate.NO_BODY
            )
            call.model = body.model[:18].encode("utf-8", "replace")[:18]
            plan = self._plan(request, endpoint, body)
        except _BadRequest as e:
            call.fault = "bad_request"
            return await self._error(request, call, e.status, e.message, param=e.param)
        fault, ttft_ns, itl_ns, stall_ns, n = plan
        if fault == "none" and isinstance(body, validate.ChatBody | validate.MessagesBody):
            # A multi-turn request: was the history it resends what this stub answered?
            turns = [(msg.role, msg.content) for msg in body.messages]
            if history.history_ok(turns, call.cid, n) is False:
                fault = "history"  # answered as usual; the ledger record says it
        call.fault = fault
        if endpoint == "models":
            return await self._send_json(request, call, wire.models_body(), call.t_recv, 0)
        base = call.t_recv
        if fault == "slow_headers":
            base += stall_ns
            await self.ticker.sleep_until(base)
        if fault in _ERROR_FAULTS:
            return await self._fault_error(request, call, fault)
        if endpoint == "embeddings":
            return await self._embeddings(request, call, body, base + ttft_ns, stall_ns)
        if body.stream:
            answer = self._answer(call, body, endpoint, n, raw)
            return await self._stream(request, call, answer, base + ttft_ns, itl_ns, stall_ns)
        capped = n < self.cfg.output_tokens
        text = content.text_bytes(call.cid, n)
        due = base + ttft_ns + (n - 1) * itl_ns + self._jitter_ns()
        if fault == "stall":
            due += stall_ns
        if fault == "midstream_error":
            await self.ticker.sleep_until(due)
            call.fault = fault
            return await self._fault_error(request, call, "500")
        payload = wire.completion_body(
            endpoint, call.cid, text, n, body.model, max(1, len(raw) // 4), int(time.time()),
            capped,
        )  # fmt: skip
        call.tokens = n
        return await self._send_json(request, call, payload, due, due)

    def _key_ok(self, authz: str, x_api_key: str | None, api_key: str | None) -> bool:
        candidates = (authz.removeprefix("Bearer ").strip(), x_api_key, api_key)
        return any(c in self._keys for c in candidates if c)

    def _plan(
        self, request: Request, endpoint: str, body: validate.Body
    ) -> tuple[str, int, int, int, int]:
        """(fault, ttft_ns, itl_ns, stall_ns, tokens) after the override headers."""
        h = request.headers
        ttft_ns, itl_ns, stall_ns = self._ttft_ns, self._itl_ns, self._stall_ns
        n = self.cfg.output_tokens
        if "x-stub-ttft-ms" in h or "x-stub-itl-ms" in h or "x-stub-stall-ms" in h:
            v = _header_float(request, "x-stub-ttft-ms")
            ttft_ns = ttft_ns if v is None else int(v * _MS)
            v = _header_float(request, "x-stub-itl-ms")
            itl_ns = itl_ns if v is None else int(v * _MS)
            v = _header_float(request, "x-stub-stall-ms")
            stall_ns = stall_ns if v is None else int(v * _MS)
        if "x-stub-tokens" in h:
            v = _header_float(request, "x-stub-tokens")
            most = max(validate.MAX_HEADER_TOKENS, self.cfg.output_tokens)
            if v is None or v < 1 or v != int(v) or v > most:
                raise _BadRequest(400, f"header x-stub-tokens: must be an integer in 1..{most}")
            n = int(v)
        cap = body.output_cap
        if cap is not None:
            n = min(n, cap)
        forced = h.get("x-stub-fault")
        if forced is not None:
            if forced != "none" and forced not in INJECTABLE_FAULTS:
                raise _BadRequest(400, f"header x-stub-fault: unknown fault {forced!r}")
            fault = forced
        elif endpoint == "models":
            fault = "none"
        else:
            fault = self.faults.draw()
        return fault, ttft_ns, itl_ns, stall_ns, n

    def _jitter_ns(self) -> int:
        if self.cfg.jitter_ms <= 0:
            return 0
        return int(self._jitter.random() * self.cfg.jitter_ms * _MS)

    def _answer(
        self, call: _Call, body: validate.Body, endpoint: str, n: int, raw: bytes
    ) -> wire.Answer:
        cap = n < self.cfg.output_tokens
        return wire.Answer(
            endpoint=endpoint,
            cid=call.cid,
            tokens=content.tokens(call.cid, n),
            model=body.model,
            prompt_tokens=max(1, len(raw) // 4),
            created=int(time.time()),
            capped=cap,
            include_usage=body.include_usage,
        )

    # ------------------------------------------------------------ answers

    def _request_id(self, call: _Call) -> str:
        self._seq += 1
        return request_id(call.cid, self.index, self._seq)

    def _headers(self, call: _Call, processing_ns: int) -> dict[str, str]:
        rid = self._request_id(call)
        headers = {
            "x-request-id": rid,
            "openai-processing-ms": str(max(processing_ns, 0) // _MS),
        }
        if call.anthropic:
            headers["request-id"] = rid
        return headers

    def _write(
        self,
        request: Request,
        call: _Call,
        status: int,
        headers: dict[str, str],
        payload: bytes,
        keep_alive: bool,
    ) -> Written:
        """Head + body in one write, recorded just before it.

        The record must exist before the client can read the last byte (the
        harness's ledger join relies on it), so the stamp is taken and the record
        published immediately before ``transport.write``.
        """
        hdr = head(
            status, headers, length=len(payload), keep_alive=keep_alive, http10=request.http10
        )
        return self._write_head(request, call, status, hdr, payload, keep_alive)

    def _write_head(
        self,
        request: Request,
        call: _Call,
        status: int,
        hdr: bytes,
        payload: bytes,
        keep_alive: bool,
    ) -> Written:
        """:meth:`_write` with the head already serialised."""
        call.status = status
        transport = request.transport
        if transport is None or transport.is_closing():
            self._record(call)
            return Written(False)
        data = hdr + payload
        reset = call.fault == "reset" and status == 200
        if reset:  # headers and half the body, then RST: a crashed upstream
            data = data[: len(data) - len(payload) + len(payload) // 2]
            call.nbytes = len(payload) // 2
            call.tokens = 0
        else:
            call.nbytes = len(payload)
        if request.method == "HEAD" and not reset:  # the head only; 405 on API paths
            data = data[: len(data) - len(payload)]
        if keep_alive and not reset and len(data) <= _DEFER_MAX and self._last is not transport:
            # The usual answer: stamped, recorded and sent by flush(), at the end of
            # this loop turn with the other answers due now (see flush).
            if not self._pending:
                asyncio.get_running_loop().call_soon(self.flush)
            self._pending.append((transport, data, call))
            self._last = transport
            return Written(True)
        self.flush()  # what this connection answered before goes out first
        call.t_first = call.t_last = time.monotonic_ns()
        self._record(call)
        transport.write(data)
        if reset:
            abort_with_rst(transport)
            return Written(False)
        return Written(keep_alive)

    async def _send_json(
        self, request: Request, call: _Call, payload: bytes, due: int, sched: int
    ) -> Written:
        """A complete JSON answer, written at ``due`` (absolute ns)."""
        if due > time.monotonic_ns():
            await self.ticker.sleep_until(due)
        call.t_sched = sched
        keep_alive = request.keep_alive
        self._seq = seq = self._seq + 1
        hdr = json_ok_head(
            call.cid, self.index, seq, call.anthropic, max(due - call.t_recv, 0) // _MS,
            len(payload), keep_alive, request.http10,
        )  # fmt: skip
        return self._write_head(request, call, 200, hdr, payload, keep_alive)

    async def _embeddings(
        self, request: Request, call: _Call, body: validate.Body, due: int, stall_ns: int
    ) -> Written:
        assert isinstance(body, validate.EmbeddingsBody)  # validate.parse checked its size
        texts = body.items()
        dims = body.dimensions or self.cfg.embedding_dims
        cids = []
        for t in texts:
            cid = content.find_corr_id(t.encode()) if isinstance(t, str) else None
            cids.append(call.cid if cid is None else cid)
        prompt = sum(len(t) // 4 + 1 if isinstance(t, str) else len(t) for t in texts)
        data = vectors.encode(cids, dims, body.encoding_format == "base64")
        payload = wire.embeddings_body(data, body.model, prompt)
        due += self._jitter_ns()
        if call.fault == "stall":
            due += stall_ns
        if call.fault == "midstream_error":
            await self.ticker.sleep_until(due)
            return await self._fault_error(request, call, "500")
        return await self._send_json(request, call, payload, due, due)

    async def _stream(
        self,
        request: Request,
        call: _Call,
        answer: wire.Answer,
        first_due: int,
        itl_ns: int,
        stall_ns: int,
    ) -> Written:
        call.stream = True
        chunked = not request.http10
        events, tail = wire.sse_events(answer)
        n = len(events)
        fault = call.fault
        k = n // 2 if n >= 2 else 1  # where a mid-stream fault strikes
        cut = fault in ("midstream_error", "reset")
        count = k if cut else n
        jit = self.cfg.jitter_ms > 0
        deadlines = []
        last = first_due
        for i in range(count):
            d = first_due + i * itl_ns
            if jit:
                d = max(d + self._jitter_ns(), last)
            if fault == "stall" and i >= k:
                d += stall_ns
            deadlines.append(d)
            last = d
        sizes = [len(e) for e in events[:count]]
        items: list[bytes | None] = [frame(e, chunked) for e in events[:count]]
        tokens_at = list(range(1, count + 1))
        end = b"0\r\n\r\n" if chunked else b""
        if cut:
            d_end = first_due + min(k, n - 1) * itl_ns
            deadlines.append(max(d_end, last))
            tokens_at.append(count)
            if fault == "reset":
                items.append(RESET)
                sizes.append(0)
            else:
                err = wire.midstream_error_event(answer.endpoint, 4 + k)
                items.append(frame(err, chunked) + end)
                sizes.append(len(err))
        else:
            assert items[-1] is not None
            items[-1] = items[-1] + frame(tail, chunked) + end
            sizes[-1] += len(tail)
        headers = self._headers(call, time.monotonic_ns() - call.t_recv)
        headers["content-type"] = "text/event-stream; charset=utf-8"
        headers["cache-control"] = "no-cache"
        keep_alive = chunked and request.keep_alive
        call.status = 200
        call.t_sched = deadlines[0]
        transport = request.transport
        if transport is None or transport.is_closing():
            self._record(call)
            return Written(False)
        # Headers go out now, like the real APIs; the body follows on the ticker.
        self.flush()
        transport.write(head(200, headers, length=None, keep_alive=keep_alive, chunked=chunked))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_end(st: SseStream) -> None:
            call.t_first, call.t_last = st.t_first, st.t_last
            call.nbytes, call.tokens = st.nbytes, st.tokens
            call.dev = st.dev_max
            self._record(call)

        proto = transport.get_protocol()
        flow = proto if isinstance(proto, Connection) else None
        stream = SseStream(
            transport, items, sizes, tokens_at, deadlines, done, on_end, flow, itl_ns
        )
        self.ticker.add(deadlines[0], stream)
        await done
        return Written(keep_alive and not stream.client_gone and fault != "reset")

    # ------------------------------------------------------------- errors

    async def _fault_error(self, request: Request, call: _Call, fault: str) -> Written:
        status = _ERROR_FAULTS[fault]
        headers = dict(self._retry)
        if status == 429:
            ra = self.cfg.retry_after_s
            headers["retry-after"] = f"{ra:g}"
            headers["retry-after-ms"] = str(int(ra * 1000))
            headers["x-ratelimit-limit-requests"] = "10000"
            headers["x-ratelimit-remaining-requests"] = "0"
            headers["x-ratelimit-reset-requests"] = f"{ra:g}s"
            headers["x-ratelimit-limit-tokens"] = "1000000"
            headers["x-ratelimit-remaining-tokens"] = "0"
            headers["x-ratelimit-reset-tokens"] = f"{ra:g}s"
        if status == 529 and not call.anthropic:
            status = 503  # OpenAI has no 529: its overload answer is a 503
        msg = {
            429: "Rate limit reached (injected by stub_upstream)",
            500: "The server had an error while processing your request.",
            503: "The server is overloaded or not ready yet.",
            529: "Overloaded",
        }[status]
        return await self._error(request, call, status, msg, headers=headers)

    async def _error(
        self,
        request: Request,
        call: _Call,
        status: int,
        message: str,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Written:
        body = wire.error_body(call.anthropic, status, message, param)
        hdrs = self._headers(call, time.monotonic_ns() - call.t_recv)
        hdrs["content-type"] = _JSON
        if headers:
            hdrs.update(headers)
        keep_alive = request.keep_alive and hdrs.get("connection") != "close"
        hdrs.pop("connection", None)
        return self._write(request, call, status, hdrs, body, keep_alive)

    def flush(self) -> None:
        """Send the answers :meth:`_write_head` held back this loop turn, in order.

        Why hold them at all: on loopback a ``send`` runs the receiver's TCP input
        and wakes the client in the sender's time slice. Sent one by one, with a
        request's work between them, nearly every answer paid for a wake-up of a
        client that had gone back to sleep (measured: 22 of the stub's 74 µs a
        request were that kernel path, benchmarks/README.md); sent back to back at
        the end of the turn, the first wakes the client and the rest find it
        awake. Each answer is still stamped and recorded immediately before its
        own ``write``, so ``t_first_write`` / ``t_last_write`` and the ledger's
        publish-before-send order are what they were; the hold counts as stub
        service time (and in the lateness histogram), never as gateway overhead.
        Anything written to a connection directly (stream heads, non-keep-alive
        and reset answers, 100 Continue, a close) calls this first.
        """
        pending = self._pending
        if not pending:
            return
        self._pending = []
        self._last = None
        monotonic_ns = time.monotonic_ns
        record = self._record
        for transport, data, call in pending:
            if transport.is_closing():  # gone while it waited: recorded as unwritten
                call.nbytes = 0
                record(call)
                continue
            call.t_first = call.t_last = monotonic_ns()
            record(call)
            transport.write(data)

    def _record(self, call: _Call) -> None:
        ep = ENDPOINT_CODES[call.endpoint]
        self.ring.append(
            call.cid,
            call.t_recv,
            call.t_first,
            call.t_last,
            call.t_sched,
            call.auth,
            call.nbytes,
            call.tokens,
            call.status,
            ep,
            1 if call.stream else 0,
            FAULT_CODES[call.fault],
            self.index,
            call.model,
            (call.dev + 999) // 1000,  # rounded up: it is a bound
            call.failed,
            call.checked,
        )
        self.metrics.request(ep, call.status)
        if call.t_sched and call.t_first:
            self.metrics.lateness(call.t_first - call.t_sched)


_OCTETS = "application/octet-stream"


def _plain(
    request: Request,
    status: int,
    body: bytes,
    content_type: str,
    headers: dict[str, str] | None = None,
) -> Written:
    """A non-API answer (health, metrics, control, malformed): one write, no ledger."""
    transport = request.transport
    keep_alive = request.keep_alive
    if transport is None or transport.is_closing():
        return Written(False)
    hdrs = {"content-type": content_type}
    if headers:
        hdrs.update(headers)
    data = head(status, hdrs, length=len(body), keep_alive=keep_alive, http10=request.http10)
    transport.write(data if request.method == "HEAD" else data + body)
    return Written(keep_alive)
