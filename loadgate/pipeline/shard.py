"""One shard of a sharded run: its share of the load and the common window (issue 17).

``loadgate run PROFILE --shard i/N`` (or ``JOB_COMPLETION_INDEX`` +
``LOADGATE_SHARDS`` in a Kubernetes Indexed Job) runs shard ``i``'s share:

* closed loop: ``load.concurrency`` split as evenly as integers allow (shares
  differ by at most one and add up to the whole);
* open loop: ``rate / N`` per shard. Poisson shards use independent seeds, so the
  superposition of N Poisson processes at ``r/N`` is Poisson at ``r``; constant
  shards are shifted by ``i / r``, so together they are the constant schedule at ``r``
  (the engine's ``WorkerPlan.phase = i/N``; closed-loop workers' first sends are
  interleaved across shards the same way);
* ``load.max_requests`` split like concurrency; the mix seed differs per shard
  (shard 0 keeps the profile's: a 1-shard run is the unsharded run);
* keys: the whole pool for every shard, or ranks ``r mod N = i`` only
  (``load.shard_keys``);
* correlation ids: the nonce's low bits hold ``i · workers + w`` (worker ``w``),
  so no two shards' ids can collide whatever their random high bits;
* the key-revocation probe: planned by every shard on the common window (the same
  keys, the same moments, so every shard's load withholds each key before it is
  revoked), run by shard ``REVOCATION_SHARD`` (0) only: one hook call and one set
  of probes per key for the whole run, which the merge takes from that shard.

The common start: every shard measures from one instant, ``--start-at`` (UNIX
seconds or ISO 8601, also ``LOADGATE_START_AT``), or, when none is given, the next
multiple of :data:`DERIVED_ALIGN_S` at least :data:`DERIVED_LEAD_S` ahead — shards
started within one alignment period agree without talking. Warm-up runs before
that instant. The epoch is converted to this machine's CLOCK_MONOTONIC once, so the
window edges rest on the machines' wall clocks (NTP: milliseconds) and nothing
else does. A shard ready only after the warm-up's start shortens its warm-up; one
ready after the measured window opened measures the rest and is ``invalid``, saying
by how much it missed; the merge also checks the windows overlap
(:mod:`loadgate.result.merge`).
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from loadgate.errors import UsageError
from loadgate.load.generator import split_share
from loadgate.load.schedule import NS
from loadgate.probes.revocation import REVOCATION_SHARD
from loadgate.profile import Profile
from loadgate.result.model import Result, ShardFigures

__all__ = [
    "DERIVED_ALIGN_S",
    "DERIVED_LEAD_S",
    "INDEX_ENV",
    "REVOCATION_SHARD",
    "SHARDS_ENV",
    "START_ENV",
    "Placed",
    "Shard",
    "ShardPlan",
    "derived_start",
    "judge_shard",
    "parse_shard",
    "parse_start",
    "peer_urls",
    "shard_nonce",
    "shard_plan",
    "split_profile",
]

INDEX_ENV = "JOB_COMPLETION_INDEX"
SHARDS_ENV = "LOADGATE_SHARDS"
START_ENV = "LOADGATE_START_AT"
DERIVED_ALIGN_S = 30
DERIVED_LEAD_S = 15
#: Seeds of shard i: the profile's + i · this prime (worker seeds are seed·1009 + w).
_SEED_STEP = 104_729


@dataclass(frozen=True, slots=True)
class Shard:
    index: int
    count: int

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def revokes(self) -> bool:
        """Whether this shard runs the revocation probe (hook calls and probe requests)."""
        return self.index == REVOCATION_SHARD


def parse_shard(text: str, option: str = "--shard") -> Shard:
    """``"i/N"`` with ``0 <= i < N``; a usage error naming ``option`` otherwise."""
    head, sep, tail = text.partition("/")
    try:
        index, count = int(head), int(tail)
    except ValueError:
        index = count = -1
    if not sep or count < 1 or not 0 <= index < count:
        raise UsageError(f"{option} {text!r}: expected i/N with 0 <= i < N (e.g. 0/3)")
    return Shard(index, count)


def _shard_from_env(env: Mapping[str, str]) -> Shard | None:
    count = env.get(SHARDS_ENV)
    if not count:
        return None
    index = env.get(INDEX_ENV)
    if index is None:
        raise UsageError(f"${SHARDS_ENV} is set but ${INDEX_ENV} is not (an Indexed Job sets it)")
    return parse_shard(f"{index}/{count}", f"${INDEX_ENV}/${SHARDS_ENV}")


def parse_start(text: str, option: str = "--start-at") -> float:
    """UNIX seconds (``1767225600``) or ISO 8601 with a zone; returns UNIX seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{option} {text!r}: not UNIX seconds or an ISO 8601 time") from None
    if when.tzinfo is None:
        raise UsageError(f"{option} {text!r}: give a time zone (e.g. 2026-01-01T00:00:00Z)")
    return when.timestamp()


def derived_start(
    now_s: float, align_s: int = DERIVED_ALIGN_S, lead_s: int = DERIVED_LEAD_S
) -> int:
    """The next multiple of ``align_s`` at least ``lead_s`` after ``now_s`` (UNIX s)."""
    return math.ceil((now_s + lead_s) / align_s) * align_s


def peer_urls(templates: tuple[str, ...], shard: Shard) -> tuple[str, ...]:
    """Peer stubs' URLs; a template with ``{i}`` stands for every other shard's index."""
    out: list[str] = []
    for t in templates:
        if "{i}" in t:
            out += [t.replace("{i}", str(j)) for j in range(shard.count) if j != shard.index]
        else:
            out.append(t)
    return tuple(out)


