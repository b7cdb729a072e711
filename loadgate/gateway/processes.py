"""Child processes the harness launches (gateway, key provisioning): start, stop, logs.

A child runs in its own session (so its own process group), with stdout and
stderr appended to a log file. Signals go to that group only, never to anything
found by name; a child that ignores SIGTERM gets SIGKILL after a timeout, so
nothing can hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import shutil
import signal
import socket
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "free_port",
    "kill_children",
    "log_tail",
    "shell_argv",
    "signal_group",
    "spawn",
    "stop_process",
    "track_dir",
    "track_group",
    "untrack_dir",
    "untrack_group",
]

#: Process groups this process started and has not yet seen stop: what an
#: abandoned run must not leave behind (loadgate.interrupts).
_LIVE_GROUPS: set[int] = set()
#: Temporary directories this process made for its children (a throwaway database's
#: data) and has not yet removed: an abandoned run removes them after the kill.
_LIVE_DIRS: set[str] = set()

# Characters that need a shell; without them the command is exec'd directly so the
# gateway itself is the process we signal and whose exit code we report.
_SHELL_SYNTAX = set("|&;<>()$`*?[]#~\n")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def log_tail(path: Path, lines: int = 15) -> list[str]:
    """The last ``lines`` lines of a log file ([] when it does not exist)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16384))
            data = fh.read()
    except FileNotFoundError:
        return []
    return [ln.rstrip() for ln in data.decode("utf-8", "replace").splitlines()[-lines:]]


def shell_argv(command: str) -> list[str]:
    """``command`` as an argv: direct exec when it is a plain word list, else ``sh -c``."""
    if _SHELL_SYNTAX.intersection(command) or "=" in command.split(maxsplit=1)[0]:
        return ["/bin/sh", "-c", command]
    return shlex.split(command)


async def spawn(
    argv: list[str], *, log: Path, env: Mapping[str, str] | None = None, cwd: str | None = None
) -> asyncio.subprocess.Process:
    """Start ``argv`` in a new session (own process group), output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as fh:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=fh,
            stderr=asyncio.subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    _LIVE_GROUPS.add(proc.pid)
    return proc


def signal_group(pid: int, sig: signal.Signals) -> None:
    # The child called setsid(), so its pid is its process group id.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def stop_process(proc: asyncio.subprocess.Process, timeout_s: float) -> int:
    """SIGTERM the group, SIGKILL it after ``timeout_s``; return the exit code."""
    if proc.returncode is None:
        signal_group(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout_s)
        except TimeoutError:
            signal_group(proc.pid, signal.SIGKILL)
            await proc.wait()
    # Stragglers a shell or a pre-fork master left in the group.
    signal_group(proc.pid, signal.SIGKILL)
    _LIVE_GROUPS.discard(proc.pid)
    rc = proc.returncode
    assert rc is not None
    return rc


def track_group(pgid: int) -> None:
    """A process group started outside :func:`spawn` (a throwaway database) that
    :func:`kill_children` must not leave behind."""
    _LIVE_GROUPS.add(pgid)


def untrack_group(pgid: int) -> None:
    _LIVE_GROUPS.discard(pgid)


def track_dir(path: Path) -> None:
    """A temporary directory :func:`kill_children` must remove (after the kill)."""
    _LIVE_DIRS.add(str(path))


def untrack_dir(path: Path) -> None:
    _LIVE_DIRS.discard(str(path))


def kill_children() -> None:
    """SIGKILL every process group :func:`spawn` started that is still live, then
    remove every directory :func:`track_dir` named.

    For abandoning a run at once (a third Ctrl-C): nothing this process started
    may outlive it, nor the throwaway databases' data. Synchronous, so a signal
    handler can call it.
    """
    for pgid in list(_LIVE_GROUPS):
        signal_group(pgid, signal.SIGKILL)
        _LIVE_GROUPS.discard(pgid)
    for path in list(_LIVE_DIRS):
        shutil.rmtree(path, ignore_errors=True)
        _LIVE_DIRS.discard(path)
