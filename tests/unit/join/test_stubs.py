"""Overhead without a shared clock; the clock check; records of another clock."""

from __future__ import annotations

import numpy as np

from loadgate.client.observation import Observation
from loadgate.join.joiner import Joiner
from loadgate.join.overhead import Call, decompose
from loadgate.join.stubs import same_clock
from stub_upstream.ledger import shift_clock
from stub_upstream.ledger_format import LEDGER_DTYPE

HOUR = 3600 * 10**9


def _obs(corr: int = 7) -> Observation:
    return Observation(
        corr=corr, endpoint="chat", stream=False, t_intended=1_000, t_send=1_100,
        t_first_byte=9_000, t_last_byte=10_000,
    )  # fmt: skip


def test_overhead_is_a_difference_of_durations_whatever_the_stubs_clock() -> None:
    call: Call = (2_000, 3_000, 8_000, 2_900, 0)
    shifted: Call = (2_000 + HOUR, 3_000 + HOUR, 8_000 + HOUR, 2_900 + HOUR, 0)
    same = decompose(_obs(), [call])
    other = decompose(_obs(), [shifted], same_clock=False)
    assert same.overhead == other.overhead == 9_000 - 6_000
    assert (same.ingress, same.egress) == (1_000, 2_000)
    assert (other.ingress, other.egress) == (None, None)


def test_the_clock_check() -> None:
    info = {"boot_id": "b", "monotonic_ns": 150}
    assert same_clock(info, 100, 200, boot_id="b") is None
    assert "another kernel" in (same_clock(info, 100, 200, boot_id="a") or "")
    assert "+3600000" in (same_clock({**info, "monotonic_ns": 150 + HOUR}, 100, 200, "b") or "")
    assert "does not report" in (same_clock({"boot_id": "b"}, 100, 200, "b") or "")


def test_records_from_another_clock_mark_their_request() -> None:
    seen: list[tuple[int, bool]] = []
    joiner = Joiner(0, lambda o, m, c: seen.append((o.corr, joiner.is_cross_clock(o.corr))))
    recs = np.zeros(2, dtype=LEDGER_DTYPE)
    recs["corr"] = [1, 2]
    recs["t_recv"] = 5
    joiner.add_records(recs[:1])
    joiner.add_records(recs[1:], same_clock=False)
    joiner.add_observation(_obs(1), True)
    joiner.add_observation(_obs(2), True)
    joiner.finish()
    assert sorted(seen) == [(1, False), (2, True)]
    assert not joiner.is_cross_clock(2)  # forgotten once joined


def test_the_test_only_offset_shifts_only_times_that_are_set() -> None:
    recs = np.zeros(1, dtype=LEDGER_DTYPE)
    recs["t_recv"], recs["t_last_write"] = 10, 20
    out = np.frombuffer(shift_clock(recs.tobytes(), HOUR), dtype=LEDGER_DTYPE)
    assert int(out["t_recv"][0]) == 10 + HOUR and int(out["t_last_write"][0]) == 20 + HOUR
    assert int(out["t_first_write"][0]) == 0 and int(out["corr"][0]) == 0
