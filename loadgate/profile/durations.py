"""Human durations in profiles: ``"500ms"``, ``"10s"``, ``"2m"``, ``"1h"``, bare numbers.

Profiles store durations as strings (DESIGN §8); everything in Python holds
float seconds. :func:`format_duration` is the inverse, used when a resolved
profile is written back into a result file.
"""

from __future__ import annotations

import math
import re

__all__ = ["format_duration", "parse_duration"]

_UNITS = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PATTERN = re.compile(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ms|s|m|h)?\s*")


def parse_duration(value: object) -> float:
    """Seconds from ``"250ms"``, ``"1.5s"``, ``"2m"``, ``"1h"``, ``30`` or ``"30"``.

    Raises ValueError with a message fit to follow ``file: key:`` (negative,
    non-finite and unit-less garbage are all refused).
    """
    if isinstance(value, bool):
        raise ValueError(f'must be a duration like "10s" or "500ms" (got {value!r})')
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if text.startswith("-"):
            raise ValueError(f"must not be negative (got {value!r})")
        match = _PATTERN.fullmatch(text)
        if match is None:
            raise ValueError(f'must be a duration like "10s", "500ms" or "2m" (got {value!r})')
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    else:
        raise ValueError(f'must be a duration like "10s" or "500ms" (got {value!r})')
    if not math.isfinite(seconds):
        raise ValueError(f"must be finite (got {value!r})")
    if seconds < 0:
        raise ValueError(f"must not be negative (got {value!r})")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest exact spelling: 0.25 → ``"250ms"``, 60 → ``"60s"``, 1.5 → ``"1.5s"``."""
    if seconds != 0 and abs(seconds) < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"
