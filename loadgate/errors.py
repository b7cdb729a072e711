"""Exceptions that carry an exit code (DESIGN §10).

The CLI turns these into one line on stderr and the exit code; nothing the user
can fix ever shows a traceback.
"""

from __future__ import annotations

__all__ = ["DepDownError", "LoadgateError", "UsageError"]


class LoadgateError(Exception):
    """Base class: ``exit_code`` is what the process exits with."""

    exit_code = 1


class UsageError(LoadgateError):
    """Bad CLI use or a bad profile: name the file and key in the message."""

    exit_code = 2


class DepDownError(LoadgateError):
    """Preflight found the target down (transport failure or 5xx), seed 004."""

    exit_code = 70
