"""The bundled reference gateway: a small, production-shaped LLM API pass-through proxy.

It is what ``loadgate run`` measures when no other gateway is named: an aiohttp
low-level server that checks client keys against an LRU auth cache (a miss costs a
simulated database lookup), forwards OpenAI/Anthropic requests byte for byte to one
upstream over a warm connection pool, streams responses through without buffering,
exports Prometheus counters and drains in-flight requests on SIGTERM.

The harness core never imports this package; it launches it as
``python -m reference_gateway ...`` (see ``docs/reference-gateway.md``).
"""

from __future__ import annotations

from reference_gateway._auth import AuthCache, KeyValidator
from reference_gateway._config import Config, parse_args

__all__ = ["AuthCache", "Config", "KeyValidator", "parse_args"]
