"""The throwaway PostgreSQL: a real cluster from Debian's binaries, gone after the block."""

from __future__ import annotations

import asyncio
import os
import pwd
from pathlib import Path

import asyncpg
import psutil
import pytest

from loadgate.gateway.postgres_server import PostgresUnavailable, find_pg_bin, throwaway_postgres
from tests.support.postgres import SKIP_REASON

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.postgres,
    pytest.mark.skipif(find_pg_bin() is None, reason=SKIP_REASON),
]


async def _query(dsn: str, sql: str) -> object:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def test_a_cluster_serves_on_loopback_and_is_removed_after(tmp_path: Path) -> None:
    log = tmp_path / "postgres.log"
    with throwaway_postgres(log) as pg:
        assert pg.dsn.startswith("postgresql://loadgate@127.0.0.1:")
        assert asyncio.run(_query(pg.dsn, "select 41 + 1")) == 42
        assert asyncio.run(_query(pg.dsn, "show listen_addresses")) == "127.0.0.1"
        assert asyncio.run(_query(pg.dsn, "show fsync")) == "off"
        # Its unix socket is in its own directory, not the system's /var/run/postgresql.
        sockets = asyncio.run(_query(pg.dsn, "show unix_socket_directories"))
        assert sockets == str(pg.directory)
        server = psutil.Process(pg.pid)
        if os.geteuid() == 0:  # postgres refuses root: it runs as the postgres user
            assert server.uids().real == pwd.getpwnam("postgres").pw_uid
        directory, pid = pg.directory, pg.pid
    assert not directory.exists()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert "database system is shut down" in log.read_text()


def test_an_error_inside_the_block_still_stops_and_removes_it() -> None:
    with pytest.raises(RuntimeError, match="boom"), throwaway_postgres() as pg:
        directory = pg.directory
        raise RuntimeError("boom")
    assert not directory.exists()


def test_no_binaries_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOADGATE_PG_BIN", str(tmp_path))  # no initdb there
    assert find_pg_bin() is None
    with (
        pytest.raises(PostgresUnavailable, match="install Debian's postgresql"),
        throwaway_postgres(),
    ):
        pass


def test_a_port_taken_before_postgres_binds_it_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    import loadgate.gateway.postgres_server as module
    from loadgate.gateway.processes import free_port

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = iter([taken.getsockname()[1], free_port()])
        monkeypatch.setattr(module, "free_port", lambda: next(ports))
        with throwaway_postgres() as pg:
            assert pg.port != taken.getsockname()[1]
            assert asyncio.run(_query(pg.dsn, "select 1")) == 1
