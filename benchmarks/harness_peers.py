"""Harness vs peers: loadgate, wrk, Locust and a plain aiohttp script on the same stub.

Two scenarios, every tool in one run, non-streamed chat completions, 100 connections:
  max      zero-latency stub (ttft 0, itl 0): the most req/s each tool can drive;
  p99@50ms stub answering after 50 ms: the end-to-end p99 each tool reports (the true
           value is 50 ms plus loopback; whatever a tool adds on top is its own cost).
CPU pinning: the stub on CPU 1, the load tool on CPU 0 (taskset / sched_setaffinity), so
tools compete for the same single core. wrk, Locust and aiohttp hit one stub process this
script starts; loadgate starts its own stub (same code and config, `gateway.kind=direct`),
which is moved to CPU 1 as soon as it appears. Ratios are against wrk.

    .venv/bin/python benchmarks/harness_peers.py [--duration 10] [--readme]

Needs: wrk (Debian), Locust in benchmarks/out/venv-locust (created when missing).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "gateways"))
from _common import OUT, ROOT, free_port, replace_section, wait_http

__all__ = ["main"]

PEERS = ROOT / "benchmarks" / "peers"
PY = ROOT / ".venv" / "bin" / "python"
LOCUST_VENV = OUT / "venv-locust"
LOAD_CPU, STUB_CPU = 0, 1
CONC = 100


def _pin(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") else []


def ensure_locust() -> Path:
    exe = LOCUST_VENV / "bin" / "locust"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(LOCUST_VENV)], check=True)
        subprocess.run([str(LOCUST_VENV / "bin" / "pip"), "install", "-q", "locust"], check=True)
    return exe


class Stub:
    """The stub on STUB_CPU for the peers (loadgate brings its own)."""

    def __init__(self, ttft_ms: float) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [*_pin(STUB_CPU), str(PY), "-m", "stub_upstream", "--host", "127.0.0.1",
                "--port", str(self.port), "--ttft-ms", str(ttft_ms), "--itl-ms", "0",
                "--tokens", "16"]  # fmt: skip
        log = (OUT / "peers-stub.log").open("ab")
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not wait_http(self.url + "/v1/models", 0.5):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"stub did not start; see {OUT / 'peers-stub.log'}")
            time.sleep(0.2)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def run_wrk(url: str, duration: float) -> dict[str, float]:
    argv = [*_pin(LOAD_CPU), "wrk", "-t1", f"-c{CONC}", f"-d{duration:.0f}s", "--latency",
            "-s", str(PEERS / "chat.lua"), url + "/v1/chat/completions"]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    p99 = float(m.group(1)) * scale[m.group(2)] if m else float("nan")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errs = re.search(r"Socket errors:.*", out)
    return {"rps": rps, "p99_ms": p99, "errors": int(non2xx.group(1)) if non2xx else 0,
            "note": errs.group(0) if errs else ""}  # type: ignore[dict-item]  # fmt: skip


def run_locust(url: str, duration: float) -> dict[str, float]:
    exe = ensure_locust()
    with tempfile.TemporaryDirectory() as tmp:
        prefix = Path(tmp) / "locust"
        argv = [*_pin(LOAD_CPU), str(exe), "-f", str(PEERS / "locustfile.py"), "--headless",
                "-u", str(CONC), "-r", str(CONC), "-t", f"{duration:.0f}s", "--host", url,
                "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING"]  # fmt: skip
        subprocess.run(argv, capture_output=True, text=True, check=False, timeout=duration + 60)
        with (prefix.parent / "locust_stats.csv").open() as f:
            row = next(r for r in csv.DictReader(f) if r["Name"] == "Aggregated")
    return {"rps": float(row["Requests/s"]), "p99_ms": float(row["99%"]),
            "errors": int(row["Failure Count"])}  # fmt: skip


def run_aiohttp(url: str, duration: float) -> dict[str, float]:
    argv = [*_pin(LOAD_CPU), str(PY), str(PEERS / "aiohttp_bench.py"), url,
            "--concurrency", str(CONC), "--duration", str(duration)]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    return {"rps": r["rps"], "p99_ms": r["p99_ms"], "errors": r["errors"]}


def _repin_stub(parent: int, stop: threading.Event) -> None:
    """Move loadgate's stub child (found by its command line) onto STUB_CPU."""
    done: set[int] = set()
    while not stop.is_set():
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            for pid in map(int, task.read_text().split()):
                if pid in done:
                    continue
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                    if b"stub_upstream" in cmd:
                        for tid in os.listdir(f"/proc/{pid}/task"):
                            os.sched_setaffinity(int(tid), {STUB_CPU})
                        done.add(pid)
                except (FileNotFoundError, ProcessLookupError, PermissionError):
                    pass
        stop.wait(0.05)


