"""The throwaway Redis: a real ``redis-server``, gone after the block or an abandon."""

from __future__ import annotations

import time

import psutil
import pytest
import redis

from loadgate.gateway.processes import kill_children
from loadgate.gateway.redis_server import find_redis_server, throwaway_redis

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.redis,
    pytest.mark.skipif(
        find_redis_server() is None,
        reason="Debian's redis-server is not installed: scripts/dev.py test installs it",
    ),
]


def _gone(pid: int, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.02)
    return False


def test_a_server_answers_and_is_stopped_and_removed_after() -> None:
    with throwaway_redis() as r:
        client = redis.Redis(host="127.0.0.1", port=r.port)
        assert client.ping()
        client.close()
        pid, directory = r.pid, r.directory
    assert _gone(pid) and not directory.exists()


def test_an_abandoned_run_kills_the_server_and_removes_its_directory() -> None:
    # A third Ctrl-C: kill_children(), then os._exit (no finally). The server runs in
    # its own session, so the terminal's SIGINT never reaches it: only this can.
    with throwaway_redis() as r:
        kill_children()
        assert _gone(r.pid)
        assert not r.directory.exists()
