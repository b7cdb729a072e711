"""Stub non-streaming throughput against a bare aiohttp hello world, same run, same pins.

Both servers run one process on CPU 1 (taskset), uvloop; wrk runs on CPU 0 (1 thread,
--conns connections, a POST of a chat completion body via a Lua script). Rounds
alternate stub / peer so drift hits both. Peers:

* ``hello-app``: the aiohttp hello world from its docs - ``web.Application``, one
  route, default ``run_app`` settings (router + access-log object, logging not
  configured) - the ratio target (>= 1.0) is against this one;
* ``hello-lowlevel``: the same handler on the low-level ``web.Server`` (no router,
  no access log): the floor of aiohttp itself, shown for honesty.

The stub does real work per request (reads and parses the JSON, derives 16 tokens
of content, builds a ~480-byte completion, writes a ledger record); the peers
return 13 bytes without reading the body.

    .venv/bin/python benchmarks/stub_vs_aiohttp.py --duration 10 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
SERVER_CPU, LOAD_CPU = 1, 0
# A new correlation id per request, as the harness sends: the stub derives fresh
# content each time (no cache can help it).
LUA = """
counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"model":"gpt-4o-mini","max_tokens":16,"stream":false,' ..
    '"messages":[{"role":"user","content":"Say something. [loadgate:%016x]"}]}', counter)
  return wrk.format("POST", nil, {["content-type"] = "application/json",
    ["authorization"] = "Bearer sk-lg-bench"}, body)
end
"""


def serve_hello(port: int, lowlevel: bool) -> None:
    import uvloop
    from aiohttp import web

    async def hello(request: web.BaseRequest) -> web.Response:
        return web.Response(text="Hello, World!")

    if not lowlevel:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", hello)
        uvloop.install()
        web.run_app(app, host="127.0.0.1", port=port, print=None)
        return

    async def main() -> None:
        import asyncio

        server = web.Server(hello, access_log=None)
        loop = asyncio.get_running_loop()
        await loop.create_server(server, "127.0.0.1", port)
        await asyncio.Event().wait()

    uvloop.run(main())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not come up")


def start(kind: str, port: int) -> subprocess.Popen[bytes]:
    pin = ["taskset", "-c", str(SERVER_CPU)]
    if kind == "stub":
        argv = [PY, "-m", "stub_upstream", "--port", str(port), "--ttft-ms", "0",
                "--itl-ms", "0", "--tokens", "16"]  # fmt: skip
    else:
        argv = [PY, __file__, "--serve-hello", str(port)]
        if kind == "hello-lowlevel":
            argv.append("--lowlevel")
    proc = subprocess.Popen([*pin, *argv], cwd=ROOT, stdout=subprocess.DEVNULL)
    wait_up(port, proc)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cpu_s(pid: int) -> float:
    """utime + stime of a process, seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(port: int, lua: Path, duration: int, conns: int) -> tuple[float, int, int]:
    argv = ["taskset", "-c", str(LOAD_CPU), "wrk", "-t1", f"-c{conns}", f"-d{duration}s",
            "-s", str(lua), f"http://127.0.0.1:{port}/v1/chat/completions"]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert m, out
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    n = re.search(r"(\d+) requests in", out)
    assert n, out
    return float(m.group(1)), int(bad.group(1)) if bad else 0, int(n.group(1))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=int, default=10, help="seconds per wrk round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--conns", type=int, default=50)
    p.add_argument("--serve-hello", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--lowlevel", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.serve_hello:
        serve_hello(a.serve_hello, a.lowlevel)
        return 0
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get update && apt-get install -y wrk", file=sys.stderr)
        return 2
    if (os.cpu_count() or 1) < 2:
        print("needs 2 CPUs (server on CPU 1, wrk on CPU 0)", file=sys.stderr)
        return 2
    kinds = ("stub", "hello-app", "hello-lowlevel")
    rps: dict[str, list[float]] = {k: [] for k in kinds}
    cpu_us: dict[str, list[float]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory() as tmp:
        lua = Path(tmp) / "chat.lua"
        lua.write_text(LUA)
        for r in range(a.rounds):
            for kind in kinds:
                port = free_port()
                proc = start(kind, port)
                try:
                    wrk(port, lua, 2, a.conns)  # warm-up, discarded
                    c0 = cpu_s(proc.pid)
                    value, bad, n_req = wrk(port, lua, a.duration, a.conns)
                    cpu_us[kind].append((cpu_s(proc.pid) - c0) / n_req * 1e6)
                    if kind == "stub":
                        url = f"http://127.0.0.1:{port}/_loadgate/ledger"
                        with urllib.request.urlopen(url) as resp:
                            n = len(resp.read()) // 80
                        assert n > 0, "stub ledger empty"
                finally:
                    stop(proc)
                if bad:
                    print(f"  ! {kind}: {bad} non-2xx answers", file=sys.stderr)
                rps[kind].append(value)
                print(
                    f"round {r + 1} {kind:15s} {value:10.0f} req/s"
                    f"  {cpu_us[kind][-1]:6.1f} server CPU us/req",
                    flush=True,
                )
    med = {k: statistics.median(v) for k, v in rps.items()}
    print()
    print(f"server pinned to CPU {SERVER_CPU}, wrk -t1 -c{a.conns} pinned to CPU {LOAD_CPU}; "
          f"{a.rounds} rounds x {a.duration} s, medians")  # fmt: skip
    cpu = {k: statistics.median(v) for k, v in cpu_us.items()}
    for k in kinds:
        spread = (max(rps[k]) - min(rps[k])) / med[k] * 100 if med[k] else 0.0
        print(f"  {k:15s} {med[k]:10.0f} req/s  (spread {spread:.1f} % of median)"
              f"  {cpu[k]:6.1f} server CPU us/req")  # fmt: skip
    print(
        f"  ratio stub / hello-app      = {med['stub'] / med['hello-app']:.2f} req/s"
        f", {cpu['hello-app'] / cpu['stub']:.2f} by CPU per request  (target >= 1.0)"
    )
    print(
        f"  ratio stub / hello-lowlevel = {med['stub'] / med['hello-lowlevel']:.2f} req/s"
        f", {cpu['hello-lowlevel'] / cpu['stub']:.2f} by CPU per request"
    )
    busy = os.getloadavg()[0]
    if busy > 1.5:
        print(f"  ! load average {busy:.1f} on {os.cpu_count()} CPUs: other processes competed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
