"""One run of a profile, wired end to end: ``run(profile) -> Result``.

Order of a run, each step owned by its own package:

0. plan where the harness, the stub and a launched gateway run
   (:mod:`loadgate.pipeline.placement`) and pin each as it starts;
1. with ``gateway.reference.trace_db``, start a throwaway PostgreSQL for the gateway's
   trace rows (:mod:`loadgate.gateway.postgres_server`), stopped and removed last;
   start the stub upstream (a subprocess: ``stub_upstream.process``) and reset
   its ledger (:mod:`loadgate.join.ledger`);
2. start or adopt the gateway (:mod:`loadgate.gateway.lifecycle`) and preflight it
   (seed 004, :mod:`loadgate.gateway.preflight`);
3. provision auth keys when the profile says so (:mod:`loadgate.load.keys`);
4. scrape the gateway's Prometheus endpoint at the window edges and every few
   seconds (:mod:`loadgate.gateway.scrape`, :mod:`loadgate.pipeline.window`);
5. drive the load (:mod:`loadgate.load.generator`, in-process or one process
   per worker: :mod:`loadgate.load.parallel`);
6. at the end of sending, SIGTERM a launched gateway while requests are still
   in flight: the drain check (:mod:`loadgate.pipeline.window`);
7. build and judge the result (:func:`loadgate.result.build.build_result`).

The core prints nothing and writes only the children's logs (stub, gateway,
provisioning) into ``options.run_dir`` — a temporary directory, removed after,
when none is given. Writing the result and reports is the caller's
(:mod:`loadgate.rundir`); progress goes to the observers it passes. Ctrl-C and
SIGTERM stop the load and still return a (partial, ``invalid``) result.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import resource
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from loadgate.checks.metrics_lint import scrape_and_lint
from loadgate.client.observation import Observation
from loadgate.errors import DepDownError, LoadgateError, UsageError
from loadgate.gateway.lifecycle import Gateway, start_gateway
from loadgate.gateway.postgres_server import PostgresUnavailable, throwaway_postgres
from loadgate.gateway.preflight import preflight
from loadgate.gateway.processes import log_tail
from loadgate.gateway.scrape import HITS, MISSES, Scraper
from loadgate.join.ledger import reset_ledger
from loadgate.load.generator import Engine, WorkerPlan, new_nonce
from loadgate.load.keys import KeyPool, run_provisioning
from loadgate.load.parallel import run_workers
from loadgate.load.schedule import Windows
from loadgate.load.trace import TraceInfo, fit_stub
from loadgate.load.trace import scan as scan_trace
from loadgate.observe.observer import RunObserver
from loadgate.pipeline.placement import own_cpus, pin, plan_placement, usable_cpus
from loadgate.pipeline.shard import ShardPlan, judge_shard, shard_nonce, split_profile
from loadgate.pipeline.stopping import LibrarySignals, StopRequest, run_on_uvloop
from loadgate.pipeline.window import RunState, drain_figures, mark_edges, watch
from loadgate.probes.revocation import RevocationProbe, plan_revocations, summarize
from loadgate.probes.tenants import TenantMap, TenantMix, keys_file_lines
from loadgate.probes.witness import preflight_witness
from loadgate.profile import Profile, bundled_dir
from loadgate.result.build import GatewayFacts, RunFacts, build_result
from loadgate.result.environment import collect_environment, git_info
from loadgate.result.model import Drain, MetricsLint, PlacementFigures, Result
from stub_upstream.config import StubConfig
from stub_upstream.process import StubProcess, StubStartError

__all__ = [
    "RunOptions",
    "StopRequest",
    "check_target",
    "control_ratio",
    "raise_open_file_limit",
    "run",
    "run_profile",
    "stub_config",
]

#: Between planning the load and its first send: one process imports nothing more;
#: spawned load processes need time to import before the shared start instant.
_START_DELAY_NS = 200_000_000
_START_DELAY_WORKERS_NS = 3_000_000_000


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How to run a profile (what to run is the profile)."""

    #: base URL of an already-running gateway (loadgate starts only the stub)
    target: str | None = None
    #: the gateway's git work tree: its commit goes in the result
    git_dir: Path | None = None
    #: where the children's logs go (None: a temporary directory, removed after)
    run_dir: Path | None = None
    observers: tuple[RunObserver, ...] = ()
    #: how the run is stopped early; None: SIGINT/SIGTERM stop it for its length
    stop: StopRequest | None = None
    #: one shard of a sharded run (:mod:`loadgate.pipeline.shard`); None: the whole load
    shard: ShardPlan | None = None


