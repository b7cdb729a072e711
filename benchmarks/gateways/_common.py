"""Shared plumbing for the real-gateway recipes: paths, processes, readiness, curl checks.

Every recipe runs its gateway on 127.0.0.1 in front of the stub at STUB_URL, keeps its
files under benchmarks/out/<name>/ (git-ignored) and is stopped by the PID it was started
with. Standard library only, so a recipe runs from any interpreter.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "OUT",
    "ROOT",
    "STUB_URL",
    "Launch",
    "check_chat",
    "cli",
    "free_port",
    "replace_section",
    "start",
    "stop",
    "wait_http",
]

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "benchmarks" / "out"
STUB_URL = "http://127.0.0.1:18000"


@dataclass(frozen=True, slots=True)
class Launch:
    """How to start one gateway: argv, environment additions, readiness probe."""

    name: str
    argv: Sequence[str]
    url: str  # base URL clients use (no trailing slash)
    ready_url: str  # any HTTP answer here means "up"
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    headers: Mapping[str, str] = field(default_factory=dict)  # extra headers it needs
    api_key: str = "sk-lg-check"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dir(name: str) -> Path:
    d = OUT / name
    d.mkdir(parents=True, exist_ok=True)
    return d


def start(launch: Launch, timeout_s: float = 60.0) -> int:
    """Start the gateway in its own session, wait until it answers; returns its PID."""
    d = _dir(launch.name)
    log = (d / "gateway.log").open("ab")
    env = dict(os.environ, **launch.env)
    proc = subprocess.Popen(
        list(launch.argv),
        cwd=launch.cwd or d,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # so stop() can end its whole process group
    )
    (d / "pid").write_text(str(proc.pid))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{launch.name} exited with {proc.returncode} at start-up; see {d / 'gateway.log'}"
            )
        if wait_http(launch.ready_url, 0.5):
            return proc.pid
        time.sleep(0.25)
    stop(launch.name)
    raise RuntimeError(f"{launch.name} not ready within {timeout_s:.0f}s at {launch.ready_url}")


def stop(name: str, timeout_s: float = 10.0) -> None:
    """SIGTERM the process group recorded in out/<name>/pid, SIGKILL after timeout_s."""
    pidfile = OUT / name / "pid"
    if not pidfile.exists():
        return
    pid = int(pidfile.read_text())
    pidfile.unlink()
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            reaped, _ = os.waitpid(pid, os.WNOHANG)
            if reaped:
                return
        except ChildProcessError:  # not our child (started by another invocation)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def wait_http(url: str, timeout_s: float) -> bool:
    """True when url gives any HTTP answer (even 401/404) within timeout_s."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


def check_chat(launch: Launch, model: str = "gpt-4o-mini") -> dict[str, str]:
    """One non-stream and one stream chat completion through the gateway, like curl.

    Returns {"non_stream": summary, "stream": summary}; raises on any failure so a
    recipe that cannot proxy the stub is reported with the real error.
    """
    out: dict[str, str] = {}
    for stream in (False, True):
        body = {
            "model": model,
            "max_tokens": 4,
            "stream": stream,
            "messages": [{"role": "user", "content": "hello [loadgate:00000000000000ab]"}],
        }
        req = urllib.request.Request(
            launch.url + "/v1/chat/completions",
            data=json.dumps(body).encode(),
            method="POST",
            headers={
                "content-type": "application/json",
                "authorization": f"Bearer {launch.api_key}",
                **launch.headers,
            },
        )
        t0 = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                first = resp.read(1)
                t_first = time.monotonic()
                raw = first + resp.read()
                ctype = resp.headers.get("content-type", "")
        except urllib.error.HTTPError as e:
            detail = e.read()[:300].decode(errors="replace")
            raise RuntimeError(f"{launch.name} stream={stream}: HTTP {e.code}: {detail}") from e
        t_end = time.monotonic()
        text = raw.decode(errors="replace")
        if stream and "[DONE]" not in text:
            raise RuntimeError(f"{launch.name}: stream without [DONE]: {text[:300]!r}")
        if not stream and "00000000000000ab" not in text:
            raise RuntimeError(f"{launch.name}: correlation id lost: {text[:300]!r}")
        out["stream" if stream else "non_stream"] = (
            f"{len(raw)} bytes, {ctype}, first byte {1000 * (t_first - t0):.0f} ms, "
            f"last byte {1000 * (t_end - t0):.0f} ms"
        )
    return out


def cli(
    name: str,
    doc: str,
    make: Callable[[int, str], Launch],
    default_port: int,
    setup: Callable[[], None] | None = None,
    start_timeout_s: float = 60.0,
) -> int:
    """The command line every recipe shares: setup | start | stop | check."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("action", choices=["setup", "start", "stop", "check"])
    ap.add_argument("--port", type=int, default=default_port)
    ap.add_argument("--upstream", default=STUB_URL)
    a = ap.parse_args()
    if a.action == "setup":
        if setup is not None:
            setup()
    elif a.action == "stop":
        stop(name)
    elif a.action == "start":
        print(start(make(a.port, a.upstream), timeout_s=start_timeout_s))
    else:
        for mode, summary in check_chat(make(a.port, a.upstream)).items():
            print(f"{name} {mode}: {summary}")
    return 0


def replace_section(heading: str, body: str, path: Path | None = None) -> None:
    """Replace (or append) one `## ` section of the shared benchmarks README in place.

    Only the named section changes: the README is shared with other authors.
    """
    path = path or ROOT / "benchmarks" / "README.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if ln.rstrip() == heading), None)
    block = f"{heading}\n\n{body.strip()}\n\n"
    if start is None:
        new = text.rstrip("\n") + "\n\n" + block
    else:
        end = next(
            (j for j in range(start + 1, len(lines)) if lines[j].startswith("## ")), len(lines)
        )
        new = "".join(lines[:start]) + block + "".join(lines[end:])
    path.write_text(new.rstrip("\n") + "\n")
