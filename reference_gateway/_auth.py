"""Client key checks: which keys are valid, and the LRU cache in front of that check.

The cache models what production gateways put in front of their key database: a hit
is a dict lookup; a miss pays ``miss_cost_s`` (the simulated lookup) and then caches
the verdict, negative verdicts included, so a flood of bad keys cannot hammer the
database. Concurrent misses on one key each pay the cost and each count as a miss,
as in a cache without request coalescing.

The hit path is synchronous (:meth:`AuthCache.lookup`), so a request whose key is
cached is forwarded in the same event-loop callback that parsed it; only a miss
awaits (:meth:`AuthCache.resolve`).
"""

from __future__ import annotations

import asyncio
import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

__all__ = ["AuthCache", "KeyValidator"]


class KeyValidator:
    """Valid = in ``keys_file`` when given (re-read when it changes), else has ``prefix``."""

    def __init__(self, prefix: str, keys_file: Path | None = None) -> None:
        self._prefix = prefix
        self._file = keys_file
        self._mtime_ns = -1
        self._keys: frozenset[str] = frozenset()
        if keys_file is not None:
            self._reload()

    def _reload(self) -> None:
        assert self._file is not None
        try:
            st = os.stat(self._file)
        except FileNotFoundError:
            # A provisioning step may create it later; until then nothing is valid.
            self._keys, self._mtime_ns = frozenset(), -1
            return
        if st.st_mtime_ns == self._mtime_ns:
            return
        text = self._file.read_text(encoding="utf-8")
        self._keys = frozenset(
            s for line in text.splitlines() if (s := line.strip()) and not s.startswith("#")
        )
        self._mtime_ns = st.st_mtime_ns

    def __call__(self, key: str) -> bool:
        if self._file is None:
            return key.startswith(self._prefix)
        # Only misses get here, so a stat per miss is part of the simulated lookup cost.
        self._reload()
        return key in self._keys


class AuthCache:
    """LRU of key → verdict with a fixed simulated cost per miss (capacity 0: no caching)."""

    def __init__(
        self,
        capacity: int,
        miss_cost_s: float,
        validate: Callable[[str], bool],
        on_hit: Callable[[], None] = lambda: None,
        on_miss: Callable[[], None] = lambda: None,
    ) -> None:
        if capacity < 0:
            raise ValueError("capacity must be >= 0")
        self.capacity = capacity
        self._miss_cost_s = miss_cost_s
        self._validate = validate
        self._on_hit = on_hit
        self._on_miss = on_miss
        self._lru: OrderedDict[str, bool] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._lru)

    def lookup(self, key: str) -> bool | None:
        """The cached verdict (a hit, counted), or None: then :meth:`resolve` (the miss)."""
        verdict = self._lru.get(key)
        if verdict is not None:
            self._lru.move_to_end(key)
            self.hits += 1
            self._on_hit()
        return verdict

    async def resolve(self, key: str) -> bool:
        """A miss: pay the simulated lookup without blocking the loop, then cache the verdict."""
        self.misses += 1
        self._on_miss()
        if self._miss_cost_s > 0:
            await asyncio.sleep(self._miss_cost_s)
        verdict = self._validate(key)
        self._lru[key] = verdict
        self._lru.move_to_end(key)
        while len(self._lru) > self.capacity:
            self._lru.popitem(last=False)
        return verdict

    async def check(self, key: str) -> bool:
        verdict = self.lookup(key)
        return verdict if verdict is not None else await self.resolve(key)
