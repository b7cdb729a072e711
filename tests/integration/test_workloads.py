"""Trace replay and sessions on loopback, against the real stub (and the reference gateway).

Each sample trace is replayed straight at the stub: every row is answered with
exactly its output length, and integrity holds. Sessions run three turns through
the reference gateway with integrity (history included) intact, and through a
proxy that cuts the resent history, where the stub's check catches every later
turn. The bundled example profiles run. Bounded by short windows and
``max_requests``; assertions are counts, never speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from loadgate.client.observation import Observation
from loadgate.load import trace
from loadgate.load.generator import Engine, WorkerPlan
from loadgate.profile import parse_profile
from loadgate.profile.models import Profile
from stub_upstream.config import StubConfig
from stub_upstream.process import StubProcess
from tests.support.defect_proxy import DefectProxy
from tests.support.paths import ROOT

pytestmark = pytest.mark.timeout(180)

DATA = ROOT / "tests" / "data" / "traces"
SAMPLES = ["mooncake-sample.jsonl", "azure-sample.csv", "burstgpt-sample.csv"]
WIDE = {
    "max_cpu_percent": 100,
    "max_loop_lag_p99_ms": 1000,
    "max_stub_lateness_p99_ms": 1000,
    "max_send_lag_p99_ms": 1000,
}
FAST = [f"--set=harness.{k}={v}" for k, v in WIDE.items()] + ["--set=stub.port=0"]


def stub_config(profile: Profile) -> StubConfig:
    return StubConfig(port=0, ttft_ms=2, itl_ms=0.5, output_tokens=profile.stub.output_tokens)


async def drive(profile: Profile, target: str | None, stub: StubProcess) -> tuple[Any, list[Any]]:
    """One engine against ``target`` (the stub itself when None); its outcome and observations."""
    seen: list[Observation] = []
    plan = WorkerPlan(
        profile,
        target or stub.url,
        stub.url,
        time.monotonic_ns() + 100_000_000,
        4242,
        base_dir=str(DATA),
        trace=trace.scan(profile.load, DATA) if profile.load.trace else None,
    )
    engine = Engine(plan, on_observation=lambda obs, measured: seen.append(obs))
    return await engine.run(), seen


@pytest.mark.parametrize("name", SAMPLES)
async def test_each_sample_trace_gets_exactly_its_token_counts_from_the_stub(name: str) -> None:
    profile = parse_profile(
        {
            "load": {
                "trace": name,
                "warmup": "0s",
                "duration": "10s",
                "stream_ratio": 0.5,
                "control_ratio": 0.0,
                "endpoints": {"chat": 1.0, "messages": 1.0},
                "replay": {"speedup": 4},
            },
            "harness": WIDE,
        }
    )
    info = trace.scan(profile.load, DATA)
    profile = trace.fit_stub(profile, info)
    outputs = sorted(
        row.output_tokens for _line, row in trace.iter_rows(DATA / name, info.format)
        if not isinstance(row, str)
    )  # fmt: skip
    async with StubProcess(stub_config(profile)) as stub:
        out, seen = await drive(profile, None, stub)
    assert sorted(o.tokens for o in seen) == outputs
    assert (out.sent, out.ok, out.checked, out.violations) == (len(outputs),) * 3 + ({},)
    assert out.upstream.calls == len(outputs) and out.upstream.unseen == 0


def session_profile(turns: int = 3) -> Profile:
    return parse_profile(
        {
            "load": {
                "concurrency": 3,
                "warmup": "0s",
                "duration": "20s",
                "stream_ratio": 0.5,
                "endpoints": {"chat": 1.0, "messages": 1.0},
                "max_tokens": 6,
                "max_requests": 18,
                "control_ratio": 0.0,
                "sessions": {"turns": turns, "user_tokens": 8},
            },
            "stub": {"output_tokens": 6},
            "harness": WIDE,
        }
    )


async def test_a_history_cut_on_the_way_is_caught_by_the_stub_on_every_later_turn() -> None:
    profile = session_profile()
    async with StubProcess(stub_config(profile)) as stub:
        clean, _ = await drive(profile, None, stub)
        async with DefectProxy(stub.url, "history") as proxy:
            cut, seen = await drive(profile, proxy.url, stub)
    assert (clean.sent, clean.violations, clean.sessions_completed) == (18, {}, 6)
    # 6 sessions × turns 1 and 2: each resent answer lost its last word.
    assert proxy.rewritten == 12
    assert cut.violations == {"history_mismatch": 12} and cut.ok == 18
    assert sorted(o.violation is None for o in seen).count(True) == 6  # the first turns


def loadgate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LOADGATE_RUNS_DIR=str(cwd / "runs"))
    return subprocess.run(
        [sys.executable, "-m", "loadgate", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=150, check=False,
    )  # fmt: skip


def test_sessions_pass_integrity_over_three_turns_through_the_reference_gateway(
    tmp_path: Path,
) -> None:
    out = tmp_path / "r.json"
    proc = loadgate(
        "run", "sessions", *FAST, "--set=load.sessions.turns=3", "--set=load.concurrency=4",
        "--set=load.duration=3s", "--set=load.warmup=0.5s", "--set=load.sessions.think_time=20ms",
        "--set=stub.ttft_ms=5", "--set=stub.itl_ms=1", "--out", str(out), "--quiet",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    data = json.loads(out.read_text())
    assert data["gateway"]["kind"] == "reference"
    assert data["integrity"]["violations"] == 0 and data["requests"]["failed"] == 0
    s = data["sessions"]
    assert s["turns"] == 3 and s["history_mismatches"] == 0 and s["aborted"] == 0
    assert s["completed"] > 0 and s["started"] >= s["completed"]
    turns = {t["turn"]: t for t in s["by_turn"]}
    assert sorted(turns) == [0, 1, 2] and all(t["requests"] > 0 for t in turns.values())
    # The conversation grows by one answer (16 tokens) and one user message (24 words).
    assert [turns[k]["prompt_words"] for k in (0, 1, 2)] == [64, 104, 144]
    assert all("overhead_ms" in t["metrics"] for t in turns.values())


def test_the_bundled_trace_replay_profile_runs(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    proc = loadgate(
        "run", "trace-replay", *FAST, "--set=load.replay.speedup=8", "--set=load.duration=3s",
        "--set=load.warmup=0.5s", "--set=stub.ttft_ms=5", "--set=stub.itl_ms=1",
        "--out", str(out), "--quiet", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    data = json.loads(out.read_text())
    t = data["trace"]
    assert (t["format"], t["rows"], t["skipped"], t["speedup"]) == ("mooncake", 80, {}, 8.0)
    assert t["rows_sent"] == data["requests"]["sent"] + data["requests"]["warmup_excluded"]
    assert data["integrity"]["violations"] == 0 and data["requests"]["failed"] == 0
    # The stub was raised to the trace's longest answer, and the result says so.
    assert data["profile"]["stub"]["output_tokens"] == t["max_output_tokens"] == 48


def test_an_ambiguous_trace_stops_before_anything_starts(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("when,in,out\n1,2,3\n")
    (tmp_path / "p.toml").write_text('[load]\ntrace = "t.csv"\n')
    proc = loadgate("run", "p.toml", cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "t.csv" in lines[0] and "load.trace_format" in lines[0]
    assert not (tmp_path / "runs").exists()
