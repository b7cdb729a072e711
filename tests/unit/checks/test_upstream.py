"""Upstream assertions from ledger records: counted per rule, control group left out."""

from __future__ import annotations

from typing import Any

import numpy as np

from loadgate.checks.upstream import assertion_figures
from loadgate.join.joiner import CONTROL_SEQ_BASE, Joiner
from loadgate.load.outcome import UpstreamCounts
from stub_upstream.assertions import UpstreamRules
from stub_upstream.ledger_format import LEDGER_DTYPE

NONCE = 0x1234


def records(rows: list[tuple[int, int, int]]) -> np.ndarray[Any, Any]:
    """(seq, checked, checks_failed) per record."""
    recs = np.zeros(len(rows), dtype=LEDGER_DTYPE)
    for i, (seq, checked, failed) in enumerate(rows):
        recs[i]["corr"] = (NONCE << 32) | seq
        recs[i]["checked"] = checked
        recs[i]["checks_failed"] = failed
    return recs


def test_the_join_counts_failures_per_rule_and_skips_the_control_group() -> None:
    joiner = Joiner(NONCE, lambda *_: None)
    joiner.add_records(
        records(
            [
                (1, 1, 0),
                (2, 1, 0b01),
                (3, 1, 0b11),
                (4, 0, 0),  # not evaluated (no rules then): not counted
                (CONTROL_SEQ_BASE + 1, 1, 0b11),  # straight to the stub: not gateway traffic
            ]
        )
    )
    a = joiner.assertions
    assert (a.checked, a.failed, a.by_bit) == (3, 2, {0: 2, 1: 1})
    assert a.examples == [f"{NONCE:08x}00000002", f"{NONCE:08x}00000003"]


def test_figures_name_every_rule_and_say_not_configured_when_none() -> None:
    rules = UpstreamRules(require_system="D", forbid_headers=["authorization"])
    counts = UpstreamCounts(assertions_checked=3, assertions_failed=2, assertions_by_bit={0: 2})
    fig = assertion_figures(rules, counts)
    assert fig is not None
    assert fig.by_rule == {"require_system": 2, "forbid_headers.authorization": 0}
    assert (fig.checked, fig.failed) == (3, 2)
    assert assertion_figures(None, counts) is None
    assert assertion_figures(UpstreamRules(), counts) is None
