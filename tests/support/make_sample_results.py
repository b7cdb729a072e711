"""Regenerate tests/data/results/sample_*.json: realistic results from seeded samples.

    .venv/bin/python -m tests.support.make_sample_results

The numbers are synthetic (lognormal ingress/egress, a stub at 50 ms TTFT and
10 ms per token) but they go through the real pipeline pieces — the HDR
``Recorder``, its summaries, interval percentiles and base64 encodings, and the
gate evaluator — so the files have exactly the shape ``loadgate run`` writes
(ARCHITECTURE "Result"). Same seed → byte-identical files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from loadgate.histograms.recorder import METRICS, Recorder
from loadgate.judge.gates import evaluate_gates
from loadgate.judge.verdict import decide_verdict
from loadgate.profile import load_profile
from loadgate.result import SCHEMA
from loadgate.result.model import Result

OUT = Path(__file__).resolve().parent.parent / "data" / "results"
S = 1_000_000_000
MS = 1_000_000
TOKENS, TTFT_MS, ITL_MS = 16, 50.0, 10.0

ENVIRONMENT = {
    "host": "bench-01",
    "machine_id": "3f9c2a7d1e0b",
    "cpus": 8,
    "cpu_model": "AMD EPYC 7B13",
    "python": "CPython 3.11.2",
    "platform": "Linux-6.1.0-18-amd64-x86_64-with-glibc2.36",
    "kernel": "6.1.0-18-amd64",
    "packages": {
        "aiohttp": "3.9.5",
        "uvloop": "0.19.0",
        "hdrhistogram": "0.10.3",
        "numpy": "1.26.4",
        "prometheus-client": "0.20.0",
        "loadgate": "0.1.0",
    },
    "cpus_usable": 8,
    "loadavg": [1.12, 0.94, 0.71],
}


def _summ(rec: Recorder, metric: str, mode: str | None = None) -> dict[str, float] | None:
    return rec.summary(metric, mode)


def make(
    name: str, seed: int, *, slow_share: float, errors: int, violations: int
) -> dict[str, Any]:
    """One run: ~30 s at ~750 req/s, half streamed; ``slow_share`` of requests hit a slow path."""
    rng = np.random.default_rng(seed)
    duration_s, n = 30, 22_500
    rec = Recorder(start_ns=0)
    done_at = np.sort(rng.integers(0, duration_s * S, size=n))
    stream = rng.random(n) < 0.5
    ingress = rng.lognormal(np.log(0.45), 0.35, n) * MS
    egress = rng.lognormal(np.log(0.55), 0.40, n) * MS
    slow = rng.random(n) < slow_share  # auth-cache misses that pay a slow upstream lookup
    ingress = ingress + slow * rng.uniform(12.0, 38.0, n) * MS
    stub_ttft = (TTFT_MS + rng.normal(0.05, 0.02, n)) * MS
    stub_total = stub_ttft + (TOKENS - 1) * ITL_MS * MS
    egress_first = egress * rng.uniform(0.4, 0.9, n)
    err_idx = set(rng.choice(n, size=errors, replace=False).tolist()) if errors else set()
    per_done = [0] * duration_s
    per_err = [0] * duration_s
    for i in range(n):
        at = int(done_at[i])
        sec = at // S
        if i in err_idx:
            per_err[sec] += 1
            continue
        per_done[sec] += 1
        s = bool(stream[i])
        ov = int(ingress[i] + egress[i])
        rec.record("overhead_ms", s, ov, at)
        rec.record("ingress_ms", s, int(ingress[i]), at)
        rec.record("egress_ms", s, int(egress[i]), at)
        rec.record("e2e_ms", s, int(stub_total[i]) + ov, at)
        if s:
            ttft_ov = int(ingress[i] + egress_first[i])
            rec.record("ttft_ms", s, int(stub_ttft[i]) + ttft_ov, at)
            rec.record("ttft_overhead_ms", s, ttft_ov, at)
            for _ in range(3):  # a few inter-token gaps per stream keep the file small
                rec.record("itl_ms", s, int(ITL_MS * MS + rng.normal(0, 0.2) * MS), at)
    profile = load_profile("phase2-gate").redacted()
    profile["load"]["duration"] = f"{duration_s}s"
    sent = n
    failed = errors
    by_class = {"cross_talk": violations} if violations else {}
    data: dict[str, Any] = {
        "schema": SCHEMA,
        "verdict": "invalid",
        "reasons": [],
        "exit_code": 3,
        "interrupted": None,
        "gates": [],
        "metrics": {m: sm for m in METRICS if (sm := _summ(rec, m)) is not None},
        "by_mode": {
            mode: {
                "metrics": {m: sm for m in METRICS if (sm := _summ(rec, m, mode)) is not None},
                "requests": {
                    "sent": int((stream == (mode == "stream")).sum()),
                    "ok": rec.count("overhead_ms", mode),
                    "failed": int((stream == (mode == "stream")).sum())
                    - rec.count("overhead_ms", mode),
                },
            }
            for mode in ("stream", "non_stream")
        },
        "requests": {
            "sent": sent,
            "ok": sent - failed,
            "failed": failed,
            "error_rate": failed / sent,
            "errors": {"http_5xx": errors - errors // 3, "timeout": errors // 3} if errors else {},
            "throughput_rps": (sent - failed) / duration_s,
            "rate_offered": None,
            "rate_achieved": sent / duration_s,
            "max_inflight_hits": 0,
            "warmup_excluded": 7_412,
            "cooldown_excluded": 0,
        },
        "integrity": {"checked": sent - failed, "violations": violations, "by_class": by_class},
        "upstream": {
            "calls": sent + errors // 2,
            "calls_per_request": (sent + errors // 2) / sent,
            "unseen": 0,
            "duplicated": errors // 2,
            "ledger_lost": 0,
        },
        "gateway": _gateway(rng, duration_s, slow_share),
        "harness": {
            "loop_lag_ms": {"p50": 0.071, "p99": 0.412 if slow_share < 0.02 else 1.903, "max": 3.1},
            "send_lag_ms": None,
            "stub_timer_lateness_ms": {"p50": 0.052, "p99": 0.31, "max": 1.2},
            "cpu_percent": 41.5 if slow_share < 0.02 else 63.0,
            "workers": 1,
            "floor_ms": None,
            "warnings": []
            if slow_share < 0.02
            else ["1 of 15 gateway metric scrapes failed: the hit-rate series has a gap"],
            "limits": {
                "max_loop_lag_p99_ms": 5.0,
                "max_cpu_percent": 95.0,
                "min_achieved_rate_ratio": 0.95,
                "max_stub_lateness_p99_ms": 5.0,
            },
        },
        "timeseries": {
            "t_s": list(range(duration_s)),
            "rps": per_done,
            "errors": per_err,
            "overhead_p99_ms": [v for _, v in rec.interval_percentile("overhead_ms", 99.0)],
            "auth_cache_hit_rate": [],
        },
        "histograms": rec.encode(),
        "profile": profile,
        "environment": ENVIRONMENT,
        "git": {
            "commit": "4be1f0c9a3d27e6b8f1a2c3d4e5f60718293a4b5",
            "dirty": False,
            "source": "git",
        },
        "started_at": "2024-06-01T12:00:00+00:00",
        "duration_s": float(duration_s + 10),
        "run_dir": f"runs/{name}",
    }
    data["timeseries"]["auth_cache_hit_rate"] = data["gateway"]["auth_cache"]["series"]
    gates = evaluate_gates(profile["gates"], Result.model_validate(data))
    v = decide_verdict(gates, [])
    data.update(
        verdict=v.verdict,
        reasons=v.reasons,
        exit_code=v.exit_code,
        gates=[g.model_dump(exclude_none=True) for g in gates],
    )
    return data


def _gateway(rng: np.random.Generator, duration_s: int, slow_share: float) -> dict[str, Any]:
    miss = slow_share * 2 + 0.02
    series = [
        [
            float(t),
            round(
                float(
                    min(1.0, max(0.0, 1.0 - miss - 0.3 * np.exp(-t / 3.0) + rng.normal(0, 0.004)))
                ),
                4,
            ),
        ]
        for t in range(0, duration_s, 2)
    ]
    hits = int(22_500 * (1 - miss))
    return {
        "kind": "reference",
        "url": "http://127.0.0.1:18080",
        "auth_cache_hit_rate": round(hits / 22_500, 4),
        "auth_cache": {"hits": hits, "misses": 22_500 - hits, "series": series},
        "counters": {},
        "counters_per_request": {},
        "log": "gateway.log",
        "scrape_errors": 0,
    }


def make_sweep(seed: int) -> dict[str, Any]:
    """A concurrency sweep: throughput saturates, overhead p99 climbs past the budget."""
    rng = np.random.default_rng(seed)
    steps = []
    knee = None
    for c in (8, 16, 32, 64, 128, 256):
        p99 = round(1.2 + c * c / 2600 + float(rng.normal(0, 0.05)), 3)
        ideal = c / (0.2 + p99 / 1000)  # closed loop: c requests per ~200 ms round trip
        rps = round(ideal / (1 + (ideal / 900) ** 2) ** 0.5, 1)  # saturates near 900 req/s
        passed = p99 < 20
        gates = [
            {
                "name": "overhead_ms.p99",
                "op": "<",
                "threshold": 20.0,
                "value": p99,
                "passed": passed,
            }
        ]
        steps.append(
            {
                "concurrency": c,
                "verdict": "pass" if passed else "fail",
                "gates": gates,
                "requests": {
                    "sent": int(rps * 20),
                    "ok": int(rps * 20),
                    "failed": 0,
                    "error_rate": 0.0,
                    "throughput_rps": rps,
                },
                "metrics": {"overhead_ms": {"p50": round(p99 / 4, 3), "p99": p99}},
            }
        )
        if passed:
            knee = {
                "max_concurrency": c,
                "throughput_rps": rps,
                "reason": f"overhead_ms.p99 passed up to {c}",
            }
    assert knee is not None
    knee["reason"] = f"{knee['reason']}; the next step failed overhead_ms.p99 < 20"
    return {
        "schema": SCHEMA,
        "kind": "sweep",
        "verdict": "pass",
        "reasons": [],
        "exit_code": 0,
        "steps": steps,
        "knee": knee,
        "profile": load_profile("phase2-gate").redacted(),
        "environment": ENVIRONMENT,
        "started_at": "2024-06-01T13:00:00+00:00",
        "duration_s": 180.0,
    }


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    docs = {
        "sample_pass.json": make("sample_pass", 11, slow_share=0.004, errors=0, violations=0),
        "sample_fail.json": make("sample_fail", 12, slow_share=0.03, errors=41, violations=2),
        "sample_sweep.json": make_sweep(13),
    }
    for file, doc in docs.items():
        (OUT / file).write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")
        print(f"wrote {OUT / file}: verdict {doc['verdict']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
