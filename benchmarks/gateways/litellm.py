"""LiteLLM proxy (PyPI `litellm[proxy]`) in front of the stub, fully offline.

Installed into its own venv, benchmarks/out/venv-litellm (it pins many packages; never
the project .venv). Every start-up fetch found in litellm's source is pointed at the
bundled copy by an env switch (OFFLINE_ENV); a dead HTTP(S) proxy catches anything we
missed, so a forgotten fetch fails at once instead of hanging on DNS, and shows in the log.

Virtual keys: LiteLLM keeps them in PostgreSQL through prisma-client-py, whose query and
schema engines are downloaded at first use from binaries.prisma.sh. No registry this
machine reaches ships them, so the proxy runs with its master key only (see README).

    python benchmarks/gateways/litellm.py setup|start|stop|check [--port N]
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import OUT, STUB_URL, Launch, cli

__all__ = ["MASTER_KEY", "OFFLINE_ENV", "VENV", "launch", "setup", "write_config"]

NAME = "litellm"
VENV = OUT / "venv-litellm"
MASTER_KEY = "sk-lg-litellm-master"

# One switch per remote fetch in litellm 1.10x (grep: raw.githubusercontent, *_url).
OFFLINE_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # model_prices_and_context_window.json
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",  # anthropic_beta_headers_config.json
    "LITELLM_LOCAL_AUTOROUTER_PRESETS": "True",  # autorouter_presets.json
    "LITELLM_LOCAL_POLICY_TEMPLATES": "True",  # policy templates (GitHub)
    "LITELLM_LOCAL_BLOG_POSTS": "True",  # docs.litellm.ai RSS in the admin UI
    "LITELLM_TELEMETRY": "False",
    "DISABLE_ADMIN_UI": "True",
    # tiktoken files ship inside litellm (default_encoding.py points TIKTOKEN_CACHE_DIR there)
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "NO_PROXY": "127.0.0.1,localhost",
}


def setup() -> None:
    """Idempotent install of litellm[proxy] + prometheus_client into VENV."""
    py = VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    probe = [str(py), "-c", "import litellm.proxy.proxy_server, prometheus_client"]
    if (
        subprocess.run(probe, capture_output=True, env=dict(os.environ, **OFFLINE_ENV)).returncode
        == 0
    ):
        return
    pip = [str(py), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "litellm[proxy]", "prometheus_client"], check=True)


def write_config(path: Path, upstream: str = STUB_URL) -> Path:
    path.write_text(
        f"""model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: {upstream}/v1
      api_key: sk-stub-upstream
  - model_name: claude-3-5-haiku-20241022
    litellm_params:
      model: anthropic/claude-3-5-haiku-20241022
      api_base: {upstream}
      api_key: sk-stub-upstream
  - model_name: text-embedding-3-small
    litellm_params:
      model: openai/text-embedding-3-small
      api_base: {upstream}/v1
      api_key: sk-stub-upstream
litellm_settings:
  callbacks: ["prometheus"]
  require_auth_for_metrics_endpoint: false
  drop_params: true
  num_retries: 0
  request_timeout: 60
general_settings:
  master_key: {MASTER_KEY}
"""
    )
    return path


def launch(port: int, upstream: str = STUB_URL, workers: int = 1) -> Launch:
    d = OUT / NAME
    d.mkdir(parents=True, exist_ok=True)
    conf = write_config(d / "config.yaml", upstream)
    argv = [str(VENV / "bin" / "litellm"), "--config", str(conf), "--host", "127.0.0.1",
            "--port", str(port), "--num_workers", str(workers)]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    return Launch(
        NAME, argv, url, ready_url=url + "/health/liveliness", env=OFFLINE_ENV, api_key=MASTER_KEY
    )


if __name__ == "__main__":
    raise SystemExit(cli(NAME, __doc__, launch, 18102, setup, start_timeout_s=120))
