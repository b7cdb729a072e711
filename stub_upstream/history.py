"""Checking the conversation history a multi-turn request resends (docs/workloads.md).

A loadgate session resends, with each turn, every earlier user message and every
answer the stub gave to the session's earlier turns. Those answers are
deterministic, so the stub can rebuild them from the request alone, given the
session contract (:mod:`loadgate.load.sessions`): the turns of a session have
consecutive correlation ids and ask the same ``max_tokens``. With ``m``
assistant messages in a request for ``cid``, the conversation must be
``user, assistant, …, user`` (system messages aside), user message ``j`` must
carry the marker of ``cid − (m − j)`` and assistant message ``j`` must be
exactly that id's answer of ``n`` tokens. A gateway that drops, truncates,
reorders or splices history fails the check; the stub answers as usual and
marks the ledger record (fault ``history``), which the harness counts as the
integrity class ``history_mismatch``.

Pure: no I/O, standard library and :mod:`stub_upstream.content` only.
"""

from __future__ import annotations

from collections.abc import Sequence

from stub_upstream import content

__all__ = ["history_ok"]


def history_ok(messages: Sequence[tuple[str, object]], cid: int, n: int) -> bool | None:
    """Whether ``messages`` (role, content) hold the right history; None: there is none."""
    turns = [(role, text) for role, text in messages if role != "system"]
    m = sum(1 for role, _ in turns if role == "assistant")
    if m == 0:
        return None
    if len(turns) != 2 * m + 1:
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
        if answer != content.expected_text(earlier, n):
            return False
    return turns[-1][0] == "user"
