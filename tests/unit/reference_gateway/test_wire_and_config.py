"""Pure pieces of the reference gateway: header filtering, error shapes, flags, the cache."""

from __future__ import annotations

import json

import pytest

from reference_gateway import AuthCache, parse_args
from reference_gateway._wire import HOP_BY_HOP, error_body, filter_headers, status_line

pytestmark = pytest.mark.timeout(10)


def test_filter_headers_drops_hop_by_hop_and_connection_tokens_keeps_spelling() -> None:
    headers = [(b"Connection", b"keep-alive, X-Private"), (b"X-Private", b"1"),
               (b"Keep-Alive", b"5"), (b"X-Kept", b"a"), (b"Host", b"h"), (b"x-kept", b"b"),
               (b"Authorization", b"Bearer k")]  # fmt: skip
    assert filter_headers(headers, frozenset()) == [
        (b"X-Kept", b"a"),
        (b"x-kept", b"b"),
        (b"Authorization", b"Bearer k"),
    ]
    assert filter_headers(headers, frozenset({b"authorization"})) == [
        (b"X-Kept", b"a"),
        (b"x-kept", b"b"),
    ]
    assert {b"transfer-encoding", b"content-length", b"te", b"upgrade"} <= HOP_BY_HOP


def test_status_lines() -> None:
    assert status_line(200) == b"HTTP/1.1 200 OK\r\n"
    assert status_line(200, b"Fine") == b"HTTP/1.1 200 Fine\r\n"
    assert status_line(599) == b"HTTP/1.1 599 \r\n"


@pytest.mark.parametrize("status", [400, 401, 404, 413, 431, 502, 503, 504])
def test_error_bodies_have_each_providers_shape(status: int) -> None:
    openai = json.loads(error_body("chat", status, "m"))["error"]
    assert set(openai) == {"message", "type", "param", "code"} and openai["message"] == "m"
    anthropic = json.loads(error_body("messages", status, "m"))
    assert anthropic["type"] == "error" and set(anthropic["error"]) == {"type", "message"}


def test_flags_parse_and_reject_non_http_upstreams(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = parse_args(["--upstream", "http://127.0.0.1:9/base/", "--port", "0", "--cache-size", "0"])
    assert (cfg.upstreams, cfg.port, cfg.cache_size) == (("http://127.0.0.1:9/base",), 0, 0)
    for bad in ("https://x", "127.0.0.1:9", "http://h:99999"):
        with pytest.raises(SystemExit) as exc:
            parse_args(["--upstream", bad])
        assert exc.value.code == 2
    assert "must be an http:// URL" in capsys.readouterr().err


def test_several_upstreams_repeated_or_comma_listed_in_order(
    capsys: pytest.CaptureFixture[str],
) -> None:
    a, b, c = "http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3/v"
    cfg = parse_args(["--upstream", a, "--upstream", f"{b},{c}/"])
    assert cfg.upstreams == (a, b, c)
    for bad in ([a, f"{b},{a}/"], [f"{a},https://x"], [","]):
        with pytest.raises(SystemExit) as exc:
            parse_args([arg for u in bad for arg in ("--upstream", u)])
        assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"upstream {a} given twice" in err and "https://x" in err and "no URL given" in err


async def test_lookup_counts_hits_resolve_counts_misses_and_caches_negatives() -> None:
    seen: list[str] = []

    def validate(key: str) -> bool:
        seen.append(key)
        return key.startswith("ok")

    cache = AuthCache(2, 0.0, validate)
    assert cache.lookup("bad") is None
    assert await cache.resolve("bad") is False
    assert cache.lookup("bad") is False  # a negative verdict is cached too
    assert await cache.check("ok1") is True
    assert await cache.check("ok2") is True  # evicts "bad" (least recently used)
    assert cache.lookup("bad") is None
    assert (cache.hits, cache.misses, seen) == (1, 3, ["bad", "ok1", "ok2"])


def test_trace_flags_default_off_and_bound_the_defects() -> None:
    up = ["--upstream", "http://127.0.0.1:9"]
    assert parse_args(up).trace_dsn is None  # no database unless asked
    dsn = ["--trace-dsn", "postgresql://u@127.0.0.1:5/db"]
    defects = ["--trace-delay-ms", "800", "--trace-drop-share", "0.25"]
    cfg = parse_args([*up, *dsn, *defects, "--trace-batch-rows", "7"])
    assert (cfg.trace_dsn, cfg.trace_delay_ms, cfg.trace_drop_share) == (
        "postgresql://u@127.0.0.1:5/db",
        800.0,
        0.25,
    )
    assert (cfg.trace_batch_rows, cfg.trace_flush_ms, cfg.trace_queue_rows) == (7, 50.0, 100_000)
    for bad in (["--trace-drop-share", "1.5"], ["--trace-batch-rows", "0"]):
        with pytest.raises(SystemExit):
            parse_args([*up, *bad])
