"""A throwaway PostgreSQL cluster: initdb into a temporary directory, serve, stop, remove.

The side-effect witness needs a real database that a launched gateway writes into.
This module makes one from Debian's ``postgresql`` binaries (never the system service
or its cluster): ``initdb`` into a fresh temporary directory, ``postgres`` in the
foreground as a child of the harness (its own session, so its PID is the one we
signal) listening on a free 127.0.0.1 port with its unix socket inside the directory,
durability switched off (``fsync``, ``synchronous_commit``, ``full_page_writes``: the
data lives for one run). :func:`throwaway_postgres` yields the running cluster;
leaving it sends SIGINT (PostgreSQL's fast shutdown), SIGKILL after a timeout, and
removes the directory, whatever ends the block (the removal runs even when the stop
itself is interrupted). A run abandoned by a third Ctrl-C SIGKILLs it with the other
children and removes the directory, at any moment from its creation on (before
``initdb`` and between ``initdb`` and the server's start too:
:func:`loadgate.gateway.processes.kill_children`). Only a SIGKILL of the harness
itself leaves a ``loadgate-pg-*`` directory behind.

PostgreSQL refuses to run as root: when the harness is root (CI, containers) the
directory is handed to the unprivileged ``postgres`` user (Debian creates it with the
package) and every binary runs as that user (``subprocess``'s ``user``/``group``).

The cluster is empty apart from its ``postgres`` database: a gateway creates its own
tables (the reference gateway's ``--trace-dsn`` writer runs ``create table if not
exists``), as a real service runs its migrations.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from loadgate.gateway.processes import (
    free_port,
    track_dir,
    track_group,
    untrack_dir,
    untrack_group,
)

__all__ = ["PostgresServer", "PostgresUnavailable", "find_pg_bin", "throwaway_postgres"]

#: The superuser initdb creates; trust auth on loopback only (the socket dir is private).
DB_USER = "loadgate"
_RUN_AS = "postgres"
_READY_TIMEOUT_S = 30.0
_PORT_ATTEMPTS = 3
#: One run's data: durability buys nothing, and fsync would make every COPY wait on disk.
_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}
_STOP_TIMEOUT_S = 10.0


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries here, or no unprivileged user to run them as root."""


@dataclass(frozen=True, slots=True)
class PostgresServer:
    """A running throwaway cluster."""

    dsn: str
    port: int
    pid: int
    directory: Path


def find_pg_bin() -> Path | None:
    """The directory holding ``initdb`` and ``postgres``: ``$LOADGATE_PG_BIN``, PATH, Debian's."""
    env = os.environ.get("LOADGATE_PG_BIN")
    if env:
        return Path(env) if (Path(env) / "initdb").exists() else None
    on_path = shutil.which("initdb")
    if on_path is not None:
        # A symlink into a versioned directory (Debian's pg_wrapper layout): its siblings.
        return Path(on_path).resolve().parent
    # Debian keeps server binaries off PATH, one directory per major version: newest wins.
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_major, reverse=True)
    return Path(found[0]).parent if found else None


def _major(path: str) -> int:
    version = Path(path).parent.parent.name
    return int(version) if version.isdigit() else 0


def _run_as() -> tuple[int, int] | None:
    """(uid, gid) to drop to when we are root; None when we are not."""
    if os.geteuid() != 0:
        return None
    try:
        pw = pwd.getpwnam(_RUN_AS)
    except KeyError:
        raise PostgresUnavailable(
            f"running as root and no {_RUN_AS!r} user to run PostgreSQL as"
            " (install Debian's postgresql, which creates it)"
        ) from None
    return pw.pw_uid, pw.pw_gid


def _popen_kw(ids: tuple[int, int] | None, cwd: Path) -> dict[str, object]:
    kw: dict[str, object] = {"cwd": cwd}
    if ids is not None:
        kw.update(user=ids[0], group=ids[1], extra_groups=[])
    return kw


