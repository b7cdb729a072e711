"""The ledger rings: one bounded ring of LEDGER_DTYPE records per worker process.

Each ring lives in an anonymous ``MAP_SHARED`` mapping created by the parent
before it forks the workers, so every worker can read every ring (the control
endpoints answer on whichever worker the kernel's reuse_port picked) while only
the owner writes. Anonymous shared memory has no name, so nothing can be left
behind in ``/dev/shm`` when a process dies: the kernel frees it with the last
mapping (this is why we do not use ``multiprocessing.shared_memory``).

Ring header (little-endian u64s): ``seq`` = records ever written (owner only),
``base`` = first record still visible after the last reset (any worker). The
owner writes a record into slot ``seq % capacity`` and only then publishes it by
bumping ``seq``; a reader copies, re-reads ``seq`` and drops (and counts as
lost) whatever the owner may have overwritten while it copied.

Cursor (opaque to clients): ``<instance>:<pos0>.<pos1>...``, absolute record
numbers per ring. A cursor from another stub instance, or "", reads from the
last reset.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass

import numpy as np

from stub_upstream.ledger_format import CLOCK_FIELDS, LEDGER_DTYPE

__all__ = ["RECORD", "LedgerRing", "LedgerView", "read_all", "reset_all", "shift_clock"]

#: Packs one LEDGER_DTYPE record (field order and widths must match the dtype).
RECORD = struct.Struct("<QqqqqQIIHBBBB18sIHBx")
assert RECORD.size == LEDGER_DTYPE.itemsize

_HEADER = struct.Struct("<QQ")
_SEQ = struct.Struct("<Q")
_HEADER_SIZE = 64  # keep records cache-line aligned


class LedgerRing:
    """One worker's ring in shared memory."""

    __slots__ = ("_buf", "_map", "capacity", "seq")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._map = mmap.mmap(-1, _HEADER_SIZE + capacity * RECORD.size)
        self._buf = memoryview(self._map)
        self.seq = 0  # owner's private copy of the header's seq

    def append(
        self,
        corr: int,
        t_recv: int,
        t_first_write: int,
        t_last_write: int,
        t_sched_first: int,
        auth_hash: int,
        nbytes: int,
        tokens: int,
        status: int,
        endpoint: int,
        stream: int,
        fault: int,
        worker: int,
        model: bytes,
        stream_dev_us: int = 0,
        checks_failed: int = 0,
        checked: int = 0,
    ) -> None:
        """Owner only: write one record and publish it."""
        seq = self.seq
        RECORD.pack_into(
            self._buf,
            _HEADER_SIZE + (seq % self.capacity) * RECORD.size,
            corr,
            t_recv,
            t_first_write,
            t_last_write,
            t_sched_first,
            auth_hash,
            nbytes & 0xFFFFFFFF,
            tokens,
            status,
            endpoint,
            stream,
            fault,
            worker,
            model,
            min(stream_dev_us, 0xFFFFFFFF),
            checks_failed,
            checked,
        )
        self.seq = seq + 1
        _SEQ.pack_into(self._buf, 0, seq + 1)

    def header(self) -> tuple[int, int]:
        """(seq, base) as every process sees them."""
        seq, base = _HEADER.unpack_from(self._buf, 0)
        return int(seq), int(base)

    def reset(self) -> None:
        """Any process: hide every record written so far."""
        seq, _ = self.header()
        struct.pack_into("<Q", self._buf, 8, seq)

    def copy(self, start: int, stop: int) -> bytes:
        """Raw bytes of records ``[start, stop)``; caller checks they are still live."""
        size, cap = RECORD.size, self.capacity
        out = bytearray()
        pos = start
        while pos < stop:
            slot = pos % cap
            run = min(stop - pos, cap - slot)
            off = _HEADER_SIZE + slot * size
            out += self._buf[off : off + run * size]
            pos += run
        return bytes(out)

    def close(self) -> None:
        self._buf.release()
        self._map.close()


@dataclass(slots=True)
class LedgerView:
    """What one ``GET /_loadgate/ledger`` returns."""

    data: bytes
    cursor: str
    lost: int


def _parse_cursor(cursor: str, instance: str, n: int) -> list[int] | None:
    head, sep, tail = cursor.partition(":")
    if not sep or head != instance:
        return None
    try:
        pos = [int(p) for p in tail.split(".")] if tail else []
    except ValueError:
        return None
    return pos if len(pos) == n else None


def read_all(rings: list[LedgerRing], cursor: str, instance: str) -> LedgerView:
    """Records of every ring since ``cursor`` (any process may call this)."""
    positions = _parse_cursor(cursor, instance, len(rings))
    parts: list[bytes] = []
    new_pos: list[int] = []
    lost = 0
    for i, ring in enumerate(rings):
        seq, base = ring.header()
        start = base if positions is None else positions[i]
        if start < base or start > seq:  # reset since, or a cursor from the future
            start = base
        oldest = max(seq - ring.capacity, 0)
        if start < oldest:
            lost += oldest - start
            start = oldest
        chunk = ring.copy(start, seq)
        # The owner may have lapped us while we copied: drop what it overwrote.
        seq_after, _ = ring.header()
        overwritten = seq_after - ring.capacity - start
        if overwritten > 0:
            drop = min(overwritten, seq - start)
            lost += drop
            chunk = chunk[drop * RECORD.size :]
        parts.append(chunk)
        new_pos.append(seq)
    cursor_out = instance + ":" + ".".join(str(p) for p in new_pos)
    return LedgerView(b"".join(parts), cursor_out, lost)


def reset_all(rings: list[LedgerRing]) -> None:
    for ring in rings:
        ring.reset()


def shift_clock(data: bytes, offset_ns: int) -> bytes:
    """Records with ``offset_ns`` added to every time that is set (the test-only offset)."""
    if not offset_ns or not data:
        return data
    recs = np.frombuffer(data, dtype=LEDGER_DTYPE).copy()
    for name in CLOCK_FIELDS:
        col = recs[name]
        col[col != 0] += offset_ns
    return recs.tobytes()
