"""Command-line flags of the reference gateway, parsed into one frozen :class:`Config`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["Config", "parse_args"]


@dataclass(frozen=True, slots=True)
class Config:
    #: upstream base URLs, each request to the next in turn (round-robin)
    upstreams: tuple[str, ...]
    host: str = "127.0.0.1"
    port: int = 8080
    upstream_key: str | None = None
    cache_size: int = 4096
    miss_cost_ms: float = 2.0
    key_prefix: str = "sk-lg-"
    keys_file: Path | None = None
    delay_ms: float = 0.0
    drain_timeout_s: float = 30.0
    pool_size: int = 1024
    upstream_timeout_s: float = 600.0
    backlog: int = 2048
    trace_dsn: str | None = None
    trace_flush_ms: float = 50.0
    trace_batch_rows: int = 500
    trace_queue_rows: int = 100_000
    trace_delay_ms: float = 0.0
    trace_drop_share: float = 0.0
    directive: str = ""
    agent_id: str = ""
    defect_skip_directive: float = 0.0
    defect_bad_metric: bool = False
    defect_buffer_streams: bool = False
    agent_header: str = "x-agent-id"
    admin_key: str | None = None
    revoke_propagation_ms: float = 0.0
    tenant_leak_share: float = 0.0
    redis_url: str | None = None
    workers: int = 1
    reuse_port: bool = False  # a worker of --workers N: the port is shared (SO_REUSEPORT)

    def worker_argv(self, port: int) -> list[str]:
        """The flags of one worker process of ``--workers N`` on ``port``."""
        argv: list[str] = []
        for f in fields(self):
            value = getattr(self, f.name)
            flag = f"--{f.name.replace('_', '-')}"
            if f.name in ("port", "workers", "reuse_port") or value is None or value is False:
                continue
            if f.name == "upstreams":  # --upstream repeats, in order
                for url in value:
                    argv += ["--upstream", url]
                continue
            argv += [flag] if value is True else [flag, str(value)]
        return [*argv, "--port", str(port), "--workers", "1", "--reuse-port"]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def _http_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme != "http" or not parts.hostname:
        raise argparse.ArgumentTypeError(f"must be an http:// URL, got {text!r}")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"bad port in {text!r}") from exc
    return text.rstrip("/")


def _upstream_list(given: list[str]) -> tuple[str, ...]:
    """Every ``--upstream`` value, each also a comma list, in order; duplicates refused."""
    urls = [_http_url(u) for value in given for u in value.split(",") if u.strip()]
    seen: set[str] = set()
    for u in urls:
        if u in seen:  # a repeat would weight it twice and merge its metrics label
            raise argparse.ArgumentTypeError(f"upstream {u} given twice")
        seen.add(u)
    return tuple(urls)


def parse_args(argv: Sequence[str] | None = None) -> Config:
    p = argparse.ArgumentParser(
        prog="python -m reference_gateway",
        description="Production-shaped OpenAI/Anthropic pass-through proxy (loadgate reference).",
    )
    p.add_argument(
        "--upstream",
        required=True,
        action="append",
        help="upstream base URL, e.g. http://127.0.0.1:18000; repeat it or give a comma "
        "list for several (each request goes to the next, round-robin)",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080, help="0 = any free port (printed on stdout)")
    p.add_argument(
        "--upstream-key",
        default=None,
        help="key sent upstream (the client's own key never is)",
    )
    p.add_argument(
        "--cache-size", type=_non_negative_int, default=4096, help="auth LRU capacity (0: none)"
    )
    p.add_argument("--miss-cost-ms", type=_non_negative, default=2.0, help="simulated key lookup")
    p.add_argument("--key-prefix", default="sk-lg-", help="valid keys start with this")
    p.add_argument("--keys-file", type=Path, default=None, help="exact set of valid keys")
    p.add_argument("--delay-ms", type=_non_negative, default=0.0, help="fixed added delay")
    p.add_argument("--drain-timeout-s", type=_non_negative, default=30.0)
    p.add_argument("--pool-size", type=_positive_int, default=1024, help="connections per upstream")
    p.add_argument("--upstream-timeout-s", type=_non_negative, default=600.0)
    p.add_argument("--backlog", type=_positive_int, default=2048)
    p.add_argument(
        "--agent-header",
        default="x-agent-id",
        help="header naming the agent; a tenant-scoped key may only name its tenant's (403)",
    )
    p.add_argument(
        "--admin-key", default=None, help="bearer key of POST /admin/keys/revoke (none: off)"
    )
    p.add_argument(
        "--revoke-propagation-ms",
        type=_non_negative,
        default=0.0,
        help="a revocation reaches the auth check this long after the admin call",
    )
    p.add_argument(
        "--tenant-leak-share",
        type=_share,
        default=0.0,
        help="defect: admit this share of cross-tenant requests anyway",
    )
    p.add_argument(
        "--redis-url",
        default=None,
        help="revocations over this Redis's pub/sub (redis://127.0.0.1:6379/0)",
    )
    p.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="worker processes on one SO_REUSEPORT port (more than 1 needs --redis-url)",
    )
    p.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    t = p.add_argument_group("trace rows (one per proxied request, into PostgreSQL)")
    t.add_argument("--trace-dsn", default=None, help="postgresql://… (off when absent)")
    t.add_argument("--trace-flush-ms", type=_non_negative, default=50.0, help="flush cadence")
    t.add_argument("--trace-batch-rows", type=_positive_int, default=500, help="or this many")
    t.add_argument("--trace-queue-rows", type=_positive_int, default=100_000, help="then drop")
    t.add_argument(
        "--trace-delay-ms", type=_non_negative, default=0.0, help="defect: hold rows this long"
    )
    t.add_argument(
        "--trace-drop-share", type=_share, default=0.0, help="defect: drop this share of rows"
    )
    p.add_argument("--directive", default="", help="text put into every system prompt")
    p.add_argument("--agent-id", default="", help="x-agent-id upstream when the client sent none")
    p.add_argument(
        "--defect-skip-directive",
        type=_share,
        default=0.0,
        help="defect (tests): share of requests forwarded without the directive",
    )
    p.add_argument(
        "--defect-bad-metric",
        action="store_true",
        help="defect (tests): a counter without _total, labelled by client key",
    )
    p.add_argument(
        "--defect-buffer-streams",
        action="store_true",
        help="defect (tests): hold streamed answers until their end",
    )
    ns = p.parse_args(argv)
    try:
        upstreams = _upstream_list(ns.upstream)
    except argparse.ArgumentTypeError as exc:
        p.error(f"argument --upstream: {exc}")
    if not upstreams:
        p.error("argument --upstream: no URL given")
    if ns.workers > 1 and ns.admin_key and not ns.redis_url:
        p.error("--workers > 1 with --admin-key needs --redis-url (revocations reach every worker)")
    return Config(
        upstreams=upstreams,
        host=ns.host,
        port=ns.port,
        upstream_key=ns.upstream_key,
        cache_size=ns.cache_size,
        miss_cost_ms=ns.miss_cost_ms,
        key_prefix=ns.key_prefix,
        keys_file=ns.keys_file,
        delay_ms=ns.delay_ms,
        drain_timeout_s=ns.drain_timeout_s,
        pool_size=ns.pool_size,
        upstream_timeout_s=ns.upstream_timeout_s,
        backlog=ns.backlog,
        agent_header=ns.agent_header.lower(),
        admin_key=ns.admin_key,
        revoke_propagation_ms=ns.revoke_propagation_ms,
        tenant_leak_share=ns.tenant_leak_share,
        redis_url=ns.redis_url,
        workers=ns.workers,
        reuse_port=ns.reuse_port,
        trace_dsn=ns.trace_dsn,
        trace_flush_ms=ns.trace_flush_ms,
        trace_batch_rows=ns.trace_batch_rows,
        trace_queue_rows=ns.trace_queue_rows,
        trace_delay_ms=ns.trace_delay_ms,
        trace_drop_share=ns.trace_drop_share,
        directive=ns.directive,
        agent_id=ns.agent_id,
        defect_skip_directive=ns.defect_skip_directive,
        defect_bad_metric=ns.defect_bad_metric,
        defect_buffer_streams=ns.defect_buffer_streams,
    )