@contextlib.contextmanager
def throwaway_postgres(log: Path | None = None) -> Iterator[PostgresServer]:
    """A fresh cluster for the ``with`` block; stopped and deleted after, even on error.

    ``log``: where the server's own log is copied when it stops (kept for the run dir).
    Raises :class:`PostgresUnavailable` when there are no binaries to run.
    """
    bin_dir = find_pg_bin()
    if bin_dir is None:
        raise PostgresUnavailable(
            "no PostgreSQL binaries (initdb) found: install Debian's postgresql"
            " or set LOADGATE_PG_BIN"
        )
    ids = _run_as()
    root = Path(tempfile.mkdtemp(prefix="loadgate-pg-", dir=_parent_dir(ids)))
    track_dir(root)  # an abandoned run removes it too, from here on
    proc: subprocess.Popen[bytes] | None = None
    try:
        if ids is not None:
            os.chown(root, *ids)
        kw = _popen_kw(ids, root)
        initdb: list[str | Path] = [bin_dir / "initdb", "-D", root / "data", "-U", DB_USER]
        initdb.append("--auth=trust")
        _check([*initdb, "-E", "UTF8", "--no-sync", "--no-instructions"], kw, "initdb")
        for attempt in range(_PORT_ATTEMPTS):
            # free_port() only says the port was free a moment ago: another process may
            # take it first, and postgres then exits at once ("could not bind").
            port = free_port()
            proc = _start(bin_dir, root, port, ids, kw)
            track_group(proc.pid)  # a third Ctrl-C (abandon) kills it too
            try:
                _wait_ready(bin_dir, port, proc, root / "server.log", kw)
                break
            except PostgresUnavailable:
                _stop(proc)
                untrack_group(proc.pid)
                proc = None
                taken = "could not bind" in (root / "server.log").read_text(errors="replace")
                if not taken or attempt + 1 == _PORT_ATTEMPTS:
                    raise
        assert proc is not None
        yield PostgresServer(
            dsn=f"postgresql://{DB_USER}@127.0.0.1:{port}/postgres",
            port=port,
            pid=proc.pid,
            directory=root,
        )
    finally:
        try:
            if proc is not None:
                _stop(proc)
                untrack_group(proc.pid)
            if log is not None and (root / "server.log").exists():
                with contextlib.suppress(OSError):
                    shutil.copyfile(root / "server.log", log)
        finally:
            shutil.rmtree(root, ignore_errors=True)
            untrack_dir(root)


def _parent_dir(ids: tuple[int, int] | None) -> str | None:
    """Where the cluster's directory goes: the temp dir, unless the unprivileged user
    could not reach into it (a root-only ``$TMPDIR``); then /tmp."""
    parent = tempfile.gettempdir()
    if ids is not None and not os.stat(parent).st_mode & 0o001:
        return "/tmp"
    return parent


def _start(
    bin_dir: Path, root: Path, port: int, ids: tuple[int, int] | None, kw: dict[str, object]
) -> subprocess.Popen[bytes]:
    """``postgres`` in the foreground, its own session, log in ``root/server.log``."""
    log = root / "server.log"
    with log.open("wb") as fh:
        if ids is not None:
            os.chown(log, *ids)
        settings = [f"{k}={v}" for k, v in _SETTINGS.items()]
        argv = [bin_dir / "postgres", "-D", root / "data", "-h", "127.0.0.1", "-p", str(port)]
        argv += ["-k", root, *(a for kv in settings for a in ("-c", kv))]
        proc: subprocess.Popen[bytes] = subprocess.Popen(  # type: ignore[call-overload]
            [str(a) for a in argv],
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            **kw,
        )
    return proc


def _check(argv: list[str | Path], kw: dict[str, object], what: str) -> None:
    proc = subprocess.run(  # type: ignore[call-overload]
        [str(a) for a in argv], capture_output=True, check=False, **kw
    )
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout or b"").decode(errors="replace").strip().splitlines()
        raise PostgresUnavailable(f"{what} failed ({proc.returncode}): {last[-1] if last else ''}")


def _wait_ready(
    bin_dir: Path,
    port: int,
    proc: subprocess.Popen[bytes],
    server_log: Path,
    kw: dict[str, object],
) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT_S
    ready = [bin_dir / "pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port), "-U", DB_USER]
    while True:
        if proc.poll() is not None:
            tail = server_log.read_text(errors="replace").strip().splitlines()
            raise PostgresUnavailable(
                f"postgres exited with code {proc.returncode}: {tail[-1] if tail else ''}"
            )
        rc = subprocess.run(  # type: ignore[call-overload]
            [str(a) for a in ready], capture_output=True, check=False, **kw
        ).returncode
        if rc == 0:
            return
        if time.monotonic() > deadline:
            raise PostgresUnavailable(f"postgres not ready after {_READY_TIMEOUT_S:g} s")
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT (fast shutdown: clients cut, no checkpoint wait), SIGKILL after a timeout."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        # The whole session: postgres' own children (checkpointer, walwriter …) too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
