"""The reference gateway's directive injection, per route, and its exact skip share."""

from __future__ import annotations

import json

from reference_gateway._directive import DirectiveInjector
from stub_upstream.assertions import system_texts


def test_each_route_carries_the_directive_where_its_provider_reads_it() -> None:
    inj = DirectiveInjector("D!")
    chat = inj.apply("chat", b'{"messages":[{"role":"user","content":"hi"}]}')
    assert json.loads(chat)["messages"][0] == {"role": "system", "content": "D!"}
    merged = inj.apply("chat", b'{"messages":[{"role":"system","content":"be nice"}]}')
    assert json.loads(merged)["messages"] == [{"role": "system", "content": "D!\n\nbe nice"}]
    resp = inj.apply("responses", b'{"input":"x","instructions":"mine"}')
    assert json.loads(resp)["instructions"] == "D!\n\nmine"
    msgs = inj.apply("messages", b'{"system":[{"type":"text","text":"s"}],"messages":[]}')
    assert json.loads(msgs)["system"][0] == {"type": "text", "text": "D!"}
    for route, raw in (("chat", chat), ("responses", resp), ("messages", msgs)):
        texts = system_texts(raw)
        assert texts is not None and any("D!" in t for t in texts), route


def test_other_routes_and_non_objects_pass_unchanged() -> None:
    inj = DirectiveInjector("D!")
    assert inj.apply("embeddings", b'{"input":"x"}') == b'{"input":"x"}'
    assert inj.apply("chat", b"[1,2]") == b"[1,2]"
    assert inj.apply("chat", b"{not json") == b"{not json"
    assert DirectiveInjector("").apply("chat", b"{}") == b"{}"


def test_the_skip_share_is_exact() -> None:
    inj = DirectiveInjector("D!", skip_share=0.1)
    raw = b'{"messages":[]}'
    skipped = sum(inj.apply("chat", raw) == raw for _ in range(1000))
    assert skipped == 100
