"""The gateway's Prometheus series, on a registry of its own (no process/GC noise).

Names are the contract loadgate's bundled profiles select on:
``auth_cache_hits_total``, ``auth_cache_misses_total``,
``gateway_requests_total{route,status}``, ``gateway_requests_in_flight``,
``gateway_upstream_errors_total{route,reason}``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.cache_hits = Counter("auth_cache_hits", "Auth LRU cache hits.", registry=r)
        self.cache_misses = Counter(
            "auth_cache_misses", "Auth LRU cache misses (each paid the lookup cost).", registry=r
        )
        self.requests = Counter(
            "gateway_requests",
            "Requests answered, by route and HTTP status.",
            ["route", "status"],
            registry=r,
        )
        self.in_flight = Gauge(
            "gateway_requests_in_flight", "Proxied requests being served now.", registry=r
        )
        self.upstream_errors = Counter(
            "gateway_upstream_errors",
            "Upstream calls that failed in transport (before or during the response).",
            ["route", "reason"],
            registry=r,
        )
        self.added_delay = Counter(
            "gateway_added_delay_seconds",
            "Delay actually slept for --delay-ms (timers overshoot: the known delay a"
            " benchmark recovers is this sum over its count).",
            registry=r,
        )
        self.added_delay_count = Counter(
            "gateway_added_delay_requests", "Requests that slept --delay-ms.", registry=r
        )
        self.auth_cache_size = Gauge(
            "auth_cache_entries", "Keys currently held by the auth cache.", registry=r
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
