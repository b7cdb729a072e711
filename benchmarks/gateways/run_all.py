"""Run every real gateway through loadgate's phase2-gate (shortened) plus the calibrate floor.

For each gateway: install (idempotent), start it on 127.0.0.1 pointed at the stub port,
check one streamed and one plain completion through it against a throw-away stub (the
curl check), then `loadgate run phase2-gate --target URL --set load.duration=…` (loadgate
starts its own stub on that port), stop it. Results go to benchmarks/out/results/<name>.json,
what happened (commands, versions, errors) to benchmarks/out/results/meta.json; then
render_table.py writes the README table.

    .venv/bin/python benchmarks/gateways/run_all.py [--only nginx,litellm] [--duration 20s]
        [--stub-port 18000] [--readme]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import OUT, ROOT, Launch, check_chat, free_port, start, stop, wait_http

__all__ = ["GATEWAYS", "main"]

RESULTS = OUT / "results"
LOADGATE = ROOT / ".venv" / "bin" / "loadgate"
NO_CACHE = ["--set", "gateway.auth_cache.hits=", "--set", "gateway.auth_cache.misses="]

# name → (recipe module, extra `loadgate run` arguments, note for the table)
GATEWAYS: dict[str, tuple[str, list[str], str]] = {
    "reference": ("reference", [], "bundled; auth LRU 4096, 2 ms simulated miss"),
    "nginx": ("nginx", NO_CACHE, "1 worker, proxy_buffering off, keepalive 512 upstream"),
    "litellm": (
        "litellm",
        NO_CACHE,
        "master key only: virtual keys need Prisma engines from binaries.prisma.sh "
        "(unreachable here), so no key cache to measure",
    ),
    "portkey": ("portkey", NO_CACHE, "@hono/node-server pinned 1.13.5; custom-host headers"),
    "openai-forward": ("openai_forward", NO_CACHE, "uvicorn, 1 worker"),
}


def _version(name: str) -> str:
    def run(*argv: str) -> str:
        p = subprocess.run(argv, capture_output=True, text=True, check=False)
        return (p.stdout + p.stderr).strip()

    if name == "nginx":
        return run("nginx", "-v").replace("nginx version: ", "")
    if name in ("litellm", "openai-forward"):
        py = OUT / f"venv-{name}" / "bin" / "python"
        probe = f"import importlib.metadata as m; print(m.version({name!r}))"
        return f"{name} " + run(str(py), "-c", probe)
    if name == "portkey":
        nm = OUT / "portkey" / "node_modules"
        gw = json.loads((nm / "@portkey-ai/gateway/package.json").read_text())["version"]
        hs = json.loads((nm / "@hono/node-server/package.json").read_text())["version"]
        return f"@portkey-ai/gateway {gw}, @hono/node-server {hs}, node {run('node', '--version')}"
    return "git " + run("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD")


def _stub(port: int) -> subprocess.Popen[bytes]:
    argv = [str(ROOT / ".venv/bin/python"), "-m", "stub_upstream", "--host", "127.0.0.1",
            "--port", str(port), "--ttft-ms", "50", "--itl-ms", "10", "--tokens", "16"]  # fmt: skip
    proc = subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not wait_http(f"http://127.0.0.1:{port}/v1/models", 0.5):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("stub did not start for the curl check")
        time.sleep(0.2)
    return proc


def _end(proc: subprocess.Popen[bytes], port: int) -> None:
    """Stop the check stub (its whole group) and wait until loadgate can bind its port."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    for _ in range(100):  # bounded: 10 s
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
                return
            except OSError:
                time.sleep(0.1)


def _loadgate(profile: str, out: Path, args: list[str], timeout_s: float) -> dict[str, Any]:
    argv = [str(LOADGATE), "run", profile, "--out", str(out), *args]
    out.unlink(missing_ok=True)  # never let a stale result stand for this run
    t0 = time.monotonic()
    p = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s)
    (out.with_suffix(".log")).write_text(p.stdout + p.stderr)
    rel = [shlex.quote(a.replace(str(ROOT) + "/", "")) for a in argv]
    return {
        "command": " ".join(["loadgate", *rel[1:]]),
        "exit_code": p.returncode,
        "wall_s": round(time.monotonic() - t0, 1),
        "stderr_tail": p.stderr.strip().splitlines()[-3:] if p.returncode not in (0, 1) else [],
    }


