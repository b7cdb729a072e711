"""One load process: schedule → requests → ledger join → histograms.

An :class:`Engine` drives its share of the load (``concurrency / workers`` or
``rate / workers``) against the gateway, joins its own observations with the
stub's ledger, and records everything into a :class:`Recorder`. It knows
nothing of gateways, Prometheus, gates or files: the runner owns those. One
engine runs in-process when ``load.workers == 1``; otherwise one per worker
process (:mod:`loadgate.load.parallel`), their outcomes merged losslessly.

Besides the closed and open loops, the engine drives a trace replay (send times
and sizes from :mod:`loadgate.load.trace`) and multi-turn sessions (turn after
turn, from :mod:`loadgate.load.sessions`; figures per turn index, and the stub's
history verdict joined from its ledger as ``history_mismatch``).

The control group (``WorkerPlan.control_ratio``) is driven by the same engine:
extra closed-loop workers or a second open-loop stream straight at the stub,
counted apart. One module because the engine's loops, its completion path and
the join callback share the in-flight and window state; split, each piece
would need all of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import gc
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from hdrh.histogram import HdrHistogram

from loadgate.checks.streaming import stream_delays, token_arrivals
from loadgate.client.http1 import ConnectionPool
from loadgate.client.observation import Observation, RequestSpec
from loadgate.client.request import perform
from loadgate.client.transport import Transport
from loadgate.histograms.hdr import HIGHEST_US, bulk_record, new_histogram
from loadgate.histograms.recorder import Recorder
from loadgate.join.goodput import RequestFigures, SloBounds, mean_gap_ns
from loadgate.join.joiner import CONTROL_SEQ_BASE, EXAMPLES, Joiner
from loadgate.join.ledger import LEDGER_ERRORS, LedgerClient, LedgerSource
from loadgate.join.overhead import Call, Decomposition, decompose
from loadgate.join.stubs import StubLedgers
from loadgate.judge.monitor import LagTicker
from loadgate.load import trace as replay
from loadgate.load.keys import KeyPool
from loadgate.load.mix import RequestMix
from loadgate.load.outcome import EngineOutcome, TailRequest
from loadgate.load.schedule import Windows, closed_loop_offsets, iter_arrivals, stream_shift_ns
from loadgate.load.sessions import Session, SessionShape
from loadgate.observe.observer import LiveCounts
from loadgate.probes.revocation import RetiringDraw
from loadgate.probes.tenants import TenantMix
from loadgate.probes.witness import Witness, open_lookup
from loadgate.profile import Profile
from stub_upstream import stamped
from stub_upstream.content import format_corr_id

__all__ = ["CONTROL_SEQ_BASE", "Engine", "WorkerPlan", "split_share"]

PULL_INTERVAL_S = 0.5
#: How long the join waits on a peer stub that stopped answering before it
#: finalises requests anyway (those it served then count as unseen).
PEER_WAIT_NS = 10_000_000_000
#: Final pulls of peers that did not answer: attempts, and the pause between them.
FINAL_PULL_TRIES, FINAL_PULL_PAUSE_S = 3, 0.5
JOIN_SLICE = 4  # observations joined per event-loop turn (~0.3 ms)
#: What sessions record per turn index (result: sessions.by_turn).
_TURN_METRICS = ("e2e_ms", "overhead_ms", "ttft_ms", "ttft_overhead_ms")


@dataclass(frozen=True, slots=True)
class WorkerPlan:
    """Everything a worker needs; picklable, so it crosses process boundaries."""

    profile: Profile
    target_url: str
    stub_url: str
    start_ns: int
    nonce: int
    worker_index: int = 0
    workers: int = 1
    base_dir: str = "."
    #: share of extra requests sent straight to the stub (the control group)
    control_ratio: float = 0.0
    #: (key, ns) pairs: the key leaves the pool then (probes.revocation)
    retire: tuple[tuple[str, int], ...] = ()
    #: other stubs whose ledgers are joined too (a shard of a sharded run)
    peer_stub_urls: tuple[str, ...] = ()
    #: shard i of N: i/N. Its first sends come i/N of one gap after shard 0's (open
    #: loop: i/rate of the whole; closed loop: of one worker's start spacing), so the
    #: shards' schedules interleave instead of coinciding
    phase: float = 0.0
    #: ``(index, count)``: use only the keys of this partition of the pool
    key_partition: tuple[int, int] | None = None
    #: load.trace, scanned once before the run (None: the engine scans it itself)
    trace: replay.TraceInfo | None = None


def split_share(total: int, workers: int, index: int) -> int:
    """Worker ``index``'s integer share of ``total`` (shares differ by at most 1)."""
    return total // workers + (1 if index < total % workers else 0)


