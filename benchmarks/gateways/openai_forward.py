"""openai-forward (PyPI) in front of the stub: a small FastAPI/aiohttp forwarding proxy.

Installed into its own venv, benchmarks/out/venv-openai-forward. Its `aifd run` binds
0.0.0.0, so the recipe runs the same ASGI app under uvicorn on 127.0.0.1 instead, with
FORWARD_CONFIG routing "/" to the stub as an "openai" type forward (no caching, no logs).

    python benchmarks/gateways/openai_forward.py setup|start|stop|check [--port N]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import OUT, STUB_URL, Launch, cli

__all__ = ["VENV", "launch", "setup"]

NAME = "openai-forward"
VENV = OUT / "venv-openai-forward"


def setup() -> None:
    py = VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    if subprocess.run([str(py), "-c", "import openai_forward"], capture_output=True).returncode:
        # openai_forward imports yaml without declaring pyyaml
        pip = [str(py), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "openai-forward", "pyyaml"], check=True)


def launch(port: int, upstream: str = STUB_URL) -> Launch:
    forward = [{"base_url": upstream, "route": "/", "type": "openai"}]
    env = {
        "FORWARD_CONFIG": json.dumps(forward),
        "TIMEOUT": "60",
        "LOG_OPENAI": "false",
        "CACHE_OPENAI": "false",
        "TZ": os.environ.get("TZ", "UTC"),
    }
    argv = [str(VENV / "bin" / "python"), "-m", "uvicorn", "openai_forward.app:app",
            "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
            "--log-level", "warning"]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    return Launch(NAME, argv, url, ready_url=url + "/healthz", env=env)


if __name__ == "__main__":
    raise SystemExit(cli(NAME, __doc__, launch, 18104, setup))
