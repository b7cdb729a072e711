"""Client key checks: which keys are valid, their tenants, revocation, and the LRU cache.

The cache models what production gateways put in front of their key database: a hit
is a dict lookup; a miss pays ``miss_cost_s`` (the simulated lookup) and then caches
the verdict, negative verdicts included, so a flood of bad keys cannot hammer the
database. Concurrent misses on one key each pay the cost and each count as a miss,
as in a cache without request coalescing.

The hit path is synchronous (:meth:`AuthCache.lookup`), so a request whose key is
cached is forwarded in the same event-loop callback that parsed it; only a miss
awaits (:meth:`AuthCache.resolve`).

A key's verdict is ``False`` (invalid), ``True`` (valid, not tenant-scoped) or a
:class:`Principal`: the key's tenant and the agents of that tenant, from keys-file lines
``key tenant agent``. Revoking a key (:meth:`KeyValidator.revoke` then
:meth:`AuthCache.evict`) makes its next lookup a miss that the validator answers
``False``; nothing on the hit path changes.
"""

from __future__ import annotations

import asyncio
import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["AuthCache", "KeyValidator", "Principal", "Verdict", "parse_keys"]


@dataclass(frozen=True, slots=True)
class Principal:
    """A tenant-scoped key: its tenant and the agent ids (header values) it may name."""

    tenant: str
    agents: frozenset[bytes]


#: False: invalid; True: valid and not tenant-scoped; a Principal: valid for its agents.
Verdict = bool | Principal


def parse_keys(text: str) -> dict[str, Verdict]:
    """Keys-file lines ``key`` or ``key tenant agent``; ``#`` comments and blanks skipped.

    A tenant's agents are the union of its lines' agents, so every key of a tenant may
    name every agent of that tenant.
    """
    rows = [s.split() for line in text.splitlines() if (s := line.strip()) and s[0] != "#"]
    agents: dict[str, set[bytes]] = {}
    for row in rows:
        if len(row) >= 3:
            agents.setdefault(row[1], set()).add(row[2].encode("latin-1"))
        elif len(row) == 2:
            agents.setdefault(row[1], set())
    scoped = {t: Principal(t, frozenset(a)) for t, a in agents.items()}
    return {row[0]: scoped[row[1]] if len(row) >= 2 else True for row in rows}


class KeyValidator:
    """Valid = in ``keys_file`` when given (re-read when it changes), else has ``prefix``."""

    def __init__(self, prefix: str, keys_file: Path | None = None) -> None:
        self._prefix = prefix
        self._file = keys_file
        self._mtime_ns = -1
        self._keys: dict[str, Verdict] = {}
        self.revoked: set[str] = set()
        if keys_file is not None:
            self._reload()

    def _reload(self) -> None:
        assert self._file is not None
        try:
            st = os.stat(self._file)
        except FileNotFoundError:
            # A provisioning step may create it later; until then nothing is valid.
            self._keys, self._mtime_ns = {}, -1
            return
        if st.st_mtime_ns == self._mtime_ns:
            return
        self._keys = parse_keys(self._file.read_text(encoding="utf-8"))
        self._mtime_ns = st.st_mtime_ns

    def revoke(self, key: str) -> None:
        """From now on ``key`` is invalid (the cache must forget it: :meth:`AuthCache.evict`)."""
        self.revoked.add(key)

    def __call__(self, key: str) -> Verdict:
        if key in self.revoked:
            return False
        if self._file is None:
            return key.startswith(self._prefix)
        # Only misses get here, so a stat per miss is part of the simulated lookup cost.
        self._reload()
        return self._keys.get(key, False)


class AuthCache:
    """LRU of key → verdict with a fixed simulated cost per miss (capacity 0: no caching)."""

    def __init__(
        self,
        capacity: int,
        miss_cost_s: float,
        validate: Callable[[str], Verdict],
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
        self._lru: OrderedDict[str, Verdict] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._lru)

    def lookup(self, key: str) -> Verdict | None:
        """The cached verdict (a hit, counted), or None: then :meth:`resolve` (the miss)."""
        verdict = self._lru.get(key)
        if verdict is not None:
            self._lru.move_to_end(key)
            self.hits += 1
            self._on_hit()
        return verdict

    async def resolve(self, key: str) -> Verdict:
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

    async def check(self, key: str) -> Verdict:
        verdict = self.lookup(key)
        return verdict if verdict is not None else await self.resolve(key)

    def evict(self, key: str) -> None:
        """Forget ``key``'s verdict: its next request is a miss (a revocation lands)."""
        self._lru.pop(key, None)
