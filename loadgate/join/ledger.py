"""The stub's ledger, read over its control endpoints (``/_loadgate/...``).

The harness pulls records incrementally (a cursor per pull) as raw
``LEDGER_DTYPE`` bytes viewed by numpy: no JSON on a path that carries hundreds
of thousands of records.
"""

from __future__ import annotations

from typing import Any, Protocol

import aiohttp
import numpy as np

from stub_upstream.ledger_format import CONTROL_PREFIX, LEDGER_DTYPE

__all__ = ["LEDGER_ERRORS", "LedgerClient", "LedgerSource", "reset_ledger"]

#: What a failed pull raises: the stub may be busy; the next pull catches up.
LEDGER_ERRORS = (aiohttp.ClientError, TimeoutError)


class LedgerSource(Protocol):
    """Where ledger records come from: the stub over HTTP, or a test's list."""

    @property
    def lost(self) -> int:
        """Records the stub overwrote before they were read."""
        ...

    async def pull(self) -> np.ndarray[Any, Any]:
        """Records since the last pull (LEDGER_DTYPE)."""
        ...

    async def info(self) -> dict[str, Any]:
        """What the stub says of itself (``stamps``, ``clock``, ``config`` …)."""
        ...


class LedgerClient:
    """Incremental reader of the stub's ledger over its control endpoints."""

    def __init__(self, stub_url: str, session: aiohttp.ClientSession) -> None:
        self._base = stub_url.rstrip("/") + CONTROL_PREFIX
        self._session = session
        self._cursor = ""
        self.lost = 0

    async def reset(self) -> None:
        async with self._session.post(self._base + "/reset") as resp:
            resp.raise_for_status()
            await resp.read()
        self._cursor = ""

    async def info(self) -> dict[str, Any]:
        """The stub's ``/_loadgate/info``: workers, config, where its stamps come from."""
        async with self._session.get(self._base + "/info") as resp:
            resp.raise_for_status()
            data = await resp.json()
        return data if isinstance(data, dict) else {}

    async def pull(self) -> np.ndarray[Any, Any]:
        async with self._session.get(
            self._base + "/ledger", params={"cursor": self._cursor}
        ) as resp:
            resp.raise_for_status()
            body = await resp.read()
            self._cursor = resp.headers.get("x-loadgate-cursor", self._cursor)
            self.lost += int(resp.headers.get("x-loadgate-lost", "0") or 0)
        usable = len(body) - len(body) % LEDGER_DTYPE.itemsize
        return np.frombuffer(body[:usable], dtype=LEDGER_DTYPE)


async def reset_ledger(stub_url: str) -> None:
    """Forget every record the stub holds (before a run: nothing foreign to join)."""
    async with aiohttp.ClientSession() as session:
        await LedgerClient(stub_url, session).reset()
