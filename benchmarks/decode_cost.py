#!/usr/bin/env python3
"""Decoding a chat stream: settled at its end vs decoded read by read (same run).

A 16-token chat stream as the stub writes it (role chunk, 16 token chunks, finish and
usage chunks, ``[DONE]``), one event per read, decoded ``--rounds`` times each way in
this process: ``feed`` per read (the incremental path), and the transport's way since
issue 13 (``on_body`` queues, ``finish`` settles: one split, one msgspec call). Prints
µs per stream for both and their ratio; both must give the same text and stamps.

    .venv/bin/python benchmarks/decode_cost.py [--rounds 20000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.support, from a clone
from loadgate.client.decoders import Decoder, make_decoder
from tests.support.streams import build_stream


def _reads() -> list[tuple[bytes, int]]:
    events = build_stream("chat", n=16).split(b"\n\n")[:-1]
    return [(ev + b"\n\n", 1000 + i) for i, ev in enumerate(events)]


def incremental(reads: list[tuple[bytes, int]]) -> Decoder:
    dec = make_decoder("chat", True)
    for data, t in reads:
        dec.feed(data, t)
    dec.finish()
    return dec


def settled(reads: list[tuple[bytes, int]]) -> Decoder:
    dec = make_decoder("chat", True)
    dec.on_head(200, {}, 0)
    for data, t in reads:
        dec.on_body(data, t)
    dec.finish()
    return dec


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=20_000)
    args = ap.parse_args()
    reads = _reads()
    a, b = incremental(reads), settled(reads)
    assert (a.parts, a.token_times, a.terminated) == (b.parts, b.token_times, b.terminated)
    best: dict[str, float] = {}
    for _ in range(3):  # interleaved, best of three: the least disturbed figure of each
        for name, fn in (("incremental", incremental), ("settled", settled)):
            t0 = time.perf_counter()
            for _ in range(args.rounds):
                fn(reads)
            us = (time.perf_counter() - t0) / args.rounds * 1e6
            best[name] = min(best.get(name, us), us)
    print(f"chat stream, {len(reads)} reads of one event each, best of 3 x {args.rounds}:")
    print(f"  incremental (feed per read)  {best['incremental']:6.1f} µs/stream")
    print(f"  settled (queue, then batch)  {best['settled']:6.1f} µs/stream")
    print(f"  settled / incremental        {best['settled'] / best['incremental']:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
