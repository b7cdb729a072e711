"""Join what the client saw with what the stub saw (DESIGN §2).

The stub appends one ledger record per upstream call; the harness pulls them
incrementally and matches them to its own observations by correlation id. From
the pair come the numbers the product exists for (the formula:
:mod:`loadgate.join.overhead`; the pulls: :mod:`loadgate.join.ledger`).

Both sides arrive in any order. A record is written by the stub before the
client can read the last byte, so an observation that completed before a pull
*started* has all its records in that pull; it is finalised then. Records that
arrive later still (a gateway retrying in the background) are counted as late
calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from loadgate.client.observation import Observation
from loadgate.join.overhead import Call
from stub_upstream.content import format_corr_id
from stub_upstream.ledger_format import FAULT_CODES

__all__ = [
    "CONTROL_SEQ_BASE",
    "DONE_WINDOW_NS",
    "EXAMPLES",
    "AssertionCounts",
    "JoinStats",
    "Joiner",
]

#: how long a finalised id is remembered at least (two generations of this are kept)
DONE_WINDOW_NS = 30_000_000_000
#: Control-group correlation ids start here: the gateway's never reach 2**31 in a run.
CONTROL_SEQ_BASE = 1 << 31
#: failing correlation ids kept as examples
EXAMPLES = 5


@dataclass(slots=True)
class AssertionCounts:
    """The stub's upstream-rule verdicts on this run's gateway traffic (all phases).

    Warm-up included: a request that left without its directive is a defect
    whenever it was sent. The control group (straight to the stub) is left out.
    """

    checked: int = 0
    failed: int = 0
    #: rule bit → requests that failed it
    by_bit: dict[int, int] = field(default_factory=dict)
    #: a few failing correlation ids (hex), for the user to look up
    examples: list[str] = field(default_factory=list)

    def add(self, recs: np.ndarray[Any, Any]) -> None:
        """Count the ``checked`` records among ``recs`` (this run's, no control group)."""
        checked = recs[recs["checked"] == 1]
        if len(checked) == 0:
            return
        self.checked += len(checked)
        bad = checked[checked["checks_failed"] != 0]
        self.failed += len(bad)
        masks = bad["checks_failed"]
        for bit in range(16):
            n = int(((masks >> bit) & 1).sum())
            if n:
                self.by_bit[bit] = self.by_bit.get(bit, 0) + n
        room = EXAMPLES - len(self.examples)
        if room > 0:
            self.examples += [format_corr_id(int(c)) for c in bad["corr"][:room].tolist()]


@dataclass(slots=True)
class JoinStats:
    """Counts over measured requests only (warm-up joins are discarded)."""

    calls: int = 0  # upstream calls made for measured requests
    unseen: int = 0  # measured requests the stub never saw
    duplicated: int = 0  # measured requests with more than one upstream call
    late_calls: int = 0  # calls that arrived after their request was finalised
    foreign: int = 0  # records of other runs / other workers / no id
    lost: int = 0  # records the stub's ring overwrote before we read them
    calls_hist: dict[int, int] = field(default_factory=dict)  # calls per request → requests


class Joiner:
    """Matches observations to ledger records by correlation id."""

    def __init__(
        self,
        nonce: int,
        on_joined: Callable[[Observation, bool, list[Call]], None],
    ) -> None:
        self._nonce = nonce & 0x7FFFFFFF
        self._on_joined = on_joined
        self._obs: dict[int, tuple[Observation, bool]] = {}
        self._calls: dict[int, list[Call]] = {}
        # Ids finalised recently, to count a call arriving after its request as
        # late. Two generations, rotated every DONE_WINDOW_NS of completion time, so
        # memory stays bounded in a long run (a set of every id grew ~70 B a request).
        # An id is remembered for at least one window (30 s): a call later than
        # that is not counted, like a call for a warm-up request.
        self._done_measured: set[int] = set()
        self._done_older: set[int] = set()
        self._done_since_ns = 0
        #: pending ids with a call stamped on another clock (see is_cross_clock)
        self._cross_clock: set[int] = set()
        self.stats = JoinStats()
        #: our ids whose record says the stub found the resent history wrong (sessions)
        self.history_flagged: set[int] = set()
        self.assertions = AssertionCounts()
        self.lateness_ns: list[int] = []  # stub timer lateness of our records, since last take

    def add_observation(self, obs: Observation, measured: bool) -> None:
        self._obs[obs.corr] = (obs, measured)

    def add_records(self, recs: np.ndarray[Any, Any], *, same_clock: bool = True) -> int:
        """Take in ledger records; returns how many are this run's (warm-up included).

        ``same_clock`` False: these records come from a stub on another clock.
        """
        if len(recs) == 0:
            return 0
        ours = (recs["corr"] >> 32) == self._nonce
        self.stats.foreign += int(len(recs) - int(ours.sum()))
        mine = recs[ours]
        gateway_side = (mine["corr"] & 0xFFFFFFFF) < CONTROL_SEQ_BASE
        self.assertions.add(mine[gateway_side])
        late = np.where(mine["t_sched_first"] > 0, mine["t_first_write"] - mine["t_sched_first"], 0)
        flagged = mine["fault"] == FAULT_CODES["history"]
        if flagged.any():
            self.history_flagged.update(mine["corr"][flagged].tolist())
        self.lateness_ns.extend(int(x) for x in late[mine["t_first_write"] > 0])
        for corr, t_recv, t_first, t_last, t_sched, dev_us in zip(
            mine["corr"].tolist(),
            mine["t_recv"].tolist(),
            mine["t_first_write"].tolist(),
            mine["t_last_write"].tolist(),
            mine["t_sched_first"].tolist(),
            mine["stream_dev_us"].tolist(),
            strict=True,
        ):
            if corr in self._done_measured or corr in self._done_older:
                self.stats.late_calls += 1
                self.stats.calls += 1
                continue
            call = (t_recv, t_first, t_last, t_sched, dev_us * 1000)
            self._calls.setdefault(corr, []).append(call)
            if not same_clock:
                self._cross_clock.add(corr)
        return len(mine)

    def ready(self, before_ns: int) -> list[int]:
        """Ids of observations that completed before ``before_ns`` (safe to finalise)."""
        return [c for c, (o, _) in self._obs.items() if o.t_last_byte < before_ns]

    def flush(self, before_ns: int) -> int:
        """Finalise observations that completed before ``before_ns``; returns how many."""
        ready = self.ready(before_ns)
        for corr in ready:
            self.finalise(corr)
        return len(ready)

    def finish(self) -> None:
        """Finalise everything left (end of run)."""
        for corr in list(self._obs):
            self.finalise(corr)
        self._calls.clear()
        self._cross_clock.clear()

    def take_lateness(self) -> list[int]:
        """The stub timer lateness values gathered since the last take (ns)."""
        out, self.lateness_ns = self.lateness_ns, []
        return out

    def is_cross_clock(self, corr: int) -> bool:
        """During ``on_joined``: did a call of ``corr`` come from a stub on another clock?"""
        return corr in self._cross_clock

    @property
    def pending(self) -> int:
        return len(self._obs)

    def finalise(self, corr: int) -> None:
        """Join one observation with the records seen so far and hand it on."""
        obs, measured = self._obs.pop(corr)
        calls = self._calls.pop(corr, [])
        calls.sort()
        # Control-group requests went straight to the stub: not the gateway's upstream calls.
        if measured and not obs.control:
            n = len(calls)
            st = self.stats
            st.calls += n
            st.calls_hist[n] = st.calls_hist.get(n, 0) + 1
            if n == 0:
                st.unseen += 1
            elif n > 1:
                st.duplicated += 1
            t = obs.t_last_byte or obs.t_intended
            if t - self._done_since_ns > DONE_WINDOW_NS:
                self._done_older, self._done_measured = self._done_measured, set()
                self._done_since_ns = t
            self._done_measured.add(corr)
        self._on_joined(obs, measured, calls)
        self._cross_clock.discard(corr)