def run(profile: Profile, options: RunOptions | None = None) -> Result:
    """Synchronous entry point: installs uvloop (at run time, not import) and runs."""
    raise_open_file_limit()
    return run_on_uvloop(run_profile(profile, options))


def raise_open_file_limit() -> int:
    """Lift the soft open-file limit to the hard one; returns the limit in force.

    Each in-flight request holds a socket (one connection per request, plus the
    gateway's and the stub's side when they run here): the common soft limit of
    1024 would stop a 2k-connection run with EMFILE errors that look like gateway
    failures.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def stub_config(profile: Profile) -> StubConfig:
    """The profile's ``[stub]`` table as the stub's own config (same field names)."""

    fields = profile.stub.model_dump(include=set(StubConfig.model_fields) - {"assertions"})
    rules = profile.checks.upstream.rules()
    return StubConfig.model_validate({**fields, "assertions": rules})


def check_target(url: str) -> None:
    """A ``--target`` must be an http(s) base URL with a host: a usage error otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--target {url!r}: not an http(s) URL (e.g. http://127.0.0.1:8080)")
    try:
        parts.port  # noqa: B018  (raises ValueError for a bad port)
    except ValueError as exc:
        raise UsageError(f"--target {url!r}: {exc}") from None


#: The control group's default size, as a share of the load, when a gateway is in the path.
DEFAULT_CONTROL_RATIO = 0.05


def control_ratio(profile: Profile, target: str | None) -> float:
    """``load.control_ratio``, or its default: 5 % with a gateway in the path, else 0."""
    if profile.load.control_ratio is not None:
        return profile.load.control_ratio
    direct = target is None and profile.gateway.kind == "direct"
    return 0.0 if direct else DEFAULT_CONTROL_RATIO


def _base_dir(profile: Profile) -> Path:
    """Relative paths in a profile (keys_file, trace) are relative to the profile's file."""
    if profile.source.startswith("bundled:"):
        return bundled_dir()
    if profile.source.startswith("<"):
        return Path(".")
    return Path(profile.source).parent


@contextlib.contextmanager
def _pinned_self(cpus: list[int] | None) -> Iterator[None]:
    """This process (the harness) on ``cpus`` for the run; its own mask back after."""
    if cpus is None:
        yield
        return
    before = os.sched_getaffinity(0)
    # Not allowed here (a cpuset loadgate cannot see): the scheduler decides.
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


@contextlib.contextmanager
def _log_dir(run_dir: Path | None) -> Iterator[tuple[Path, bool]]:
    """``(directory for the children's logs, whether it outlives the run)``."""
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        yield run_dir, True
        return
    with tempfile.TemporaryDirectory(prefix="loadgate-run-") as tmp:
        yield Path(tmp), False


async def run_profile(profile: Profile, options: RunOptions | None = None) -> Result:
    """Run one profile end to end and return its judged result."""
    options = options or RunOptions()
    whole = profile
    if options.shard is not None:
        profile = split_profile(profile, options.shard.shard)
    if options.target is not None:
        check_target(options.target)
        if profile.gateway.reference.trace_db:
            raise UsageError(
                "gateway.reference.trace_db: needs a launched reference gateway, not --target"
            )
    git = git_info(options.git_dir)  # a wrong --git-dir fails before anything starts
    # A trace is read through once before anything starts: a bad row is a usage error.
    trace = scan_trace(profile.load, _base_dir(profile)) if profile.load.trace else None
    if trace is not None:
        profile = fit_stub(profile, trace)
    started_at = datetime.now(UTC)
    t0 = time.monotonic()
    state = RunState()
    gateway = GatewayFacts(kind="target" if options.target else profile.gateway.kind)
    stop = options.stop or StopRequest()
    stop.attach(asyncio.get_running_loop(), state.request_stop)
    launched = options.target is None and profile.gateway.kind != "direct"
    usable, own = usable_cpus(), own_cpus()
    state.placement = plan_placement(
        profile.cpus,
        usable,
        launched=launched,
        stub_cpus=profile.stub.cpus or None,
        # Started under a taskset: the harness stays where it was put.
        harness_cpus=own if set(own) < set(usable) else None,
        direct=options.target is None and profile.gateway.kind == "direct",
    )
    with _log_dir(options.run_dir) as (log_dir, kept), _pinned_self(state.placement.harness):
        signals = LibrarySignals(stop) if options.stop is None else contextlib.nullcontext()
        with signals:
            try:
                gateway = await _execute(profile, options, log_dir, state, gateway, trace)
            except LoadgateError:
                raise
            except asyncio.CancelledError:
                state.stop_reason = state.stop_reason or "cancelled"
            finally:
                stop.detach()
                if stop.reason:
                    state.stop_reason = stop.reason
        has_log = kept and (log_dir / "gateway.log").exists()
        facts = RunFacts(
            started_at=started_at,
            wall_s=time.monotonic() - t0,
            gateway=GatewayFacts(
                kind=gateway.kind,
                url=gateway.url,
                pid=gateway.pid,
                died_with=state.gateway_rc,
                log="gateway.log" if has_log else None,
                drain=gateway.drain,
            ),
            environment=collect_environment(),
            git=git,
            run_dir=str(options.run_dir) if options.run_dir is not None else None,
            stop_reason=state.stop_reason,
            scrapes=state.scraper.figures() if state.scraper is not None else None,
            open_file_limit=_open_file_limit(),
            direct=options.target is None and profile.gateway.kind == "direct",
            placement=PlacementFigures(**dataclasses.asdict(state.placement)),
            control_ratio=control_ratio(profile, options.target),
            revocation=state.revocation,
            trace=trace,
            metrics_lint=state.metrics_lint,
        )
    placed = state.placed
    judged = placed.profile if placed else profile
    if options.shard is not None and not options.shard.shard.revokes:
        judged = _without_revocation_gates(judged)
    result = build_result(judged, state.outcome, facts)
    if state.outcome is not None:
        result.attach_recorder(state.outcome.recorder)
    if placed is not None:
        result.profile = whole.redacted()  # the whole run's: every shard's file agrees
        judge_shard(result, placed.figures)
    return result


def _without_revocation_gates(profile: Profile) -> Profile:
    """``profile`` without its ``probes.revocation.*`` gates: a shard that does not run
    the probe has nothing to judge them on (the merge does, on the probing shard's)."""
    kept = {k: v for k, v in profile.gates.items() if not k.startswith("probes.revocation.")}
    if len(kept) == len(profile.gates):
        return profile
    return profile.model_copy(update={"gates": kept})


def _open_file_limit() -> int | None:
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return None if soft == resource.RLIM_INFINITY else soft


async def _execute(
    profile: Profile,
    options: RunOptions,
    log_dir: Path,
    state: RunState,
    facts: GatewayFacts,
    trace: TraceInfo | None = None,
) -> GatewayFacts:
    """Stub, gateway, preflight, keys, load, drain; returns what it learnt of the gateway."""
    stub_config(profile)  # an impossible stub setting fails before anything starts
    if state.stop.is_set():
        return facts  # stopped before anything started: nothing to measure
    with _trace_db(profile, log_dir) as trace_dsn:
        return await _with_stub(profile, options, log_dir, state, facts, trace_dsn, trace)


@contextlib.contextmanager
def _trace_db(profile: Profile, log_dir: Path) -> Iterator[str | None]:
    """The throwaway PostgreSQL of ``gateway.reference.trace_db`` (its DSN), or None.

    Synchronous on purpose: initdb and the start block the loop for about a second
    before anything is measured, and the stop runs in ``finally`` whatever ends the run.
    """
    if not (profile.gateway.kind == "reference" and profile.gateway.reference.trace_db):
        yield None
        return
    try:
        with throwaway_postgres(log_dir / "postgres.log") as pg:
            yield pg.dsn
    except PostgresUnavailable as exc:
        raise DepDownError(f"DEP-DOWN: gateway.reference.trace_db: {exc}") from None


def _witnessed(profile: Profile, trace_dsn: str | None, gateway_url: str) -> Profile:
    """The profile the load runs: the witness's ``auto`` DSN and ``{gateway_url}`` filled in."""
    w = profile.probes.witness
    if w.kind == "off":
        return profile
    update: dict[str, str] = {}
    if w.dsn == "auto" and trace_dsn is not None:
        update["dsn"] = trace_dsn
    if w.url is not None:
        update["url"] = w.url.replace("{gateway_url}", gateway_url)
    probes = profile.probes.model_copy(update={"witness": w.model_copy(update=update)})
    return profile.model_copy(update={"probes": probes})


async def _preflight_witness(profile: Profile) -> None:
    w = profile.probes.witness
    if w.kind == "off":
        return
    problem = await preflight_witness(w)
    if problem is not None:
        raise DepDownError(f"DEP-DOWN: probes.witness: {problem}")


async def _with_stub(
    profile: Profile,
    options: RunOptions,
    log_dir: Path,
    state: RunState,
    facts: GatewayFacts,
    trace_dsn: str | None,
    trace: TraceInfo | None = None,
) -> GatewayFacts:
    cfg = stub_config(profile)
    placement = state.placement
    async with _started_stub(cfg, log_dir / "stub.log") as stub:
        pin(stub.pid, placement.stub if placement is not None else None)
        await reset_ledger(stub.url)
        keys_file = _keys_file(profile, log_dir)
        async with start_gateway(
            profile.gateway,
            stub_url=stub.url,
            run_dir=log_dir,
            target=options.target,
            key_prefix=profile.auth.prefix,
            keys_file=keys_file,
            agent_header=profile.probes.tenants.header if tenants_on(profile) else None,
            trace_dsn=trace_dsn,
        ) as gw:
            facts = GatewayFacts(kind=facts.kind, url=gw.url, pid=gw.pid)
            if gw.pid is not None and placement is not None:
                pin(gw.pid, placement.gateway)
            await preflight(gw.url)
            load_profile = _witnessed(profile, trace_dsn, gw.url)
            await _preflight_witness(load_profile)
            await _provision(profile, keys_file, log_dir)
            if state.stop.is_set():
                return facts
            drain = await _measure(load_profile, options, gw, stub.url, state, trace)
            if options.shard is not None:
                await options.shard.linger()  # peers' final pulls of this stub
            return GatewayFacts(kind=facts.kind, url=gw.url, pid=gw.pid, drain=drain)


def _keys_file(profile: Profile, log_dir: Path) -> Path | None:
    """The file that lists the valid keys, for a launched gateway and provisioning.

    A profile's own ``auth.keys_file`` wins; with a provisioning command the
    generated pool is written into the run directory first (before the gateway
    starts, so a reference gateway accepts exactly those keys).
    """
    a = profile.auth
    if a.header == "none":
        return None
    if tenants_on(profile):
        # Tenant-scoped keys: a file with tenant columns as it is, else one generated
        # from the pool (key rank % tenants), the same map the load uses.
        given = _base_dir(profile) / a.keys_file if a.keys_file else None
        pool = KeyPool.from_spec(a, _base_dir(profile))
        if given is not None and TenantMap.from_lines(given.read_text("utf-8"), str(given)):
            return given
        path = log_dir / "keys.txt"
        tmap = TenantMap.generated(pool.keys, profile.probes.tenants.tenants)
        path.write_text(keys_file_lines(tmap, pool.keys), encoding="utf-8")
        return path
    if a.keys_file:
        return _base_dir(profile) / a.keys_file
    if a.provision_command:
        path = log_dir / "keys.txt"
        KeyPool.from_spec(a, _base_dir(profile)).write_keys_file(path)
        return path
    return None


async def _provision(profile: Profile, keys_file: Path | None, log_dir: Path) -> None:
    command = profile.auth.provision_command
    if not command or keys_file is None:
        return
    await run_provisioning(command, keys_file, log_dir / "provision.log", timeout_s=300.0)


def _scraper(profile: Profile, gw: Gateway) -> Scraper | None:
    selectors: dict[str, str] = {}
    ac = profile.gateway.auth_cache
    if ac.hits and ac.misses:
        selectors[HITS] = ac.hits
        selectors[MISSES] = ac.misses
    selectors.update(profile.gateway.counters)
    if not gw.metrics_url or not selectors:
        return None
    return Scraper(gw.metrics_url, selectors, profile.gateway.scrape_interval_s)


def _metrics_lint(profile: Profile, gw: Gateway) -> Callable[[], Awaitable[MetricsLint]] | None:
    """The [checks.metrics] lint of this gateway's /metrics; None when not configured."""
    spec = profile.checks.metrics
    if not spec.on:
        return None
    url = gw.metrics_url

    async def lint() -> MetricsLint:
        if not url:
            return MetricsLint(error="no metrics endpoint (direct: no gateway in the path)")
        return await scrape_and_lint(
            url,
            spec.require,
            max_label_values=spec.max_label_values,
            key_prefix=profile.auth.prefix,
            timeout_s=2.0,
        )

    return lint


async def _measure(
    profile: Profile,
    options: RunOptions,
    gw: Gateway,
    stub_url: str,
    state: RunState,
    trace: TraceInfo | None = None,
) -> Drain:
    """The load and what keeps time beside it; returns the drain check's figures."""
    load = profile.load
    state.scraper = scraper = _scraper(profile, gw)
    state.lint = _metrics_lint(profile, gw)
    delay = _START_DELAY_NS if load.workers == 1 else _START_DELAY_WORKERS_NS
    start_ns = time.monotonic_ns() + delay
    nonce = new_nonce()
    shard = options.shard
    if shard is not None:
        state.placed = placed = shard.place(profile, start_ns)
        profile, start_ns, load = placed.profile, placed.start_ns, placed.profile.load
        nonce = shard_nonce(nonce, shard.shard, load.workers)
    plan = WorkerPlan(
        profile,
        gw.url,
        stub_url,
        start_ns,
        nonce,
        0,
        load.workers,
        str(_base_dir(profile)),
        control_ratio=control_ratio(profile, options.target),
        peer_stub_urls=shard.peers if shard is not None else (),
        phase=shard.shard.index / shard.shard.count if shard is not None else 0.0,
        key_partition=_key_partition(profile, shard),
        trace=trace,
    )
    windows = Windows.from_seconds(start_ns, load.warmup_s, load.duration_s, load.cooldown_s)
    common = state.placed.common_ns if state.placed is not None else None
    retire, revocation = _revocation(profile, gw.url, windows, plan, shard, common)
    if retire:
        plan = dataclasses.replace(plan, retire=retire)
    probing = asyncio.create_task(revocation.run(state.stop)) if revocation else None
    observers = options.observers if load.workers == 1 else ()
    if scraper is not None:
        if load.warmup_s == 0:
            # No warm-up: the window opens with the first request, so mark it first.
            with contextlib.suppress(Exception):
                await scraper.mark_start()
        scraper.start()
    launched = gw.pid is not None and options.target is None
    watching = asyncio.create_task(watch(state, gw, observers))
    edges = asyncio.create_task(
        mark_edges(state, gw, windows, drain_check=profile.gateway.drain_check, launched=launched)
    )
    total_s = load.warmup_s + load.duration_s + load.cooldown_s
    try:
        if load.workers > 1:
            state.outcome = await run_workers(plan, state.stop)
        else:
            engine = Engine(plan, stop=state.stop, on_observation=_fan_out(observers))
            state.engine = engine
            for obs in observers:
                await obs.load_started(engine, total_s, load.warmup_s)
            if state.stop.is_set():
                engine.stop(state.stop_reason or "stopped")
            state.outcome = await engine.run()
    finally:
        if probing is not None:
            assert revocation is not None
            # The probes end with the window; a stopped run stops them at once.
            if state.stop.is_set() and not probing.done():
                probing.cancel()
            await asyncio.gather(probing, return_exceptions=True)
            # Configured: always a section, with whatever each key got to (a failed
            # probe says so per key; it never reads as "not configured").
            state.revocation = summarize(
                revocation.keys,
                profile.probes.revocation,
                common[0] if common is not None else windows.measure_start_ns,
            )
        watching.cancel()
        if not state.end_marked:
            edges.cancel()  # load ended early (max_requests, stop): mark the end now
        await asyncio.gather(watching, edges, return_exceptions=True)
        for obs in observers:
            with contextlib.suppress(Exception):
                await obs.load_ended()
        if scraper is not None:
            if not state.end_marked:
                with contextlib.suppress(Exception):
                    await scraper.mark_end()
            await scraper.stop()
        await state.run_lint()  # the load ended early: the edges did not lint
    checked = launched and profile.gateway.drain_check
    return await drain_figures(
        state, gw, checked=checked, stop_timeout_s=profile.gateway.stop_timeout_s
    )


def tenants_on(profile: Profile) -> bool:
    return profile.probes.tenants.share > 0 and profile.auth.header != "none"


def _revocation(
    profile: Profile,
    gateway_url: str,
    windows: Windows,
    plan: WorkerPlan,
    shard: ShardPlan | None,
    common_ns: tuple[int, int] | None = None,
) -> tuple[tuple[tuple[str, int], ...], RevocationProbe | None]:
    """The revocation plan's retirements for the load, and the probe when this run runs it.

    The plan is fixed before the first send. In a sharded run every shard plans on the
    common window (``common_ns``: its start and length on this clock; a shard that
    missed the start plans as the others did), so every shard withholds the same keys
    at the same moments, but only shard ``REVOCATION_SHARD`` (0) calls the hook and
    probes: once per key for the whole run, not once per shard.
    """
    spec = profile.probes.revocation
    if not (spec.url or spec.command) or profile.auth.header == "none":
        return (), None
    start_ns, duration_ns = common_ns or (windows.measure_start_ns, windows.duration_ns)
    pool = KeyPool.from_spec(profile.auth, _base_dir(profile))
    planned = plan_revocations(pool, spec, start_ns, duration_ns)
    retire = tuple((r.key, r.retire_ns) for r in planned)
    if shard is not None and not shard.shard.revokes:
        return retire, None
    mix = TenantMix.for_profile(profile, pool, _base_dir(profile))
    probe = RevocationProbe(
        profile,
        planned,
        gateway_url=gateway_url,
        # Its own run nonce: the stub's records of probes are foreign to the load's join.
        nonce=plan.nonce ^ 0x40000000,
        stop_ns=start_ns + duration_ns,
        agent_header=mix.own_agent if mix is not None else lambda _auth: None,
    )
    return retire, probe


def _key_partition(profile: Profile, shard: ShardPlan | None) -> tuple[int, int] | None:
    if shard is None or profile.load.shard_keys != "partitioned":
        return None
    return shard.shard.index, shard.shard.count


def _fan_out(
    observers: tuple[RunObserver, ...],
) -> Callable[[Observation, bool], None] | None:
    if not observers:
        return None
    hooks = [o.observed for o in observers]

    def observed(obs: Observation, measured: bool) -> None:
        for hook in hooks:
            hook(obs, measured)

    return observed


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
