"""The bundled reference gateway (python -m reference_gateway) in front of the stub.

Runs from the project .venv with its defaults (auth LRU 4096 entries, 2 ms simulated
miss, keys valid when they start with sk-lg-), the setting phase2-gate assumes.

    python benchmarks/gateways/reference.py start|stop|check [--port N]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, STUB_URL, Launch, cli

__all__ = ["launch"]

NAME = "reference"


def launch(port: int, upstream: str = STUB_URL) -> Launch:
    py = ROOT / ".venv" / "bin" / "python"
    argv = [str(py), "-m", "reference_gateway", "--upstream", upstream,
            "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    return Launch(NAME, argv, url, ready_url=url + "/metrics", cwd=ROOT)


if __name__ == "__main__":
    raise SystemExit(cli(NAME, __doc__, launch, 18105))
