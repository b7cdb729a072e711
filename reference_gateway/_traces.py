"""One trace row per proxied request into PostgreSQL, written in batches off the request path.

:meth:`TraceWriter.add` runs in :meth:`~reference_gateway._proxy.Proxy.finished`, in the
event-loop callback that completed the request: it appends a tuple to a bounded queue and
returns (a full queue drops the row and counts it; the request is never made to wait for
the database). One task flushes the queue every ``--trace-flush-ms`` or as soon as
``--trace-batch-rows`` rows wait, with one ``COPY`` per batch over an asyncpg pool.

The table (created at start if it does not exist, as a service runs its migration)::

    traces(corr_id text, route text, status int,
           started_at timestamptz, finished_at timestamptz,
           written_at timestamptz default clock_timestamp())

``corr_id`` is the client's ``x-loadgate-id`` header as sent (a gateway that propagates
a client request id); ``written_at`` is the database's own clock when the row landed.

Two defects for tests of loadgate's witness: ``--trace-delay-ms`` holds every row that
long before it may be written (a slow pipeline); ``--trace-drop-share`` drops that share
of rows, evenly spread (every 1/share-th row), counted under ``reason="defect"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg

__all__ = ["DROP_REASONS", "TABLE", "TraceRow", "TraceWriter"]

log = logging.getLogger("reference_gateway")

TABLE = "traces"
_COLUMNS = ("corr_id", "route", "status", "started_at", "finished_at")
_DDL = f"""
create table if not exists {TABLE} (
    corr_id text,
    route text not null,
    status integer not null,
    started_at timestamptz not null,
    finished_at timestamptz not null,
    written_at timestamptz not null default clock_timestamp()
);
create index if not exists {TABLE}_corr_id on {TABLE} (corr_id);
"""
#: ``gateway_trace_rows_dropped_total{reason}``: every reason a row is not written.
DROP_REASONS = ("queue_full", "write_error", "shutdown", "defect")

#: (corr_id, route, status, started_at, finished_at): the COPY record.
TraceRow = tuple[str | None, str, int, datetime, datetime]


@dataclass(slots=True)
class TraceFigures:
    """What the writer did, for ``/metrics``."""

    written: int = 0
    batches: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))


class TraceWriter:
    """The bounded queue, its flush task and the pool the ``/admin/traces`` reads share."""

    def __init__(
        self,
        dsn: str,
        *,
        flush_ms: float = 50.0,
        batch_rows: int = 500,
        queue_rows: int = 100_000,
        delay_ms: float = 0.0,
        drop_share: float = 0.0,
    ) -> None:
        self._dsn = dsn
        self._flush_s = flush_ms / 1000.0
        self._batch = batch_rows
        self._limit = queue_rows
        self._delay_s = delay_ms / 1000.0
        self._drop_share = drop_share
        self._drop_acc = 0.0
        #: (due on time.monotonic(), row): due only differs from the add time by the defect
        self._queue: deque[tuple[float, TraceRow]] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pool: asyncpg.Pool | None = None
        self.figures = TraceFigures()

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def start(self) -> None:
        """Connect, create the table, start flushing; a database that is down fails here."""
        self._pool = await asyncpg.create_pool(self._dsn, min_size=1, max_size=2)
        await self._pool.execute(_DDL)
        self._task = asyncio.get_running_loop().create_task(self._flush_loop())

    def add(self, corr_id: str | None, route: str, status: int, started_at: float) -> None:
        """Queue one row (wall-clock seconds for ``started_at``); never waits."""
        if self._drop_share > 0:
            self._drop_acc += self._drop_share
            if self._drop_acc >= 1.0:
                self._drop_acc -= 1.0
                self.figures.dropped["defect"] += 1
                return
        if len(self._queue) >= self._limit:
            self.figures.dropped["queue_full"] += 1
            return
        now = time.time()
        row: TraceRow = (
            corr_id,
            route,
            status,
            datetime.fromtimestamp(started_at, UTC),
            datetime.fromtimestamp(now, UTC),
        )
        self._queue.append((time.monotonic() + self._delay_s, row))
        if len(self._queue) >= self._batch and self._delay_s == 0:
            self._wake.set()

    async def lookup(self, corr_id: str) -> list[TraceRow]:
        """The rows for ``corr_id`` (for ``GET /admin/traces``)."""
        assert self._pool is not None, "start() first"
        records = await self._pool.fetch(
            f"select {', '.join(_COLUMNS)} from {TABLE} where corr_id = $1", corr_id
        )
        return [(r[0], r[1], r[2], r[3], r[4]) for r in records]

    async def close(self, timeout_s: float = 5.0) -> None:
        """Write what is left (a held-back row waits out its delay) within ``timeout_s``;
        what is still queued then is dropped under ``reason="shutdown"``."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while self._queue:
                    if not await self._flush_due():
                        await asyncio.sleep(0.05)
        if self._queue:
            self.figures.dropped["shutdown"] += len(self._queue)
            self._queue.clear()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _flush_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_s)
            self._wake.clear()
            while await self._flush_due():
                pass

    async def _flush_due(self) -> bool:
        """Write one batch of due rows; False when none was due."""
        now = time.monotonic()
        q = self._queue
        batch: list[TraceRow] = []
        while q and q[0][0] <= now and len(batch) < self._batch:
            batch.append(q.popleft()[1])
        if not batch:
            return False
        assert self._pool is not None
        try:
            await self._pool.copy_records_to_table(TABLE, records=batch, columns=_COLUMNS)
        except (asyncpg.PostgresError, OSError) as exc:
            self.figures.dropped["write_error"] += len(batch)
            log.warning("trace batch of %d row(s) not written: %s", len(batch), exc)
            return False
        self.figures.written += len(batch)
        self.figures.batches += 1
        return True
