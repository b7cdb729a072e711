"""The harness's own Prometheus endpoint during a run (``--metrics-port``).

A dashboard watching a long soak scrapes ``/metrics`` here to see what loadgate
sees while it runs; the result file stays the record. The server is an aiohttp
handler on the run's own event loop — no thread, so nothing competes with the
load loop for the GIL beyond the scrape itself — and the metrics live in a
private prometheus_client registry (its text exposition format, none of its
process-wide default collectors).

Series:
    loadgate_requests_total{mode="stream"|"non_stream", outcome="ok"|"error"}  counter
    loadgate_integrity_violations_total{class}                                counter
    loadgate_inflight                                                         gauge
    loadgate_overhead_p99_ms        overhead p99 of the last completed interval gauge
    loadgate_loop_lag_ms            harness event-loop lag, latest tick        gauge
"""

from __future__ import annotations

from typing import Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge
from prometheus_client.exposition import generate_latest

from loadgate.client.observation import Observation
from loadgate.observe.observer import LoadStatus, RunObserver

__all__ = ["LiveMetrics"]


class _Done(Protocol):
    """What :meth:`LiveMetrics.observe` reads of an Observation."""

    @property
    def stream(self) -> bool: ...
    @property
    def error(self) -> str | None: ...
    @property
    def violation(self) -> str | None: ...


class LiveMetrics(RunObserver):
    """``await start()`` on the run's loop, update from the hot path, ``await stop()``.

    As a run observer it starts with the load and stops with it.
    """

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self._want_port = port
        self._port: int | None = None
        self._runner: web.AppRunner | None = None
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter(
            "loadgate_requests",
            "Requests completed by the harness, by mode and outcome.",
            ("mode", "outcome"),
            registry=self.registry,
        )
        self._violations = Counter(
            "loadgate_integrity_violations",
            "Integrity violations found in responses, by class.",
            ("class",),
            registry=self.registry,
        )
        self._inflight = Gauge(
            "loadgate_inflight", "Requests currently outstanding.", registry=self.registry
        )
        self._overhead_p99 = Gauge(
            "loadgate_overhead_p99_ms",
            "Proxy overhead p99 of the last completed interval, ms.",
            registry=self.registry,
        )
        self._loop_lag = Gauge(
            "loadgate_loop_lag_ms",
            "Harness event-loop lag, latest tick, ms.",
            registry=self.registry,
        )
        self._status: LoadStatus | None = None
        # Children resolved once: labels() takes a lock and hashes labels on every call.
        self._req_child = {
            (stream, ok): self._requests.labels(
                "stream" if stream else "non_stream", "ok" if ok else "error"
            )
            for stream in (True, False)
            for ok in (True, False)
        }

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with port 0); after start()."""
        if self._port is None:
            raise RuntimeError("LiveMetrics.port is known only after start()")
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._want_port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        del request
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    # -- updates (hot path: constant work, no allocation beyond prometheus_client's) --

    def request_done(self, stream: bool, ok: bool) -> None:
        self._req_child[(stream, ok)].inc()

    def violation(self, cls: str) -> None:
        self._violations.labels(cls).inc()

    def set_inflight(self, n: int) -> None:
        self._inflight.set(n)

    def set_overhead_p99_ms(self, x: float) -> None:
        self._overhead_p99.set(x)

    def set_loop_lag_ms(self, x: float) -> None:
        self._loop_lag.set(x)

    def observe(self, obs: _Done) -> None:
        """One finished request (an ``Observation``): its outcome and any violation."""
        self.request_done(obs.stream, obs.error is None)
        if obs.violation is not None:
            self.violation(obs.violation)

    # -- run observer ------------------------------------------------------------------

    async def load_started(self, status: LoadStatus, total_s: float, warmup_s: float) -> None:
        self._status = status
        await self.start()

    def tick(self) -> None:
        status = self._status
        if status is None:
            return
        self.set_inflight(status.inflight)
        p99 = status.last_overhead_p99_ms()
        if p99 is not None:
            self.set_overhead_p99_ms(p99)
        lag = status.loop_lag_ms()
        if lag is not None:
            self.set_loop_lag_ms(lag)

    def observed(self, obs: Observation, measured: bool) -> None:
        self.observe(obs)

    async def load_ended(self) -> None:
        self._status = None
        await self.stop()
