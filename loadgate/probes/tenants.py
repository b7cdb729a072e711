"""Tenant isolation under load: which agent each request names, and the cross-tenant tally.

With ``[probes.tenants]`` on, every key of the pool belongs to a tenant, and every
tenant has agents: from ``auth.keys_file`` lines ``key tenant agent`` (a tenant's agents
are the union of its lines), or generated (key rank ``r`` → tenant ``r % tenants``, one
agent ``agent-t<tenant>`` each). A normal request names an agent of its own key's tenant
in ``probes.tenants.header``; a share ``share`` of requests (drawn from the request
mix's seeded RNG, so interleaved with the normal traffic and reproducible) names an
agent of another tenant instead. Such a cross-tenant request is *leaked* when the
gateway answers anything but 401, 403 or 404; it never counts as an error of the normal
traffic and never enters a latency histogram (:class:`TenantCounts` is apart).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from loadgate.errors import UsageError
from loadgate.load.keys import KeyPool, header_for
from loadgate.profile import Profile

__all__ = [
    "REJECTED",
    "TenantCounts",
    "TenantMap",
    "TenantMix",
    "keys_file_lines",
]

#: Answers that count as the gateway refusing a cross-tenant request.
REJECTED = frozenset({401, 403, 404})
#: Leaked requests described in the result, per load process.
MAX_EXAMPLES = 5


@dataclass(frozen=True, slots=True)
class TenantMap:
    """Key → tenant, tenant → its agents (both in file / rank order)."""

    tenant_of: dict[str, str]
    agents: dict[str, tuple[str, ...]]

    @classmethod
    def generated(cls, keys: tuple[str, ...] | list[str], tenants: int) -> TenantMap:
        tenant_of = {k: f"t{i % tenants}" for i, k in enumerate(keys)}
        names = sorted(set(tenant_of.values()), key=lambda t: int(t[1:]))
        return cls(tenant_of, {t: (f"agent-{t}",) for t in names})

    @classmethod
    def from_lines(cls, text: str, source: str) -> TenantMap | None:
        """``key tenant agent`` lines; None when no line has a tenant (generate instead).

        A file that gives tenants for some keys but not all is a usage error: a key
        without a tenant cannot make a cross-tenant request.
        """
        rows = [s.split() for line in text.splitlines() if (s := line.strip()) and s[0] != "#"]
        scoped = [r for r in rows if len(r) >= 3]
        if not scoped:
            return None
        if len(scoped) != len(rows):
            bad = next(r[0] for r in rows if len(r) < 3)
            raise UsageError(
                f"{source}: auth.keys_file: key {bad[:12]}… has no tenant and agent "
                "(probes.tenants needs 'key tenant agent' on every line, or none)"
            )
        agents: dict[str, list[str]] = {}
        for _, tenant, agent, *_ in scoped:
            lst = agents.setdefault(tenant, [])
            if agent not in lst:
                lst.append(agent)
        if len(agents) < 2:
            raise UsageError(f"{source}: auth.keys_file: probes.tenants needs two tenants or more")
        return cls({r[0]: r[1] for r in scoped}, {t: tuple(a) for t, a in agents.items()})

    @classmethod
    def load(cls, keys: tuple[str, ...], keys_file: Path | None, tenants: int) -> TenantMap:
        """The run's tenants: the keys file's columns if it has them, else generated."""
        if keys_file is not None:
            found = cls.from_lines(keys_file.read_text(encoding="utf-8"), str(keys_file))
            if found is not None:
                return found
        return cls.generated(keys, tenants)


def keys_file_lines(tmap: TenantMap, keys: tuple[str, ...]) -> str:
    """``key tenant agent`` lines for ``keys`` (a launched reference gateway reads them)."""
    return "".join(f"{k} {tmap.tenant_of[k]} {tmap.agents[tmap.tenant_of[k]][0]}\n" for k in keys)


class TenantMix:
    """Per request: the agent header to send, and whether it crosses tenants."""

    @classmethod
    def for_profile(cls, profile: Profile, pool: KeyPool, base_dir: Path) -> TenantMix | None:
        """The run's tenant mix; None when ``probes.tenants`` is off."""
        spec = profile.probes.tenants
        if spec.share <= 0:
            return None
        path = None
        if profile.auth.keys_file:
            path = Path(profile.auth.keys_file)
            path = path if path.is_absolute() else base_dir / path
        # From the whole pool, not ``pool`` (a shard's partition of it): the tenant of a
        # key is its rank in the whole pool, as in the keys file the gateway was given.
        whole = KeyPool.from_spec(profile.auth, base_dir).keys
        tmap = TenantMap.load(whole, path, spec.tenants)
        return cls(tmap, header=spec.header, share=spec.share, auth_header=pool.header)

    def __init__(self, tmap: TenantMap, *, header: str, share: float, auth_header: str) -> None:
        self.header = header.lower()
        self.share = share
        tenants = list(tmap.agents)
        self._own: dict[tuple[str, str] | None, tuple[str, ...]] = {}
        self._foreign: dict[tuple[str, str] | None, tuple[str, ...]] = {}
        for key, tenant in tmap.tenant_of.items():
            auth = header_for(auth_header, key)
            self._own[auth] = tmap.agents[tenant]
            self._foreign[auth] = tuple(a for t in tenants if t != tenant for a in tmap.agents[t])

    def own_agent(self, auth: tuple[str, str] | None) -> tuple[str, str] | None:
        """The agent header a normal request with ``auth`` carries (its tenant's first)."""
        own = self._own.get(auth)
        return (self.header, own[0]) if own else None

    def headers(
        self, rng: random.Random, auth: tuple[str, str] | None
    ) -> tuple[tuple[str, str] | None, bool]:
        """``(agent header or None, crosses tenants)`` for a request carrying ``auth``.

        A key the map does not know (an invalid key of ``auth.invalid_ratio``) names no
        agent and never crosses: it is rejected for its key already.
        """
        own = self._own.get(auth)
        if own is None:
            return None, False
        if rng.random() < self.share:
            foreign = self._foreign[auth]
            return (self.header, foreign[rng.randrange(len(foreign))]), True
        agent = own[0] if len(own) == 1 else own[rng.randrange(len(own))]
        return (self.header, agent), False


@dataclass(slots=True)
class TenantCounts:
    """Cross-tenant requests of the measured window (merged across load processes)."""

    tried: int = 0
    leaked: int = 0
    #: HTTP status (0: no answer) → cross-tenant requests
    by_status: dict[int, int] = field(default_factory=dict)
    #: "<corr id> status <s>" of leaked requests, at most MAX_EXAMPLES per process
    examples: list[str] = field(default_factory=list)

    def note(self, corr_hex: str, status: int, error: str | None) -> None:
        """One cross-tenant answer. No HTTP answer (timeout, reset) is not a leak."""
        self.tried += 1
        self.by_status[status] = self.by_status.get(status, 0) + 1
        if status and status not in REJECTED:
            self.leaked += 1
            if len(self.examples) < MAX_EXAMPLES:
                self.examples.append(f"{corr_hex} status {status}")
