"""What a run tells the outside while it goes: the observer interface.

The core prints nothing and serves nothing: a caller that wants a progress line
(the CLI), a live Prometheus endpoint (``--metrics-port``) or its own dashboard
passes observers to :func:`loadgate.run`. They are called on the run's event
loop, so they must be cheap and never block: :meth:`RunObserver.observed` runs
once per finished request, on the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from loadgate.client.observation import Observation

__all__ = ["LiveCounts", "LoadStatus", "RunObserver"]


@dataclass(frozen=True, slots=True)
class LiveCounts:
    """Requests finished so far (all windows), and how many failed or were corrupted."""

    done: int
    failed: int
    violations: int


class LoadStatus(Protocol):
    """A running load, as observers may read it."""

    @property
    def inflight(self) -> int: ...

    def counts(self) -> LiveCounts: ...

    def last_overhead_p99_ms(self) -> float | None:
        """Overhead p99 of the last completed second (None: no data yet)."""
        ...

    def loop_lag_ms(self) -> float | None:
        """The harness's event-loop lag at its latest tick (None: no tick yet)."""
        ...


class RunObserver:
    """Override what you need; every hook defaults to doing nothing."""

    async def load_started(self, status: LoadStatus, total_s: float, warmup_s: float) -> None:
        """The load begins (its status is readable until :meth:`load_ended`)."""

    def tick(self) -> None:
        """About four times a second while the load runs."""

    def observed(self, obs: Observation, measured: bool) -> None:
        """One request finished (``measured``: inside the measured window)."""

    async def load_ended(self) -> None:
        """The load is over (called also when the run is interrupted)."""
