"""The side-effect witness: is a sampled request's record visible, and how soon after its answer?

For a share (``probes.witness.sample``) of the measured requests that completed with a
2xx answer, the witness runs a query by correlation id — SQL against PostgreSQL
(asyncpg) or a ClickHouse-style HTTP query URL — from the request's completion (its
last byte, kernel-stamped, CLOCK_MONOTONIC) every ``interval`` until the record is seen
or ``timeout`` has passed since completion.

What one sighting means, on the one clock (``time.monotonic_ns``):

* a look that found nothing proves the record was absent at some instant after that
  look was *sent* (the database evaluated it later);
* a look that found the record proves it present at some instant before that look's
  answer was *read*.

So the record appeared in ``(last_miss.sent, hit.answered]``; relative to completion
that is ``[lower, upper]`` with ``lower = last_miss.sent − completion`` (0 when the first
look already found it: the record may even predate the last byte) and
``upper = hit.answered − completion``. The figure is the midpoint, its error the
half-width: at most one poll interval plus one query round trip, plus whatever the
poller itself waited (its limits, a busy event loop) — which only widens the interval,
never moves it off the truth. Both ends are kept (``upper_ms`` is the conservative one).

Not disturbing the load it watches: at most ``max_concurrency`` queries in flight (the
asyncpg pool / aiohttp connector has that many connections), at most ``max_rate``
queries a second (starts are spaced), at most ``max_watched`` requests under watch
(beyond, a sample is skipped and counted). Every query is counted with its round trip.

Sampling is a hash of the correlation id (splitmix64), so it is the same in every load
process and every rerun of a seed, and independent of the request's timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import numpy as np

from loadgate.client.observation import Observation
from loadgate.histograms.hdr import bulk_record, new_histogram
from loadgate.profile import WitnessSpec
from stub_upstream.content import format_corr_id

__all__ = [
    "HttpLookup",
    "Lookup",
    "SqlLookup",
    "Witness",
    "WitnessCounts",
    "is_sampled",
    "open_lookup",
    "preflight_witness",
    "sighting",
]

_MASK64 = (1 << 64) - 1
_MAX_ERRORS_KEPT = 5


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def is_sampled(corr: int, share: float) -> bool:
    """Whether request ``corr`` is witnessed: a hash of the id below ``share`` of 2**64."""
    return _splitmix64(corr) < share * (1 << 64)


def sighting(
    completed_ns: int, last_miss_sent_ns: int | None, hit_answered_ns: int
) -> tuple[int, int]:
    """``(lower, upper)`` ns after completion between which the record appeared."""
    upper = max(0, hit_answered_ns - completed_ns)
    lower = 0 if last_miss_sent_ns is None else max(0, last_miss_sent_ns - completed_ns)
    return min(lower, upper), upper


class Lookup(Protocol):
    """One look for a record: True found, False not (yet); raises on a failed query."""

    async def __call__(self, corr_id: str) -> bool: ...

    async def close(self) -> None: ...


class SqlLookup:
    """``query`` with ``$1`` = the correlation id text over an asyncpg pool; found = a row."""

    def __init__(self, pool: asyncpg.Pool, query: str) -> None:
        self._pool = pool
        self._query = query

    @classmethod
    async def connect(cls, dsn: str, query: str, connections: int) -> SqlLookup:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=connections, timeout=10)
        return cls(pool, query)

    async def __call__(self, corr_id: str) -> bool:
        return await self._pool.fetchrow(self._query, corr_id) is not None

    async def close(self) -> None:
        await self._pool.close()


class HttpLookup:
    """GET ``url`` with ``{corr_id}`` substituted; found = 2xx with a non-blank body.

    That is a ClickHouse HTTP interface's answer to a query in a row format
    (``TabSeparated``, ``CSV``, …): one line per row, nothing at all for none. Any other
    status is a failed look (neither found nor not found).
    """

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self._session = session
        self._url = url

    @classmethod
    def open(cls, url: str, connections: int, timeout_s: float) -> HttpLookup:
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections),
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            trust_env=False,
        )
        return cls(session, url)

    async def __call__(self, corr_id: str) -> bool:
        async with self._session.get(self._url.replace("{corr_id}", corr_id)) as resp:
            body = await resp.read()
            if not 200 <= resp.status < 300:
                raise RuntimeError(f"HTTP {resp.status}: {body[:80]!r}")
            return bool(body.strip())

    async def close(self) -> None:
        await self._session.close()


async def open_lookup(spec: WitnessSpec) -> Lookup:
    """The spec's lookup (``dsn`` / ``url`` already resolved: no ``auto``, no placeholders)."""
    if spec.kind == "sql":
        assert spec.dsn is not None
        return await SqlLookup.connect(spec.dsn, spec.query, spec.max_concurrency)
    assert spec.url is not None
    return HttpLookup.open(spec.url, spec.max_concurrency, max(1.0, spec.timeout_s))


