"""The result file: schema ``loadgate.result/1``, machine metadata, atomic write.

A :class:`Result` is a plain JSON-able dict (keys: ARCHITECTURE "Result",
documented for users in results/README.md) so every consumer — compare,
history, report, CI scripts — reads the same file without this package.

Schema history (bump the number when a key changes meaning or goes away; adding
keys is compatible and only noted here):

    loadgate.result/1  (loadgate 0.1.0)  first version: verdict/reasons/exit_code,
                       gates, metrics + by_mode (ms), requests, integrity,
                       upstream, gateway, harness, timeseries, histograms (base64
                       HdrHistogram, µs), profile (redacted), environment, git,
                       started_at, duration_s, run_dir; sweep: steps, knee.
                       Added later, compatibly: histogram_batches (20 time
                       batches of the compared histograms, for compare's
                       batch-means intervals).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from loadgate.errors import UsageError

__all__ = [
    "GIT_ENV_VARS",
    "SCHEMA",
    "Result",
    "collect_environment",
    "dig",
    "git_info",
    "load_result",
    "write_result",
]

SCHEMA = "loadgate.result/1"


def dig(node: Any, *path: str) -> Any:
    """``node[path[0]][path[1]]…`` of a result dict, or None where a step is missing."""
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


#: Where a commit comes from when no ``--git-dir`` is given, first match wins:
#: the explicit override, then what CI systems export.
GIT_ENV_VARS = ("LOADGATE_GIT_COMMIT", "GITHUB_SHA", "CI_COMMIT_SHA")

_PACKAGES = ("aiohttp", "uvloop", "hdrhistogram", "numpy", "prometheus-client", "loadgate")


@dataclass
class Result:
    """One run's (or sweep's) result: ``data`` is exactly what lands in the file."""

    data: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str | None:
        v = self.data.get("verdict")
        return v if isinstance(v, str) else None

    @property
    def exit_code(self) -> int:
        code = self.data.get("exit_code")
        return code if isinstance(code, int) and not isinstance(code, bool) else 1


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        if name == "loadgate":  # running from a source tree that was never installed
            from loadgate import __version__

            return __version__
        return None


def collect_environment() -> dict[str, Any]:
    """Who measured: host, a stable machine id, CPU, OS, Python, package versions.

    ``machine_id`` groups results from the same hardware in history (results/
    <machine_id>/<commit>.json) without publishing anything beyond the hash.
    """
    host = socket.gethostname()
    cpu = _cpu_model()
    cpus = os.cpu_count() or 0
    machine_id = hashlib.sha256(f"{host}|{cpu}|{cpus}".encode()).hexdigest()[:12]
    env: dict[str, Any] = {
        "host": host,
        "machine_id": machine_id,
        "cpus": cpus,
        "cpu_model": cpu,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "kernel": platform.release(),
        "packages": {name: _package_version(name) for name in _PACKAGES},
    }
    with contextlib.suppress(AttributeError, OSError):
        env["cpus_usable"] = len(os.sched_getaffinity(0))
    with contextlib.suppress(AttributeError, OSError):
        env["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    return env


def _git(git_dir: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-C", str(git_dir), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if proc.returncode != 0:
        raise UsageError(f"--git-dir {git_dir}: not a git work tree ({proc.stderr.strip()})")
    return proc.stdout


def git_info(git_dir: Path | None) -> dict[str, Any] | None:
    """The gateway's commit: from ``git_dir`` when given, else from CI env vars, else None."""
    if git_dir is not None:
        try:
            commit = _git(git_dir, "rev-parse", "HEAD").strip()
            dirty = bool(_git(git_dir, "status", "--porcelain", "--untracked-files=no").strip())
        except FileNotFoundError:
            raise UsageError(f"--git-dir {git_dir}: git is not installed") from None
        except subprocess.TimeoutExpired:
            raise UsageError(f"--git-dir {git_dir}: git did not answer in 30 s") from None
        return {"commit": commit, "dirty": dirty, "source": "git"}
    for var in GIT_ENV_VARS:
        value = os.environ.get(var, "").strip()
        if value:
            return {"commit": value, "dirty": None, "source": var}
    return None


def _jsonable(node: Any) -> Any:
    """Plain JSON: NaN/inf → null (strict JSON has neither), numpy scalars → Python."""
    if isinstance(node, dict):
        return {str(k): _jsonable(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_jsonable(v) for v in node]
    if isinstance(node, float):
        return node if math.isfinite(node) else None
    if isinstance(node, str | int | bool) or node is None:
        return node
    if isinstance(node, os.PathLike):
        return os.fspath(node)
    item = getattr(node, "item", None)  # numpy scalar
    if callable(item):
        return _jsonable(item())
    raise TypeError(f"result value of type {type(node).__name__} is not JSON-able")


def write_result(result: Result, path: Path) -> None:
    """Write ``result`` to ``path`` so that readers only ever see a whole file.

    Temp file in the same directory (same file system, so the rename is atomic),
    fsync, ``os.replace``, then fsync the directory so the rename survives a crash.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_jsonable(result.data), indent=2, allow_nan=False) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the result from a CI uploader
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if sys.platform != "win32":
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def load_result(path: Path) -> Result:
    """Read a result file; UsageError naming the file when it is not ``loadgate.result/1``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, dict) or "schema" not in data:
        raise UsageError(f"{path}: schema: missing (not a loadgate result file)")
    if data["schema"] != SCHEMA:
        raise UsageError(
            f"{path}: schema: unsupported {data['schema']!r} (this loadgate reads {SCHEMA})"
        )
    return Result(data)
