"""The async core: ``run_profile(profile) -> Result`` (DESIGN §2–10).

Order of a run, each step owned by its own module:

1. start the stub upstream (subprocess) and reset its ledger;
2. start or adopt the gateway (:mod:`loadgate.gateway.lifecycle`), preflight it (seed 004);
3. provision auth keys when the profile says so;
4. scrape the gateway's Prometheus endpoint at the window edges and every few s;
5. drive the load (:mod:`loadgate.load.generator`, in-process or one process per worker);
6. at the end of sending, SIGTERM a launched gateway while requests are still
   in flight: the drain check of the Phase 2 operations list;
7. assemble the result, judge the harness (``invalid``), evaluate gates, write
   the run directory atomically — also when interrupted.

The CLI is a thin layer over :func:`run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from loadgate.client.observation import Observation
from loadgate.errors import LoadgateError, UsageError
from loadgate.gateway.lifecycle import Gateway, log_tail, start_gateway
from loadgate.gateway.preflight import preflight
from loadgate.gateway.scrape import Scraper
from loadgate.histograms.hlog import write_all_hlogs
from loadgate.histograms.recorder import BATCHED_METRICS, HISTOGRAM_BATCHES, METRICS
from loadgate.join.joiner import LedgerClient
from loadgate.judge.gates import decide_verdict, evaluate_gates, undecided_reasons
from loadgate.judge.monitor import CpuMeter, Limits, judge, summarize_ms
from loadgate.load.generator import Engine, EngineOutcome, WorkerPlan, new_nonce
from loadgate.load.keys import KeyPool, run_provisioning
from loadgate.load.parallel import run_workers
from loadgate.observe.progress import Progress
from loadgate.profile import Profile
from loadgate.result import SCHEMA, Result, collect_environment, dig, git_info, write_result
from stub_upstream.config import StubConfig
from stub_upstream.process import StubProcess, StubStartError

__all__ = ["RunOptions", "run", "run_profile"]


@dataclass(frozen=True, slots=True)
class RunOptions:
    target: str | None = None
    out: Path | None = None
    git_dir: Path | None = None
    metrics_port: int | None = None
    progress: bool = True
    run_dir: Path | None = None


def run(profile: Profile, options: RunOptions | None = None) -> Result:
    """Synchronous entry point: installs uvloop (at run time, not import) and runs."""
    import uvloop

    raise_open_file_limit()
    return uvloop.run(run_profile(profile, options or RunOptions()))


def raise_open_file_limit() -> int:
    """Lift the soft open-file limit to the hard one; returns the limit in force.

    Each in-flight request holds a socket (one connection per request, plus the
    gateway's and the stub's side when they run here): the common soft limit of
    1024 would stop a 2k-connection run with EMFILE errors that look like gateway
    failures.
    """
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def _default_run_dir(profile: Profile, options: RunOptions) -> Path:
    if options.run_dir is not None:
        return options.run_dir
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = Path(os.environ.get("LOADGATE_RUNS_DIR", "runs"))
    if options.out is not None:
        base = options.out.parent
    return base / f"{profile.name}-{stamp}-{os.getpid()}"


def stub_config(profile: Profile) -> StubConfig:
    """The profile's ``[stub]`` table as the stub's own config (same field names)."""
    s = profile.stub
    names = {f.name for f in dataclasses.fields(StubConfig)}
    return StubConfig(
        **{f.name: getattr(s, f.name) for f in dataclasses.fields(s) if f.name in names}
    )


class _Interrupt:
    """Turns SIGINT/SIGTERM into a stop reason instead of a traceback."""

    def __init__(self, on_stop: Callable[[str], None]) -> None:
        self.reason: str | None = None
        self._on_stop = on_stop
        self._installed: list[int] = []

    def __enter__(self) -> _Interrupt:
        loop = asyncio.get_running_loop()
        for sig, name in ((signal.SIGINT, "SIGINT"), (signal.SIGTERM, "SIGTERM")):
            try:
                loop.add_signal_handler(sig, self._fire, name)
                self._installed.append(sig)
            except (NotImplementedError, RuntimeError):  # not the main thread
                pass
        return self

    def _fire(self, name: str) -> None:
        if self.reason is None:
            self.reason = name
            self._on_stop(name)

    def __exit__(self, *exc: object) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._installed:
            loop.remove_signal_handler(sig)


async def run_profile(profile: Profile, options: RunOptions | None = None) -> Result:
    """Run one profile end to end and return its (already written) result."""
    options = options or RunOptions()
    run_dir = _default_run_dir(profile, options)
    run_dir.mkdir(parents=True, exist_ok=True)
    started_at = datetime.now(UTC)
    t_wall0 = time.monotonic()
    stop = asyncio.Event()
    ctx = _RunContext(profile, options, run_dir, stop)
    with _Interrupt(ctx.request_stop) as interrupt:
        try:
            await ctx.execute()
        except LoadgateError:
            raise
        except asyncio.CancelledError:
            ctx.stop_reason = ctx.stop_reason or "cancelled"
        finally:
            if interrupt.reason:
                ctx.stop_reason = interrupt.reason
    data = ctx.assemble(started_at, time.monotonic() - t_wall0)
    if ctx.outcome is not None:
        measure_start = started_at.timestamp() + ctx.profile.load.warmup_s
        data["hlogs"] = [
            p.name for p in write_all_hlogs(run_dir, ctx.outcome.recorder, measure_start)
        ]
    result = Result(data)
    write_result(result, run_dir / "result.json")
    if options.out is not None:
        write_result(result, options.out)
    try:
        from loadgate.report import write_reports

        write_reports(result, html=run_dir / "report.html")
    except Exception as exc:  # a report must never cost the result
        print(f"loadgate: warning: report.html not written: {exc}", file=sys.stderr)
    return result


class _RunContext:
    def __init__(self, profile: Profile, options: RunOptions, run_dir: Path, stop: asyncio.Event):
        self.profile = profile
        self.options = options
        self.run_dir = run_dir
        self.stop = stop
        self.stop_reason: str | None = None
        self.outcome: EngineOutcome | None = None
        self.engine: Engine | None = None
        self.gateway_info: dict[str, Any] = {
            "kind": "target" if options.target else profile.gateway.kind
        }
        self.scraper: Scraper | None = None
        self.cpu = CpuMeter()
        self.gateway_rc: int | None = None
        self.terminated = False
        self.end_marked = False
        self.progress = Progress(
            enabled=options.progress,
            total_s=profile.load.warmup_s + profile.load.duration_s + profile.load.cooldown_s,
            warmup_s=profile.load.warmup_s,
        )
        self.live: Any = None

    def _base_dir(self) -> Path:
        """Relative paths in a profile (keys_file) are relative to the profile's file."""
        src = self.profile.source
        if src.startswith(("bundled:", "<")):
            return Path(".")
        return Path(src).parent

    def request_stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        self.stop.set()
        if self.engine is not None:
            self.engine.stop(reason)

    async def execute(self) -> None:
        p = self.profile
        cfg = stub_config(p)
        async with _started_stub(cfg, self.run_dir / "stub.log") as stub:
            self.stub_url = stub.url
            if p.stub.cpus and stub.pid is not None:
                os.sched_setaffinity(stub.pid, set(p.stub.cpus))
            async with aiohttp.ClientSession() as session:
                await LedgerClient(stub.url, session).reset()
            keys_file = self._keys_file()
            async with start_gateway(
                p.gateway,
                stub_url=stub.url,
                run_dir=self.run_dir,
                target=self.options.target,
                key_prefix=p.auth.prefix,
                keys_file=keys_file,
            ) as gw:
                self.gateway_info.update(url=gw.url, pid=gw.pid)
                await preflight(gw.url)
                await self._provision()
                await self._measure(gw)

    def _keys_file(self) -> Path | None:
        """The file that lists the valid keys, for a launched gateway and provisioning.

        A profile's own ``auth.keys_file`` wins; with a provisioning command the
        generated pool is written into the run directory first (before the
        gateway starts, so a reference gateway accepts exactly those keys).
        """
        a = self.profile.auth
        if a.header == "none":
            return None
        if a.keys_file:
            return self._base_dir() / a.keys_file
        if a.provision_command:
            path = self.run_dir / "keys.txt"
            KeyPool.from_spec(a, self._base_dir()).write_keys_file(path)
            return path
        return None

    async def _provision(self) -> None:
        a = self.profile.auth
        keys_file = self._keys_file()
        if not a.provision_command or keys_file is None:
            return
        await run_provisioning(
            a.provision_command, keys_file, self.run_dir / "provision.log", timeout_s=300.0
        )

    async def _measure(self, gw: Gateway) -> None:
        p = self.profile
        metrics_url = gw.metrics_url
        selectors: dict[str, str] = {}
        ac = p.gateway.auth_cache
        if ac.hits and ac.misses:
            selectors["auth_cache_hits"] = ac.hits
            selectors["auth_cache_misses"] = ac.misses
        selectors.update(p.gateway.counters)
        if metrics_url and selectors:
            self.scraper = Scraper(metrics_url, selectors, p.gateway.scrape_interval_s)
        # Spawned workers need time to import before the shared start instant.
        start_ns = time.monotonic_ns() + (200_000_000 if p.load.workers == 1 else 3_000_000_000)
        nonce = new_nonce()
        plan = WorkerPlan(
            p, gw.url, self.stub_url, start_ns, nonce, 0, p.load.workers, str(self._base_dir())
        )
        if self.options.metrics_port is not None:
            from loadgate.observe.live_metrics import LiveMetrics

            self.live = LiveMetrics(self.options.metrics_port)
            await _maybe_await(self.live.start())
        if self.scraper is not None and p.load.warmup_s == 0:
            # No warm-up: the window opens with the first request, so mark it first.
            with contextlib.suppress(Exception):
                await self.scraper.mark_start()
        watch = asyncio.create_task(self._watch(gw))
        edges = asyncio.create_task(self._edges(gw, start_ns))
        try:
            if p.load.workers > 1:
                self.outcome = await run_workers(plan, self.stop)
            else:
                self.engine = Engine(plan, stop=self.stop, on_observation=self._on_obs)
                self.progress.attach(self.engine)
                if self.stop.is_set():
                    self.engine.stop(self.stop_reason or "stopped")
                self.outcome = await self.engine.run()
        finally:
            watch.cancel()
            if not self.end_marked:
                edges.cancel()  # load ended early (max_requests, stop): mark the end now
            await asyncio.gather(watch, edges, return_exceptions=True)
            self.progress.close()
            if self.scraper is not None:
                if not self.end_marked:
                    with contextlib.suppress(Exception):
                        await self.scraper.mark_end()
                await _maybe_await(self.scraper.stop())
            if self.live is not None:
                await _maybe_await(self.live.stop())
        await self._drain_report(gw)

    def _on_obs(self, obs: Observation, measured: bool) -> None:
        if self.live is not None:
            self.live.request_done(obs.stream, obs.error is None)
            if obs.violation is not None:
                self.live.violation(obs.violation)

    async def _edges(self, gw: Gateway, start_ns: int) -> None:
        """Scrape at the window edges; at the end of sending, SIGTERM a launched gateway.

        Runs on its own timer (not the watch loop's tick) so the SIGTERM lands
        while the last requests are still in flight: that is the drain check.
        """
        p = self.profile
        measure_start = start_ns + round(p.load.warmup_s * 1e9)
        end = measure_start + round((p.load.duration_s + p.load.cooldown_s) * 1e9)
        if self.scraper is not None and p.load.warmup_s > 0:
            await _sleep_until(measure_start)
            with contextlib.suppress(Exception):
                await self.scraper.mark_start()
        await _sleep_until(end)
        if self.scraper is not None:
            with contextlib.suppress(Exception):
                await self.scraper.mark_end()
        self.end_marked = True
        launched = gw.pid is not None and self.options.target is None
        if launched and p.gateway.drain_check and gw.returncode() is None:
            self.terminated = True
            self.gateway_info["drain_in_flight_at_term"] = (
                self.engine.inflight if self.engine is not None else None
            )
            gw.terminate()

    async def _watch(self, gw: Gateway) -> None:
        """Gateway death, progress ticks, live metrics."""
        if self.scraper is not None:
            self.scraper.start()
        while True:
            if gw.pid is not None and not self.terminated:
                rc = gw.returncode()
                if rc is not None:
                    self.gateway_rc = rc
                    self.request_stop("gateway_died")
                    return
            self.progress.tick()
            if self.live is not None and self.engine is not None:
                self.live.set_inflight(self.engine.inflight)
                last = self.engine.recorder.interval_percentile("overhead_ms", 99.0)
                if len(last) >= 2 and last[-2][1] is not None:
                    self.live.set_overhead_p99_ms(last[-2][1])
            await asyncio.sleep(0.25)

    async def _drain_report(self, gw: Gateway) -> None:
        p = self.profile
        info = self.gateway_info
        if gw.pid is None or self.options.target is not None or not p.gateway.drain_check:
            info["drain"] = {"checked": False}
            return
        if "drain_in_flight_at_term" not in info:
            why = f"run stopped: {self.stop_reason}" if self.stop_reason else "load ended early"
            info["drain"] = {"checked": False, "reason": why}
            return
        rc = await gw.wait(p.gateway.stop_timeout_s)
        out = self.outcome
        dropped = out.tail_failed if out is not None else None
        in_flight = out.tail_in_flight if out is not None else None
        info["drain"] = {
            "checked": True,
            "in_flight_at_term": in_flight,
            "dropped": dropped,
            "exit_code": rc,
            "ok": bool(dropped == 0 and rc == 0),
        }
        info.pop("drain_in_flight_at_term", None)

    # -- result -------------------------------------------------------------------

    def assemble(self, started_at: datetime, wall_s: float) -> dict[str, Any]:
        p = self.profile
        out = self.outcome
        data: dict[str, Any] = {
            "schema": SCHEMA,
            "verdict": "invalid",
            "reasons": [],
            "exit_code": 3,
            "interrupted": self.stop_reason,
            "gates": [],
            "metrics": {},
            "by_mode": {},
            "started_at": started_at.isoformat(),
            "duration_s": round(wall_s, 3),
            "run_dir": str(self.run_dir),
            "profile": p.redacted(),
            "environment": collect_environment(),
            "git": git_info(self.options.git_dir),
        }
        if out is None:
            data["reasons"] = [f"run did not start measuring ({self.stop_reason or 'error'})"]
            data["requests"] = {"sent": 0, "ok": 0, "failed": 0, "error_rate": None, "errors": {}}
            data["integrity"] = {"checked": 0, "violations": 0, "by_class": {}}
            data["upstream"] = {"calls": 0, "calls_per_request": None}
            data["gateway"] = {**self.gateway_info, "auth_cache_hit_rate": None}
            data["harness"] = {}
            data["histograms"] = {}
            return data
        rec = out.recorder
        for m in METRICS:
            s = rec.summary(m)
            if s is not None:
                data["metrics"][m] = s
        for mode in ("stream", "non_stream"):
            mc = out.by_mode[mode]
            data["by_mode"][mode] = {
                "metrics": {m: s for m in METRICS if (s := rec.summary(m, mode)) is not None},
                "requests": {"sent": mc.sent, "ok": mc.ok, "failed": mc.failed},
            }
        measured_s = p.load.duration_s
        if self.stop_reason is not None and out.wall_s:
            measured_s = max(1e-9, min(measured_s, out.wall_s - p.load.warmup_s))
        data["requests"] = {
            "sent": out.sent,
            "ok": out.ok,
            "failed": out.failed,
            "error_rate": (out.failed / out.sent) if out.sent else None,
            "errors": dict(sorted(out.errors.items())),
            "throughput_rps": out.ok / measured_s if measured_s > 0 else None,
            "rate_offered": p.load.rate,
            "rate_achieved": out.sent / measured_s if measured_s > 0 else None,
            "max_inflight_hits": out.max_inflight_hits,
            "warmup_excluded": out.warmup_excluded,
            "cooldown_excluded": out.cooldown_excluded,
        }
        nviol = sum(out.violations.values())
        data["integrity"] = {
            "checked": out.checked,
            "violations": nviol,
            "by_class": dict(sorted(out.violations.items())),
        }
        up = dict(out.upstream)
        up["calls_per_request"] = (up.get("calls", 0) / out.sent) if out.sent else None
        data["upstream"] = up
        data["gateway"] = self._gateway_section(out)
        data["harness"] = self._harness_section(out)
        data["timeseries"] = self._timeseries(out)
        data["histograms"] = rec.encode()
        # Time batches of the figures compare tests: their spread is the run's own drift.
        data["histogram_batches"] = rec.encode_batches(BATCHED_METRICS, HISTOGRAM_BATCHES)
        return self._judge(data)

    def _gateway_section(self, out: EngineOutcome) -> dict[str, Any]:
        g: dict[str, Any] = dict(self.gateway_info)
        g["auth_cache_hit_rate"] = None
        g["log"] = "gateway.log" if (self.run_dir / "gateway.log").exists() else None
        if self.gateway_rc is not None:
            g["exit_code"] = self.gateway_rc
        sc = self.scraper
        if sc is None:
            return g
        deltas = sc.deltas()
        ac = self.profile.gateway.auth_cache
        if ac.hits and ac.misses:
            hits, misses = deltas.get("auth_cache_hits"), deltas.get("auth_cache_misses")
            g["auth_cache"] = {
                "hits": hits,
                "misses": misses,
                "series": [
                    [round(t, 3), r]
                    for t, r in sc.hit_rate_series("auth_cache_hits", "auth_cache_misses")
                ],
            }
            g["auth_cache_hit_rate"] = sc.hit_rate("auth_cache_hits", "auth_cache_misses")
        counters = {name: deltas.get(name) for name in self.profile.gateway.counters}
        g["counters"] = counters
        g["counters_per_request"] = {
            k: (v / out.sent if v is not None and out.sent else None) for k, v in counters.items()
        }
        g["scrape_errors"] = getattr(sc, "errors", 0)
        return g

    def _harness_section(self, out: EngineOutcome) -> dict[str, Any]:
        from hdrh.histogram import HdrHistogram

        def dec(b: bytes) -> dict[str, float] | None:
            return summarize_ms(HdrHistogram.decode(b)) if b else None

        p = self.profile
        h: dict[str, Any] = {
            "loop_lag_ms": dec(out.loop_lag_us),
            "send_lag_ms": dec(out.send_lag_us) if p.load.rate is not None else None,
            "stub_timer_lateness_ms": dec(out.stub_lateness_us),
            "cpu_percent": round(100.0 * out.cpu_s / out.wall_s, 1) if out.wall_s else None,
            "workers": p.load.workers,
            "floor_ms": None,
            "warnings": [],
        }
        if p.load.rate is not None and out.offered:
            h["achieved_rate_ratio"] = round(out.sent / out.offered, 4)
        if self.options.target is None and p.gateway.kind == "direct":
            s = out.recorder.summary("overhead_ms")
            if s is not None:
                h["floor_ms"] = {"p50": s["p50"], "p99": s["p99"]}
        import resource

        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        h["open_file_limit"] = nofile
        want = (p.load.concurrency or p.load.max_inflight) + 64
        if nofile != resource.RLIM_INFINITY and want > nofile:
            h["warnings"].append(
                f"open-file limit {nofile} is below the ~{want} sockets this load needs: "
                "connect errors may be the harness's, not the gateway's (raise ulimit -n)"
            )
        lim = p.harness
        h["limits"] = {
            "max_loop_lag_p99_ms": lim.max_loop_lag_p99_ms,
            "max_cpu_percent": lim.max_cpu_percent,
            "min_achieved_rate_ratio": lim.min_achieved_rate_ratio,
            "max_stub_lateness_p99_ms": lim.max_stub_lateness_p99_ms,
        }
        if out.upstream.get("ledger_lost"):
            h["warnings"].append(
                f"stub ledger overwrote {out.upstream['ledger_lost']} records before they were "
                "read: raise stub.ledger_capacity"
            )
        return h

    def _timeseries(self, out: EngineOutcome) -> dict[str, Any]:
        n = int(self.profile.load.duration_s)
        if n <= 0:
            return {}
        p99 = dict(out.recorder.interval_percentile("overhead_ms", 99.0))
        ts: dict[str, Any] = {
            "t_s": list(range(n)),
            "rps": [out.per_interval_done.get(i, 0) for i in range(n)],
            "errors": [out.per_interval_errors.get(i, 0) for i in range(n)],
            "overhead_p99_ms": [p99.get(i) for i in range(n)],
        }
        ac = self.profile.gateway.auth_cache
        if self.scraper is not None and ac.hits and ac.misses:
            ts["auth_cache_hit_rate"] = [
                [round(t, 3), r]
                for t, r in self.scraper.hit_rate_series("auth_cache_hits", "auth_cache_misses")
            ]
        return ts

    def _judge(self, data: dict[str, Any]) -> dict[str, Any]:
        p = self.profile
        lim = p.harness
        invalid = judge(
            data["harness"],
            Limits(
                max_loop_lag_p99_ms=lim.max_loop_lag_p99_ms,
                max_cpu_percent=lim.max_cpu_percent,
                min_achieved_rate_ratio=lim.min_achieved_rate_ratio,
                max_stub_lateness_p99_ms=lim.max_stub_lateness_p99_ms,
            ),
        )
        if self.stop_reason in ("SIGINT", "SIGTERM", "cancelled"):
            invalid.insert(0, f"interrupted by {self.stop_reason}: partial result")
        gates = evaluate_gates(p.gates, data)
        invalid += undecided_reasons(gates, dig(data, "harness", "loop_lag_ms", "p99"))
        verdict, reasons, code = decide_verdict(gates, invalid)
        if self.stop_reason == "gateway_died":
            rc = self.gateway_rc
            reasons = [f"gateway process exited (code {rc}) during the run", *reasons]
            if verdict == "pass":
                verdict, code = "fail", 1
        data.update(verdict=verdict, reasons=reasons, exit_code=code, gates=gates)
        return data


@contextlib.asynccontextmanager
async def _started_stub(cfg: StubConfig, log: Path) -> AsyncIterator[StubProcess]:
    """The stub subprocess; a start failure is the user's to fix (exit 2, one line)."""
    stub = StubProcess(cfg, log_path=log)
    try:
        await stub.start()
    except (StubStartError, ValueError) as exc:
        tail = log_tail(log, 1)
        cause = tail[-1].strip() if tail else str(exc)
        hint = ""
        if "in use" in cause.lower():
            hint = f" (stub.port {cfg.port} is taken: free it or --set stub.port=0)"
        raise UsageError(f"stub upstream did not start: {cause}{hint}") from None
    try:
        yield stub
    finally:
        await stub.stop()


async def _sleep_until(t_ns: int) -> None:
    # Loop: uvloop's millisecond timers can wake a little early (see engine).
    while (delay := (t_ns - time.monotonic_ns()) / 1e9) > 0:  # noqa: ASYNC110
        await asyncio.sleep(delay)


async def _maybe_await(x: Any) -> Any:
    if asyncio.iscoroutine(x) or isinstance(x, asyncio.Future):
        return await x
    return x
