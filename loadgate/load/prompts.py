"""Prompt text of a requested size, built from prefix blocks a gateway's cache can share.

A prompt of ``n`` tokens is ``n`` words (the harness's token: ``load.prompt_tokens``
counts words too). A trace row's ``hash_ids`` name its prefix blocks of
``block`` words each; the text of a block is a pure function of its hash id, so
two requests whose ``hash_ids`` agree on their first k blocks send the same first
``k × block`` words, exactly — a prompt cache in the gateway sees the reuse the
trace recorded. Words past the named blocks (or every word, for a trace without
hash ids) are unique to the request: derived from its correlation id.

Words come from :func:`stub_upstream.content.tokens` (7 ASCII characters each,
space included: nothing to escape in JSON, and cutting a block at a word
boundary is slicing), seeded apart from any correlation id a run can use.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from stub_upstream import content

__all__ = ["WORD_CHARS", "block_text", "prefix_prompt", "unique_words"]

#: Every word is " " + three two-letter syllables.
WORD_CHARS = 7
#: Seeds of block text: the top bit set, where no correlation id reaches (nonce < 2**31).
_BLOCK_SEED = 1 << 63
_TAIL_SEED = 3 << 62


@functools.lru_cache(maxsize=4096)
def block_text(hash_id: int, words: int) -> str:
    """The ``words`` words of prefix block ``hash_id``, each with its leading space."""
    seed = _BLOCK_SEED | (hash_id & ((1 << 62) - 1))
    return "".join(content.tokens(seed, words + 1)[1:])


def unique_words(cid: int, words: int) -> str:
    """``words`` words no other request sends (seeded by the request's correlation id)."""
    if words <= 0:
        return ""
    return "".join(content.tokens(_TAIL_SEED ^ cid, words + 1)[1:])


def prefix_prompt(hash_ids: Sequence[int], words: int, block: int, cid: int) -> str:
    """A prompt of exactly ``words`` words (at least one): the blocks, then unique words.

    Ends with a space, where the request's marker goes (:mod:`loadgate.load.bodies`).
    """
    words = max(1, words)
    parts: list[str] = []
    left = words
    for h in hash_ids:
        if left <= 0:
            break
        take = min(block, left)
        parts.append(block_text(h, block)[: take * WORD_CHARS])
        left -= take
    parts.append(unique_words(cid, left))
    return "".join(parts)[1:] + " "
