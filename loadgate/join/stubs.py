"""Every stub's ledger, and whether each stub's clock is the client's (issue 17 §3).

With N stubs behind one gateway (a Kubernetes Service over the shards' stub pods)
a request may reach any of them, so a shard joins against every stub's ledger:
:class:`StubLedgers` pulls each one with its own cursor (the stub keeps no reader
state, so N shards pulling one stub do not disturb each other) and hands the
records on per stub, with that stub's clock verdict.

Overhead needs no shared clock: it is the client's duration minus the stub's
service duration, each on its own machine's CLOCK_MONOTONIC
(:mod:`loadgate.join.overhead`). Ingress and egress subtract a stub time from a
client time, so they exist only for records of a stub on the client's clock.
:func:`same_clock` decides that by observation, not by a URL: the stub's kernel
boot id equals ours and the monotonic time it reports lies between our own reads
before and after asking (a stub on another machine, or the test-only
``stub.clock_offset_ns``, fails it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import numpy as np

from loadgate.join.ledger import LEDGER_ERRORS, LedgerClient
from stub_upstream.ledger_format import BOOT_ID

__all__ = ["StubClock", "StubLedgers", "same_clock"]

_UNREACHABLE = "unreachable: "


@dataclass(frozen=True, slots=True)
class StubClock:
    """What one stub's clock check found."""

    url: str
    same_clock: bool
    #: why not (None when it is the same clock)
    reason: str | None = None


def same_clock(
    info: dict[str, Any], before_ns: int, after_ns: int, boot_id: str | None = BOOT_ID
) -> str | None:
    """None when the stub's times are on our clock, else why not (pure)."""
    theirs = info.get("boot_id")
    if boot_id is None or theirs != boot_id:
        return f"another kernel (boot id {theirs or 'not reported'})"
    now = info.get("monotonic_ns")
    if not isinstance(now, int):
        return "the stub does not report its clock"
    if not before_ns <= now <= after_ns:
        off_ms = (now - (before_ns + after_ns) // 2) / 1e6
        return f"its monotonic clock is {off_ms:+.3f} ms from ours"
    return None


class StubLedgers:
    """The ledgers of this shard's own stub and of every peer stub, pulled together.

    A :class:`~loadgate.join.ledger.LedgerSource`: ``pull`` concatenates (callers
    that need no clock verdict), :meth:`pull_each` keeps the records per stub.
    A peer that cannot be read is skipped for that pull and its error kept: its
    records come with a later pull, or the requests it served stay ``unseen``.
    A peer unreachable at the clock check (its pod, or its shard's process, not up
    yet) is checked again before each pull until it answers: otherwise a peer that
    started a second late would have all its records taken for another clock's.
    """

    def __init__(
        self,
        own_url: str,
        peer_urls: tuple[str, ...],
        session: aiohttp.ClientSession,
        clock: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        urls = [own_url, *(u for u in peer_urls if u.rstrip("/") != own_url.rstrip("/"))]
        self._clients = [LedgerClient(u, session) for u in urls]
        self._urls = urls
        self._clock = clock
        self.clocks: list[StubClock] = []
        self.errors: list[str] = []

    @property
    def lost(self) -> int:
        return sum(c.lost for c in self._clients)

    async def check_clocks(self) -> list[StubClock]:
        """Ask every stub for its clock (before the load); unreachable = not ours, yet."""
        self.clocks = [await self._check(i) for i in range(len(self._clients))]
        return self.clocks

    async def _check(self, i: int) -> StubClock:
        url, client = self._urls[i], self._clients[i]
        before = self._clock()
        try:
            info = await client.info()
        except LEDGER_ERRORS as exc:
            return StubClock(url, False, f"{_UNREACHABLE}{exc}")
        why = same_clock(info, before, self._clock())
        return StubClock(url, why is None, why)

    async def pull_each(self) -> list[tuple[str, np.ndarray[Any, Any], bool]]:
        """``(url, records, same clock)`` per stub that answered; the own stub's errors raise."""
        if not self.clocks:
            await self.check_clocks()
        out: list[tuple[str, np.ndarray[Any, Any], bool]] = []
        for i, client in enumerate(self._clients):
            clk = self.clocks[i]
            if (clk.reason or "").startswith(_UNREACHABLE):
                self.clocks[i] = clk = await self._check(i)
            try:
                out.append((clk.url, await client.pull(), clk.same_clock))
            except LEDGER_ERRORS as exc:
                if i == 0:
                    raise
                self.errors.append(f"{clk.url}: {exc}")
        return out

    async def pull(self) -> np.ndarray[Any, Any]:
        parts = [recs for _, recs, _ in await self.pull_each()]
        return np.concatenate(parts)

    async def info(self) -> dict[str, Any]:
        """The own stub's info (where its stamps come from)."""
        return await self._clients[0].info()
