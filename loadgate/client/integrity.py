"""Integrity: compare what a request received with what the stub must have sent.

The expected content is re-derived from :mod:`stub_upstream.content` (DESIGN §3)
and a difference is named by one class from ``observation.INTEGRITY_CLASSES``.
When several symptoms are present, the first matching class in this order wins:

1. ``cross_talk`` — the text names another request: a ``[<16 hex>]`` token 0
   (anywhere in the text) that is not this request's id. A swapped response is
   a security bug, so it outranks everything it would otherwise look like.
2. ``malformed_event`` — an event (or a non-stream body) was not decodable;
   the lost event explains any missing content, so it is not counted again.
3. ``truncated`` — a stream ended without its terminator, or a non-stream JSON
   body stops mid-document. Whatever text came is a consequence of the cut.
4. no violation — the text equals the expected text exactly.
5. ``missing_tokens`` — the received tokens are a proper subsequence of the
   expected ones (a dropped event or delta).
6. ``out_of_order`` — the same tokens as a multiset, in another order.
7. ``corrupted`` — anything else.

Tokens are compared as whitespace-separated words, so a gateway that coalesces
or splits deltas is not penalised: only the final text counts.

``wrong_embedding`` applies to embeddings only (:func:`classify_embedding`).
Both functions accept any input and never raise.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from stub_upstream import content

__all__ = ["classify", "classify_embedding"]

_ID_RE = re.compile(r"\[([0-9a-f]{16})\]")


def _is_subsequence(short: Sequence[str], long: Sequence[str]) -> bool:
    it = iter(long)
    return all(word in it for word in short)


def classify(
    cid: int,
    n: int,
    received: str,
    *,
    terminated: bool,
    malformed: bool = False,
) -> str | None:
    """The integrity class of ``received`` for request ``cid`` expecting ``n`` tokens."""
    if not isinstance(received, str):
        return "corrupted"
    expected = content.expected_text(cid, n) if terminated and not malformed else None
    if received == expected:
        # The common case, decided without the id search: the expected text names
        # this request only, so it cannot be cross-talk.
        return None
    own = content.format_corr_id(cid)
    if any(found != own for found in _ID_RE.findall(received)):
        return "cross_talk"
    if malformed:
        return "malformed_event"
    if not terminated or expected is None:
        return "truncated"
    got = received.split()
    want = expected.split()
    if len(got) < len(want) and _is_subsequence(got, want):
        return "missing_tokens"
    if got != want and Counter(got) == Counter(want):
        return "out_of_order"
    return "corrupted"


def classify_embedding(
    cid: int,
    received: Sequence[float] | None,
    *,
    terminated: bool,
    malformed: bool = False,
) -> str | None:
    """The integrity class of an embedding vector for request ``cid``.

    The stub's vector length is a stub setting the request does not carry, so the
    expected vector is derived for the received length; an empty vector is wrong.
    """
    if malformed:
        return "malformed_event"
    if not terminated:
        return "truncated"
    if not received:
        return "wrong_embedding"
    try:
        if list(received) != content.embedding(cid, len(received)):
            return "wrong_embedding"
    except (TypeError, ValueError):
        return "wrong_embedding"
    return None
