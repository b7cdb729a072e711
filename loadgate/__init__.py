"""loadgate: load and proxy-overhead benchmark harness for LLM API gateways.

The importable core, re-exported here: profiles in, results out. Nothing here
prints or writes files unless asked to (observers, :func:`write_run_directory`).
The CLI (:mod:`loadgate.cli`) is a thin layer over these names::

    import loadgate

    profile = loadgate.load_profile("smoke", ["load.duration=5s", "stub.port=0"])
    result = loadgate.run(profile)                 # a typed loadgate.Result
    print(result.verdict, result.metrics["overhead_ms"].p99)

Also here: :func:`compare_results` (statistical comparison of results),
:func:`run_ab` (interleaved A/B rounds), :func:`run_sweep` (a capacity sweep, a
coroutine: run it with ``loadgate.pipeline.stopping.run_on_uvloop``) and
:func:`load_history` (results filed per commit).

The load pipeline (aiohttp, uvloop, hdrh, httptools, rich …) is imported on first
use of the names that need it, so ``import loadgate`` stays cheap (numpy and
pydantic come with the profile models).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from loadgate.errors import DepDownError, LoadgateError, UsageError
from loadgate.profile import Profile, bundled_profiles, load_profile, parse_profile

if TYPE_CHECKING:
    from loadgate.analysis.compare import compare_results
    from loadgate.analysis.history import load_history
    from loadgate.observe.observer import RunObserver
    from loadgate.pipeline.ab import run_ab
    from loadgate.pipeline.run import RunOptions, run, run_profile
    from loadgate.pipeline.sweep import run_sweep
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
    "compare_results",
    "load_history",
    "load_profile",
    "load_result",
    "load_run_result",
    "new_run_dir",
    "parse_profile",
    "run",
    "run_ab",
    "run_profile",
    "run_sweep",
    "write_result",
    "write_run_directory",
]

__version__ = "0.3.0"

#: name → module that defines it, imported on first access
_LAZY = {
    "RunObserver": "loadgate.observe.observer",
    "RunOptions": "loadgate.pipeline.run",
    "run": "loadgate.pipeline.run",
    "run_profile": "loadgate.pipeline.run",
    "run_sweep": "loadgate.pipeline.sweep",
    "run_ab": "loadgate.pipeline.ab",
    "compare_results": "loadgate.analysis.compare",
    "load_history": "loadgate.analysis.history",
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
