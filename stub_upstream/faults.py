"""Which fault (if any) a request gets: seeded draws, or the x-stub-fault header.

Each worker draws one uniform number per API request from its own
``random.Random(seed, worker)`` and walks the configured rates in
``FAULT_CODES`` order: with the same seed, worker and request order the same
requests fail. A rate of 0.1 for ``500`` and 0.05 for ``reset`` means 10 % and
5 % of requests; the rest get no fault.

What each fault does (see server.py for the mechanics):
  429, 500, 503, 529   immediate provider-shaped error; 529 is Anthropic's
                       ``overloaded_error`` on /v1/messages and a 503 with
                       ``code: "overloaded"`` on OpenAI paths (OpenAI has no 529)
  midstream_error      streams: an error event after half the tokens; non-streams:
                       a 500 at the time the answer was due
  stall                a pause of stall_ms after half the tokens (non-streams: later)
  reset                streams: TCP RST after half the tokens; non-streams: RST
                       after the headers and half the body
  slow_headers         the response headers (and everything after) stall_ms later
"""

from __future__ import annotations

import random

from stub_upstream.config import INJECTABLE_FAULTS

__all__ = ["FaultPicker"]


class FaultPicker:
    """Seeded per-worker fault draws."""

    __slots__ = ("_rng", "_table")

    def __init__(self, rates: dict[str, float], seed: int, worker: int) -> None:
        self._rng = random.Random(f"{seed}:{worker}")
        table: list[tuple[float, str]] = []
        acc = 0.0
        for name in INJECTABLE_FAULTS:
            rate = rates.get(name, 0.0)
            if rate > 0:
                acc += rate
                table.append((acc, name))
        self._table = table

    def draw(self) -> str:
        """A fault name, or ``"none"``."""
        if not self._table:
            return "none"
        u = self._rng.random()
        for cum, name in self._table:
            if u < cum:
                return name
        return "none"