def shard_nonce(random31: int, shard: Shard, workers: int) -> int:
    """A run nonce whose low bits are ``index · workers`` (workers add ``w``): unique."""
    bits = max(1, (shard.count * workers - 1).bit_length())
    high = (random31 >> bits << bits) & 0x7FFFFFFF or 1 << bits
    return high | (shard.index * workers)


def split_profile(profile: Profile, shard: Shard) -> Profile:
    """Shard ``shard``'s share of ``profile`` (see the module docstring)."""
    load = profile.load
    n, i = shard.count, shard.index
    if load.trace is not None:
        raise UsageError(
            f"{profile.source}: load.trace: a trace replay is not split across shards "
            "(each would replay all of it); run it unsharded"
        )
    update: dict[str, object] = {"seed": load.seed + _SEED_STEP * i}
    if load.concurrency is not None:
        if load.concurrency < n:
            raise UsageError(
                f"{profile.source}: load.concurrency = {load.concurrency} cannot be split "
                f"over {n} shards (each needs at least 1)"
            )
        update["concurrency"] = split_share(load.concurrency, n, i)
    if load.rate is not None:
        update["rate"] = load.rate / n
    if load.max_requests is not None:
        if load.max_requests < n:
            raise UsageError(
                f"{profile.source}: load.max_requests = {load.max_requests} < {n} shards"
            )
        update["max_requests"] = split_share(load.max_requests, n, i)
    return profile.model_copy(update={"load": load.model_copy(update=update)})


@dataclass(frozen=True, slots=True)
class Placed:
    """A shard's load placed on this machine's clock."""

    profile: Profile  # warm-up / duration as this shard can still keep them
    start_ns: int  # CLOCK_MONOTONIC of the first send
    figures: ShardFigures
    #: the common measured window on this clock (start, length): every shard's, even
    #: when this one missed its start (what plans shared between shards rest on)
    common_ns: tuple[int, int] = (0, 0)


@dataclass(frozen=True, slots=True)
class ShardPlan:
    """Everything that makes a run one shard of several."""

    shard: Shard
    #: the common measured window's start, UNIX seconds
    start_at: float
    start_derived: bool = False
    #: peer stubs whose ledgers are joined too
    peers: tuple[str, ...] = ()
    #: after the load, keep the own stub up this long: peers make their final pulls
    linger_s: float = 0.0
    wall: tuple[float, int] = field(default=(0.0, 0), compare=False)  # tests: (real, mono)

    def place(self, share: Profile, ready_ns: int) -> Placed:
        """The window this shard keeps, given it can send from ``ready_ns`` (monotonic)."""
        real, mono = self.wall if self.wall[1] else (time.time(), time.monotonic_ns())
        load = share.load
        measure_ns = mono + round((self.start_at - real) * NS)
        warm_ns, dur_ns = round(load.warmup_s * NS), round(load.duration_s * NS)
        start_ns = max(ready_ns, measure_ns - warm_ns)
        missed_ns = max(0, start_ns - measure_ns)
        if missed_ns >= dur_ns:
            raise UsageError(
                f"--shard {self.shard.label}: ready {missed_ns / NS:.1f} s after the common "
                f"start ({self.start_at:.3f}): the whole measured window has passed"
            )
        begin_ns = max(start_ns, measure_ns)
        update = {"warmup_s": (begin_ns - start_ns) / NS, "duration_s": (dur_ns - missed_ns) / NS}
        figures = ShardFigures(
            index=self.shard.index,
            count=self.shard.count,
            start_at=self.start_at,
            start_derived=self.start_derived,
            measure_start=real + (begin_ns - mono) / NS,
            measure_end=real + (measure_ns + dur_ns - mono) / NS,
            missed_start_s=round(missed_ns / NS, 6),
            concurrency=load.concurrency,
            rate=load.rate,
            max_requests=load.max_requests,
            peers=list(self.peers),
        )
        placed = share.model_copy(update={"load": load.model_copy(update=update)})
        return Placed(placed, start_ns, figures, (measure_ns, dur_ns))

    async def linger(self) -> None:
        if self.peers and self.linger_s > 0:
            await asyncio.sleep(self.linger_s)


def shard_plan(
    shard: str | None,
    start_at: str | None,
    ledgers: tuple[str, ...],
    env: Mapping[str, str] | None = None,
    *,
    linger_s: float = 10.0,
) -> ShardPlan | None:
    """The CLI's options (and the Indexed Job's variables) as a plan; None: not sharded."""
    env = os.environ if env is None else env
    s = parse_shard(shard) if shard is not None else _shard_from_env(env)
    if s is None:
        if start_at is not None or ledgers:
            given = "--start-at" if start_at is not None else "--stub-ledger"
            raise UsageError(f"{given} needs --shard i/N (or ${SHARDS_ENV})")
        return None
    text = start_at if start_at is not None else env.get(START_ENV) or None
    option = "--start-at" if start_at is not None else f"${START_ENV}"
    if text is None:
        return ShardPlan(s, derived_start(time.time()), True, peer_urls(ledgers, s), linger_s)
    return ShardPlan(s, parse_start(text, option), False, peer_urls(ledgers, s), linger_s)


def judge_shard(result: Result, figures: ShardFigures) -> None:
    """Attach the shard's figures; a shard that missed the common start is invalid."""
    result.shard = figures
    if figures.missed_start_s <= 0:
        return
    why = (
        f"shard {figures.index}/{figures.count} missed the common start by "
        f"{figures.missed_start_s:.3f} s: it measured a shorter window than the others"
    )
    result.reasons = [why, *result.reasons]
    result.verdict, result.exit_code = "invalid", 3
    for g in result.gates:
        if g.decided:
            g.decided, g.undecided_reason = False, "the run is invalid: its gates prove nothing"