def _where(spec: WitnessSpec) -> str:
    """The store's address without credentials (a DSN or URL may carry a password)."""
    parts = urlsplit(str(spec.dsn if spec.kind == "sql" else spec.url))
    return f"{parts.scheme}://{parts.hostname}:{parts.port or ''}{parts.path}"


async def preflight_witness(spec: WitnessSpec, corr_id: str = "0" * 16) -> str | None:
    """One query before the load (an id no request has): None, or why the store failed.

    A store that is down or a query that does not run is the run's dependency down,
    said before any load is sent, not discovered as every sample "missing".
    """
    try:
        lookup = await open_lookup(spec)
    except Exception as exc:
        return f"cannot connect to {_where(spec)}: {type(exc).__name__}: {exc}"
    try:
        await lookup(corr_id)
    except Exception as exc:
        return f"query failed on {_where(spec)}: {type(exc).__name__}: {exc}"
    finally:
        with contextlib.suppress(Exception):
            await lookup.close()
    return None


@dataclass(slots=True)
class WitnessCounts:
    """What the witness saw in one load process; merged across processes by field type.

    Histograms are encoded HdrHistograms of µs (loadgate's layout).
    """

    sampled: int = 0
    found: int = 0
    missing: int = 0
    #: sampled, but ``max_watched`` requests were already under watch: not polled
    skipped: int = 0
    #: found by the very first look (lower bound 0: it may predate the last byte)
    first_look: int = 0
    polls: int = 0
    poll_errors: int = 0
    #: most queries in flight at once (summed over load processes: an upper bound)
    max_in_flight: int = 0
    #: first query sent → last answer read, ns (the span the poll rate is taken over)
    span_ns: int = field(default=0, metadata={"merge": "max"})
    latency_us: bytes = b""  # midpoints
    error_us: bytes = b""  # half-widths
    upper_us: bytes = b""
    rtt_us: bytes = b""
    errors: list[str] = field(default_factory=list)


Clock = Callable[[], int]
Sleep = Callable[[float], Awaitable[None]]