class Engine:
    """Drives one worker's share of the load."""

    def __init__(
        self,
        plan: WorkerPlan,
        *,
        stop: asyncio.Event | None = None,
        on_observation: Callable[[Observation, bool], None] | None = None,
        clock: Callable[[], int] = time.monotonic_ns,
        transport: Transport | None = None,
        ledger: LedgerSource | None = None,
    ) -> None:
        """``transport`` / ``ledger``: given (tests), used as they are and not closed;
        by default a socket transport to the target and the stub's ledger over HTTP."""
        self.plan = plan
        p = plan.profile
        self._clock = clock
        self._stop = stop or asyncio.Event()
        self._on_obs = on_observation
        self.windows = Windows.from_seconds(
            plan.start_ns, p.load.warmup_s, p.load.duration_s, p.load.cooldown_s
        )
        self.recorder = Recorder(self.windows.measure_start_ns)
        self.out = EngineOutcome(self.recorder)
        self.joiner = Joiner(plan.nonce, self._joined)
        self._slo = SloBounds(**p.slo.model_dump())
        keys = KeyPool.from_spec(p.auth, Path(plan.base_dir)) if p.auth.header != "none" else None
        if keys is not None and plan.key_partition is not None:
            keys = keys.partition(*plan.key_partition)
        headers = tuple(p.load.headers.items())
        mix = functools.partial(
            RequestMix,
            endpoints=p.load.endpoints,
            stream_ratio=p.load.stream_ratio,
            model=p.load.model,
            anthropic_model=p.load.anthropic_model,
            prompt_tokens=p.load.prompt_tokens,
            max_tokens=p.load.max_tokens,
            stub_output_tokens=p.stub.output_tokens,
            nonce=plan.nonce,
            extra_headers=headers,
        )
        seed = p.load.seed * 1009 + plan.worker_index
        draw: Callable[[random.Random], tuple[str, str] | None] | None = None
        tenants = None
        if keys is not None:
            draw = RetiringDraw(keys, plan.retire, clock) if plan.retire else keys.draw
            tenants = TenantMix.for_profile(p, keys, Path(plan.base_dir))
        self.mix = mix(seed=seed, draw_key=draw, tenants=tenants)
        # Same mix, its own draws and its own half of the id space (the top bit of seq).
        self.control_mix = mix(seed=seed + 7919, draw_key=None)
        self.control_mix.seq = CONTROL_SEQ_BASE
        if plan.control_ratio > 0:
            self.out.control = Recorder(self.windows.measure_start_ns)
        # Control requests go to the stub itself: they carry the key it expects, if any.
        upstream_keys = p.stub.expected_keys
        self._control_auth = (
            ("authorization", f"Bearer {upstream_keys[0]}") if upstream_keys else None
        )
        self.inflight = 0
        self._given_transport = transport
        self._given_ledger = ledger
        self._transport: Transport | None = None
        self._control_transport: Transport | None = None
        self._sending_stopped = False
        self._tail: set[int] = set()  # correlation ids of the drain tail, until joined
        self._tasks: set[asyncio.Task[None]] = set()
        self.lag = LagTicker()
        self._send_lag = new_histogram()
        self._send_lags: list[int] = []  # µs, waiting for _record_send_lags
        self._stub_lateness = new_histogram()
        self._stream_dev = new_histogram()
        self._check_streams = p.checks.streaming.enabled
        self._itl_ns = round(p.stub.itl_ms * 1e6)
        self.last_interval_p99_ms: float | None = None
        w = p.probes.witness
        #: the side-effect witness: polls for sampled requests' records (None: off)
        self.witness = Witness(w, functools.partial(open_lookup, w)) if w.kind != "off" else None
        s = p.load.sessions
        self._shape = (
            SessionShape(
                turns=s.turns,
                first_words=p.load.prompt_tokens,
                user_words=s.user_tokens or p.load.prompt_tokens,
                affinity_header=s.affinity_header,
            )
            if s.turns > 1
            else None
        )
        self._turn_of: dict[int, int] = {}  # session requests in flight: corr → turn
        self._turn_hists: dict[int, dict[str, HdrHistogram]] = {}
        self._turn_counts: dict[int, dict[str, int]] = {}

    # -- public -----------------------------------------------------------------

    def counts(self) -> LiveCounts:
        out = self.out
        return LiveCounts(
            done=out.sent + out.warmup_excluded + out.cooldown_excluded,
            failed=out.failed,
            violations=sum(out.violations.values()),
        )

    def last_overhead_p99_ms(self) -> float | None:
        rec = self.recorder
        # The current interval is still filling: report the one before it.
        last = (self._clock() - rec.start_ns) // rec.interval_ns - 1
        return rec.interval_percentile_at("overhead_ms", last, 99.0) if last >= 0 else None

    def loop_lag_ms(self) -> float | None:
        us = self.lag.last_us
        return us / 1000.0 if us is not None else None

    def stop(self, reason: str) -> None:
        if self.out.stopped_by is None:
            self.out.stopped_by = reason
        self._stop.set()

    async def run(self) -> EngineOutcome:
        p = self.plan.profile
        cpu0 = time.process_time()
        wall0 = time.monotonic()
        # A full garbage collection walks every live object: with thousands of
        # requests in flight that is a multi-ms pause of the loop. Freeze what
        # exists now and collect young generations only, less often.
        gc.collect()
        gc.freeze()
        old_thresholds = gc.get_threshold()
        gc.set_threshold(50_000, 50, 1_000_000)
        async with contextlib.AsyncExitStack() as stack:
            self._transport = transport = await self._open_transport(stack)
            if self.out.control is not None:
                self._control_transport = self._control_pool()
            ledger = await self._open_ledger(stack)
            if self.witness is not None:
                await self.witness.start()
            self.lag.start()
            puller = asyncio.create_task(self._pull_loop(ledger))
            try:
                if p.load.trace is not None:
                    await self._trace_loop()
                elif p.load.rate is not None:
                    await self._open_loop()
                else:
                    await self._closed_loop()
                self._sending_stopped = True
                await self._drain_tasks(p.load.timeout_s + 1.0)
            finally:
                puller.cancel()
                await asyncio.gather(puller, return_exceptions=True)
                await self.lag.stop()
                if self._given_transport is None:
                    await transport.close()
                if self._control_transport is not None:
                    await self._control_transport.close()
            # Final pulls: the stub writes a record before the client can read the
            # last byte, so one pull after the last completion holds every record.
            try:
                for attempt in range(FINAL_PULL_TRIES):
                    failed = _peer_failures(ledger)
                    await self._pull_into_joiner(ledger)
                    if _peer_failures(ledger) == failed or attempt == FINAL_PULL_TRIES - 1:
                        break
                    await asyncio.sleep(FINAL_PULL_PAUSE_S)  # a busy peer: ask again
            except LEDGER_ERRORS as exc:
                self.out.upstream.pull_errors.append(str(exc))
            self.joiner.finish()
            self.out.upstream.ledger_lost = ledger.lost
            if isinstance(ledger, StubLedgers):
                self.out.upstream.pull_errors += ledger.errors
                self.out.stub_clocks += [
                    f"{c.url}: {c.reason}" for c in ledger.clocks if not c.same_clock
                ]
            await self._note_stamps(transport, ledger)
        _record_us(self._stub_lateness, [v // 1000 for v in self.joiner.take_lateness()])
        self._record_send_lags()
        st = self.joiner.stats
        up = self.out.upstream
        up.calls, up.unseen, up.duplicated = st.calls, st.unseen, st.duplicated
        up.late_calls, up.foreign = st.late_calls, st.foreign
        up.calls_hist = dict(sorted(st.calls_hist.items()))
        self._encode_turns()
        self.out.loop_lag_us = self.lag.histogram.encode()
        self.out.send_lag_us = self._send_lag.encode()
        self.out.stub_lateness_us = self._stub_lateness.encode()
        if self.out.streams_timed:
            self.out.stream_dev_us = self._stream_dev.encode()
        a = self.joiner.assertions
        up.assertions_checked, up.assertions_failed = a.checked, a.failed
        up.assertions_by_bit, up.assertion_examples = dict(a.by_bit), list(a.examples)
        gc.set_threshold(*old_thresholds)
        gc.unfreeze()
        self.out.cpu_s = time.process_time() - cpu0
        self.out.wall_s = time.monotonic() - wall0
        if self.witness is not None:
            # After the CPU/wall figures: waiting for the last records is not load.
            self.out.witness = await self.witness.finish()
        return self.out

    async def _note_stamps(self, transport: Transport, ledger: LedgerSource) -> None:
        """Where both sides' arrival times came from, and how the clock conversion went."""
        out = self.out
        if isinstance(transport, ConnectionPool):
            out.user_stamped_connections = transport.user_connections
            clock = stamped.clock_bridge().stats()
            out.clock_offset_spread_ns = clock.offset_max_ns - clock.offset_min_ns
            out.clock_largest_step_ns = clock.largest_step_ns
            out.clock_clamped = clock.clamped
        try:
            info = await ledger.info()
        except LEDGER_ERRORS:
            return
        mode = info.get("stamps")
        out.stub_stamps = mode if isinstance(mode, str) else None

    async def _open_transport(self, stack: contextlib.AsyncExitStack) -> Transport:
        if self._given_transport is not None:
            return self._given_transport
        p = self.plan.profile
        limit = (p.load.concurrency or p.load.max_inflight) + 8
        return ConnectionPool(self.plan.target_url, limit=limit, connect_timeout_s=5.0)

    def _control_pool(self) -> Transport:
        if self._given_transport is not None:
            return self._given_transport  # tests: one fake answers both
        p = self.plan.profile
        limit = _control_share(p.load.concurrency or p.load.max_inflight, self.plan) + 8
        return ConnectionPool(self.plan.stub_url, limit=limit, connect_timeout_s=5.0)

    async def _open_ledger(self, stack: contextlib.AsyncExitStack) -> LedgerSource:
        if self._given_ledger is not None:
            return self._given_ledger
        timeout = aiohttp.ClientTimeout(total=30)
        session = await stack.enter_async_context(aiohttp.ClientSession(timeout=timeout))
        if self.plan.peer_stub_urls:
            ledgers = StubLedgers(self.plan.stub_url, self.plan.peer_stub_urls, session)
            await ledgers.check_clocks()
            return ledgers
        return LedgerClient(self.plan.stub_url, session)

    async def _pull_into_joiner(self, ledger: LedgerSource) -> None:
        if isinstance(ledger, StubLedgers):
            by_stub = self.out.upstream.records_by_stub
            for url, recs, same in await ledger.pull_each():
                by_stub[url] = by_stub.get(url, 0) + self.joiner.add_records(recs, same_clock=same)
        else:
            self.joiner.add_records(await ledger.pull())

    # -- load models ------------------------------------------------------------

    async def _closed_loop(self) -> None:
        p = self.plan.profile
        total = p.load.concurrency or 0
        budget = self._request_budget()
        user = self._session_worker if self._shape is not None else self._closed_worker
        workers = [user(off, budget, control=False) for off in self._offsets(total)]
        if self.out.control is not None:
            # The control group: extra workers, the same mix, straight at the stub.
            controls = _control_share(total, self.plan, every_process=False)
            control_budget = [_control_share(budget[0], self.plan)]
            workers += [
                self._closed_worker(off, control_budget, control=True)
                for off in self._offsets(controls)
            ]
        await asyncio.gather(*workers)

    def _offsets(self, total: int) -> list[int]:
        """This process's workers' first-send offsets, spread over one service time."""
        p = self.plan.profile
        service_ms = p.stub.ttft_ms + max(0, min(p.stub.output_tokens, p.load.max_tokens) - 1) * (
            p.stub.itl_ms
        )
        return closed_loop_offsets(
            total,
            self.plan.workers,
            self.plan.worker_index,
            ramp_up_ns=round(p.load.ramp_up_s * 1e9),
            service_ns=round(service_ms * 1e6),
            phase=self.plan.phase,
        )

    async def _closed_worker(self, offset_ns: int, budget: list[int], *, control: bool) -> None:
        # Send lag, closed loop: from when the request could have left (the worker's
        # start, then the previous response's end) to its send. It is the harness's
        # own turnaround, the time this worker held no request in flight.
        ready = self.windows.start_ns + offset_ns
        await self._sleep_until(ready)
        end = self.windows.end_ns
        timeout = self.plan.profile.load.timeout_s
        while not self._stop.is_set() and budget[0] > 0:
            now = self._clock()
            if now >= end:
                return
            budget[0] -= 1
            obs = await self._one(self._spec(control), now, timeout, control)
            if obs.t_send:
                if not control:
                    self._note_send_lag(obs.t_send - ready)
                obs.t_intended = obs.t_send  # closed loop: latency from the actual send
            ready = obs.t_last_byte or self._clock()
            self._complete(obs)

    async def _session_worker(self, offset_ns: int, budget: list[int], *, control: bool) -> None:
        """A closed-loop virtual user: one session after another, turn after turn.

        Like :meth:`_closed_worker`, with a think time between a turn's answer and
        the next turn: the next turn could leave only then (its send lag's start).
        """
        assert self._shape is not None and not control
        ready = self.windows.start_ns + offset_ns
        await self._sleep_until(ready)
        timeout = self.plan.profile.load.timeout_s
        think_ns = round(self.plan.profile.load.sessions.think_time_s * 1e9)
        turns = self._shape.turns
        # max_requests counts whole sessions: one starts only with room for all its turns.
        while not self._stop.is_set() and budget[0] >= turns:
            budget[0] -= turns
            session = self._new_session()
            while not session.done and not self._stop.is_set():
                now = self._clock()
                if now >= self.windows.end_ns:
                    return
                obs = await self._one(self._turn_spec(session), now, timeout, False)
                if obs.t_send:
                    self._note_send_lag(obs.t_send - ready)
                    obs.t_intended = obs.t_send
                ready = (obs.t_last_byte or self._clock()) + think_ns
                self._complete(obs)
                if not self._turn_done(session, obs):
                    budget[0] += turns - session.turn - (not session.done)  # turns not sent
                    break
                await self._sleep_until(ready)

    def _new_session(self) -> Session:
        """A session from the mix's next draw; its turns' ids follow the first's."""
        assert self._shape is not None
        session = Session(self.mix.next(), self._shape)
        self.mix.seq += self._shape.turns - 1  # reserved for the later turns
        return session

    def _turn_spec(self, session: Session) -> RequestSpec:
        spec = session.spec()
        self._turn_of[spec.corr] = session.turn
        return spec

    def _turn_done(self, session: Session, obs: Observation) -> bool:
        """Account for a turn; False when the session ends here (done, or the turn failed).

        A failed turn ends its session: the next turn would resend an answer that never came.
        """
        out = self.out
        if session.turn == 0:
            session.measured = self.windows.phase(obs.t_intended) == "measured"
            out.sessions_started += session.measured
        if obs.error is not None or obs.violation is not None:
            out.sessions_aborted += session.measured
            return False
        session.advance()
        if session.done:
            out.sessions_completed += session.measured
            return False
        return True

    def _spec(self, control: bool) -> RequestSpec:
        if not control:
            return self.mix.next()
        # The control group draws from its own mix: the gateway's request (and key)
        # sequence is the same with or without it.
        spec = self.control_mix.next()
        if self._control_auth is None:
            return spec
        return dataclasses.replace(spec, auth=self._control_auth)

    async def _one(
        self, spec: RequestSpec, t_intended: int, timeout_s: float, control: bool
    ) -> Observation:
        if control:
            assert self._control_transport is not None
            obs = await perform(self._control_transport, spec, t_intended, timeout_s)
            obs.control = True
            return obs
        self.inflight += 1
        try:
            return await perform(self._transport_ref(), spec, t_intended, timeout_s)
        finally:
            self.inflight -= 1

    async def _open_loop(self) -> None:
        p = self.plan.profile
        assert p.load.rate is not None
        streams = [self._open_stream(p.load.rate, self._request_budget()[0], control=False)]
        ratio = self.plan.control_ratio
        if self.out.control is not None:
            budget = _control_share(self._request_budget()[0], self.plan)
            streams.append(self._open_stream(p.load.rate * ratio, budget, control=True))
        await asyncio.gather(*streams)

    async def _open_stream(self, rate_total: float, budget: int, *, control: bool) -> None:
        """One seeded schedule of sends; the control group's is a second, independent one."""
        p = self.plan.profile
        rate = rate_total / self.plan.workers
        # Workers (and shards) interleave: see stream_shift_ns.
        shift = stream_shift_ns(self.plan.worker_index, self.plan.phase, rate_total)
        seed = p.load.seed * 1009 + self.plan.worker_index + (7919 if control else 0)
        if self._shape is not None and not control:
            budget = max(1, budget // self._shape.turns)  # arrivals are sessions
        chunks = iter_arrivals(
            self.windows.start_ns + shift,
            self.windows.end_ns,
            rate,
            p.load.arrival,
            seed,
            max_count=budget,
        )
        w = self.windows
        cap = max(1, split_share(p.load.max_inflight, self.plan.workers, self.plan.worker_index))
        slot_free = asyncio.Event()
        timeout = p.load.timeout_s
        for times in chunks:
            if not control:
                measured = (times >= w.measure_start_ns) & (times < w.measure_end_ns)
                self.out.offered += int(measured.sum())
            for t in times.tolist():
                await self._sleep_until(t)
                if self._stop.is_set():
                    return
                if not control and self.inflight >= cap:
                    self.out.max_inflight_hits += 1
                    while self.inflight >= cap and not self._stop.is_set():
                        slot_free.clear()
                        await slot_free.wait()
                if self._shape is not None and not control:
                    self._spawn(self._open_session(t, timeout, slot_free))
                    continue
                self._spawn(self._open_one(self._spec(control), t, timeout, slot_free, control))

    async def _open_session(
        self, t_intended: int, timeout_s: float, slot_free: asyncio.Event
    ) -> None:
        """Open loop, sessions: a session arrives at its scheduled time; each later turn
        is due a think time after the answer before it (its intended time: latency
        counts from there, so a late harness or gateway still shows)."""
        think_ns = round(self.plan.profile.load.sessions.think_time_s * 1e9)
        session = self._new_session()
        while not session.done and not self._stop.is_set():
            if session.turn and t_intended >= self.windows.end_ns:
                return
            await self._sleep_until(t_intended)
            try:
                obs = await self._one(self._turn_spec(session), t_intended, timeout_s, False)
            finally:
                slot_free.set()
            if obs.t_send:
                self._note_send_lag(obs.t_send - t_intended)
            self._complete(obs)
            if not self._turn_done(session, obs):
                return
            t_intended = (obs.t_last_byte or self._clock()) + think_ns

    async def _trace_loop(self) -> None:
        """Trace replay: the trace's send times, its sizes; the control group beside it."""
        p = self.plan.profile
        info = self.plan.trace or replay.scan(p.load, Path(self.plan.base_dir))
        budget = self._request_budget()[0]
        streams = [self._trace_stream(info, budget)]
        if self.out.control is not None:
            # The trace's mean rate over one pass, times the ratio: ordinary requests.
            pass_s = max(info.period_us, 1) / 1e6 / p.load.replay.speedup
            rate = info.in_window / pass_s * self.plan.control_ratio
            budget_c = _control_share(budget, self.plan)
            streams.append(self._open_stream(rate, budget_c, control=True))
        await asyncio.gather(*streams)

    async def _trace_stream(self, info: replay.TraceInfo, budget: int) -> None:
        p = self.plan.profile
        w = self.windows
        chunks = replay.iter_schedule(
            p.load,
            Path(self.plan.base_dir),
            info,
            w.start_ns,
            w.end_ns,
            worker_index=self.plan.worker_index,
            workers=self.plan.workers,
            max_count=budget,
        )
        cap = max(1, split_share(p.load.max_inflight, self.plan.workers, self.plan.worker_index))
        slot_free = asyncio.Event()
        timeout = p.load.timeout_s
        block, stub_tokens = p.load.replay.block_tokens, p.stub.output_tokens
        for chunk in chunks:
            self.out.trace_passes = max(self.out.trace_passes, chunk.pass_index + 1)
            measured = (chunk.times >= w.measure_start_ns) & (chunk.times < w.measure_end_ns)
            self.out.offered += int(measured.sum())
            for t, row in zip(chunk.times.tolist(), chunk.rows, strict=True):
                await self._sleep_until(t)
                if self._stop.is_set():
                    return
                if self.inflight >= cap:
                    self.out.max_inflight_hits += 1
                    while self.inflight >= cap and not self._stop.is_set():
                        slot_free.clear()
                        await slot_free.wait()
                spec = replay.row_spec(self.mix.next(), row, block, stub_tokens)
                self.out.trace_rows_sent += 1
                self._spawn(self._open_one(spec, t, timeout, slot_free, False))

    async def _open_one(
        self,
        spec: RequestSpec,
        t_intended: int,
        timeout_s: float,
        slot_free: asyncio.Event,
        control: bool,
    ) -> None:
        try:
            obs = await self._one(spec, t_intended, timeout_s, control)
        finally:
            slot_free.set()
        if obs.t_send and not control:
            self._note_send_lag(obs.t_send - t_intended)
        self._complete(obs)

    # -- plumbing ---------------------------------------------------------------

    def _note_send_lag(self, lag_ns: int) -> None:
        # Into the histogram in bulk: hdrh's record_value is ~1 µs of Python a request.
        lags = self._send_lags
        lags.append(lag_ns // 1000)
        if len(lags) >= 4096:
            self._record_send_lags()

    def _record_send_lags(self) -> None:
        _record_us(self._send_lag, self._send_lags)
        self._send_lags = []

    def _request_budget(self) -> list[int]:
        cap = self.plan.profile.load.max_requests
        if cap is None:
            return [1 << 62]
        return [split_share(cap, self.plan.workers, self.plan.worker_index)]

    def _transport_ref(self) -> Transport:
        assert self._transport is not None, "run() opens the transport"
        return self._transport

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain_tasks(self, timeout_s: float) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)
            for t in self._tasks:
                t.cancel()

    async def _sleep_until(self, t_ns: int) -> None:
        # uvloop's timers work on a cached millisecond clock and can fire up to
        # a millisecond *early* by monotonic_ns: sleep again for any remainder,
        # so nothing is sent before its time (or counted in the wrong window).
        while not self._stop.is_set() and (delay := (t_ns - self._clock()) / 1e9) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=delay)

    async def _pull_loop(self, ledger: LedgerSource) -> None:
        whole = self._clock()  # when a pull last got every stub's records
        while True:
            await asyncio.sleep(PULL_INTERVAL_S)
            t = self._clock()
            failed = _peer_failures(ledger)
            try:
                await self._pull_into_joiner(ledger)
            except LEDGER_ERRORS:
                continue  # the stub may be busy; the final pull catches up
            if _peer_failures(ledger) != failed:
                # A peer stub did not answer: a request done before t may have its only
                # record there, unread. Finalising it now would make it unseen for good.
                if t - whole < PEER_WAIT_NS:
                    continue
            else:
                whole = t
            # Into the histogram now: kept as a list, it grew with every request.
            _record_us(self._stub_lateness, [v // 1000 for v in self.joiner.take_lateness()])
            # Joining and recording costs ~50 µs a request (a stream records one
            # ITL value per token). Done in one go, a second's worth would stall
            # the loop for tens of ms — and every response read during that stall
            # would carry the harness's delay as "overhead". Small slices instead.
            ready = self.joiner.ready(t)
            for i in range(0, len(ready), JOIN_SLICE):
                for corr in ready[i : i + JOIN_SLICE]:
                    self.joiner.finalise(corr)
                await asyncio.sleep(0)

    def _complete(self, obs: Observation) -> None:
        phase = self.windows.phase(obs.t_intended)
        measured = phase == "measured"
        if obs.control:
            # The control group: counted apart, never gateway traffic or drain tail.
            if measured:
                self.out.control_sent += 1
                self.out.control_failed += obs.error is not None
            self.joiner.add_observation(obs, measured)
            return
        if obs.cross_tenant:
            # A probe, not load: never an error of the traffic nor in a histogram.
            if measured:
                self.out.tenants.note(format_corr_id(obs.corr), obs.status, obs.error)
            return
        if self._sending_stopped or self._clock() >= self.windows.end_ns:
            # Completed after sending stopped: part of the drain tail (see _joined).
            self._tail.add(obs.corr)
        if not measured:
            if phase == "warmup":
                self.out.warmup_excluded += 1
            else:
                self.out.cooldown_excluded += 1
        else:
            out = self.out
            mode = out.by_mode["stream" if obs.stream else "non_stream"]
            out.sent += 1
            mode.sent += 1
            idx = (obs.t_last_byte or obs.t_intended) - self.windows.measure_start_ns
            interval = max(0, idx // 1_000_000_000)
            out.per_interval_done[interval] = out.per_interval_done.get(interval, 0) + 1
            if obs.t_send:
                out.busy_ns += (obs.t_last_byte or self._clock()) - obs.t_send
            if obs.error is None:
                out.ok += 1
                mode.ok += 1
                out.checked += 1
                if obs.violation is not None:
                    out.violations[obs.violation] = out.violations.get(obs.violation, 0) + 1
            else:
                out.failed += 1
                mode.failed += 1
                out.errors[obs.error] = out.errors.get(obs.error, 0) + 1
                out.per_interval_errors[interval] = out.per_interval_errors.get(interval, 0) + 1
            if self.witness is not None:
                self.witness.offer(obs)
        self.joiner.add_observation(obs, measured)
        if self._on_obs is not None:
            self._on_obs(obs, measured)

    def _joined(self, obs: Observation, measured: bool, calls: list[Call]) -> None:
        turn = self._turn_of.pop(obs.corr, None)
        if turn is not None and measured:
            counts = self._turn_counts.setdefault(turn, {"requests": 0, "failed": 0})
            counts["requests"] += 1
            counts["failed"] += obs.error is not None
        if obs.corr in self.joiner.history_flagged:
            self.joiner.history_flagged.discard(obs.corr)
            if measured and obs.error is None and obs.violation is None:
                # The stub found the resent history wrong: an integrity violation,
                # known only now that its ledger record has been joined.
                obs.violation = "history_mismatch"
                v = self.out.violations
                v[obs.violation] = v.get(obs.violation, 0) + 1
        if obs.corr in self._tail:
            self._tail.discard(obs.corr)
            failed = obs.error is not None or obs.violation is not None
            self.out.tail.append(TailRequest(calls[0][0] if calls else 0, obs.t_last_byte, failed))
        if not measured:
            return
        judge_slo = self._slo.configured and not obs.control
        if obs.error is not None:
            if judge_slo:  # a failed request never meets the SLO
                self.out.goodput.add(self._slo, None)
            return
        if obs.control:
            assert self.out.control is not None
            self._record(self.out.control, obs, calls)
            return
        d = self._record(self.recorder, obs, calls)
        if judge_slo:
            # Decided here, where this request's own figures are known (docs/goodput.md).
            figures = None if obs.violation is not None else _slo_figures(obs, d)
            self.out.goodput.add(self._slo, figures)
        if turn is not None:
            self._record_turn(turn, d)

    def _record_turn(self, turn: int, d: Decomposition) -> None:
        """Sessions: the turn's own histograms (by_turn in the result)."""
        hists = self._turn_hists.get(turn)
        if hists is None:
            hists = self._turn_hists[turn] = {m: new_histogram() for m in _TURN_METRICS}
        for metric, value in (
            ("e2e_ms", d.e2e),
            ("overhead_ms", d.overhead),
            ("ttft_ms", d.ttft),
            ("ttft_overhead_ms", d.ttft_overhead),
        ):
            if value is not None:
                hists[metric].record_value(min(max(0, (value + 500) // 1000), HIGHEST_US))

    def _encode_turns(self) -> None:
        for turn, counts in self._turn_counts.items():
            hists = self._turn_hists.get(turn, {})
            self.out.by_turn[turn] = {**counts, **{m: bytes(h.encode()) for m, h in hists.items()}}

    def _record(self, recorder: Recorder, obs: Observation, calls: list[Call]) -> Decomposition:
        cross = self.joiner.is_cross_clock(obs.corr)
        d = decompose(obs, calls, same_clock=not cross)
        if cross and recorder is self.recorder:
            self.out.cross_clock_requests += 1
        rec = recorder.record
        at = obs.t_last_byte
        s = obs.stream
        rec("e2e_ms", s, d.e2e, at)
        if self.plan.profile.load.open_loop:
            rec("e2e_uncorrected_ms", s, d.e2e_uncorrected, at)
        if d.overhead is not None:
            rec("overhead_ms", s, d.overhead, at)
        if d.ingress is not None:
            rec("ingress_ms", s, d.ingress, at)
        if d.egress is not None:
            rec("egress_ms", s, d.egress, at)
        if d.ttft is not None:
            rec("ttft_ms", s, d.ttft, at)
        if d.ttft_overhead is not None:
            rec("ttft_overhead_ms", s, d.ttft_overhead, at)
        times = obs.token_times
        same = recorder.record_gaps("itl_ms", s, times, at)
        self.out.deltas_timed += len(times)
        self.out.deltas_same_read += same
        if s and calls and self._check_streams and not cross:
            # Stub write times against client arrivals: only on one clock, like ingress.
            self._record_token_delays(recorder, obs, calls[-1], at)
        if len(times) > 1:
            # The first delta read with the next: its stamp is the later one's arrival
            # (a read carries its last segment's stamp), so this TTFT is an upper bound.
            self.out.first_tokens_timed += 1
            self.out.first_token_same_read += times[0] == times[1]
        return d

    def _record_token_delays(
        self, recorder: Recorder, obs: Observation, call: Call, at: int
    ) -> None:
        """Per-token delay of one stream against the call whose stream the client read."""
        _, t_first, t_last, t_sched, dev = call
        arrivals = token_arrivals(obs.token_times, obs.delta_tokens)
        timed = stream_delays(arrivals, t_sched, self._itl_ns, t_first, t_last, dev)
        if timed is None:
            return
        recorder.record_many("token_delay_ms", True, timed.delays_ns, at)
        if recorder is not self.recorder:
            return  # the control group: its delays are the floor, not gateway streams
        out = self.out
        out.streams_timed += 1
        self._stream_dev.record_value(min(max(0, dev // 1000), HIGHEST_US))
        if timed.buffered:
            out.streams_buffered += 1
            if len(out.buffered_examples) < EXAMPLES:
                out.buffered_examples.append(format_corr_id(obs.corr))


def _slo_figures(obs: Observation, d: Decomposition) -> RequestFigures:
    """What ``[slo]`` judges of one completed request (None: does not apply to it)."""
    return RequestFigures(
        ttft_ns=d.ttft,
        itl_ns=mean_gap_ns(obs.token_times) if obs.stream else None,
        e2e_ns=d.e2e,
        overhead_ns=d.overhead,
    )


def _record_us(h: HdrHistogram, values_us: list[int]) -> None:
    """``h.record_value(max(0, v))`` for each value, in one numpy pass.

    Like hdrh, a value beyond the histogram's range (over an hour) is not counted.
    """
    if not values_us:
        return
    v = np.maximum(np.array(values_us, dtype=np.int64), 0)
    bulk_record(h, v[v <= HIGHEST_US])


def new_nonce(rng: random.Random | None = None) -> int:
    """A random 31-bit run nonce (correlation ids are ``nonce << 32 | seq``)."""
    return (rng or random.SystemRandom()).getrandbits(31) or 1


def _control_share(total: int, plan: WorkerPlan, *, every_process: bool = True) -> int:
    """The control group's size for ``total`` (workers, requests), this process's share.

    At least one when the ratio is above 0 (``every_process``: in each process;
    else at least one over all of them).
    """
    if plan.control_ratio <= 0 or total <= 0:
        return 0
    n = max(1, round(total * plan.control_ratio))
    share = split_share(n, plan.workers, plan.worker_index)
    return max(1, share) if every_process else share


def _peer_failures(ledger: LedgerSource) -> int:
    """Peer-stub pulls that failed so far (a single stub's failures raise instead)."""
    errors = getattr(ledger, "errors", None)  # StubLedgers (or a test's stand-in)
    return len(errors) if isinstance(errors, list) else 0
