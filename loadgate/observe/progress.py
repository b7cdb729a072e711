"""Live view while a run is going (what k6 and Locust users expect).

On a terminal: a one-line rich status refreshed a few times a second —
phase, elapsed, req/s, errors, violations, in flight, p99 overhead of the
last second. Not a terminal (CI): one plain line every 10 s on stderr, so
logs stay readable and the result file stays the machine interface.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from loadgate.observe.observer import LoadStatus, RunObserver

__all__ = ["Progress", "format_line"]

PLAIN_EVERY_S = 10.0


def format_line(
    *,
    phase: str,
    elapsed_s: float,
    total_s: float,
    rps: float,
    done: int,
    failed: int,
    violations: int,
    inflight: int,
    p99_ms: float | None,
) -> str:
    """The status line; pure so tests can pin its format.

    ``done``: requests answered since the load started, warm-up included (the
    summary's "requests sent" counts the measured window only).
    """
    p99 = f"{p99_ms:.2f} ms" if p99_ms is not None else "-"
    return (
        f"{phase:<8} {elapsed_s:6.1f}/{total_s:.0f}s  {rps:8.1f} req/s  done {done}"
        f"  errors {failed}  integrity {violations}  in-flight {inflight}"
        f"  overhead p99(1s) {p99}"
    )


class Progress(RunObserver):
    """The CLI's live view: a run observer that draws."""

    def __init__(
        self,
        *,
        enabled: bool = True,
        total_s: float = 0.0,
        warmup_s: float = 0.0,
        stream: TextIO | None = None,
    ) -> None:
        self._stream = stream or sys.stderr
        self._enabled = enabled
        self._tty = enabled and self._stream.isatty()
        self._total = total_s
        self._warmup = warmup_s
        self._engine: LoadStatus | None = None
        self._t0 = time.monotonic()
        self._last_plain = self._t0
        self._last_done = 0
        self._last_t = self._t0
        self._rps = 0.0
        self._live: object | None = None

    async def load_started(self, status: LoadStatus, total_s: float, warmup_s: float) -> None:
        self._total, self._warmup = total_s, warmup_s
        self.attach(status)

    async def load_ended(self) -> None:
        self.close()

    def attach(self, engine: LoadStatus) -> None:
        self._engine = engine
        self._t0 = self._last_plain = self._last_t = time.monotonic()
        if self._tty:
            from rich.console import Console
            from rich.live import Live

            live = Live(console=Console(file=self._stream), refresh_per_second=4, transient=True)
            live.start()
            self._live = live

    def _line(self) -> str:
        e = self._engine
        assert e is not None
        now = time.monotonic()
        counts = e.counts()
        done = counts.done
        if now - self._last_t >= 1.0:
            self._rps = (done - self._last_done) / (now - self._last_t)
            self._last_done, self._last_t = done, now
        elapsed = now - self._t0
        phase = "warm-up" if elapsed < self._warmup else "measure"
        if elapsed >= self._total:
            phase = "drain"
        return format_line(
            phase=phase,
            elapsed_s=elapsed,
            total_s=self._total,
            rps=self._rps,
            done=done,
            failed=counts.failed,
            violations=counts.violations,
            inflight=e.inflight,
            p99_ms=e.last_overhead_p99_ms(),
        )

    def tick(self) -> None:
        if not self._enabled or self._engine is None:
            return
        if self._live is not None:
            from rich.live import Live
            from rich.text import Text

            assert isinstance(self._live, Live)
            self._live.update(Text(self._line()))
            return
        now = time.monotonic()
        if now - self._last_plain >= PLAIN_EVERY_S:
            self._last_plain = now
            print(self._line(), file=self._stream, flush=True)

    def close(self) -> None:
        if self._live is not None:
            from rich.live import Live

            assert isinstance(self._live, Live)
            self._live.stop()
            self._live = None