class Witness:
    """Watches sampled requests of one load process; :meth:`finish` returns the counts."""

    def __init__(
        self,
        spec: WitnessSpec,
        lookup_factory: Callable[[], Awaitable[Lookup]],
        *,
        clock: Clock = time.monotonic_ns,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.spec = spec
        self._factory = lookup_factory
        self._clock = clock
        self._sleep = sleep
        self._lookup: Lookup | None = None
        self._failed: str | None = None
        self._interval_ns = round(spec.interval_s * 1e9)
        self._timeout_ns = round(spec.timeout_s * 1e9)
        self._spacing_ns = round(1e9 / spec.max_rate)
        self._next_start = 0
        self._slots = asyncio.Semaphore(spec.max_concurrency)
        self._in_flight = 0
        self._first_sent: int | None = None
        self._last_answered = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.counts = WitnessCounts()
        self._latency: list[int] = []
        self._error: list[int] = []
        self._upper: list[int] = []
        self._rtt: list[int] = []

    async def start(self) -> None:
        """Open the connection pool; a failure is kept (every sample then counts missing)."""
        try:
            self._lookup = await self._factory()
        except Exception as exc:
            self._failed = f"witness could not connect: {type(exc).__name__}: {exc}"
            self._note_error(self._failed)

    def offer(self, obs: Observation) -> None:
        """A measured request completed: watch it if it is sampled and answered 2xx."""
        if obs.control or obs.error is not None or not obs.t_last_byte:
            return
        if not is_sampled(obs.corr, self.spec.sample):
            return
        c = self.counts
        if self._lookup is None:
            c.sampled += 1
            c.missing += 1
            return
        if len(self._tasks) >= self.spec.max_watched:
            c.skipped += 1
            return
        c.sampled += 1
        task = asyncio.get_running_loop().create_task(self.watch(obs.corr, obs.t_last_byte))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def watch(self, corr: int, completed_ns: int) -> None:
        """Look for ``corr``'s record from ``completed_ns`` until seen or timed out."""
        assert self._lookup is not None
        text = format_corr_id(corr)
        deadline = completed_ns + self._timeout_ns
        last_miss: int | None = None
        due = completed_ns
        c = self.counts
        while True:
            await self._sleep_until(due)
            sent, answered, found = await self._look(self._lookup, text)
            if found:
                lower, upper = sighting(completed_ns, last_miss, answered)
                c.found += 1
                c.first_look += last_miss is None
                self._latency.append((lower + upper) // 2000)
                self._error.append((upper - lower) // 2000)
                self._upper.append(upper // 1000)
                return
            if found is False:
                last_miss = sent
            if answered >= deadline:
                c.missing += 1
                return
            # Cadence from the last look's send: a slow answer does not stretch it.
            due = min(deadline, max(sent + self._interval_ns, answered))

    async def _look(self, lookup: Lookup, text: str) -> tuple[int, int, bool | None]:
        """One query within the limits: ``(sent, answered, found)``; found None = failed."""
        c = self.counts
        async with self._slots:
            now = self._clock()
            start = max(now, self._next_start)
            self._next_start = start + self._spacing_ns
            if start > now:
                await self._sleep((start - now) / 1e9)
            self._in_flight += 1
            c.max_in_flight = max(c.max_in_flight, self._in_flight)
            sent = self._clock()
            found: bool | None
            try:
                found = await lookup(text)
            except Exception as exc:
                found = None
                c.poll_errors += 1
                self._note_error(f"{type(exc).__name__}: {exc}")
            finally:
                self._in_flight -= 1
            answered = self._clock()
        c.polls += 1
        self._rtt.append((answered - sent) // 1000)
        if self._first_sent is None:
            self._first_sent = sent
        self._last_answered = max(self._last_answered, answered)
        return sent, answered, found

    async def _sleep_until(self, t_ns: int) -> None:
        delay = (t_ns - self._clock()) / 1e9
        if delay > 0:
            await self._sleep(delay)

    def _note_error(self, text: str) -> None:
        if len(self.counts.errors) < _MAX_ERRORS_KEPT:
            self.counts.errors.append(text[:200])

    async def finish(self) -> WitnessCounts:
        """Wait for the watches still running (each ends by its own timeout), close, count."""
        if self._tasks:
            # Each watch ends within timeout + one query after its completion; the margin
            # covers queries queued behind the limits. What is still running is missing.
            budget = self.spec.timeout_s + 10.0
            _done, pending = await asyncio.wait(set(self._tasks), timeout=budget)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            self.counts.missing += len(pending)
        if self._lookup is not None:
            with contextlib.suppress(Exception):
                await self._lookup.close()
            self._lookup = None
        c = self.counts
        c.latency_us = _encode(self._latency)
        c.error_us = _encode(self._error)
        c.upper_us = _encode(self._upper)
        c.rtt_us = _encode(self._rtt)
        if self._first_sent is not None:
            c.span_ns = self._last_answered - self._first_sent
        return c


def _encode(values_us: list[int]) -> bytes:
    if not values_us:
        return b""
    h = new_histogram()
    bulk_record(h, np.maximum(np.array(values_us, dtype=np.int64), 0))
    return bytes(h.encode())
