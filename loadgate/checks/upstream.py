"""Upstream assertions: the stub's per-request rule verdicts, as the result reports them.

The rules are evaluated by the stub on every request it receives
(:mod:`stub_upstream.assertions`); each ledger record carries the failed rules'
bits, the join counts them (:class:`loadgate.join.joiner.AssertionCounts`), and
this module names the bits after the rules they stand for.
"""

from __future__ import annotations

from loadgate.load.outcome import UpstreamCounts
from loadgate.result.model import UpstreamAssertions
from stub_upstream.assertions import UpstreamRules

__all__ = ["assertion_figures"]


def assertion_figures(
    rules: UpstreamRules | None, counts: UpstreamCounts, examples: int = 5
) -> UpstreamAssertions | None:
    """``upstream.assertions``; None when no rule is configured (never a silent zero)."""
    if rules is None or not rules.configured:
        return None
    names = rules.names()
    return UpstreamAssertions(
        checked=counts.assertions_checked,
        failed=counts.assertions_failed,
        by_rule={name: counts.assertions_by_bit.get(bit, 0) for bit, name in enumerate(names)},
        examples=counts.assertion_examples[:examples],
    )
