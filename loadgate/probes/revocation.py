"""Key revocation under load: revoke keys in use, keep using them, time until rejected.

With ``[probes.revocation]`` on, the run picks the ``keys`` most popular keys of the
pool (under Zipf the ones certainly in use and in any auth cache; under a uniform pool
the first ones) and plans, before the first send, one revocation moment per key,
spread over the first half of the measured window (so every key is watched for at
least half the window afterwards). Each key leaves the normal key pool
:data:`RETIRE_LEAD_NS` before its moment (:class:`RetiringDraw`: the load processes
know the plan, so no normal request carries a key being revoked and the error-rate
gate is not polluted). At the moment, the probe

1. sends one request with the key (the *baseline*: it must be accepted, else the key
   says nothing about revocation);
2. calls the hook (``url``: ``POST {"key": …}``, 2xx; ``command``: exit 0) and takes
   the time it returns, ``t_hook``;
3. sends a request with the key every ``interval_ms`` from ``t_hook`` until the
   measured window ends (answers are not waited for, at most :data:`MAX_INFLIGHT` in
   flight), each on a new connection (``connection: close``), so a gateway of several
   processes behind one port is probed across them.

:func:`propagation` turns a key's probes into the figure: the send time of the first
rejection (401/403) that only rejections follow, minus ``t_hook``. A gateway that
flaps is timed until it stops flapping; a key with no such rejection is
``never_rejected``. The gateway applied the revocation somewhere between the last
accepted probe's send and that rejection's send, so the figure is an upper bound and
``bound_s`` (that gap, nominally ``interval_ms``) is its error.

In a sharded run every shard plans the same revocations on the common window and
withholds those keys from its load, but only shard :data:`REVOCATION_SHARD` runs the
probe: each key is revoked once for the whole run, and the merge takes that shard's
section.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import shlex
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import aiohttp

from loadgate.client.http1 import ConnectionPool
from loadgate.client.observation import RequestSpec
from loadgate.client.request import perform
from loadgate.client.transport import Transport
from loadgate.load.keys import KeyPool, header_for
from loadgate.load.mix import make_corr_id
from loadgate.profile import Profile, RevocationSpec
from loadgate.result.model import PropagationFigures, RevocationFigures, RevokedKey

__all__ = [
    "MAX_INFLIGHT",
    "REJECTED",
    "RETIRE_LEAD_NS",
    "REVOCATION_SHARD",
    "KeyProbe",
    "PlannedRevocation",
    "Probe",
    "RetiringDraw",
    "RevocationProbe",
    "plan_revocations",
    "propagation",
    "summarize",
]

#: A key leaves the normal pool this long before it is revoked: a request drawn just
#: before may still be queued behind the harness's own loop lag when the hook returns.
RETIRE_LEAD_NS = 500_000_000
#: Probe requests of one key in flight at once (a slow gateway delays the cadence).
MAX_INFLIGHT = 16
#: Answers that count as the gateway rejecting a revoked key.
REJECTED = frozenset({401, 403})
#: In a sharded run, the one shard that runs the probe (hook calls and probe requests);
#: every shard plans it and withholds its keys (loadgate.pipeline.shard).
REVOCATION_SHARD = 0


@dataclass(frozen=True, slots=True)
class PlannedRevocation:
    rank: int
    key: str
    revoke_ns: int

    @property
    def retire_ns(self) -> int:
        return self.revoke_ns - RETIRE_LEAD_NS


def plan_revocations(
    pool: KeyPool, spec: RevocationSpec, measure_start_ns: int, duration_ns: int
) -> list[PlannedRevocation]:
    """The ``spec.keys`` most popular ranks, revoked at (i + ½) / 2n of the window."""
    n = min(spec.keys, len(pool) - 1)
    ranks = sorted(range(len(pool)), key=lambda r: (-pool.probability(r), r))[:n]
    return [
        PlannedRevocation(
            rank, pool.keys[rank], measure_start_ns + (2 * i + 1) * duration_ns // (4 * n)
        )
        for i, rank in enumerate(ranks)
    ]


class RetiringDraw:
    """``KeyPool.draw`` without the keys whose retirement time has come.

    ``retire`` names keys (a shard's pool is a partition of the whole: ranks differ,
    keys do not; a key not in this pool is ignored). A draw that lands on a retired
    rank moves to the next rank that is not retired (its probability goes to a
    neighbour: the pool's skew is kept, minus those keys).
    """

    def __init__(
        self,
        pool: KeyPool,
        retire: Sequence[tuple[str, int]],
        clock: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        rank_of = {k: r for r, k in enumerate(pool.keys)}
        pending = [(rank_of[k], t) for k, t in retire if k in rank_of]
        if len(pending) >= len(pool):
            raise ValueError("cannot retire every key of the pool")
        self._pool = pool
        self._pending = sorted(pending, key=lambda rt: rt[1])  # (rank, retire_ns)
        self._retired: set[int] = set()
        self._clock = clock

    def __call__(self, rng: random.Random) -> tuple[str, str] | None:
        rank, invalid = self._pool.draw_rank(rng)
        pending = self._pending
        if pending and pending[0][1] <= self._clock():
            now = self._clock()
            while pending and pending[0][1] <= now:
                self._retired.add(pending.pop(0)[0])
        while rank in self._retired:
            rank = (rank + 1) % len(self._pool)
        return header_for(self._pool.header, self._pool.key_at(rank, invalid))


@dataclass(frozen=True, slots=True)
class Probe:
    """One probe request: when it was sent (ns) and the answer's status (0: none)."""

    t_send_ns: int
    status: int

    @property
    def rejected(self) -> bool:
        return self.status in REJECTED


@dataclass(slots=True)
class KeyProbe:
    """Everything measured for one revoked key."""

    planned: PlannedRevocation
    baseline_status: int = 0
    t_hook_call_ns: int = 0
    t_hook_ns: int = 0  # the hook's return
    hook_error: str | None = None
    probes: list[Probe] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Propagation:
    """:func:`propagation`'s answer for one key (seconds from the hook's return)."""

    seconds: float | None  # None: never rejected for good
    bound_s: float | None  # the figure is at most this much above the true moment
    flaps: int  # rejected → accepted transitions
    observed_s: float  # last probe's send − hook return


def propagation(probes: Sequence[Probe], t_hook_ns: int) -> Propagation:
    """The first rejection followed only by rejections, as seconds after ``t_hook_ns``.

    The true moment lies between the previous probe's send (the last one accepted) and
    that rejection's send; when the very first probe is already rejected, between the
    hook's return and it. A probe without an HTTP answer (status 0: a timeout, a
    connection refused while the gateway drains) neither confirms nor refutes, and is
    left out.
    """
    ps = sorted((p for p in probes if p.status), key=lambda p: p.t_send_ns)
    flaps = sum(1 for a, b in itertools.pairwise(ps) if a.rejected and not b.rejected)
    observed = (ps[-1].t_send_ns - t_hook_ns) / 1e9 if ps else 0.0
    last_ok = max((i for i, p in enumerate(ps) if not p.rejected), default=-1)
    if last_ok == len(ps) - 1:
        return Propagation(None, None, flaps, observed)
    first = ps[last_ok + 1]
    before = ps[last_ok].t_send_ns if last_ok >= 0 else t_hook_ns
    return Propagation(
        max(0, first.t_send_ns - t_hook_ns) / 1e9,
        max(0, first.t_send_ns - max(before, t_hook_ns)) / 1e9,
        flaps,
        observed,
    )


def summarize(
    keys: Sequence[KeyProbe], spec: RevocationSpec, measure_start_ns: int
) -> RevocationFigures:
    """The result section: per key, and p50 / max over keys.

    p50 and max are None unless every revoked key has a propagation time: a key never
    rejected (or one whose baseline or hook failed) leaves the figure unknown, and a
    gate on it fails rather than passing on the keys that did land.
    """
    rows: list[RevokedKey] = []
    times: list[float] = []
    never = 0
    for k in keys:
        usable = k.hook_error is None and k.t_hook_ns > 0 and 200 <= k.baseline_status < 300
        prop = propagation(k.probes, k.t_hook_ns) if usable else None
        if prop is not None and prop.seconds is not None:
            times.append(prop.seconds)
        elif prop is not None:
            never += 1
        rows.append(
            RevokedKey(
                key=k.planned.key[:12] + "…",
                rank=k.planned.rank,
                revoked_at_s=(k.t_hook_call_ns - measure_start_ns) / 1e9
                if k.t_hook_call_ns
                else None,
                baseline_status=k.baseline_status,
                hook_s=(k.t_hook_ns - k.t_hook_call_ns) / 1e9 if k.t_hook_ns else None,
                hook_error=k.hook_error,
                propagation_s=prop.seconds if prop is not None else None,
                bound_s=prop.bound_s if prop is not None else None,
                probes=len(k.probes),
                rejections=sum(p.rejected for p in k.probes),
                flaps=prop.flaps if prop is not None else 0,
                observed_s=prop.observed_s if prop is not None else 0.0,
            )
        )
    complete = bool(keys) and len(times) == len(keys)
    bounds = [r.bound_s for r in rows if r.bound_s is not None]
    revoked = sum(k.hook_error is None and k.t_hook_ns > 0 for k in keys)
    return RevocationFigures(
        revoked=revoked,
        never_rejected=never,
        baseline_rejected=sum(not (200 <= k.baseline_status < 300) for k in keys),
        hook_failed=sum(k.hook_error is not None for k in keys),
        propagation_s=PropagationFigures(
            p50=statistics.median(times) if complete and times else None,
            max=max(times) if complete and times else None,
        ),
        interval_ms=spec.interval_ms,
        bound_s=max(bounds) if bounds else None,
        keys=rows,
    )


class RevocationProbe:
    """Runs the plan against the gateway: baseline, hook, probes, per key."""

    def __init__(
        self,
        profile: Profile,
        plan: Sequence[PlannedRevocation],
        *,
        gateway_url: str,
        nonce: int,
        stop_ns: int,
        agent_header: Callable[[tuple[str, str] | None], tuple[str, str] | None] = lambda a: None,
        transport: Transport | None = None,
        clock: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        """``agent_header``: the header a request with this auth must carry (tenants)."""
        self._p = profile
        self._spec = profile.probes.revocation
        self.plan = list(plan)
        self._url = gateway_url
        self._nonce = nonce
        self._stop_ns = stop_ns
        self._agent = agent_header
        self._given = transport
        self._clock = clock
        self._seq = 0
        self.keys = [KeyProbe(p) for p in plan]

    async def run(self, stop: asyncio.Event) -> list[KeyProbe]:
        transport = self._given or ConnectionPool(
            self._url, limit=MAX_INFLIGHT * 2 + 4, connect_timeout_s=5.0
        )
        try:
            timeout = aiohttp.ClientTimeout(total=self._spec.hook_timeout_s)
            async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as session:
                await asyncio.gather(*(self._one(k, transport, session, stop) for k in self.keys))
        finally:
            if self._given is None:
                await transport.close()
        return self.keys

    def _spec_for(self, key: str) -> RequestSpec:
        self._seq += 1
        auth = header_for(self._p.auth.header, key)
        # A new connection per probe: behind one port, several gateway processes
        # (SO_REUSEPORT) each get probed, not just the one a kept-alive socket reaches.
        extra = (*self._p.load.headers.items(), ("connection", "close"))
        agent = self._agent(auth)
        if agent is not None:
            extra = (*extra, agent)
        return RequestSpec(
            corr=make_corr_id(self._nonce, self._seq),
            endpoint="chat",
            stream=False,
            model=self._p.load.model,
            prompt_tokens=8,
            max_tokens=1,
            expect_tokens=min(1, self._p.stub.output_tokens),
            auth=auth,
            extra_headers=extra,
        )

    async def _sleep_until(self, t_ns: int, stop: asyncio.Event) -> None:
        while not stop.is_set() and (delay := (t_ns - self._clock()) / 1e9) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)

    async def _send(self, transport: Transport, key: str) -> Probe:
        t = self._clock()
        obs = await perform(transport, self._spec_for(key), t, self._p.load.timeout_s)
        return Probe(obs.t_send or t, obs.status)

    async def _one(
        self, k: KeyProbe, transport: Transport, session: aiohttp.ClientSession, stop: asyncio.Event
    ) -> None:
        try:
            await self._probe_key(k, transport, session, stop)
        except Exception as exc:  # one key's failure must not lose the others' figures
            k.hook_error = k.hook_error or f"probe failed: {type(exc).__name__}: {exc}"

    async def _probe_key(
        self, k: KeyProbe, transport: Transport, session: aiohttp.ClientSession, stop: asyncio.Event
    ) -> None:
        key = k.planned.key
        await self._sleep_until(k.planned.revoke_ns, stop)
        if stop.is_set():
            return
        k.baseline_status = (await self._send(transport, key)).status
        k.t_hook_call_ns = self._clock()
        k.hook_error = await self._hook(session, key)
        k.t_hook_ns = self._clock()
        if k.hook_error is not None:
            return
        interval_ns = round(self._spec.interval_ms * 1e6)
        slots = asyncio.Semaphore(MAX_INFLIGHT)
        tasks: list[asyncio.Task[Probe]] = []

        async def probe() -> Probe:
            try:
                return await self._send(transport, key)
            finally:
                slots.release()

        t_next = k.t_hook_ns
        while not stop.is_set() and t_next < self._stop_ns:
            await self._sleep_until(t_next, stop)
            await slots.acquire()
            tasks.append(asyncio.create_task(probe()))
            t_next += interval_ns
        if tasks:
            done = await asyncio.gather(*tasks, return_exceptions=True)
            k.probes = [p for p in done if isinstance(p, Probe)]

    async def _hook(self, session: aiohttp.ClientSession, key: str) -> str | None:
        """None when the hook revoked ``key``, else why not (one line)."""
        spec = self._spec
        if spec.url:
            url = spec.url.replace("{gateway_url}", self._url.rstrip("/"))
            try:
                async with session.post(url, json={"key": key}, headers=spec.headers) as resp:
                    await resp.read()
                    if 200 <= resp.status < 300:
                        return None
                    return f"POST {url}: status {resp.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                return f"POST {url}: {type(exc).__name__}: {exc}"
        assert spec.command is not None
        cmd = spec.command.replace("{key}", shlex.quote(key))
        try:
            proc = await asyncio.create_subprocess_exec(
                "/bin/sh",
                "-c",
                cmd,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            return f"command: cannot start: {exc.strerror}"
        try:
            _, err = await asyncio.wait_for(proc.communicate(), spec.hook_timeout_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return f"command timed out after {spec.hook_timeout_s:g} s"
        if proc.returncode != 0:
            tail = err.decode(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
            return f"command exited with code {proc.returncode}: {tail[0][:200]}"
        return None
