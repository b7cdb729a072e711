"""``python -m stub_upstream``: parse flags into a :class:`StubConfig` and serve.

A thin layer: everything it does is reachable as ``run_stub(StubConfig(...))``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stub_upstream.config import INJECTABLE_FAULTS, StubConfig
from stub_upstream.server import run_stub

__all__ = ["build_parser", "config_from_args", "main"]


def _fault(text: str) -> tuple[str, float]:
    name, sep, rate = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--fault {text!r}: expected NAME=RATE")
    if name not in INJECTABLE_FAULTS:
        raise argparse.ArgumentTypeError(
            f"--fault {name!r}: unknown fault (one of {', '.join(INJECTABLE_FAULTS)})"
        )
    try:
        return name, float(rate)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--fault {text!r}: RATE is not a number") from None


def build_parser() -> argparse.ArgumentParser:
    d = StubConfig()
    p = argparse.ArgumentParser(
        prog="python -m stub_upstream",
        description="Deterministic upstream LLM API stub (OpenAI + Anthropic wire formats).",
    )
    p.add_argument("--host", default=d.host)
    p.add_argument("--port", type=int, default=d.port, help="0 = any free port")
    p.add_argument("--ttft-ms", type=float, default=d.ttft_ms)
    p.add_argument("--itl-ms", type=float, default=d.itl_ms)
    p.add_argument("--tokens", type=int, default=d.output_tokens, help="output tokens")
    p.add_argument("--workers", type=int, default=d.workers)
    p.add_argument("--jitter-ms", type=float, default=d.jitter_ms)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--fault", type=_fault, action="append", default=[], metavar="NAME=RATE")
    p.add_argument("--stall-ms", type=float, default=d.stall_ms)
    p.add_argument("--retry-after-s", type=float, default=d.retry_after_s)
    p.add_argument("--no-retry", action="store_true", help="x-should-retry: false on faults")
    p.add_argument("--expect-key", action="append", default=[], metavar="KEY")
    p.add_argument("--embedding-dims", type=int, default=d.embedding_dims)
    p.add_argument("--ledger-capacity", type=int, default=d.ledger_capacity)
    p.add_argument("--max-body-bytes", type=int, default=d.max_body_bytes)
    p.add_argument(
        "--head-timeout-s",
        type=float,
        default=d.head_timeout_s,
        help="a request head must arrive within this (else 408)",
    )
    p.add_argument(
        "--body-timeout-s",
        type=float,
        default=d.body_timeout_s,
        help="a request body must arrive within this after its head (else 408)",
    )
    p.add_argument(
        "--keepalive-timeout-s",
        type=float,
        default=d.keepalive_timeout_s,
        help="close a keep-alive connection idle this long",
    )
    p.add_argument("--ready-file", type=Path, default=None, help="write the bound port here")
    p.add_argument("--die-with-parent", action="store_true", help=argparse.SUPPRESS)
    return p


def config_from_args(ns: argparse.Namespace) -> StubConfig:
    return StubConfig(
        host=ns.host,
        port=ns.port,
        ttft_ms=ns.ttft_ms,
        itl_ms=ns.itl_ms,
        output_tokens=ns.tokens,
        jitter_ms=ns.jitter_ms,
        workers=ns.workers,
        seed=ns.seed,
        faults=dict(ns.fault),
        stall_ms=ns.stall_ms,
        retry_after_s=ns.retry_after_s,
        no_retry=ns.no_retry,
        expected_keys=list(ns.expect_key),
        embedding_dims=ns.embedding_dims,
        ledger_capacity=ns.ledger_capacity,
        max_body_bytes=ns.max_body_bytes,
        head_timeout_s=ns.head_timeout_s,
        body_timeout_s=ns.body_timeout_s,
        keepalive_timeout_s=ns.keepalive_timeout_s,
    )


def main(argv: list[str] | None = None) -> int:
    """Exit 0 after a clean stop, 2 on a bad flag, 1 when the port cannot be bound."""
    ns = build_parser().parse_args(argv)
    cfg = config_from_args(ns)
    try:
        cfg.validate()
    except ValueError as e:
        print(f"stub_upstream: {e}", file=sys.stderr)
        return 2
    try:
        run_stub(cfg, ready_file=ns.ready_file, die_with_parent=ns.die_with_parent)
    except OSError as e:
        print(f"stub_upstream: cannot listen on {cfg.host}:{cfg.port}: {e}", file=sys.stderr)
        return 1
    return 0
