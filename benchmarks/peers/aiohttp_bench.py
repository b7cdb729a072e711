"""A plain aiohttp load script shaped like the ones LLM serving benchmarks ship.

N coroutines share one ClientSession and loop for a fixed time, timing each request
with time.perf_counter() around `async with session.post(...)` and reading the body,
on the default asyncio loop. Prints one JSON line: requests, errors, rps, p50/p99 ms.

    python aiohttp_bench.py URL --concurrency 100 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import aiohttp

BODY = {
    "model": "gpt-4o-mini",
    "max_tokens": 16,
    "stream": False,
    "messages": [{"role": "user", "content": "Say something. [loadgate:00000000000000ab]"}],
}
HEADERS = {"authorization": "Bearer sk-lg-peer"}


def percentile(sorted_ms: list[float], q: float) -> float:
    if not sorted_ms:
        return float("nan")
    return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))]


async def worker(
    session: aiohttp.ClientSession, url: str, stop_at: float, lat: list[float], err: list[int]
) -> None:
    while time.perf_counter() < stop_at:
        t0 = time.perf_counter()
        try:
            async with session.post(url, json=BODY, headers=HEADERS) as resp:
                await resp.read()
                if resp.status != 200:
                    err.append(resp.status)
                    continue
        except aiohttp.ClientError:
            err.append(0)
            continue
        lat.append(1000 * (time.perf_counter() - t0))


async def main(url: str, concurrency: int, duration: float) -> dict[str, float]:
    lat: list[float] = []
    err: list[int] = []
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as session:
        t0 = time.perf_counter()
        stop_at = t0 + duration
        await asyncio.gather(*(worker(session, url, stop_at, lat, err) for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    lat.sort()
    return {
        "requests": len(lat),
        "errors": len(err),
        "rps": len(lat) / elapsed,
        "p50_ms": percentile(lat, 0.50),
        "p99_ms": percentile(lat, 0.99),
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("url")
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--duration", type=float, default=10.0)
    a = ap.parse_args()
    target = a.url.rstrip("/") + "/v1/chat/completions"
    print(json.dumps(asyncio.run(main(target, a.concurrency, a.duration))))
