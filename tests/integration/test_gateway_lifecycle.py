"""Gateway lifecycle with real child processes: readiness, death, SIGTERM, SIGKILL, cleanup."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import aiohttp
import pytest

from loadgate.errors import DepDownError, UsageError
from loadgate.gateway.lifecycle import start_gateway
from loadgate.gateway.processes import shell_argv
from loadgate.profile import GatewaySpec

pytestmark = pytest.mark.timeout(60)

# A tiny HTTP gateway stand-in: /health answers 200, /die exits with code 3,
# and with "ignore-term" it ignores SIGTERM (to prove SIGKILL follows).
SERVER = """\
import http.server, os, signal, sys
port, mode = int(sys.argv[1]), sys.argv[2]
if mode == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/die":
            print("asked to die", flush=True)
            os._exit(3)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
print("fake gateway up on", port, flush=True)
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
"""


def command_spec(tmp_path: Path, mode: str = "plain", **kw: object) -> GatewaySpec:
    script = tmp_path / "fake_gateway.py"
    script.write_text(SERVER)
    return GatewaySpec(
        kind="command",
        command=f"{sys.executable} {script} {{port}} {mode}",
        url="http://127.0.0.1:{port}",
        **kw,  # type: ignore[arg-type]
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_target_and_direct_launch_nothing(tmp_path: Path) -> None:
    async with start_gateway(
        GatewaySpec(), stub_url="http://s:1", run_dir=tmp_path, target="http://gw:8/"
    ) as gw:
        assert (gw.url, gw.metrics_url, gw.pid, gw.returncode()) == (
            "http://gw:8",
            "http://gw:8/metrics",
            None,
            None,
        )
    async with start_gateway(
        GatewaySpec(kind="direct"), stub_url="http://s:1", run_dir=tmp_path, target=None
    ) as gw:
        assert (gw.url, gw.metrics_url, gw.pid) == ("http://s:1", None, None)
        assert await gw.wait(0.01) is None


def test_plain_commands_are_execd_and_shell_syntax_uses_sh() -> None:
    assert shell_argv("gw --port 8 --name 'a b'") == ["gw", "--port", "8", "--name", "a b"]
    assert shell_argv("cd x && ./gw") == ["/bin/sh", "-c", "cd x && ./gw"]
    assert shell_argv("A=1 gw") == ["/bin/sh", "-c", "A=1 gw"]


async def test_command_gateway_that_dies_is_observed(tmp_path: Path) -> None:
    async with (
        start_gateway(
            command_spec(tmp_path), stub_url="http://s:1", run_dir=tmp_path, target=None
        ) as gw,
        aiohttp.ClientSession() as s,
    ):
        assert gw.pid is not None and gw.returncode() is None
        assert gw.metrics_url == f"{gw.url}/metrics"
        with pytest.raises(aiohttp.ClientError):
            await s.get(f"{gw.url}/die")
        # returncode() never blocks: poll it until the child's exit is seen.
        for _ in range(2000):
            if gw.returncode() is not None:
                break
            await asyncio.sleep(0.01)
        assert gw.returncode() == 3
    assert "asked to die" in (tmp_path / "gateway.log").read_text()


async def test_terminate_returns_at_once_and_wait_reports_the_signal(tmp_path: Path) -> None:
    async with start_gateway(
        command_spec(tmp_path), stub_url="http://s:1", run_dir=tmp_path, target=None
    ) as gw:
        gw.terminate()
        assert await gw.wait(20) == -15


async def test_context_exit_kills_a_gateway_that_ignores_sigterm(tmp_path: Path) -> None:
    spec = command_spec(tmp_path, "ignore-term", stop_timeout_s=0.3)
    async with start_gateway(spec, stub_url="http://s:1", run_dir=tmp_path, target=None) as gw:
        pid = gw.pid
        assert pid is not None
        gw.terminate()
        assert await gw.wait(0.3) is None  # still alive: SIGTERM ignored
    assert gw.returncode() == -9
    assert not alive(pid)


async def test_exit_before_ready_names_code_and_log_tail(tmp_path: Path) -> None:
    spec = GatewaySpec(kind="command", command="echo bad config line >&2; exit 4")
    with pytest.raises(DepDownError) as info:
        await asyncio.wait_for(
            start_gateway(spec, stub_url="http://s:1", run_dir=tmp_path, target=None).__aenter__(),
            30,
        )
    msg = str(info.value)
    assert msg.startswith("DEP-DOWN: gateway command `echo bad config line >&2; exit 4` exited")
    assert "exited with code 4 before" in msg
    assert "  | bad config line" in msg


async def test_ready_timeout_names_the_url_and_log_tail_and_kills(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    spec = GatewaySpec(
        kind="command",
        command=f"echo $$ > {pidfile}; echo still warming up; exec sleep 30",
        ready_timeout_s=0.5,
        stop_timeout_s=5.0,
    )
    with pytest.raises(DepDownError) as info:
        async with start_gateway(spec, stub_url="http://s:1", run_dir=tmp_path, target=None):
            pass
    msg = str(info.value)
    assert "was not ready after 0.5 s" in msg
    assert "/health answered" in msg
    assert "  | still warming up" in msg
    assert not alive(int(pidfile.read_text()))


async def test_substitutions_and_env(tmp_path: Path) -> None:
    out = tmp_path / "seen"
    script = tmp_path / "fake_gateway.py"
    script.write_text(SERVER)
    spec = GatewaySpec(
        kind="command",
        command=f'echo "$UP|$P" > {out}; exec {sys.executable} {script} {{port}} plain',
        env={"UP": "{stub_url}/v1", "P": "{port}"},
        url="http://127.0.0.1:{port}",
    )
    async with start_gateway(spec, stub_url="http://stub:9", run_dir=tmp_path, target=None) as gw:
        port = gw.url.rsplit(":", 1)[1]
        assert out.read_text().strip() == f"http://stub:9/v1|{port}"


async def test_missing_command_is_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"gateway\.command"):
        async with start_gateway(
            GatewaySpec(kind="command"), stub_url="http://s:1", run_dir=tmp_path, target=None
        ):
            pass
