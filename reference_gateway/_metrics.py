"""The gateway's Prometheus series: plain counters on the hot path, exposition at scrape time.

A request only bumps Python ints and dict entries; ``prometheus_client`` turns them into
the text format when ``/metrics`` is scraped, through a collector on a registry of the
gateway's own (no process/GC collectors, no per-increment locks).

Names are the contract loadgate's bundled profiles select on:
``auth_cache_hits_total``, ``auth_cache_misses_total``, ``auth_cache_entries``,
``gateway_requests_total{route,status}``, ``gateway_requests_in_flight``,
``gateway_upstream_errors_total{route,reason}``, ``gateway_added_delay_seconds_total``,
``gateway_added_delay_requests_total``,
``gateway_upstream_requests_total{upstream}`` (``host:port`` of each ``--upstream``);
with ``--trace-dsn``:
``gateway_trace_rows_written_total``, ``gateway_trace_rows_dropped_total{reason}``,
``gateway_trace_batches_total``, ``gateway_trace_queue_rows``.

``--defect-bad-metric`` (tests) adds ``gateway_key_requests{key}``: a counter without
``_total`` labelled by client key, the two mistakes the metrics lint must catch. It is
written as raw text, the way a hand-rolled exporter would: prometheus-client itself
always names a counter ``_total``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from reference_gateway._traces import TraceWriter

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


def _zero() -> int:
    return 0


class Metrics(Collector):
    """Counters the proxy bumps; the callables are read from their owners at scrape time."""

    def __init__(
        self,
        cache_hits: Callable[[], int] = _zero,
        cache_misses: Callable[[], int] = _zero,
        cache_entries: Callable[[], int] = _zero,
        in_flight: Callable[[], int] = _zero,
        upstream_sent: Callable[[], list[tuple[str, int]]] = list,
    ) -> None:
        self.requests: dict[tuple[str, int], int] = {}
        self.upstream_errors: dict[tuple[str, str], int] = {}
        self.added_delay_s = 0.0
        self.added_delay_count = 0
        self.per_key: dict[str, int] = {}  # --defect-bad-metric only
        self.cache_hits = cache_hits
        self.cache_misses = cache_misses
        self.cache_entries = cache_entries
        self.in_flight = in_flight
        self.upstream_sent = upstream_sent
        self.traces: TraceWriter | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def count_request(self, route: str, status: int) -> None:
        k = (route, status)
        self.requests[k] = self.requests.get(k, 0) + 1

    def count_key(self, key: str) -> None:
        self.per_key[key] = self.per_key.get(key, 0) + 1

    def count_upstream_error(self, route: str, reason: str) -> None:
        k = (route, reason)
        self.upstream_errors[k] = self.upstream_errors.get(k, 0) + 1

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "auth_cache_hits", "Auth LRU cache hits.", value=self.cache_hits()
        )
        yield CounterMetricFamily(
            "auth_cache_misses",
            "Auth LRU cache misses (each paid the lookup cost).",
            value=self.cache_misses(),
        )
        yield GaugeMetricFamily(
            "auth_cache_entries", "Keys currently held by the auth cache.", self.cache_entries()
        )
        req = CounterMetricFamily(
            "gateway_requests",
            "Requests answered, by route and HTTP status.",
            labels=["route", "status"],
        )
        for (route, status), n in sorted(self.requests.items()):
            req.add_metric([route, str(status)], n)
        yield req
        yield GaugeMetricFamily(
            "gateway_requests_in_flight", "Proxied requests being served now.", self.in_flight()
        )
        err = CounterMetricFamily(
            "gateway_upstream_errors",
            "Upstream calls that failed in transport (before or during the response).",
            labels=["route", "reason"],
        )
        for (route, reason), n in sorted(self.upstream_errors.items()):
            err.add_metric([route, reason], n)
        yield err
        sent = CounterMetricFamily(
            "gateway_upstream_requests",
            "Requests written to each upstream (round-robin over --upstream), by host:port.",
            labels=["upstream"],
        )
        for label, n in self.upstream_sent():
            sent.add_metric([label], n)
        yield sent
        yield CounterMetricFamily(
            "gateway_added_delay_seconds",
            "Delay actually slept for --delay-ms (timers overshoot: the known delay a"
            " benchmark recovers is this sum over its count).",
            value=self.added_delay_s,
        )
        yield CounterMetricFamily(
            "gateway_added_delay_requests",
            "Requests that slept --delay-ms.",
            value=self.added_delay_count,
        )
        if self.traces is not None:
            yield from _trace_metrics(self.traces)

    def exposition(self) -> bytes:
        text = generate_latest(self.registry)
        if not self.per_key:
            return text
        lines = [
            b"# HELP gateway_key_requests Requests by client key.",
            b"# TYPE gateway_key_requests counter",
        ]
        lines += [
            b'gateway_key_requests{key="%s"} %d' % (key.encode("latin-1", "replace"), n)
            for key, n in sorted(self.per_key.items())
        ]
        return text + b"\n".join(lines) + b"\n"


def _trace_metrics(traces: TraceWriter) -> Iterator[Metric]:
    f = traces.figures
    yield CounterMetricFamily(
        "gateway_trace_rows_written", "Trace rows written to the database.", value=f.written
    )
    dropped = CounterMetricFamily(
        "gateway_trace_rows_dropped",
        "Trace rows never written, by reason (queue_full, write_error, shutdown, defect).",
        labels=["reason"],
    )
    for reason, n in f.dropped.items():
        dropped.add_metric([reason], n)
    yield dropped
    yield CounterMetricFamily(
        "gateway_trace_batches", "COPY batches written to the database.", value=f.batches
    )
    yield GaugeMetricFamily(
        "gateway_trace_queue_rows", "Trace rows waiting to be written.", traces.queued
    )
