"""A stub's ledger for engine tests: records the fake stub adds, pulled as the real one is.

The fake stubs of the trace and session tests answer through a ``MockTransport``
and note each answer here; the engine pulls the records as it pulls the real
stub's (``info()``, ``pull()``: the :class:`~loadgate.join.ledger.LedgerSource` seam).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from stub_upstream.ledger_format import LEDGER_DTYPE

__all__ = ["MS", "FakeLedger"]

MS = 1_000_000


class FakeLedger:
    """Records at fixed offsets from the send: received +0.5 ms, written +1 and +2 ms."""

    lost = 0

    def __init__(self) -> None:
        self.records: list[tuple[int, int, int, int]] = []  # (corr, t_send, tokens, fault)
        self._pulled = 0

    def note(self, corr: int, t_send: int, tokens: int, fault: int = 0) -> None:
        self.records.append((corr, t_send, tokens, fault))

    async def info(self) -> dict[str, Any]:
        return {"stamps": "kernel"}

    async def pull(self) -> np.ndarray[Any, Any]:
        new = self.records[self._pulled :]
        self._pulled = len(self.records)
        recs = np.zeros(len(new), dtype=LEDGER_DTYPE)
        for i, (corr, t, tokens, fault) in enumerate(new):
            recs[i]["corr"], recs[i]["tokens"], recs[i]["fault"] = corr, tokens, fault
            recs[i]["t_recv"] = t + MS // 2
            recs[i]["t_first_write"] = recs[i]["t_sched_first"] = t + MS
            recs[i]["t_last_write"] = t + 2 * MS
            recs[i]["status"], recs[i]["stream"] = 200, 1
        return recs
