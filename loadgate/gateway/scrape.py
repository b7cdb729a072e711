"""Gateway Prometheus metrics: scrape, select series, and take counter deltas.

A selector is a metric name plus label equality matchers,
``auth_cache_hits_total{outcome="hit"}``; its value in one scrape is the SUM over
every matching series (so ``requests_total`` adds up all routes and statuses).
Counters may be named with or without ``_total``: ``x`` and ``x_total`` both
select the counter exposed as ``x_total``, never its ``_created`` companion.

:class:`Scraper` scrapes at the measured window's edges (``mark_start`` /
``mark_end``) and every ``interval_s`` in between. Deltas over the window are
reset-aware: a counter that goes down restarted, and its post-reset value is the
increase since the restart (Prometheus ``increase()`` semantics). A failed scrape
is counted in ``errors`` and skipped; it never fails the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import aiohttp
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from loadgate.errors import UsageError

__all__ = [
    "HITS",
    "MISSES",
    "Samples",
    "ScrapeError",
    "ScrapeFigures",
    "Scraper",
    "Selector",
    "increase",
    "parse_exposition",
    "scrape",
]

_NAME = re.compile(r"\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*")
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|\})')
_EMPTY = re.compile(r"\s*\}")
_UNESCAPE = {"\\": "\\", '"': '"', "n": "\n"}


#: Selector names the auth-cache counters are scraped under.
HITS, MISSES = "auth_cache_hits", "auth_cache_misses"


@dataclass(frozen=True, slots=True)
class ScrapeFigures:
    """What the gateway's Prometheus endpoint said over the measured window."""

    deltas: dict[str, float | None]
    auth_cache_hit_rate: float | None = None
    #: ``(seconds since the window opened, hit rate between two scrapes)``
    auth_cache_series: list[tuple[float, float | None]] = field(default_factory=list)
    errors: int = 0


class ScrapeError(Exception):
    """A scrape that produced no samples: transport failure, non-200, or bad text."""


@dataclass(frozen=True, slots=True)
class Selector:
    name: str
    labels: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Selector:
        """``name`` or ``name{label="value", ...}`` (equality matchers only)."""
        m = _NAME.match(text)
        if m is None:
            raise UsageError(f"Prometheus selector {text!r}: expected a metric name")
        name, pos = m.group(1), m.end()
        labels: list[tuple[str, str]] = []
        if pos < len(text) and text[pos] == "{":
            pos += 1
            empty = _EMPTY.match(text, pos)
            closed = empty is not None
            if empty is not None:
                pos = empty.end()
            while not closed and pos < len(text):
                lm = _MATCHER.match(text, pos)
                if lm is None:
                    raise UsageError(
                        f'Prometheus selector {text!r}: expected label="value" at {text[pos:]!r}'
                    )
                value = re.sub(
                    r"\\(.)", lambda e: _UNESCAPE.get(e.group(1), e.group(1)), lm.group(2)
                )
                labels.append((lm.group(1), value))
                pos = lm.end()
                closed = lm.group(3) == "}"
            if not closed:
                raise UsageError(f"Prometheus selector {text!r}: missing '}}'")
        if text[pos:].strip():
            raise UsageError(f"Prometheus selector {text!r}: unexpected {text[pos:].strip()!r}")
        return cls(name, tuple(labels))

    def names(self) -> frozenset[str]:
        base = self.name.removesuffix("_total")
        return frozenset({base, base + "_total"})

    def __str__(self) -> str:
        if not self.labels:
            return self.name
        inner = ",".join(f'{k}="{v}"' for k, v in self.labels)
        return f"{self.name}{{{inner}}}"


class Samples:
    """One scrape: (sample name, labels, value) triples."""

    def __init__(self, samples: Iterable[tuple[str, Mapping[str, str], float]]) -> None:
        self._by_name: dict[str, list[tuple[Mapping[str, str], float]]] = {}
        for name, labels, value in samples:
            self._by_name.setdefault(name, []).append((labels, value))

    def value(self, selector: Selector) -> float | None:
        """Sum over matching series; None when no series matches."""
        total, found = 0.0, False
        for name in selector.names():
            for labels, value in self._by_name.get(name, ()):
                if all(labels.get(k) == v for k, v in selector.labels):
                    total += value
                    found = True
        return total if found else None


def parse_exposition(text: str, content_type: str = "") -> Samples:
    """Prometheus text format, or OpenMetrics when the content type says so."""
    parse = (
        openmetrics_families
        if content_type.startswith("application/openmetrics-text")
        else text_string_to_metric_families
    )
    try:
        return Samples(
            (s.name, s.labels, float(s.value)) for fam in parse(text) for s in fam.samples
        )
    except (ValueError, TypeError) as exc:
        raise ScrapeError(f"unparseable exposition: {exc}") from exc


async def scrape(session: aiohttp.ClientSession, url: str, timeout_s: float = 5.0) -> Samples:
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            text = await resp.text()
            if resp.status != 200:
                raise ScrapeError(f"{url}: HTTP {resp.status}")
            return parse_exposition(text, resp.headers.get("content-type", ""))
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise ScrapeError(f"{url}: {type(exc).__name__}: {exc}") from exc


