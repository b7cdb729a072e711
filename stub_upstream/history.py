"""Checking the conversation history a multi-turn request resends (docs/workloads.md).

A loadgate session resends, with each turn, every earlier user message and every
answer the stub gave to the session's earlier turns. Those answers are
deterministic, so the stub can rebuild them from the request alone, given the
session contract (:mod:`loadgate.load.sessions`): the turns of a session have
consecutive correlation ids and ask the same ``max_tokens``. With ``m``
assistant messages in a request for ``cid``, the conversation must be
``user, assistant, …, user`` (system messages aside), user message ``j`` must
carry the marker of ``cid − (m − j)`` and assistant message ``j`` must be
exactly that id's answer of ``n`` tokens. A system message naming the session
(``[session:<16 hex>]``, its first turn's id) also fixes ``m`` to ``cid − first``,
so history cut from the front (a gateway trimming context) fails too; without the
tag the check can only see that what was resent is a consistent tail. A gateway
that drops, truncates, reorders or splices history fails the check; the stub answers as usual and
marks the ledger record (fault ``history``), which the harness counts as the
integrity class ``history_mismatch``.

Pure: no I/O, standard library and :mod:`stub_upstream.content` only.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from stub_upstream import content

__all__ = ["history_ok", "session_tag"]

_SESSION = re.compile(r"\[session:([0-9a-f]{16})\]")
#: Turn j's answer is checked again at every later turn of its session: built once.
_answer = functools.lru_cache(maxsize=8192)(content.expected_text)


def session_tag(first_cid: int) -> str:
    """The tag a session's system message carries: its first turn's id."""
    return f"[session:{first_cid:016x}]"


def history_ok(messages: Sequence[tuple[str, object]], cid: int, n: int) -> bool | None:
    """Whether ``messages`` (role, content) hold the right history; None: there is none."""
    turns = [(role, text) for role, text in messages if role != "system"]
    m = sum(1 for role, _ in turns if role == "assistant")
    first = _first_of_session(messages)
    if m == 0 and (first is None or first == cid):
        return None
    if len(turns) != 2 * m + 1 or (first is not None and cid - first != m):
        return False
    for j in range(m):
        earlier = cid - (m - j)
        (q_role, question), (a_role, answer) = turns[2 * j], turns[2 * j + 1]
        if q_role != "user" or a_role != "assistant":
            return False
        if not isinstance(question, str) or not isinstance(answer, str):
            return False
        if content.find_corr_id(question.encode()) != earlier:
            return False
        if answer != _answer(earlier, n):
            return False
    return turns[-1][0] == "user"


def _first_of_session(messages: Sequence[tuple[str, object]]) -> int | None:
    for role, text in messages:
        if role == "system" and isinstance(text, str) and (found := _SESSION.search(text)):
            return int(found.group(1), 16)
    return None
