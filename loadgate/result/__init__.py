"""A run's result: typed sections (model), schema versions (versions), files (io),
machine metadata (environment), and the pure function that builds it (build).
"""

from __future__ import annotations

from loadgate.result.environment import GIT_ENV_VARS, collect_environment, git_info
from loadgate.result.io import (
    check_writable,
    load_result,
    load_run_result,
    to_json,
    write_atomic,
    write_result,
)
from loadgate.result.model import SCHEMA, Result, SweepResult
from loadgate.result.versions import LOADERS, load_document

__all__ = [
    "GIT_ENV_VARS",
    "LOADERS",
    "SCHEMA",
    "Result",
    "SweepResult",
    "check_writable",
    "collect_environment",
    "git_info",
    "load_document",
    "load_result",
    "load_run_result",
    "to_json",
    "write_atomic",
    "write_result",
]
