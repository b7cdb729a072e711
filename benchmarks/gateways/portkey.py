"""Portkey AI gateway (npm `@portkey-ai/gateway`) in front of the stub.

Installed into benchmarks/out/portkey with `@hono/node-server` pinned to 1.13.5 (what
Portkey's own lockfile resolved): later releases hand Portkey immutable Response headers
and calls fail with HTTP 500 `TypeError: immutable` in updateHeaders (Portkey-AI/gateway
#1389, #1550). On this machine (Node 20) 1.14.2 already breaks every streamed call.
Its start script calls serve({fetch, port}) with no hostname, i.e. every interface;
portkey-loopback.cjs (preloaded with --require) fills in 127.0.0.1. Routing to the stub
uses the custom-host headers in HEADERS, which the load generator must send (load.headers).

    python benchmarks/gateways/portkey.py setup|start|stop|check [--port N]
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import OUT, STUB_URL, Launch, cli

__all__ = ["GATEWAY_VERSION", "HONO_NODE_SERVER", "headers", "launch", "setup"]

NAME = "portkey"
DIR = OUT / "portkey"
GATEWAY_VERSION = "1.15.2"
HONO_NODE_SERVER = "1.13.5"
PRELOAD = Path(__file__).resolve().parent / "portkey-loopback.cjs"
ENTRY = DIR / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"


def headers(upstream: str = STUB_URL) -> dict[str, str]:
    return {"x-portkey-provider": "openai", "x-portkey-custom-host": upstream + "/v1"}


def _installed(pkg: str) -> str | None:
    manifest = DIR / "node_modules" / pkg / "package.json"
    if not manifest.exists():
        return None
    return str(json.loads(manifest.read_text())["version"])


def setup() -> None:
    """Idempotent npm install of the pinned gateway and node-server into DIR."""
    if (
        _installed("@portkey-ai/gateway") == GATEWAY_VERSION
        and _installed("@hono/node-server") == HONO_NODE_SERVER
    ):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm not found (Debian: apt-get install npm)")
    DIR.mkdir(parents=True, exist_ok=True)
    pin = {"@hono/node-server": HONO_NODE_SERVER}
    manifest = {
        "name": "loadgate-portkey-bench",
        "private": True,
        "dependencies": {"@portkey-ai/gateway": GATEWAY_VERSION, **pin},
        "overrides": pin,  # the gateway's own range (^1.3.3) would pick a broken release
    }
    (DIR / "package.json").write_text(json.dumps(manifest, indent=1))
    subprocess.run([npm, "install", "--no-audit", "--no-fund"], cwd=DIR, check=True)


def launch(port: int, upstream: str = STUB_URL) -> Launch:
    node = shutil.which("node") or "node"
    argv = [node, "--require", str(PRELOAD), str(ENTRY), f"--port={port}", "--headless"]
    url = f"http://127.0.0.1:{port}"
    env = {"NODE_ENV": "production", "LOADGATE_BIND_HOST": "127.0.0.1"}
    return Launch(NAME, argv, url, ready_url=url + "/", env=env, headers=headers(upstream))


if __name__ == "__main__":
    raise SystemExit(cli(NAME, __doc__, launch, 18103, setup, start_timeout_s=60))
