"""Ledger rings: record layout, cursors, resets, wrap-around and loss accounting."""

from __future__ import annotations

import numpy as np

from stub_upstream.ledger import RECORD, LedgerRing, read_all, reset_all
from stub_upstream.ledger_format import LEDGER_DTYPE


def _put(ring: LedgerRing, corr: int, worker: int = 0) -> None:
    ring.append(corr, 10, 20, 30, 15, 0xDEADBEEF, 123, 4, 200, 1, 1, 0, worker, b"gpt-4o-mini")


def test_record_matches_the_dtype() -> None:
    ring = LedgerRing(4)
    ring.append(7, 1, 3, 4, 2, 2**64 - 1, 2**32 - 1, 16, 529, 3, 1, 10, 5, b"x" * 30)
    recs = np.frombuffer(read_all([ring], "", "i").data, dtype=LEDGER_DTYPE)
    (r,) = recs
    assert (r["corr"], r["t_recv"], r["t_sched_first"], r["t_first_write"], r["t_last_write"]) == (
        7, 1, 2, 3, 4,
    )  # fmt: skip
    assert r["auth_hash"] == 2**64 - 1 and r["bytes"] == 2**32 - 1 and r["tokens"] == 16
    assert (r["status"], r["endpoint"], r["stream"], r["fault"], r["worker"]) == (529, 3, 1, 10, 5)
    assert r["model"] == b"x" * 18  # truncated to the field
    assert RECORD.size == LEDGER_DTYPE.itemsize


def test_cursor_reads_only_new_records_per_ring() -> None:
    rings = [LedgerRing(8), LedgerRing(8)]
    _put(rings[0], 1)
    _put(rings[1], 2, worker=1)
    v1 = read_all(rings, "", "abc")
    assert sorted(np.frombuffer(v1.data, LEDGER_DTYPE)["corr"].tolist()) == [1, 2]
    assert v1.cursor == "abc:1.1" and v1.lost == 0
    _put(rings[1], 3, worker=1)
    v2 = read_all(rings, v1.cursor, "abc")
    assert np.frombuffer(v2.data, LEDGER_DTYPE)["corr"].tolist() == [3]
    assert v2.cursor == "abc:1.2"
    assert read_all(rings, v2.cursor, "abc").data == b""


def test_foreign_or_garbled_cursor_reads_from_the_last_reset() -> None:
    rings = [LedgerRing(8)]
    _put(rings[0], 1)
    for cursor in ("other:1", "abc:x", "abc:1.2", "abc", "abc:99"):
        assert len(read_all(rings, cursor, "abc").data) == RECORD.size


def test_reset_hides_old_records_and_old_cursors() -> None:
    rings = [LedgerRing(8), LedgerRing(8)]
    _put(rings[0], 1)
    old = read_all(rings, "", "i").cursor
    _put(rings[1], 2)
    reset_all(rings)
    assert read_all(rings, "", "i").data == b""
    assert read_all(rings, old, "i").data == b""
    _put(rings[0], 3)
    assert np.frombuffer(read_all(rings, old, "i").data, LEDGER_DTYPE)["corr"].tolist() == [3]


def test_wrap_around_keeps_the_newest_and_counts_lost() -> None:
    ring = LedgerRing(3)
    for c in range(1, 8):
        _put(ring, c)
    view = read_all([ring], "", "i")
    assert np.frombuffer(view.data, LEDGER_DTYPE)["corr"].tolist() == [5, 6, 7]
    assert view.lost == 4
    _put(ring, 8)
    nxt = read_all([ring], view.cursor, "i")
    assert np.frombuffer(nxt.data, LEDGER_DTYPE)["corr"].tolist() == [8] and nxt.lost == 0


def test_rings_are_shared_with_forked_children() -> None:
    import os

    ring = LedgerRing(4)
    pid = os.fork()
    if pid == 0:  # child writes, parent reads
        _put(ring, 42, worker=1)
        os._exit(0)
    os.waitpid(pid, 0)
    recs = np.frombuffer(read_all([ring], "", "i").data, LEDGER_DTYPE)
    assert recs["corr"].tolist() == [42] and recs["worker"].tolist() == [1]
