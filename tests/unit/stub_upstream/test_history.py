"""The stub's check of a resent conversation: right history passes, every defect fails."""

from __future__ import annotations

from stub_upstream import content
from stub_upstream.history import history_ok, session_tag

N = 8
FIRST = (0x1234 << 32) | 40


def conversation(turns: int, first: int = FIRST) -> list[tuple[str, object]]:
    """Turn ``turns``'s messages as a loadgate session sends them."""
    out: list[tuple[str, object]] = [("system", f"be brief {session_tag(first)}")]
    for k in range(turns):
        out.append(("user", f"question {k} " + content.marker(first + k)))
        out.append(("assistant", content.expected_text(first + k, N)))
    out.append(("user", "next " + content.marker(first + turns)))
    return out


def test_no_history_is_not_checked() -> None:
    assert history_ok(conversation(0), FIRST, N) is None
    # ... unless the session's tag says this is a later turn: its history is gone.
    assert history_ok(conversation(0), FIRST + 3, N) is False


def test_without_the_session_tag_a_consistent_tail_is_all_it_can_check() -> None:
    good = conversation(2)
    front_cut = [("system", "be brief"), *good[3:]]  # turn 0 trimmed, no tag
    assert history_ok(front_cut, FIRST + 2, N) is True
    assert history_ok([("system", "be brief"), *good[1:3], good[5]], FIRST + 2, N) is False


def test_the_right_history_passes_at_every_turn() -> None:
    for turns in (1, 2, 5):
        assert history_ok(conversation(turns), FIRST + turns, N) is True


def test_every_defect_of_the_history_fails() -> None:
    cid = FIRST + 2
    good = conversation(2)
    cut = list(good)
    cut[2] = ("assistant", content.expected_text(FIRST, N - 1))  # an answer truncated
    dropped = good[:1] + good[3:]  # a whole turn dropped
    swapped = [good[0], good[3], good[4], good[1], good[2], good[5]]  # turns reordered
    spliced = conversation(2, first=FIRST + 100)[:-1] + good[-1:]  # another session's history
    tampered = list(good)
    tampered[2] = ("assistant", str(good[2][1]).replace(" ", "  ", 1))
    wrong_size = good  # checked against another answer length
    for messages, n in (
        (cut, N),
        (dropped, N),
        (swapped, N),
        (spliced, N),
        (tampered, N),
        (wrong_size, N + 1),
    ):
        assert history_ok(messages, cid, n) is False
    parts = list(good)
    parts[2] = ("assistant", [{"type": "text"}])  # content as parts: not the stub's text
    assert history_ok(parts, cid, N) is False
