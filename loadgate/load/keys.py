"""Auth-key workloads: which key each request carries, and how it is sent.

A :class:`KeyPool` holds N keys — generated deterministically from
``prefix`` + ``seed``, or read from ``auth.keys_file`` — ranked in pool order.
Requests pick a rank uniformly or by Zipf(s) (weight of rank r ∝ 1 / r**s, CDF
precomputed once), so a gateway's auth cache sees the popularity skew real API
traffic has. A share ``invalid_ratio`` of requests carries the drawn key with the
prefix :data:`INVALID_PREFIX` instead, which no sane gateway accepts.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import os
import random
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from loadgate.errors import UsageError
from loadgate.gateway.processes import log_tail, spawn, stop_process
from loadgate.profile import AuthSpec

__all__ = [
    "INVALID_PREFIX",
    "KeyPool",
    "generate_keys",
    "header_for",
    "rank_cdf",
    "read_keys_file",
    "run_provisioning",
]

INVALID_PREFIX = "invalid-"


def generate_keys(prefix: str, n: int, seed: int) -> list[str]:
    """``n`` distinct keys ``<prefix><rank:06d><12 hex of a seeded hash>``."""
    return [
        f"{prefix}{i:06d}{hashlib.blake2b(f'{seed}:{i}'.encode(), digest_size=6).hexdigest()}"
        for i in range(n)
    ]


def read_keys_file(path: Path) -> list[str]:
    """Keys one per line; blank lines and ``#`` comments skipped; order = rank.

    A line's first word is the key: ``key tenant agent`` lines (tenant-scoped keys,
    :mod:`loadgate.probes.tenants`) give the same pool.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: auth.keys_file not found") from None
    except OSError as exc:
        raise UsageError(f"{path}: auth.keys_file unreadable: {exc.strerror}") from None
    keys = [
        s.split()[0] for line in text.splitlines() if (s := line.strip()) and not s.startswith("#")
    ]
    if not keys:
        raise UsageError(f"{path}: auth.keys_file has no keys")
    return keys


def rank_cdf(n: int, distribution: str, zipf_s: float) -> list[float]:
    """Cumulative probability of ranks 0..n-1; the last entry is exactly 1.0."""
    if distribution == "uniform":
        weights = np.ones(n, dtype=np.float64)
    elif distribution == "zipf":
        weights = 1.0 / np.power(np.arange(1, n + 1, dtype=np.float64), zipf_s)
    else:
        raise UsageError(f"auth.distribution: unknown {distribution!r} (zipf | uniform)")
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    out = [float(x) for x in cdf]
    out[-1] = 1.0  # rounding must never leave a draw past the end
    return out


def header_for(header: str, key: str) -> tuple[str, str] | None:
    """The (name, value) header that carries ``key`` in the profile's ``auth.header`` form."""
    if header == "authorization":
        return ("authorization", f"Bearer {key}")
    if header in ("x-api-key", "api-key"):
        return (header, key)
    if header == "none":
        return None
    raise UsageError(
        f"auth.header: unknown {header!r} (authorization | x-api-key | api-key | none)"
    )


