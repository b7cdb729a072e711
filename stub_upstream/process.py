"""Run the stub as a child process (the harness must never share its event loop).

``StubProcess`` hands a :class:`StubConfig` to ``python -m stub_upstream --config``,
waits for the ready file (the bound port, so ``port = 0`` works) and for
``/health``, and stops the child with SIGTERM, then SIGKILL after a grace period.
The child is started with ``--die-with-parent`` so a killed harness leaves no stub.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from stub_upstream.config import StubConfig

__all__ = ["StubProcess", "StubStartError", "stub_argv", "write_config"]


class StubStartError(RuntimeError):
    """The stub exited or did not become healthy in time."""


def stub_argv(config_file: Path) -> list[str]:
    """The ``python -m stub_upstream`` command line that serves the config in ``config_file``."""
    return [sys.executable, "-m", "stub_upstream", "--config", str(config_file)]


def write_config(cfg: StubConfig, path: Path) -> Path:
    """``cfg`` as the JSON ``--config`` reads, readable by this user only (keys in it)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(cfg.model_dump_json())
    return path


async def _health_ok(host: str, port: int) -> bool:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(f"GET /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        line = await asyncio.wait_for(reader.readline(), 2.0)
        return line.split(b" ")[1:2] == [b"200"]
    except (OSError, TimeoutError, IndexError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


class StubProcess:
    """``async with StubProcess(cfg) as stub: ... stub.url``."""

    def __init__(
        self,
        config: StubConfig,
        log_path: Path | None = None,
        start_timeout_s: float = 30.0,
        stop_timeout_s: float = 10.0,
    ) -> None:
        self.config = config
        self.log_path = log_path
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.port = config.port
        self._proc: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None
        self._tmp: str | None = None

    @property
    def url(self) -> str:
        host = self.config.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("stub not started")
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.returncode

    async def start(self) -> None:
        self._tmp = tempfile.mkdtemp(prefix="loadgate-stub-")
        ready = Path(self._tmp) / "port"
        config = write_config(self.config, Path(self._tmp) / "config.json")
        argv = [*stub_argv(config), "--ready-file", str(ready), "--die-with-parent"]
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        out = self._log if self._log is not None else asyncio.subprocess.DEVNULL
        self._proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out
        )
        deadline = time.monotonic() + self.start_timeout_s
        try:
            while True:
                if self._proc.returncode is not None:
                    raise StubStartError(
                        f"stub exited with code {self._proc.returncode} at start"
                        + (f"; see {self.log_path}" if self.log_path else "")
                    )
                if ready.exists():
                    self.port = int(ready.read_text().strip())
                    if await _health_ok(self.config.host, self.port):
                        return
                if time.monotonic() > deadline:
                    raise StubStartError(
                        f"stub not healthy after {self.start_timeout_s:.0f} s"
                        + (f"; see {self.log_path}" if self.log_path else "")
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._proc.wait(), 0.05)
        except BaseException:
            await self.stop()
            raise

    async def wait(self) -> int:
        """Wait for the child to exit on its own; returns its exit code."""
        if self._proc is None:
            raise RuntimeError("stub not started")
        return await self._proc.wait()

    async def stop(self) -> int | None:
        """SIGTERM, wait, SIGKILL after ``stop_timeout_s``; returns the exit code."""
        proc = self._proc
        code: int | None = None
        if proc is not None:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), self.stop_timeout_s)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await proc.wait()
            code = proc.returncode
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        return code

    async def __aenter__(self) -> StubProcess:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