def increase(values: Iterable[float | None]) -> float | None:
    """Reset-aware increase over consecutive observations of one selector.

    None when the selector never matched or was observed fewer than twice. Once it
    has matched, a point where it does not is 0: labelled counters appear lazily,
    on their first event (and vanish when the process restarts).
    """
    seen = list(values)
    if sum(v is not None for v in seen) == 0 or len(seen) < 2:
        return None
    total = 0.0
    for prev, cur in itertools.pairwise(0.0 if v is None else v for v in seen):
        total += cur - prev if cur >= prev else cur
    return total


Point = tuple[float, dict[str, float | None]]


class Scraper:
    """Periodic and window-edge scrapes of one metrics URL for named selectors."""

    def __init__(
        self,
        url: str,
        selectors: Mapping[str, str],
        interval_s: float,
        *,
        timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.selectors = {name: Selector.parse(text) for name, text in selectors.items()}
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self._clock = clock
        self.points: list[Point] = []
        self.errors = 0
        self.last_error: str | None = None
        self._start_idx: int | None = None
        self._end_idx: int | None = None
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None

    # -- recording ------------------------------------------------------------------

    def record(self, samples: Samples, t: float | None = None) -> None:
        """Add one observation (scrapes call this; tests feed fixed expositions)."""
        values = {name: samples.value(sel) for name, sel in self.selectors.items()}
        self.points.append((self._clock() if t is None else t, values))

    async def scrape_once(self, edge: str | None = None) -> bool:
        """One scrape; ``edge`` "start"/"end" marks the window under the same lock,
        so a periodic scrape in flight cannot land on the wrong side of the mark."""
        async with self._lock:
            if edge == "start":
                self._start_idx = len(self.points)
            if self._session is None:
                self._session = aiohttp.ClientSession(trust_env=False)
            try:
                samples = await scrape(self._session, self.url, self.timeout_s)
            except ScrapeError as exc:
                self.errors += 1
                self.last_error = str(exc)
                ok = False
            else:
                self.record(samples)
                ok = True
            if edge == "end":
                self._end_idx = len(self.points) - 1
            return ok

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        next_t = self._clock()
        while True:
            await self.scrape_once()
            # Absolute deadlines: a slow scrape does not stretch the interval.
            next_t += self.interval_s
            await asyncio.sleep(max(0.0, next_t - self._clock()))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def mark_start(self) -> None:
        """Scrape now: the measured window starts at this point (or the next good one)."""
        await self.scrape_once("start")

    async def mark_end(self) -> None:
        """Scrape now: the measured window ends here (or at the last good point)."""
        await self.scrape_once("end")

    def mark_start_at(self, index: int) -> None:
        self._start_idx = index

    def mark_end_at(self, index: int) -> None:
        self._end_idx = index

    # -- reading --------------------------------------------------------------------

    def window(self) -> list[Point]:
        """Points from the start mark to the end mark (either open: first / last)."""
        lo = self._start_idx if self._start_idx is not None else 0
        hi = self._end_idx if self._end_idx is not None else len(self.points) - 1
        return self.points[lo : hi + 1]

    def deltas(self) -> dict[str, float | None]:
        """Reset-aware increase of each selector over the window (None: < 2 observations)."""
        pts = self.window()
        return {name: increase([v[name] for _, v in pts]) for name in self.selectors}

    def series(self) -> list[tuple[float, dict[str, float | None]]]:
        """Window points, time in seconds from the window's first point."""
        pts = self.window()
        if not pts:
            return []
        t0 = pts[0][0]
        return [(t - t0, dict(v)) for t, v in pts]

    def hit_rate(self, hits_name: str, misses_name: str) -> float | None:
        d = self.deltas()
        return _ratio(d.get(hits_name), d.get(misses_name))

    def hit_rate_series(self, hits_name: str, misses_name: str) -> list[tuple[float, float | None]]:
        """Hit rate per scrape interval, at each interval's end; None without traffic."""
        pts = self.series()
        out: list[tuple[float, float | None]] = []
        for (_, a), (t, b) in itertools.pairwise(pts):
            h = increase([a[hits_name], b[hits_name]])
            m = increase([a[misses_name], b[misses_name]])
            out.append((t, _ratio(h, m)))
        return out

    def figures(self) -> ScrapeFigures:
        """The window's figures, for the result."""
        has_cache = HITS in self.selectors and MISSES in self.selectors
        return ScrapeFigures(
            deltas=self.deltas(),
            auth_cache_hit_rate=self.hit_rate(HITS, MISSES) if has_cache else None,
            auth_cache_series=self.hit_rate_series(HITS, MISSES) if has_cache else [],
            errors=self.errors,
        )


def _ratio(hits: float | None, misses: float | None) -> float | None:
    if hits is None or misses is None or hits + misses <= 0:
        return None
    return hits / (hits + misses)
