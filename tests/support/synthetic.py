"""Synthetic result files with HDR histograms of known shape (compare/history tests).

Overhead is lognormal with a median of 800 µs and σ = 0.5, split evenly into
stream and non-stream; ``scale`` and ``shift_ms`` move it by a known amount.
``control_shift_ms`` (not None) adds a same-run control group (``harness.control``):
one request in 20, lognormal with a median of 100 µs, moved by that amount.
Seeded: the same arguments give byte-identical results.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from loadgate.histograms.hdr import decode, new_histogram, summarize

__all__ = ["CONTROL_MEDIAN_US", "MEDIAN_US", "hist_b64", "make_result"]

MEDIAN_US = 800.0
CONTROL_MEDIAN_US = 100.0


def hist_b64(us: Any) -> str:
    """Base64 HdrHistogram of an array of µs values."""
    h = new_histogram()
    vals, cnt = np.unique(np.maximum(us, 0).astype(np.int64), return_counts=True)
    for v, c in zip(vals.tolist(), cnt.tolist(), strict=True):
        h.record_value(v, c)
    return str(h.encode().decode("ascii"))


def make_result(
    seed: int,
    n: int = 4000,
    shift_ms: float = 0.0,
    scale: float = 1.0,
    machine: str = "m1",
    name: str = "smoke",
    concurrency: int = 100,
    failed: int = 0,
    commit: str | None = None,
    started_at: str = "2026-01-01T00:00:00+00:00",
    batches: int = 0,
    drift: float = 0.0,
    control_shift_ms: float | None = None,
) -> dict[str, Any]:
    """A result whose overhead is lognormal(800 µs, σ=0.5) × scale + shift.

    ``batches`` > 0 also stores that many time batches (``histogram_batches``), the
    samples in time order; ``drift`` makes the run wander: each batch's samples
    are scaled by its own factor 1 + drift·N(0, 1), as a noisy neighbour would.
    """
    rng = np.random.default_rng(seed)
    by_mode = {}
    for mode in ("stream", "non_stream"):
        raw = rng.lognormal(math.log(MEDIAN_US), 0.5, n // 2)
        if drift and batches:
            factors = 1.0 + drift * rng.standard_normal(batches)
            raw = raw * np.repeat(factors, -(-raw.size // batches))[: raw.size]
        by_mode[mode] = raw * scale + shift_ms * 1000.0
    both = np.concatenate([by_mode["stream"], by_mode["non_stream"]])
    hists = {"overhead_ms": hist_b64(both)}
    for mode, us in by_mode.items():
        hists[f"{mode}.overhead_ms"] = hist_b64(us)
    extra: dict[str, Any] = {}
    if batches:
        parts = {m: np.array_split(us, batches) for m, us in by_mode.items()}
        extra["histogram_batches"] = {
            "overhead_ms": [
                hist_b64(np.concatenate([parts["stream"][i], parts["non_stream"][i]]))
                for i in range(batches)
            ],
            **{f"{m}.overhead_ms": [hist_b64(x) for x in parts[m]] for m in parts},
        }
    if control_shift_ms is not None:
        control = rng.lognormal(math.log(CONTROL_MEDIAN_US), 0.3, n // 20)
        control_us = control + control_shift_ms * 1000.0
        extra["harness"] = {
            "control": {
                "ratio": 0.05,
                "requests": control_us.size,
                "metrics": {"overhead_ms": summarize(decode(hist_b64(control_us)))},
            }
        }
    return {
        **extra,
        "schema": "loadgate.result/1",
        "verdict": "pass",
        "reasons": [],
        "histograms": hists,
        "metrics": {"overhead_ms": summarize(decode(hists["overhead_ms"]))},
        "requests": {
            "sent": n + failed,
            "ok": n,
            "failed": failed,
            "error_rate": failed / (n + failed),
            "throughput_rps": 1000.0,
        },
        "integrity": {"checked": n, "violations": 0},
        "upstream": {"calls_per_request": 1.0},
        "gateway": {"auth_cache_hit_rate": None, "counters_per_request": {}},
        "environment": {"machine_id": machine},
        "profile": {
            "name": name,
            "load": {"concurrency": concurrency, "duration_s": 10.0},
            "stub": {"ttft_ms": 50.0, "port": 18000 + seed},
        },
        "git": {"commit": commit, "dirty": False},
        "started_at": started_at,
    }