def run_gateway(name: str, stub_port: int, duration: str, warmup: str) -> dict[str, Any]:
    module, extra, note = GATEWAYS[name]
    rec = importlib.import_module(module)
    meta: dict[str, Any] = {"note": note}
    if hasattr(rec, "setup"):
        rec.setup()
    meta["version"] = _version(name)
    # The curl check uses its own stub port and gateway instance: the stub cannot re-bind a
    # port while the gateway's closed keep-alive connections to it sit in TIME_WAIT.
    check_port = free_port()
    check = rec.launch(free_port(), f"http://127.0.0.1:{check_port}")
    start(check, timeout_s=120)
    try:
        stub = _stub(check_port)
        try:
            meta["curl_check"] = check_chat(check)
        except Exception as e:
            meta["curl_check"] = {"error": str(e)[:300]}
        finally:
            _end(stub, check_port)
    finally:
        stop(check.name)
    launch: Launch = rec.launch(free_port(), f"http://127.0.0.1:{stub_port}")
    start(launch, timeout_s=120)
    try:
        args = ["--target", launch.url, "--set", f"stub.port={stub_port}",
                "--set", f"load.duration={duration}",
                "--set", f"load.warmup={warmup}", *extra]  # fmt: skip
        if launch.headers:
            inline = ", ".join(f'"{k}" = "{v}"' for k, v in launch.headers.items())
            args += ["--set", f"load.headers={{{inline}}}"]
        if name == "litellm":
            keys = OUT / NAME_KEYS
            keys.write_text(launch.api_key + "\n")
            args += ["--set", f"auth.keys_file={keys}", "--set",
                     f"gateway.metrics_url={launch.url}/metrics/"]  # fmt: skip
        meta.update(_loadgate("phase2-gate", RESULTS / f"{name}.json", args, 600))
    finally:
        stop(launch.name)
    return meta


NAME_KEYS = "litellm-keys.txt"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(GATEWAYS))
    ap.add_argument("--duration", default="20s")
    ap.add_argument("--warmup", default="5s")
    ap.add_argument("--stub-port", type=int, default=18000)
    ap.add_argument("--no-calibrate", action="store_true")
    ap.add_argument("--readme", action="store_true")
    a = ap.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta_file = RESULTS / "meta.json"
    meta: dict[str, Any] = json.loads(meta_file.read_text()) if meta_file.exists() else {}
    meta["machine"] = {"host": platform.node(), "platform": platform.platform(),
                       "cpus": len(__import__("os").sched_getaffinity(0)),
                       "python": platform.python_version(),
                       "started_at": time.strftime("%Y-%m-%d %H:%M:%S %Z")}  # fmt: skip
    meta.setdefault("gateways", {})
    if not a.no_calibrate:
        print("[run_all] calibrate (harness floor)", file=sys.stderr, flush=True)
        meta["calibrate"] = _loadgate(
            "calibrate", RESULTS / "calibrate.json",
            ["--set", f"load.duration={a.duration}", "--set", f"load.warmup={a.warmup}"], 600,
        )  # fmt: skip
    for i, name in enumerate(n.strip() for n in a.only.split(",") if n.strip()):
        print(f"[run_all] {name}", file=sys.stderr, flush=True)
        # one stub port per gateway: the stub cannot re-bind a port that the previous
        # gateway's closed upstream connections still hold in TIME_WAIT
        try:
            meta["gateways"][name] = run_gateway(name, a.stub_port + i, a.duration, a.warmup)
        except Exception as e:  # the table says why, with the error
            meta["gateways"][name] = {
                "note": GATEWAYS[name][2],
                "error": f"{type(e).__name__}: {e}",
            }
        meta_file.write_text(json.dumps(meta, indent=1))
    meta_file.write_text(json.dumps(meta, indent=1))
    if a.readme:
        from render_table import write_readme

        write_readme()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
