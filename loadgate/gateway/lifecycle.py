"""Gateway lifecycle: adopt ``--target``, go ``direct``, or launch ``reference`` / ``command``.

A launched gateway runs in its own session (so its own process group), with stdout
and stderr captured in ``<run_dir>/gateway.log``. Signals go to that group only,
never to anything found by name. Readiness is "any non-5xx answer from the ready
URL" (the same rule as preflight, seed 004). On context exit a still-running
gateway gets SIGTERM, then SIGKILL after ``stop_timeout_s``: nothing can hang.

Process handling is :mod:`loadgate.gateway.processes`'.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp

from loadgate.errors import DepDownError, UsageError
from loadgate.gateway.processes import (
    free_port,
    log_tail,
    shell_argv,
    signal_group,
    spawn,
    stop_process,
)
from loadgate.gateway.redis_server import RedisUnavailable, throwaway_redis
from loadgate.profile import GatewaySpec

__all__ = ["Gateway", "start_gateway"]

_LISTENING = re.compile(rb"reference_gateway listening on (http://\S+)")
_POLL_S = 0.05


class Gateway:
    """The gateway under test, launched or adopted."""

    def __init__(
        self,
        *,
        kind: str,
        url: str,
        metrics_url: str | None,
        proc: asyncio.subprocess.Process | None = None,
        log: Path | None = None,
        stop_timeout_s: float = 10.0,
    ) -> None:
        self.kind = kind
        self.url = url.rstrip("/")
        self.metrics_url = metrics_url
        self.log = log
        self._proc = proc
        self._stop_timeout_s = stop_timeout_s
        self.terminated_at: float | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def returncode(self) -> int | None:
        """The exit code if the launched process has ended, else None (never blocks)."""
        return self._proc.returncode if self._proc is not None else None

    def terminate(self) -> None:
        """Send SIGTERM now and return at once (the drain check keeps load in flight)."""
        if self._proc is None or self._proc.returncode is not None:
            return
        if self.terminated_at is None:
            self.terminated_at = time.monotonic()
        signal_group(self._proc.pid, signal.SIGTERM)

    async def wait(self, timeout_s: float) -> int | None:
        """The exit code once the process ends within ``timeout_s``, else None."""
        if self._proc is None:
            return None
        try:
            return await asyncio.wait_for(self._proc.wait(), timeout_s)
        except TimeoutError:
            return None

    async def close(self) -> int | None:
        if self._proc is None:
            return None
        return await stop_process(self._proc, self._stop_timeout_s)


def _down(what: str, why: str, log: Path) -> DepDownError:
    tail = log_tail(log)
    lines = [f"DEP-DOWN: {what} {why} (log: {log})"]
    if tail:
        lines.append(f"last {len(tail)} line(s) of {log.name}:")
        lines.extend(f"  | {ln}" for ln in tail)
    else:
        lines.append(f"{log.name} is empty")
    return DepDownError("\n".join(lines))


async def _until(
    ready: Callable[[], Awaitable[bool]],
    proc: asyncio.subprocess.Process,
    *,
    deadline: float,
    what: str,
    waiting_for: str,
    timeout_s: float,
    log: Path,
) -> None:
    while True:
        if await ready():
            return
        if proc.returncode is not None:
            raise _down(what, f"exited with code {proc.returncode} before {waiting_for}", log)
        if time.monotonic() >= deadline:
            raise _down(what, f"was not ready after {timeout_s:g} s ({waiting_for})", log)
        await asyncio.sleep(_POLL_S)


async def _http_ready(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with session.get(url, allow_redirects=False) as resp:
            return resp.status < 500
    except (aiohttp.ClientError, OSError, TimeoutError):
        return False


def _listening_url(log: Path) -> str | None:
    try:
        m = _LISTENING.search(log.read_bytes())
    except FileNotFoundError:
        return None
    return m.group(1).decode() if m else None


def _reference_argv(
    spec: GatewaySpec,
    stub_url: str,
    key_prefix: str | None,
    keys_file: Path | None,
    agent_header: str | None = None,
    redis_url: str | None = None,
    trace_dsn: str | None = None,
) -> list[str]:
    ref = spec.reference
    if ref.workers != 1 and not ref.redis:
        raise UsageError(
            f"gateway.reference.workers = {ref.workers}: more than one worker needs "
            "gateway.reference.redis = true (revocations reach every worker over Redis)"
        )
    argv = [
        sys.executable,
        "-m",
        "reference_gateway",
        "--upstream",
        stub_url,
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--cache-size",
        str(ref.cache_size),
        "--miss-cost-ms",
        repr(float(ref.miss_cost_ms)),
        "--delay-ms",
        repr(float(ref.delay_ms)),
        # Drain inside our SIGKILL deadline, so a drain that completes is seen as exit 0.
        "--drain-timeout-s",
        repr(max(0.1, 0.8 * spec.stop_timeout_s)),
        "--admin-key",
        ref.admin_key,
        "--revoke-propagation-ms",
        repr(float(ref.revoke_propagation_ms)),
        "--tenant-leak-share",
        repr(float(ref.tenant_leak_share)),
    ]
    if ref.directive:
        argv += ["--directive", ref.directive]
    if ref.agent_id:
        argv += ["--agent-id", ref.agent_id]
    if ref.upstream_key:
        argv += ["--upstream-key", ref.upstream_key]
    if ref.defect_skip_directive:
        argv += ["--defect-skip-directive", repr(float(ref.defect_skip_directive))]
    if ref.defect_bad_metric:
        argv.append("--defect-bad-metric")
    if ref.defect_buffer_streams:
        argv.append("--defect-buffer-streams")
    if key_prefix is not None:
        argv += ["--key-prefix", key_prefix]
    if keys_file is not None:
        argv += ["--keys-file", str(keys_file)]
    if agent_header is not None:
        argv += ["--agent-header", agent_header]
    if redis_url is not None:
        argv += ["--redis-url", redis_url, "--workers", str(ref.workers)]
    if trace_dsn is not None:
        argv += [
            "--trace-dsn",
            trace_dsn,
            "--trace-flush-ms",
            repr(float(ref.trace_flush_ms)),
            "--trace-delay-ms",
            repr(float(ref.trace_delay_ms)),
            "--trace-drop-share",
            repr(float(ref.trace_drop_share)),
        ]
    return argv


def _reference_env() -> dict[str, str]:
    # Runs from a source checkout too: the package sits next to loadgate/.
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _subst(text: str, stub_url: str, port: int) -> str:
    # Plain replace, not str.format: commands and env values may contain JSON braces.
    return text.replace("{stub_url}", stub_url).replace("{port}", str(port))


@contextlib.asynccontextmanager
async def start_gateway(
    spec: GatewaySpec,
    *,
    stub_url: str,
    run_dir: Path,
    target: str | None,
    key_prefix: str | None = None,
    keys_file: Path | None = None,
    agent_header: str | None = None,
    trace_dsn: str | None = None,
) -> AsyncIterator[Gateway]:
    """The gateway for this run (:func:`_start_gateway`), with its throwaway Redis when
    ``gateway.reference.redis`` asks for one (started before it, stopped after)."""
    with contextlib.ExitStack() as stack:
        redis_url = None
        if target is None and spec.kind == "reference" and spec.reference.redis:
            try:
                redis_url = stack.enter_context(throwaway_redis(run_dir / "redis.log")).url
            except RedisUnavailable as exc:
                raise UsageError(f"gateway.reference.redis: {exc}") from None
        async with _start_gateway(
            spec,
            stub_url=stub_url,
            run_dir=run_dir,
            target=target,
            key_prefix=key_prefix,
            keys_file=keys_file,
            agent_header=agent_header,
            redis_url=redis_url,
            trace_dsn=trace_dsn,
        ) as gw:
            yield gw


@contextlib.asynccontextmanager
async def _start_gateway(
    spec: GatewaySpec,
    *,
    stub_url: str,
    run_dir: Path,
    target: str | None,
    key_prefix: str | None,
    keys_file: Path | None,
    agent_header: str | None,
    redis_url: str | None,
    trace_dsn: str | None,
) -> AsyncIterator[Gateway]:
    """The gateway for this run, stopped (if launched) when the context exits.

    ``key_prefix`` / ``keys_file`` tell a launched reference gateway which client keys
    are valid (defaults: its own, prefix ``sk-lg-``); ``agent_header`` which header
    names the agent its tenant-scoped keys are checked against; ``trace_dsn`` where it
    writes its trace rows (``--trace-dsn``; None: it writes none).
    """
    if target is not None:
        url = target.rstrip("/")
        yield Gateway(kind="target", url=url, metrics_url=spec.metrics_url or f"{url}/metrics")
        return
    if spec.kind == "direct":
        yield Gateway(kind="direct", url=stub_url, metrics_url=None)
        return

    log = run_dir / "gateway.log"
    deadline = time.monotonic() + spec.ready_timeout_s
    if spec.kind == "reference":
        argv = _reference_argv(
            spec, stub_url, key_prefix, keys_file, agent_header, redis_url, trace_dsn
        )
        env: dict[str, str] = _reference_env()
        cwd = None
        what = "reference gateway"
        port = 0
    else:
        if not spec.command:
            raise UsageError('gateway.command: required when gateway.kind = "command"')
        port = free_port()
        command = _subst(spec.command, stub_url, port)
        argv = shell_argv(command)
        env = {**os.environ, **{k: _subst(v, stub_url, port) for k, v in spec.env.items()}}
        cwd = spec.cwd
        what = f"gateway command `{command}`"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as fh:
        fh.write(f"# loadgate: launching {shlex.join(argv)}\n".encode())
    try:
        proc = await spawn(argv, log=log, env=env, cwd=cwd)
    except OSError as exc:
        raise UsageError(f"gateway.command: cannot start {argv[0]!r}: {exc.strerror}") from exc
    try:
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=2.0), trust_env=False
        ) as session:
            if spec.kind == "reference":
                found: list[str] = []

                async def announced() -> bool:
                    url = _listening_url(log)
                    if url is not None:
                        found.append(url)
                    return url is not None

                await _until(
                    announced,
                    proc,
                    deadline=deadline,
                    what=what,
                    waiting_for="it announced its port",
                    timeout_s=spec.ready_timeout_s,
                    log=log,
                )
                url = found[0]
            else:
                url = _subst(spec.url, stub_url, port) if spec.url else f"http://127.0.0.1:{port}"
            url = url.rstrip("/")
            ready_url = (
                _subst(spec.ready_url, stub_url, port) if spec.ready_url else f"{url}/health"
            )
            await _until(
                lambda: _http_ready(session, ready_url),
                proc,
                deadline=deadline,
                what=what,
                waiting_for=f"{ready_url} answered",
                timeout_s=spec.ready_timeout_s,
                log=log,
            )
        metrics_url = (
            _subst(spec.metrics_url, stub_url, port) if spec.metrics_url else f"{url}/metrics"
        )
        yield Gateway(
            kind=spec.kind,
            url=url,
            metrics_url=metrics_url,
            proc=proc,
            log=log,
            stop_timeout_s=spec.stop_timeout_s,
        )
    finally:
        await stop_process(proc, spec.stop_timeout_s)
