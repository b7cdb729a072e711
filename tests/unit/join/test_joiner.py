"""Ledger join arithmetic with hand-computed nanosecond figures."""

import numpy as np
import pytest

from loadgate.client.observation import Observation
from loadgate.join import joiner
from loadgate.join.joiner import Joiner
from loadgate.join.overhead import decompose
from stub_upstream.ledger_format import LEDGER_DTYPE


def _obs(corr: int = 1, stream: bool = True, **kw: int) -> Observation:
    base = dict(
        t_intended=1_000, t_send=1_000, t_first_byte=1_500, t_first_token=2_600, t_last_byte=9_300
    )
    base.update(kw)
    return Observation(corr=corr, endpoint="chat", stream=stream, **base)  # type: ignore[arg-type]


def test_single_call_decomposition() -> None:
    # stub: recv 1_200, first write 2_200, last write 9_000 → service 7_800
    d = decompose(_obs(), [(1_200, 2_200, 9_000, 2_150, 0)])
    assert d.e2e == 8_300
    assert d.overhead == 8_300 - 7_800 == 500
    assert d.ingress == 200
    assert d.egress == 300
    assert d.ingress + d.egress == d.overhead  # one call: the split is exact
    assert d.ttft == 1_600
    assert d.ttft_overhead == 1_600 - 1_000 == 600


def test_retries_subtract_every_attempt_service() -> None:
    # attempt 1: 1_200..1_400 (failed fast), attempt 2: 3_000..9_000
    calls = [(1_200, 1_300, 1_400, 0, 0), (3_000, 4_000, 9_000, 0, 0)]
    d = decompose(_obs(), calls)
    assert d.overhead == 8_300 - (200 + 6_000)
    assert d.ingress == 200  # to the first attempt
    assert d.egress == 300  # from the last attempt
    assert d.ttft_overhead == 1_600 - 1_000 - 200


def test_open_loop_measures_from_intended_time() -> None:
    d = decompose(_obs(t_intended=500, t_send=1_000), [(1_200, 2_200, 9_000, 0, 0)])
    assert d.e2e == 8_800
    assert d.e2e_uncorrected == 8_300
    assert d.overhead == 1_000


def test_no_calls_leaves_overhead_unknown() -> None:
    d = decompose(_obs(stream=False, t_first_token=0), [])
    assert d.overhead is None and d.ingress is None and d.ttft is None
    assert d.e2e == 8_300


def _records(rows: list[tuple[int, int, int, int]]) -> np.ndarray:
    recs = np.zeros(len(rows), dtype=LEDGER_DTYPE)
    for i, (corr, t_recv, t_first, t_last) in enumerate(rows):
        recs[i]["corr"] = corr
        recs[i]["t_recv"] = t_recv
        recs[i]["t_first_write"] = t_first
        recs[i]["t_last_write"] = t_last
        recs[i]["t_sched_first"] = t_first - 10
    return recs


def test_joiner_counts_amplification_unseen_and_foreign() -> None:
    nonce = 9

    def cid(seq: int) -> int:
        return (nonce << 32) | seq

    joined: list[tuple[int, bool, int]] = []
    j = Joiner(nonce, lambda o, m, calls: joined.append((o.corr, m, len(calls))))
    j.add_records(
        _records(
            [
                (cid(1), 10, 20, 30),
                (cid(2), 10, 20, 30),
                (cid(2), 40, 50, 60),  # retried once
                ((7 << 32) | 1, 10, 20, 30),  # another run
            ]
        )
    )
    j.add_observation(_obs(cid(1), t_last_byte=100), True)
    j.add_observation(_obs(cid(2), t_last_byte=100), True)
    j.add_observation(_obs(cid(3), t_last_byte=100), True)  # never reached upstream
    j.add_observation(_obs(cid(4), t_last_byte=500), True)  # completes after the pull
    assert j.flush(before_ns=200) == 3
    assert sorted(joined) == [(cid(1), True, 1), (cid(2), True, 2), (cid(3), True, 0)]
    j.add_records(_records([(cid(4), 300, 310, 320), (cid(2), 600, 610, 620)]))  # late retry
    j.finish()
    st = j.stats
    assert st.foreign == 1
    assert st.unseen == 1
    assert st.duplicated == 1
    assert st.late_calls == 1
    assert st.calls == 1 + 2 + 0 + 1 + 1
    assert st.calls_hist == {0: 1, 1: 2, 2: 1}
    assert j.lateness_ns == [10] * 5  # ours only, late retry included
    assert j.pending == 0


def test_warmup_observations_are_joined_but_not_counted() -> None:
    j = Joiner(1, lambda o, m, c: None)
    j.add_records(_records([((1 << 32) | 1, 10, 20, 30)]))
    j.add_observation(_obs((1 << 32) | 1, t_last_byte=50), False)
    j.finish()
    assert j.stats.calls == 0 and j.stats.calls_hist == {}


def test_finalised_ids_are_remembered_in_two_bounded_generations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Windows of 10 ns of completion time: requests ending at 0, 5, 20, 25, 40, 45 ns.
    # At the end the sets hold the last two windows only, a late call for a recent id
    # is counted and one for a forgotten id is not.
    monkeypatch.setattr(joiner, "DONE_WINDOW_NS", 10)
    nonce = 5
    j = Joiner(nonce, lambda o, m, calls: None)
    ends = [100, 105, 120, 125, 140, 145]
    ids = [(nonce << 32) | i for i in range(1, len(ends) + 1)]
    for corr, end in zip(ids, ends, strict=True):
        j.add_observation(_obs(corr, t_intended=end - 50, t_send=end - 50, t_last_byte=end), True)
        j.finalise(corr)
    assert len(j._done_measured) + len(j._done_older) == 4
    j.add_records(_records([(ids[-1], 10, 20, 30), (ids[0], 10, 20, 30)]))
    assert j.stats.late_calls == 1


def test_lateness_is_taken_once() -> None:
    nonce = 5
    j = Joiner(nonce, lambda o, m, calls: None)
    j.add_records(_records([((nonce << 32) | 1, 10, 20, 30)]))
    assert j.take_lateness() == [10] and j.take_lateness() == []
