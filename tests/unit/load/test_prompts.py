"""Prompts of a trace row: exact sizes, and identical prefixes where hash ids match."""

from __future__ import annotations

import dataclasses
import json

from loadgate.client.observation import RequestSpec
from loadgate.load.bodies import build_request
from loadgate.load.prompts import WORD_CHARS, block_text, prefix_prompt
from loadgate.load.trace import TraceRow, row_spec
from stub_upstream import content

BLOCK = 512


def words(text: str) -> list[str]:
    return text.split()


def test_prompts_have_exactly_the_requested_words() -> None:
    for n in (1, 7, 511, 512, 513, 1100, 1536):
        text = prefix_prompt([0, 1, 2], n, BLOCK, cid=n)
        assert len(words(text)) == n and text.endswith(" ") and not text.startswith(" ")
    assert len(words(prefix_prompt([], 0, BLOCK, cid=1))) == 1  # never empty
    assert len(block_text(5, 64)) == 64 * WORD_CHARS and block_text(5, 64).count(" ") == 64


def test_matching_hash_ids_share_their_prefix_text_exactly() -> None:
    # The Mooncake sample's rows: [0, 1, 2] 1100 words, [0, 1] 1024, [0, 3] 700.
    a = words(prefix_prompt([0, 1, 2], 1100, BLOCK, cid=11))
    b = words(prefix_prompt([0, 1, 2], 1536, BLOCK, cid=12))
    c = words(prefix_prompt([0, 1], 1024, BLOCK, cid=13))
    d = words(prefix_prompt([0, 3], 700, BLOCK, cid=14))
    assert a == b[:1100]  # same blocks: the shorter is a prefix of the longer
    assert a[:1024] == c  # two shared blocks: 1024 identical words
    assert a[:512] == d[:512]  # block 0 shared ...
    assert a[512:700] != d[512:700]  # ... then block 1 against block 3
    assert sum(x == y for x, y in zip(a[512:700], d[512:700], strict=True)) < 20


def test_words_past_the_blocks_are_the_requests_own() -> None:
    # input longer than its blocks (or a trace with no hash ids): unique per request
    a = words(prefix_prompt([0], 600, BLOCK, cid=1))
    b = words(prefix_prompt([0], 600, BLOCK, cid=2))
    assert a[:512] == b[:512] and a[512:] != b[512:]
    assert words(prefix_prompt([], 50, BLOCK, cid=1)) != words(prefix_prompt([], 50, BLOCK, cid=2))


def test_a_trace_row_becomes_a_request_of_its_sizes() -> None:
    base = RequestSpec(
        corr=(5 << 32) | 9, endpoint="chat", stream=True, model="m",
        prompt_tokens=64, max_tokens=16, expect_tokens=16,
    )  # fmt: skip
    row = TraceRow(t_us=0, input_tokens=1100, output_tokens=40, hash_ids=(0, 1, 2))
    spec = row_spec(base, row, BLOCK, stub_tokens=64)
    assert (spec.max_tokens, spec.expect_tokens, spec.prompt_tokens) == (40, 40, 1100)
    body = json.loads(build_request(spec).body)
    assert body["max_tokens"] == 40 and body["stream"] is True
    [msg] = body["messages"]
    text = msg["content"]
    assert msg["role"] == "user" and text.endswith(content.marker(spec.corr))
    assert len(words(text)) == 1100 + 1  # the words, then the marker
    assert text.startswith(block_text(0, BLOCK)[1:])
    # A stub answering fewer tokens than the row asks: the integrity reference follows it.
    assert row_spec(base, row, BLOCK, stub_tokens=16).expect_tokens == 16


def test_conversation_bodies_per_endpoint() -> None:
    msgs = (("system", "be brief "), ("user", "hi "), ("assistant", "[x] ok"), ("user", "more "))
    base = RequestSpec(
        corr=1, endpoint="messages", stream=False, model="claude", prompt_tokens=5,
        max_tokens=8, expect_tokens=8, messages=msgs,
    )  # fmt: skip
    body = json.loads(build_request(base).body)
    assert body["system"] == "be brief " and body["max_tokens"] == 8
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][-1]["content"] == "more " + content.marker(1)
    chat = json.loads(build_request(dataclasses.replace(base, endpoint="chat")).body)
    assert [m["role"] for m in chat["messages"]] == ["system", "user", "assistant", "user"]
    one = dataclasses.replace(base, endpoint="responses", messages=(("user", "q "),))
    assert json.loads(build_request(one).body)["input"] == "q " + content.marker(1)
