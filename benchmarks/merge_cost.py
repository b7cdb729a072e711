#!/usr/bin/env python3
"""What does ``loadgate merge`` cost for 100 shard files? (issue 17)

Writes ``--shards`` synthetic shard results shaped like a real run's (every metric
recorded in both modes: 3 histograms per metric, plus the 20 time batches compare
reads; ``--values`` latencies per histogram, log-normal around 2 ms, so the
encodings have a realistic number of non-empty buckets), then times, ``--repeat``
times, the three steps ``loadgate merge`` takes: reading and validating every file,
merging (histograms added bucket for bucket, summaries recomputed, gates judged),
and writing the merged file. Prints the median and the range of each.

    flock /work/bench.lock .venv/bin/python benchmarks/merge_cost.py [--shards 100]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from loadgate.histograms.hdr import bulk_record, new_histogram
from loadgate.histograms.recorder import BATCHED_METRICS, HISTOGRAM_BATCHES, METRICS
from loadgate.result import load_run_result, write_result
from loadgate.result.merge import ShardResult, merge_results
from loadgate.result.model import Harness, HarnessLimits, Requests, Result, ShardFigures

PROFILE = {"load": {"concurrency": 100}, "gates": {"overhead_ms.p99": "< 20"}}


def _b64(rng: np.random.Generator, n: int) -> str:
    h = new_histogram()
    bulk_record(h, np.maximum(1, rng.lognormal(np.log(2000), 0.6, n)).astype(np.int64))
    return bytes(h.encode()).decode("ascii")


def write_shards(directory: Path, shards: int, values: int) -> list[Path]:
    rng = np.random.default_rng(17)
    files = []
    for i in range(shards):
        keys = [k for m in METRICS for k in (m, f"stream.{m}", f"non_stream.{m}")]
        batched = [k for m in BATCHED_METRICS for k in (m, f"stream.{m}", f"non_stream.{m}")]
        r = Result(
            verdict="pass",
            exit_code=0,
            profile=PROFILE,
            histograms={k: _b64(rng, values) for k in keys},
            histogram_batches={
                k: [_b64(rng, values // HISTOGRAM_BATCHES) for _ in range(HISTOGRAM_BATCHES)]
                for k in batched
            },
            requests=Requests(sent=values, ok=values),
            harness=Harness(timestamps="kernel", limits=HarnessLimits()),
            shard=ShardFigures(
                index=i, count=shards, start_at=0.0, measure_start=0.0, measure_end=60.0
            ),
        )
        files.append(write_result(r, directory / f"shard-{i}.json"))
    return files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", type=int, default=100)
    ap.add_argument("--values", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = write_shards(Path(tmp), args.shards, args.values)
        size = sum(f.stat().st_size for f in files)
        times: dict[str, list[float]] = {"read": [], "merge": [], "write": []}
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            shards = [ShardResult(str(f), load_run_result(f)) for f in files]
            t1 = time.perf_counter()
            merged = merge_results(shards)
            t2 = time.perf_counter()
            write_result(merged, Path(tmp) / "merged.json")
            t3 = time.perf_counter()
            for k, v in zip(times, (t1 - t0, t2 - t1, t3 - t2), strict=True):
                times[k].append(v)
        n_hist = len(merged.histograms) + sum(len(b) for b in merged.histogram_batches.values())
        print(
            f"{args.shards} shard files, {size / 1e6:.1f} MB, {n_hist} histograms each "
            f"({args.values} values per whole-window histogram); merged verdict {merged.verdict}"
        )
        for k, v in times.items():
            med = statistics.median(v)
            print(f"  {k:<5} median {med:.3f} s  (min {min(v):.3f}, max {max(v):.3f})")
        total = [sum(t) for t in zip(*times.values(), strict=True)]
        print(f"  total median {statistics.median(total):.3f} s over {args.repeat} repeats")


if __name__ == "__main__":
    main()
