#!/usr/bin/env python3
"""The Phase 2 gate through a gateway loadgate did not launch: nginx, with ``--target``.

Starts Debian's nginx (``scripts/install_nginx.sh``) as a plain SSE-safe reverse proxy
in front of the stub port loadgate will use, pinned to the upper half of the CPUs
(the ones loadgate leaves for an unknown gateway from three CPUs on; on a 2-CPU box
loadgate pins nothing and nginx gets CPU 1, shared), runs
``loadgate run`` against it and stops nginx by its PID. nginx has no auth cache, so by
default the hit-rate gate is dropped (a copy of phase2-gate.toml with that gate and
its selectors removed, as the README says for such gateways); ``--keep-auth-gate``
keeps it, and the verdict is then a decided ``fail`` naming the missing series.

    .venv/bin/python benchmarks/phase2_via_nginx.py [--duration 60s] [--keep-auth-gate]

Prints loadgate's summary and exits with its exit code.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "gateways"))
import nginx
from _common import ROOT, free_port, wait_http


def profile_without_auth_gate(out: Path) -> Path:
    text = (ROOT / "profiles" / "phase2-gate.toml").read_text(encoding="utf-8")
    text = text.replace('hits = "auth_cache_hits_total"', 'hits = ""')
    text = text.replace('misses = "auth_cache_misses_total"', 'misses = ""')
    text = text.replace('"gateway.auth_cache_hit_rate" = "> 0.90"\n', "")
    out.write_text(text, encoding="utf-8")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", default="60s")
    ap.add_argument("--keep-auth-gate", action="store_true")
    args = ap.parse_args()
    binary = nginx.find_nginx()
    if binary is None:
        print("nginx not installed: run scripts/install_nginx.sh", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="lg-nginx-"))
    port, stub_port = free_port(), free_port()
    conf = nginx.write_config(tmp, port, f"http://127.0.0.1:{stub_port}")
    cpus = sorted(os.sched_getaffinity(0))
    upper = cpus[-max(1, len(cpus) // 2) :] if len(cpus) >= 2 else cpus
    argv = [binary, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log"),
            "-g", "daemon off;"]  # fmt: skip
    proc = subprocess.Popen(["taskset", "-c", ",".join(map(str, upper)), *argv])
    try:
        wait_http(f"http://127.0.0.1:{port}/", timeout_s=10)
        profile = (
            "phase2-gate"
            if args.keep_auth_gate
            else str(profile_without_auth_gate(tmp / "phase2-nginx.toml"))
        )
        cmd = [sys.executable, "-m", "loadgate", "run", profile,
               "--target", f"http://127.0.0.1:{port}", "--set", f"stub.port={stub_port}",
               "--set", f"load.duration={args.duration}"]  # fmt: skip
        print(f"# nginx on CPU {','.join(map(str, upper))}; " + " ".join(cmd), flush=True)
        return subprocess.run(cmd, cwd=ROOT, check=False).returncode
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    raise SystemExit(main())
