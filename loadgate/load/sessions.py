"""Multi-turn sessions: a conversation whose history grows turn by turn (docs/workloads.md).

A :class:`Session` is one conversation of ``load.sessions.turns`` turns. Turn 0
is the request the mix drew (its endpoint, stream mode, model and key stay the
session's); every later turn resends the whole conversation so far — the system
prompt, each earlier user message and each of the stub's earlier answers — and
adds a new user message. The stub's answers are deterministic
(:func:`stub_upstream.content.expected_text`), so the client rebuilds them
without keeping what it received, and the stub can check what it is sent back
(:mod:`stub_upstream.history`): a gateway that drops, reorders or splices
history is caught as ``history_mismatch``. The system message names the session
(``[session:<first id>]``), so history trimmed from the front is caught too.

The contract that makes that check stateless: the turns of a session have
consecutive correlation ids (turn k is ``first + k``), and every turn asks the
same ``max_tokens``, so the stub can rebuild each earlier answer it gave from the
request alone. Pure state: no I/O, no clock.
"""

from __future__ import annotations

import dataclasses

from loadgate.client.observation import RequestSpec
from loadgate.load.bodies import SYSTEM_PROMPT, prompt_text
from stub_upstream import content, history

__all__ = ["Session", "SessionShape", "conversation_words"]

_SYSTEM_WORDS = len(SYSTEM_PROMPT.split())


def conversation_words(first_words: int, user_words: int, answer_tokens: int, turn: int) -> int:
    """Words of turn ``turn``'s conversation (markers not counted): it grows by one user
    message and one answer a turn."""
    return max(first_words, _SYSTEM_WORDS + 1) + turn * (answer_tokens + user_words)


@dataclasses.dataclass(frozen=True, slots=True)
class SessionShape:
    """What every session of a run looks like (``[load.sessions]`` resolved)."""

    turns: int
    first_words: int  # turn 0's prompt, system prompt included (load.prompt_tokens)
    user_words: int  # words each later user message adds
    affinity_header: str = ""


class Session:
    """One conversation: the specs of its turns, and its history as it grows."""

    __slots__ = ("_history", "_user", "first", "measured", "shape", "turn")

    def __init__(self, first: RequestSpec, shape: SessionShape) -> None:
        self.first = first
        self.shape = shape
        self.turn = 0
        #: whether the first turn was sent in the measured window (the engine sets it)
        self.measured = False
        # The tag names the session, so the stub also sees history cut from the front.
        system = f"{SYSTEM_PROMPT} {history.session_tag(first.corr)}"
        self._history: list[tuple[str, str]] = [("system", system)]
        self._user = prompt_text(shape.first_words - _SYSTEM_WORDS)

    @property
    def session_id(self) -> str:
        """The session's id: its first turn's correlation id (the affinity header's value)."""
        return content.format_corr_id(self.first.corr)

    @property
    def done(self) -> bool:
        return self.turn >= self.shape.turns

    def prompt_words(self, turn: int) -> int:
        """Words of turn ``turn``'s conversation, markers not counted."""
        s = self.shape
        return conversation_words(s.first_words, s.user_words, self.first.expect_tokens, turn)

    def spec(self) -> RequestSpec:
        """The request of the current turn."""
        extra = self.first.extra_headers
        if self.shape.affinity_header:
            extra = (*extra, (self.shape.affinity_header, self.session_id))
        return dataclasses.replace(
            self.first,
            corr=self.first.corr + self.turn,
            prompt_tokens=self.prompt_words(self.turn),
            messages=(*self._history, ("user", self._user)),
            extra_headers=extra,
        )

    def advance(self) -> None:
        """The current turn was answered: its question and the stub's answer join the history."""
        cid = self.first.corr + self.turn
        self._history.append(("user", self._user + content.marker(cid)))
        self._history.append(("assistant", content.expected_text(cid, self.first.expect_tokens)))
        self._user = prompt_text(self.shape.user_words)
        self.turn += 1
