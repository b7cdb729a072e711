"""loadgate: load and proxy-overhead benchmark harness for LLM API gateways.

The importable core, re-exported here: profiles in, results out. The CLI
(:mod:`loadgate.cli`) is a thin layer over these; running a profile lives in
:mod:`loadgate.pipeline.run` (imported on use: it pulls in the whole load pipeline).
"""

from __future__ import annotations

from loadgate.errors import DepDownError, LoadgateError, UsageError
from loadgate.profile import Profile, load_profile
from loadgate.result import SCHEMA, Result, load_result, write_result

__all__ = [
    "SCHEMA",
    "DepDownError",
    "LoadgateError",
    "Profile",
    "Result",
    "UsageError",
    "__version__",
    "load_profile",
    "load_result",
    "write_result",
]

__version__ = "0.1.0"
