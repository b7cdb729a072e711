"""Profile keys of trace replay and sessions: defaults, and what they combine with."""

from __future__ import annotations

from typing import Any

import pytest

from loadgate.errors import UsageError
from loadgate.profile import parse_profile


def test_a_trace_is_its_own_load_model() -> None:
    p = parse_profile({"load": {"trace": "t.jsonl"}})
    assert (p.load.concurrency, p.load.rate, p.load.open_loop) == (None, None, True)
    assert (p.load.trace_format, p.load.replay.speedup, p.load.replay.block_tokens) == (
        "auto",
        1.0,
        512,
    )
    # Set from the command line, a trace replaces the file's load model.
    q = parse_profile({"load": {"concurrency": 5}}, sets=["load.trace=t.csv"])
    assert (q.load.concurrency, q.load.trace) == (None, "t.csv")


def test_sessions_default_to_one_turn() -> None:
    p = parse_profile({})
    assert p.load.sessions.turns == 1 and not p.load.open_loop
    q = parse_profile({"load": {"sessions": {"turns": 3, "think_time": "250ms"}}})
    assert (q.load.sessions.turns, q.load.sessions.think_time_s) == (3, 0.25)


@pytest.mark.parametrize(
    ("load", "where"),
    [
        ({"trace": "t", "rate": 5.0}, "load.rate"),
        ({"trace": "t", "concurrency": 5}, "load.concurrency"),
        ({"trace": "t", "sessions": {"turns": 2}}, "load.sessions.turns"),
        ({"trace": "t", "endpoints": {"embeddings": 1.0}}, "load.endpoints.embeddings"),
        ({"sessions": {"turns": 2}, "endpoints": {"responses": 1.0}}, "load.endpoints.responses"),
        ({"trace": "t", "trace_format": "sharegpt"}, "load.trace_format"),
        ({"trace": "t", "replay": {"speedup": 0}}, "load.replay.speedup"),
        ({"sessions": {"turns": 0}}, "load.sessions.turns"),
    ],
)
def test_what_does_not_combine_is_one_line_naming_the_key(load: dict[str, Any], where: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_profile({"load": load}, label="p.toml")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"p.toml: {where}")