@dataclass(frozen=True, slots=True)
class KeyPool:
    keys: tuple[str, ...]
    header: str
    cdf: tuple[float, ...]
    invalid_ratio: float = 0.0

    @classmethod
    def from_spec(cls, spec: AuthSpec, base_dir: Path) -> KeyPool:
        """The pool a profile's ``[auth]`` describes; ``keys_file`` is relative to ``base_dir``."""
        if spec.keys_file:
            path = Path(spec.keys_file)
            keys = read_keys_file(path if path.is_absolute() else base_dir / path)
        else:
            keys = generate_keys(spec.prefix, spec.keys, spec.seed)
        if spec.invalid_ratio > 0 and any(k.startswith(INVALID_PREFIX) for k in keys):
            raise UsageError(f"auth.prefix: keys must not start with {INVALID_PREFIX!r}")
        if spec.invalid_ratio > 0 and not spec.keys_file and INVALID_PREFIX.startswith(spec.prefix):
            raise UsageError(
                f"auth.prefix: {spec.prefix!r} would make invalid keys ({INVALID_PREFIX}…) valid"
            )
        header_for(spec.header, "")  # validate the form once, not per request
        return cls(
            keys=tuple(keys),
            header=spec.header,
            cdf=tuple(rank_cdf(len(keys), spec.distribution, spec.zipf_s)),
            invalid_ratio=spec.invalid_ratio,
        )

    def __len__(self) -> int:
        return len(self.keys)

    def partition(self, index: int, count: int) -> KeyPool:
        """The keys of ranks ``r ≡ index (mod count)``: shard ``index`` of ``count`` alone.

        Their relative weights are the pool's (the CDF is renormalised over them), so
        each shard keeps the popularity skew among its own keys; no key is shared.
        """
        ranks = range(index, len(self.keys), count)
        if not ranks:
            raise UsageError(
                f"load.shard_keys = partitioned: {len(self.keys)} keys cannot give "
                f"shard {index} of {count} one"
            )
        probs = np.array([self.probability(r) for r in ranks], dtype=np.float64)
        cdf = np.cumsum(probs) / probs.sum()
        out = [float(x) for x in cdf]
        out[-1] = 1.0
        return KeyPool(
            keys=tuple(self.keys[r] for r in ranks),
            header=self.header,
            cdf=tuple(out),
            invalid_ratio=self.invalid_ratio,
        )

    def probability(self, rank: int) -> float:
        """P(a valid draw picks ``rank``), from the CDF."""
        return self.cdf[rank] - (self.cdf[rank - 1] if rank else 0.0)

    def draw_rank(self, rng: random.Random) -> tuple[int, bool]:
        """``(rank, invalid)``: the RNG decides validity (when invalid keys are on), then rank."""
        invalid = self.invalid_ratio > 0 and rng.random() < self.invalid_ratio
        rank = bisect.bisect_right(self.cdf, rng.random())
        return min(rank, len(self.keys) - 1), invalid

    def key_at(self, rank: int, invalid: bool = False) -> str:
        key = self.keys[rank]
        return INVALID_PREFIX + key if invalid else key

    def draw_key(self, rng: random.Random) -> str:
        """One key (:meth:`draw_rank`)."""
        return self.key_at(*self.draw_rank(rng))

    def draw(self, rng: random.Random) -> tuple[str, str] | None:
        """The auth header for one request, or None when ``auth.header = "none"``."""
        if self.header == "none":
            return None
        return header_for(self.header, self.draw_key(rng))

    def write_keys_file(self, path: Path) -> None:
        """Valid keys, one per line, atomically (a provisioning script may be watching)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(k + "\n" for k in self.keys), encoding="utf-8")
        os.replace(tmp, path)


async def run_provisioning(command: str, keys_file: Path, log: Path, timeout_s: float) -> None:
    """Run ``auth.provision_command`` (``{keys_file}`` substituted) to completion.

    A non-zero exit or a timeout is a :class:`UsageError` with the exit code and the
    last lines of its log.
    """
    cmd = command.replace("{keys_file}", shlex.quote(str(keys_file)))
    try:
        proc = await spawn(["/bin/sh", "-c", cmd], log=log)
    except OSError as exc:
        raise UsageError(f"auth.provision_command: cannot start: {exc.strerror}") from exc
    try:
        rc = await asyncio.wait_for(proc.wait(), timeout_s)
    except TimeoutError:
        await stop_process(proc, 2.0)
        why = f"timed out after {timeout_s:g} s"
    else:
        if rc == 0:
            return
        why = f"exited with code {rc}"
    tail = " | ".join(log_tail(log, 5)) or "(no output)"
    raise UsageError(f"auth.provision_command {why} (log {log}): {tail}")
