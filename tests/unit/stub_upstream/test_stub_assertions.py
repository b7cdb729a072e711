"""Upstream rules as the stub evaluates them, one request body and header set at a time."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from stub_upstream.assertions import MAX_RULES, Rules, UpstreamRules, system_texts

RULES = UpstreamRules(
    require_system="AGENT-7",
    require_headers={"X-Agent-Id": "agent-*"},
    forbid_headers=["Authorization"],
)
OK_HEADERS = {"x-agent-id": "agent-1"}  # the stub's parser lowercases names


def body(doc: object) -> bytes:
    return json.dumps(doc).encode()


def test_rule_names_are_the_bit_order() -> None:
    assert RULES.names() == [
        "require_system",
        "require_headers.x-agent-id",
        "forbid_headers.authorization",
    ]
    assert not UpstreamRules().configured


@pytest.mark.parametrize(
    "doc",
    [
        {"messages": [{"role": "system", "content": "You are AGENT-7."}, {"role": "user"}]},
        {"messages": [{"role": "developer", "content": [{"type": "text", "text": "x AGENT-7"}]}]},
        {"instructions": "AGENT-7 rules", "input": "hi"},
        {"input": [{"role": "system", "content": "AGENT-7"}, {"role": "user", "content": "x"}]},
        {"system": "AGENT-7", "messages": [{"role": "user", "content": "x"}]},
        {"system": [{"type": "text", "text": "be AGENT-7"}], "messages": []},
    ],
)
def test_the_directive_is_found_wherever_a_provider_puts_it(doc: object) -> None:
    assert Rules(RULES).evaluate(OK_HEADERS, body(doc), True) == 0


def test_the_directive_in_a_user_message_does_not_count() -> None:
    doc = {"messages": [{"role": "user", "content": "AGENT-7"}]}
    assert Rules(RULES).evaluate(OK_HEADERS, body(doc), True) == 0b001
    assert Rules(RULES).evaluate(OK_HEADERS, b"not json", True) == 0b001
    # Embeddings and models have no system prompt: the rule does not apply.
    assert Rules(RULES).evaluate(OK_HEADERS, b"{}", False) == 0


def test_header_rules_set_their_own_bits() -> None:
    doc = body({"system": "AGENT-7"})
    rules = Rules(RULES)
    assert rules.evaluate({}, doc, True) == 0b010
    assert rules.evaluate({"x-agent-id": "other"}, doc, True) == 0b010
    assert rules.evaluate({**OK_HEADERS, "authorization": "Bearer sk-1"}, doc, True) == 0b100
    assert rules.evaluate({"authorization": "x"}, b"{}", True) == 0b111


def test_system_texts_of_a_body() -> None:
    assert system_texts(b"[1]") is None
    assert system_texts(body({"messages": [{"role": "system", "content": 5}]})) == []


def test_rules_are_bounded_and_named() -> None:
    with pytest.raises(ValidationError, match="at most 16"):
        UpstreamRules(forbid_headers=[f"h{i}" for i in range(MAX_RULES + 1)])
    with pytest.raises(ValidationError, match="not a header name"):
        UpstreamRules(forbid_headers=["bad name"])
