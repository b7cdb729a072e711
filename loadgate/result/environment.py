"""Who measured, and which commit: machine metadata and the gateway's git commit.

pyperf collects this with every result, so two results can be told apart by the
machine that made them; loadgate's history files results per machine id.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path

import psutil

from loadgate.errors import UsageError
from loadgate.result.model import Environment, Git

__all__ = ["GIT_ENV_VARS", "collect_environment", "git_info"]

#: Where a commit comes from when no ``--git-dir`` is given, first match wins:
#: the explicit override, then what CI systems export.
GIT_ENV_VARS = ("LOADGATE_GIT_COMMIT", "GITHUB_SHA", "CI_COMMIT_SHA")

_PACKAGES = (
    "aiohttp",
    "uvloop",
    "hdrhistogram",
    "numpy",
    "prometheus-client",
    "pydantic",
    "httptools",
    "msgspec",
    "psutil",
    "loadgate",
)


def _cpu_model() -> str:
    # psutil has no CPU model name; /proc/cpuinfo is where Linux keeps it.
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


def collect_environment() -> Environment:
    """Host, a stable machine id, CPU, OS, Python, package versions.

    ``machine_id`` groups results from the same hardware in history (results/
    <machine_id>/<commit>.json) without publishing anything beyond the hash.
    """
    host = socket.gethostname()
    cpu = _cpu_model()
    cpus = psutil.cpu_count() or 0
    machine_id = hashlib.sha256(f"{host}|{cpu}|{cpus}".encode()).hexdigest()[:12]
    env = Environment(
        host=host,
        machine_id=machine_id,
        cpus=cpus,
        cpu_model=cpu,
        python=f"{platform.python_implementation()} {platform.python_version()}",
        platform=platform.platform(),
        kernel=platform.release(),
        packages={name: _package_version(name) for name in _PACKAGES},
    )
    with contextlib.suppress(AttributeError, OSError):
        env.cpus_usable = len(psutil.Process().cpu_affinity() or [])
    with contextlib.suppress(AttributeError, OSError):
        env.loadavg = [round(x, 2) for x in psutil.getloadavg()]
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


def git_info(git_dir: Path | None) -> Git | None:
    """The gateway's commit: from ``git_dir`` when given, else from CI env vars, else None."""
    if git_dir is not None:
        try:
            commit = _git(git_dir, "rev-parse", "HEAD").strip()
            dirty = bool(_git(git_dir, "status", "--porcelain", "--untracked-files=no").strip())
        except FileNotFoundError:
            raise UsageError(f"--git-dir {git_dir}: git is not installed") from None
        except subprocess.TimeoutExpired:
            raise UsageError(f"--git-dir {git_dir}: git did not answer in 30 s") from None
        return Git(commit=commit, dirty=dirty, source="git")
    for var in GIT_ENV_VARS:
        value = os.environ.get(var, "").strip()
        if value:
            return Git(commit=value, dirty=None, source=var)
    return None
