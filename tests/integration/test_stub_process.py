"""StubProcess: port 0 reporting, health, stop, start failures."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest

from stub_upstream import StubConfig, StubProcess, StubStartError


async def test_port_zero_url_health_and_clean_stop(tmp_path: Path) -> None:
    log = tmp_path / "stub.log"
    async with StubProcess(StubConfig(port=0), log_path=log) as stub:
        assert stub.port != 0 and stub.url == f"http://127.0.0.1:{stub.port}"
        reader, writer = await asyncio.open_connection("127.0.0.1", stub.port)
        writer.write(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await reader.readline()).startswith(b"HTTP/1.1 200")
        writer.close()
        pid = stub.pid
    assert stub.returncode == 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert f"listening on http://127.0.0.1:{stub.port}" in log.read_text()


async def test_busy_port_fails_fast(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        stub = StubProcess(StubConfig(port=port), log_path=tmp_path / "stub.log")
        with pytest.raises(StubStartError, match="exited with code 1"):
            await stub.start()
    assert "cannot listen" in (tmp_path / "stub.log").read_text()


async def test_bad_config_is_rejected_before_launch() -> None:
    # A config is validated when it is made: no process is ever launched with it.
    with pytest.raises(ValueError, match=r"workers\n  Input should be greater than or equal to 1"):
        await StubProcess(StubConfig(port=0, workers=0)).start()
