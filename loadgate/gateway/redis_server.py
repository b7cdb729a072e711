"""A throwaway Redis: Debian's ``redis-server`` in a temporary directory, for one run.

The reference gateway's revocations travel over Redis pub/sub
(``gateway.reference.redis``). This module starts one from the ``redis-server``
binary (never the system service or its configuration): in the foreground as a
child of the harness, in its own session (so its PID is the one signalled), bound to
127.0.0.1 on a free port, with persistence off (``--save ''``, ``--appendonly no``:
the data lives for one run) and its working directory a fresh temporary directory.
:func:`throwaway_redis` yields it once it answers ``PING``; leaving it sends SIGTERM
(SIGKILL after a timeout) and removes the directory, whatever ends the block. A run
abandoned by a third Ctrl-C SIGKILLs it and removes the directory too
(:func:`loadgate.gateway.processes.kill_children`): its own session does not get the
terminal's signals, so nothing else would stop it.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis

from loadgate.gateway.processes import (
    free_port,
    track_dir,
    track_group,
    untrack_dir,
    untrack_group,
)

__all__ = ["RedisServer", "RedisUnavailable", "find_redis_server", "throwaway_redis"]

_READY_TIMEOUT_S = 15.0
_STOP_TIMEOUT_S = 5.0
_PORT_ATTEMPTS = 3


class RedisUnavailable(RuntimeError):
    """No ``redis-server`` binary here, or it would not start."""


@dataclass(frozen=True, slots=True)
class RedisServer:
    port: int
    pid: int
    directory: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def find_redis_server() -> Path | None:
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    return Path(found) if found else None


@contextlib.contextmanager
def throwaway_redis(log: Path | None = None) -> Iterator[RedisServer]:
    """A running Redis on 127.0.0.1 for the ``with`` block; stopped and removed after."""
    binary = find_redis_server()
    if binary is None:
        raise RedisUnavailable("redis-server not found (Debian package redis-server)")
    directory = Path(tempfile.mkdtemp(prefix="loadgate-redis-"))
    track_dir(directory)
    proc: subprocess.Popen[bytes] | None = None
    try:
        for _ in range(_PORT_ATTEMPTS):
            port = free_port()
            proc = _start(binary, port, directory, log)
            track_group(proc.pid)  # a third Ctrl-C (abandon) kills it too
            if _wait_ready(proc, port):
                break
            _stop(proc)
            untrack_group(proc.pid)
            proc = None
        if proc is None:
            raise RedisUnavailable(f"redis-server did not answer PING (log: {log})")
        yield RedisServer(port, proc.pid, directory)
    finally:
        try:
            if proc is not None:
                _stop(proc)
                untrack_group(proc.pid)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
            untrack_dir(directory)


def _start(binary: Path, port: int, directory: Path, log: Path | None) -> subprocess.Popen[bytes]:
    argv = [
        str(binary),
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--save", "",
        "--appendonly", "no",
        "--dir", str(directory),
        "--daemonize", "no",
        "--protected-mode", "yes",
    ]  # fmt: skip
    out = log.open("ab") if log is not None else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, cwd=directory, start_new_session=True
        )
    finally:
        if log is not None and not isinstance(out, int):
            out.close()


def _wait_ready(proc: subprocess.Popen[bytes], port: int) -> bool:
    """True once it answers PING; False when it exited (e.g. the port was taken)."""
    deadline = time.monotonic() + _READY_TIMEOUT_S
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1.0)
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            with contextlib.suppress(redis.RedisError):
                if client.ping():
                    return True
            time.sleep(0.05)
    finally:
        client.close()
    return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