def run_loadgate(ttft_ms: float, duration: float) -> dict[str, float]:
    out_file = OUT / f"peers-loadgate-ttft{ttft_ms:.0f}.json"
    argv = [*_pin(LOAD_CPU), str(ROOT / ".venv" / "bin" / "loadgate"), "run", "calibrate",
            "--out", str(out_file),
            "--set", f"load.duration={duration:.0f}s", "--set", "load.warmup=2s",
            "--set", f"load.concurrency={CONC}", "--set", "load.stream_ratio=0.0",
            "--set", "stub.port=0", "--set", f"stub.ttft_ms={ttft_ms}",
            "--set", "stub.itl_ms=0", "--set", "stub.output_tokens=16"]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stop = threading.Event()
    t = threading.Thread(target=_repin_stub, args=(proc.pid, stop), daemon=True)
    t.start()
    _, err = proc.communicate(timeout=duration + 120)
    stop.set()
    t.join()
    if not out_file.exists():
        raise RuntimeError(f"loadgate exit {proc.returncode}: {err.decode()[-500:]}")
    r = json.loads(out_file.read_text())
    return {"rps": r["requests"]["throughput_rps"], "p99_ms": r["metrics"]["e2e_ms"]["p99"],
            "errors": r["requests"]["failed"],
            "note": f"{'max' if ttft_ms == 0 else 'p99'} run: verdict {r['verdict']}"}  # fmt: skip


TOOLS = ("wrk", "loadgate", "locust", "aiohttp")


def measure(duration: float) -> dict[str, dict[str, dict[str, float]]]:
    res: dict[str, dict[str, dict[str, float]]] = {t: {} for t in TOOLS}
    for scen, ttft in (("max", 0.0), ("p99_50ms", 50.0)):
        stub = Stub(ttft)
        try:
            for tool in TOOLS:
                print(f"[peers] {scen}: {tool} …", file=sys.stderr, flush=True)
                try:
                    if tool == "loadgate":
                        r = run_loadgate(ttft, duration)
                    else:
                        r = {"wrk": run_wrk, "locust": run_locust, "aiohttp": run_aiohttp}[tool](
                            stub.url, duration
                        )
                except Exception as e:  # one tool failing must not hide the others
                    r = {"rps": float("nan"), "p99_ms": float("nan"), "errors": -1,
                         "note": f"{type(e).__name__}: {e}"[:200]}  # type: ignore[dict-item]  # fmt: skip
                res[tool][scen] = r
        finally:
            stub.close()
    return res


def render(res: dict[str, dict[str, dict[str, float]]], duration: float) -> str:
    wrk_rps = res["wrk"]["max"]["rps"]
    wrk_p99 = res["wrk"]["p99_50ms"]["p99_ms"]
    lines = [
        f"| tool | max req/s (0 ms stub) | × wrk | p99 ms @ {CONC} conc, 50 ms stub | × wrk "
        "| notes |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for tool in TOOLS:
        mx, lat = res[tool].get("max", {}), res[tool].get("p99_50ms", {})
        notes = "; ".join(str(x) for x in (mx.get("note"), lat.get("note")) if x)
        errs = [int(d.get("errors", 0)) for d in (mx, lat)]
        if any(errs):
            notes = f"errors {errs[0]}/{errs[1]}; {notes}"
        lines.append(
            f"| {tool} | {mx.get('rps', float('nan')):,.0f} | {mx.get('rps', 0) / wrk_rps:.2f} "
            f"| {lat.get('p99_ms', float('nan')):.1f} | {lat.get('p99_ms', 0) / wrk_p99:.2f} "
            f"| {notes} |"
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per tool per scenario")
    ap.add_argument("--readme", action="store_true", help="write the table into the README")
    a = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")
    OUT.mkdir(parents=True, exist_ok=True)
    res = measure(a.duration)
    (OUT / "peers.json").write_text(json.dumps(res, indent=1))
    table = render(res, a.duration)
    print(table)
    if a.readme:
        replace_section("## Harness vs peers", _readme_body(table, a.duration))
    return 0


def _readme_body(table: str, duration: float) -> str:
    return f"""Same machine, same stub, one run of `.venv/bin/python benchmarks/harness_peers.py
--duration {duration:.0f} --readme` ({time.strftime("%Y-%m-%d")}). Non-streamed chat completions,
{CONC} connections, {duration:.0f} s per tool per scenario (loadgate adds a 2 s warm-up it
excludes). Load tool pinned to CPU 0, stub to CPU 1 (`taskset`). Ratios are against wrk
(C, one thread): the reference for "how much can one core push through loopback". In the
p99 column the true service time is 50 ms; a tool's excess over 50 ms is its own cost.
loadgate's own verdict on the max run is `invalid` by design: driving a zero-latency stub
flat out makes the harness the bottleneck, which is exactly what its self-monitor reports.

{table}

Raw figures: benchmarks/out/peers.json; loadgate's full results:
benchmarks/out/peers-loadgate-ttft*.json.
"""


if __name__ == "__main__":
    raise SystemExit(main())
