"""The bundled reference gateway: a small, production-shaped LLM API pass-through proxy.

It is what ``loadgate run`` measures when no other gateway is named: an
``asyncio.Protocol`` server on uvloop whose HTTP/1.1 framing is httptools' C parser on
both sides. It checks client keys against an LRU auth cache (a miss costs a simulated
database lookup), forwards OpenAI/Anthropic requests byte for byte to its upstream (or,
given several, to each in turn) over a warm keep-alive pool per upstream, relays each
upstream read to the client as it arrives (no buffering of streams), exports Prometheus
counters and drains in-flight requests on SIGTERM.

Modules, in the order a request meets them: ``_downstream`` (client connections),
``_proxy`` (routes, auth, delay, forwarding), ``_upstream`` (pool and response
parsing), ``_relay`` (one request between the two), ``_wire`` (bytes the gateway
writes itself), ``_metrics``, ``_auth``, ``_config``, ``_server`` (lifecycle).

The harness core never imports this package; it launches it as
``python -m reference_gateway ...`` (see ``docs/reference-gateway.md``).
"""

from __future__ import annotations

from reference_gateway._auth import AuthCache, KeyValidator
from reference_gateway._config import Config, parse_args
from reference_gateway._server import GatewayServer

__all__ = ["AuthCache", "Config", "GatewayServer", "KeyValidator", "parse_args"]
