"""Integrity classes: each one, their precedence, and silence for correct content."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadgate.client.integrity import classify, classify_embedding
from loadgate.client.observation import INTEGRITY_CLASSES
from stub_upstream import content

CID = 0x00000ABC00000007
OTHER = 0x00000ABC00000008
N = 16
TOKS = content.tokens(CID, N)
GOOD = "".join(TOKS)


def check(text: str, *, terminated: bool = True, malformed: bool = False) -> str | None:
    return classify(CID, N, text, terminated=terminated, malformed=malformed)


def test_correct_content_has_no_violation() -> None:
    assert check(GOOD) is None
    for n in (1, 2, 40):
        assert classify(CID, n, content.expected_text(CID, n), terminated=True) is None


def test_cross_talk_when_token_zero_names_another_request() -> None:
    assert check(content.expected_text(OTHER, N)) == "cross_talk"
    # even when that other response is also cut or reordered: attribution wins
    other = content.tokens(OTHER, N)
    assert check("".join(other[:3]), terminated=False) == "cross_talk"
    assert check("".join(reversed(other)), malformed=True) == "cross_talk"


def test_missing_tokens() -> None:
    assert check("".join(TOKS[:5] + TOKS[6:])) == "missing_tokens"
    assert check("".join(TOKS[:-1])) == "missing_tokens"
    assert check("") == "missing_tokens"


def test_out_of_order() -> None:
    swapped = [*TOKS[:3], TOKS[4], TOKS[3], *TOKS[5:]]
    assert check("".join(swapped)) == "out_of_order"


def test_truncated_outranks_missing_tokens() -> None:
    assert check("".join(TOKS[:5]), terminated=False) == "truncated"
    assert check(GOOD, terminated=False) == "truncated"


def test_malformed_outranks_truncated_and_missing() -> None:
    assert check("".join(TOKS[:5]), terminated=False, malformed=True) == "malformed_event"
    assert check(GOOD, malformed=True) == "malformed_event"


def test_corrupted_for_any_other_difference() -> None:
    assert check(GOOD + " extra") == "corrupted"
    assert check(GOOD.replace(TOKS[2], " zzzz")) == "corrupted"
    assert check(GOOD + GOOD[20:]) == "corrupted"  # duplicated tokens are not "missing"


@given(st.text(max_size=300), st.booleans(), st.booleans())
def test_never_raises_and_always_names_a_known_class(
    text: str, terminated: bool, malformed: bool
) -> None:
    got = check(text, terminated=terminated, malformed=malformed)
    assert got is None or got in INTEGRITY_CLASSES
    if got is None:
        assert text == GOOD


@pytest.mark.parametrize("bad", [None, 3, b"bytes", ["x"]])
def test_non_text_input_is_corrupted(bad: object) -> None:
    assert classify(CID, N, bad, terminated=True) == "corrupted"  # type: ignore[arg-type]


def test_embeddings() -> None:
    vec = content.embedding(CID, 16)
    assert classify_embedding(CID, vec, terminated=True) is None
    assert classify_embedding(CID, content.embedding(OTHER, 16), terminated=True) == (
        "wrong_embedding"
    )
    assert classify_embedding(CID, [*vec[:-1], 0.5], terminated=True) == "wrong_embedding"
    assert classify_embedding(CID, [], terminated=True) == "wrong_embedding"
    assert classify_embedding(CID, None, terminated=True) == "wrong_embedding"
    assert classify_embedding(CID, None, terminated=False) == "truncated"
    assert classify_embedding(CID, None, terminated=True, malformed=True) == "malformed_event"
    assert classify_embedding(CID, ["x"], terminated=True) == "wrong_embedding"  # type: ignore[list-item]
