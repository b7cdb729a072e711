"""Around the load: the measured window's edges, the gateway watch, the drain check.

While the load runs, two tasks keep time beside it:

* :func:`mark_edges` scrapes the gateway's Prometheus endpoint at the measured
  window's start and end, and at the end of sending SIGTERMs a launched gateway
  while the last requests are still in flight — the drain check of the Phase 2
  operations list. It runs on its own timer, not the watch's tick, so the
  SIGTERM lands on time;
* :func:`watch` notices a launched gateway dying (the run stops: the gateway's
  result is ``fail``) and ticks the observers.

:func:`drain_figures` says afterwards what the drain check found.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from loadgate.gateway.lifecycle import Gateway
from loadgate.gateway.scrape import Scraper
from loadgate.load.generator import Engine
from loadgate.load.outcome import EngineOutcome
from loadgate.load.schedule import Windows
from loadgate.observe.observer import RunObserver
from loadgate.pipeline.placement import Placement
from loadgate.pipeline.shard import Placed
from loadgate.result.model import Drain, MetricsLint, RevocationFigures

__all__ = ["RunState", "drain_figures", "mark_edges", "sleep_until", "watch"]

WATCH_TICK_S = 0.25


@dataclass
class RunState:
    """What the pipeline's steps share while one run goes."""

    stop: asyncio.Event = field(default_factory=asyncio.Event)
    stop_reason: str | None = None
    engine: Engine | None = None
    outcome: EngineOutcome | None = None
    scraper: Scraper | None = None
    #: exit code of a launched gateway that died during the load
    gateway_rc: int | None = None
    #: when SIGTERM went to the gateway at the end of sending (0: it did not)
    t_term: int = 0
    placement: Placement | None = None
    end_marked: bool = False
    #: what [probes.revocation] measured (None: not configured)
    revocation: RevocationFigures | None = None
    #: [checks.metrics]: lints the gateway's /metrics once, at the end of sending
    lint: Callable[[], Awaitable[MetricsLint]] | None = None
    metrics_lint: MetricsLint | None = None
    #: a shard: its share of the profile as placed on the common window (None: not sharded)
    placed: Placed | None = None

    async def run_lint(self) -> None:
        """The metrics lint, once (it never raises: a failed scrape is its ``error``)."""
        if self.lint is not None and self.metrics_lint is None:
            self.metrics_lint = await self.lint()

    def request_stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        self.stop.set()
        if self.engine is not None:
            self.engine.stop(reason)


async def sleep_until(t_ns: int) -> None:
    # Loop: uvloop's millisecond timers can wake a little early (see the generator).
    while (delay := (t_ns - time.monotonic_ns()) / 1e9) > 0:  # noqa: ASYNC110
        await asyncio.sleep(delay)


async def mark_edges(
    state: RunState, gw: Gateway, windows: Windows, *, drain_check: bool, launched: bool
) -> None:
    """Scrape at the window edges; at the end of sending, SIGTERM a launched gateway."""
    scraper = state.scraper
    if scraper is not None and windows.measure_start_ns > windows.start_ns:
        await sleep_until(windows.measure_start_ns)
        with contextlib.suppress(Exception):
            await scraper.mark_start()
    await sleep_until(windows.end_ns)
    if scraper is not None:
        with contextlib.suppress(Exception):
            await scraper.mark_end()
    # Before the SIGTERM: a draining gateway may no longer answer /metrics.
    await state.run_lint()
    state.end_marked = True
    if launched and drain_check and gw.returncode() is None:
        state.t_term = time.monotonic_ns()
        gw.terminate()


async def watch(state: RunState, gw: Gateway, observers: Sequence[RunObserver]) -> None:
    """Gateway death and observer ticks, until cancelled."""
    while True:
        if gw.pid is not None and not state.t_term:
            rc = gw.returncode()
            if rc is not None:
                state.gateway_rc = rc
                state.request_stop("gateway_died")
                return
        for obs in observers:
            obs.tick()
        await asyncio.sleep(WATCH_TICK_S)


async def drain_figures(
    state: RunState, gw: Gateway, *, checked: bool, stop_timeout_s: float
) -> Drain:
    """What the drain check found (docs/method.md, "Drain check").

    In flight at SIGTERM: requests the gateway had accepted *and* forwarded — the
    stub received their upstream call before the SIGTERM — and that had not
    completed by then (both on CLOCK_MONOTONIC). Dropped: those of them that then
    failed (an error or a corrupted answer). Requests the gateway had not
    forwarded before SIGTERM and that failed are counted apart (``refused``): a
    draining gateway may turn new work away; a dropped one lost work it held.
    """
    if not checked:
        return Drain(checked=False)
    if not state.t_term:
        why = f"run stopped: {state.stop_reason}" if state.stop_reason else "load ended early"
        return Drain(checked=False, reason=why)
    rc = await gw.wait(stop_timeout_s)
    out = state.outcome
    if out is None:
        return Drain(checked=False, reason="no load outcome", exit_code=rc)
    t = state.t_term
    held = [r for r in out.tail if 0 < r.t_forwarded < t and not 0 < r.t_done <= t]
    dropped = sum(r.failed for r in held)
    refused = sum(r.failed for r in out.tail if not 0 < r.t_forwarded < t)
    return Drain(
        checked=True,
        in_flight_at_term=len(held),
        dropped=dropped,
        refused=refused,
        exit_code=rc,
        ok=dropped == 0 and rc == 0,
    )
