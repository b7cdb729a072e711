"""Durations: the profile spelling of time."""

from __future__ import annotations

import pytest

from loadgate.profile.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("10s", 10.0),
        ("1.5s", 1.5),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("0s", 0.0),
        (" 30 s ", 30.0),
        ("30", 30.0),
        (30, 30.0),
        (0.25, 0.25),
    ],
)
def test_parse(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "bad", ["-1s", "ten seconds", "10 sec", "", "s", True, None, [1], -3, "inf"]
)
def test_parse_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize("seconds", [0.0, 0.001, 0.25, 1.0, 1.5, 60.0, 1800.0, 86400.0])
def test_format_round_trips(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)


def test_format_spelling() -> None:
    assert format_duration(0.25) == "250ms"
    assert format_duration(60.0) == "60s"
    assert format_duration(0.0) == "0s"
