"""SSE delivery of one stub process: events/s and scheduled-vs-actual TTFT lateness.

One stub process (1 worker) pinned to CPU 1 streams chat completions to N
concurrent closed-loop streams, started evenly over one stream's length so they
do not run in lock-step (that would make bursts of N requests at once). Each
stream asks for ``--tokens`` tokens ``itl`` ms apart after a 50 ms TTFT: the
offered rate is N x tokens / (ttft + tokens x itl) token events per second.
The client is deliberately lean so it is not the bottleneck: ``asyncio.Protocol``
on uvloop, no SSE parsing (it only spots the chunked terminator to send the next
request), pinned to CPU 0, optionally split over several processes
(``--client-procs``). Its CPU share is printed.

Every figure comes from the stub's own ledger (same run, same clock):
* events/s - token events written per second of wall time over the window;
* TTFT lateness - ``t_first_write - t_sched_first`` (p50/p99/max), the stub's
  timer error; last-token lateness - ``t_last_write`` minus the last token's
  deadline (``t_sched_first + (tokens-1) x itl``).

    .venv/bin/python benchmarks/stub_sse.py                  # 4 default points
    .venv/bin/python benchmarks/stub_sse.py --point 1000:20 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from stub_upstream.ledger_format import LEDGER_DTYPE  # noqa: E402

PY = sys.executable
STUB_CPU, CLIENT_CPU = 1, 0
TTFT_MS = 50.0
BODY = (
    '{"model":"gpt-4o-mini","stream":true,"max_tokens":%d,'
    '"messages":[{"role":"user","content":"Count. [loadgate:%016x]"}]}'
)


# ------------------------------------------------------------------ client


class _Stream(asyncio.Protocol):
    def __init__(self, client: _Client, index: int) -> None:
        self.client, self.index = client, index
        self.tail = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's TCPTransport
        self.send()

    def send(self) -> None:
        assert self.transport is not None
        self.client.seq += 1
        cid = (self.client.nonce << 32) | self.client.seq
        body = (BODY % (self.client.tokens, cid)).encode()
        self.transport.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: stub\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body)
        )

    def data_received(self, data: bytes) -> None:
        self.client.nbytes += len(data)
        tail = (self.tail + data)[-5:]
        self.tail = tail
        if tail == b"0\r\n\r\n":
            self.client.streams += 1
            self.tail = b""
            if time.monotonic() < self.client.stop_at:
                self.send()
            else:
                assert self.transport is not None
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.open -= 1
        if self.client.open == 0:
            self.client.all_closed.set()


class _Client:
    def __init__(self, nonce: int, tokens: int, stop_at: float) -> None:
        self.nonce, self.tokens, self.stop_at = nonce, tokens, stop_at
        self.seq = self.streams = self.nbytes = self.open = 0
        self.all_closed = asyncio.Event()


async def _client_main(
    port: int, conns: int, tokens: int, duration: float, nonce: int, spread: float
) -> None:
    """Open ``conns`` streams evenly over ``spread`` seconds (no lock-step bursts)."""
    loop = asyncio.get_running_loop()
    start = time.monotonic()
    client = _Client(nonce, tokens, start + duration)
    for i in range(conns):
        await asyncio.sleep(max(0.0, start + i * spread / conns - time.monotonic()))
        client.open += 1
        await loop.create_connection(lambda i=i: _Stream(client, i), "127.0.0.1", port)  # type: ignore[misc]
    await asyncio.wait_for(client.all_closed.wait(), duration + 60)
    t = os.times()
    print(json.dumps({"streams": client.streams, "bytes": client.nbytes,
                      "cpu_s": t.user + t.system}))  # fmt: skip


# ------------------------------------------------------------------ driver


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _get(url: str, method: str = "GET") -> bytes:
    req = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(req, timeout=60) as r:
        return bytes(r.read())


def run_point(
    streams: int, itl_ms: float, tokens: int, duration: float, procs: int
) -> dict[str, Any]:
    port = _free_port()
    stub = subprocess.Popen(
        ["taskset", "-c", str(STUB_CPU), PY, "-m", "stub_upstream", "--port", str(port),
         "--ttft-ms", str(TTFT_MS), "--itl-ms", str(itl_ms), "--tokens", str(tokens)],
        cwd=ROOT, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _get(f"http://127.0.0.1:{port}/health")
                break
            except OSError:
                if time.monotonic() > deadline or stub.poll() is not None:
                    raise RuntimeError("stub did not start") from None
                time.sleep(0.1)
        _get(f"http://127.0.0.1:{port}/_loadgate/reset", "POST")
        cycle = (TTFT_MS + tokens * itl_ms) / 1000.0
        per = [streams // procs + (1 if i < streams % procs else 0) for i in range(procs)]
        c0 = _cpu_s(stub.pid)
        t0 = time.monotonic_ns()
        clients = [
            subprocess.Popen(
                [
                    "taskset",
                    "-c",
                    str(CLIENT_CPU),
                    PY,
                    __file__,
                    "--client",
                    str(port),
                    str(n),
                    str(tokens),
                    str(duration),
                    str(i + 1),
                    str(cycle),
                ],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                text=True,
            )
            for i, n in enumerate(per)
        ]
        outs = [json.loads(c.communicate(timeout=duration + 120)[0].strip().splitlines()[-1])
                for c in clients]  # fmt: skip
        t1 = time.monotonic_ns()
        stub_cpu = _cpu_s(stub.pid) - c0
        recs = np.frombuffer(_get(f"http://127.0.0.1:{port}/_loadgate/ledger"), LEDGER_DTYPE)
    finally:
        stub.terminate()
        stub.wait(15)
    ok = recs[(recs["status"] == 200) & (recs["t_first_write"] > 0)]
    # Window: once every stream has started (ramp = one stream's length) and until
    # the clients stop; streams that started before it count as warm-up.
    w0, w1 = t0 + int((cycle + 0.5) * 1e9), t0 + int(duration * 1e9)
    win = ok[(ok["t_recv"] >= w0) & (ok["t_last_write"] < w1)]
    done = ok[(ok["t_last_write"] >= w0) & (ok["t_last_write"] < w1)]
    events = int(done["tokens"].sum())
    first_late = (win["t_first_write"] - win["t_sched_first"]) / 1e6
    last_due = win["t_sched_first"] + (win["tokens"].astype(np.int64) - 1) * int(itl_ms * 1e6)
    last_late = (win["t_last_write"] - last_due) / 1e6
    client_cpu = sum(o["cpu_s"] for o in outs)
    wall = (t1 - t0) / 1e9
    return {
        "streams": streams, "itl_ms": itl_ms, "tokens": tokens,
        "offered_events_s": streams * 1000.0 / itl_ms * (tokens * itl_ms)
        / (TTFT_MS + tokens * itl_ms),
        "events_s": events / ((w1 - w0) / 1e9),
        "streams_in_window": len(win),
        "ttft_late_ms": [float(np.percentile(first_late, q)) for q in (50, 99)]
        + [float(first_late.max())],
        "last_late_ms": [float(np.percentile(last_late, q)) for q in (50, 99)]
        + [float(last_late.max())],
        "stub_cpu_pct": 100.0 * stub_cpu / wall,
        "client_cpu_pct": 100.0 * client_cpu / wall,
    }  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--point", action="append", default=[], metavar="STREAMS:ITL_MS",
                   help="default: 100:2 100:1 1000:20 1000:10")  # fmt: skip
    p.add_argument("--tokens", type=int, default=128)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--client-procs", type=int, default=1)
    p.add_argument("--client", nargs=6, default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.client:
        import uvloop

        port, conns, tokens, duration, nonce, spread = a.client
        uvloop.run(
            _client_main(
                int(port), int(conns), int(tokens), float(duration), int(nonce), float(spread)
            )
        )
        return 0
    points = a.point or ["100:2", "100:1", "1000:20", "1000:10"]
    print(f"stub: 1 process on CPU {STUB_CPU}, ttft {TTFT_MS:g} ms, {a.tokens} tokens/stream; "
          f"client: {a.client_procs} process(es) on CPU {CLIENT_CPU}; "
          f"{a.duration:g} s per point")  # fmt: skip
    print(f"{'streams':>7} {'itl':>5} {'offered/s':>10} {'events/s':>10}"
          f" {'ttft late p50/p99/max ms':>26} {'last-token late p50/p99 ms':>27}"
          f" {'stub CPU':>9} {'client CPU':>10}")  # fmt: skip
    for spec in points:
        n, itl = spec.split(":")
        r = run_point(int(n), float(itl), a.tokens, a.duration, a.client_procs)
        tl, ll = r["ttft_late_ms"], r["last_late_ms"]
        print(f"{r['streams']:>7} {r['itl_ms']:>5g} {r['offered_events_s']:>10.0f}"
              f" {r['events_s']:>10.0f} {tl[0]:>8.3f} /{tl[1]:>7.3f} /{tl[2]:>7.2f}"
              f" {ll[0]:>12.3f} /{ll[1]:>8.3f} {r['stub_cpu_pct']:>8.0f}%"
              f" {r['client_cpu_pct']:>9.0f}%", flush=True)  # fmt: skip
    busy = os.getloadavg()[0]
    if busy > 1.5:
        print(f"! load average {busy:.1f} on {os.cpu_count()} CPUs: other processes competed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
