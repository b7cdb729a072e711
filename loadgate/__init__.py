"""loadgate: load and proxy-overhead benchmark harness for LLM API gateways.

The importable core, re-exported here: profiles in, results out. Nothing here
prints or writes files unless asked to (observers, :func:`write_run_directory`).
The CLI (:mod:`loadgate.cli`) is a thin layer over these names::

    import loadgate

    profile = loadgate.load_profile("smoke", ["load.duration=5s", "stub.port=0"])
    result = loadgate.run(profile)                 # a typed loadgate.Result
    print(result.verdict, result.metrics["overhead_ms"].p99)

The load pipeline (aiohttp, numpy, uvloop …) is imported on first use of the
names that need it, so ``import loadgate`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from loadgate.errors import DepDownError, LoadgateError, UsageError
from loadgate.profile import Profile, bundled_profiles, load_profile, parse_profile

if TYPE_CHECKING:
    from loadgate.observe.observer import RunObserver
    from loadgate.pipeline.run import RunOptions, run, run_profile
    from loadgate.result import (
        SCHEMA,
        Result,
        SweepResult,
        load_result,
        load_run_result,
        write_result,
    )
    from loadgate.rundir import new_run_dir, write_run_directory

__all__ = [
    "SCHEMA",
    "DepDownError",
    "LoadgateError",
    "Profile",
    "Result",
    "RunObserver",
    "RunOptions",
    "SweepResult",
    "UsageError",
    "__version__",
    "bundled_profiles",
    "load_profile",
    "load_result",
    "load_run_result",
    "new_run_dir",
    "parse_profile",
    "run",
    "run_profile",
    "write_result",
    "write_run_directory",
]

__version__ = "0.2.0"

#: name → module that defines it, imported on first access
_LAZY = {
    "RunObserver": "loadgate.observe.observer",
    "RunOptions": "loadgate.pipeline.run",
    "run": "loadgate.pipeline.run",
    "run_profile": "loadgate.pipeline.run",
    "SCHEMA": "loadgate.result",
    "Result": "loadgate.result",
    "SweepResult": "loadgate.result",
    "load_result": "loadgate.result",
    "load_run_result": "loadgate.result",
    "write_result": "loadgate.result",
    "new_run_dir": "loadgate.rundir",
    "write_run_directory": "loadgate.rundir",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loadgate' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
