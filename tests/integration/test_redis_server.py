"""The throwaway Redis: a real ``redis-server``, gone after the block or an abandon."""

from __future__ import annotations

import pytest
import redis

from loadgate.gateway.processes import kill_children
from loadgate.gateway.redis_server import find_redis_server, throwaway_redis
from tests.support.procs import gone

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.redis,
    pytest.mark.skipif(
        find_redis_server() is None,
        reason="Debian's redis-server is not installed: scripts/dev.py test installs it",
    ),
]


def test_a_server_answers_and_is_stopped_and_removed_after() -> None:
    with throwaway_redis() as r:
        client = redis.Redis(host="127.0.0.1", port=r.port)
        assert client.ping()
        client.close()
        pid, directory = r.pid, r.directory
    assert gone(pid) and not directory.exists()


def test_an_abandoned_run_kills_the_server_and_removes_its_directory() -> None:
    # A third Ctrl-C: kill_children(), then os._exit (no finally). The server runs in
    # its own session, so the terminal's SIGINT never reaches it: only this can.
    with throwaway_redis() as r:
        kill_children()
        assert gone(r.pid)
        assert not r.directory.exists()
