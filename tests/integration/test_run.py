"""`loadgate run` end to end on loopback: the Phase 2 gate's behaviours (issue 4).

Every run here is bounded by ``load.max_requests`` and short durations, uses port 0
for the stub and gateway, and asserts outcomes (exit codes, counts, exact
arithmetic), never latencies.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from loadgate.histograms.hdr import decode
from loadgate.histograms.recorder import METRICS
from loadgate.load.keys import KeyPool
from loadgate.load.mix import RequestMix
from loadgate.profile import load_profile
from tests.support.run_args import QUICK_STUB, WIDE_HARNESS_LIMITS

pytestmark = pytest.mark.timeout(180)

FAST = [
    *QUICK_STUB,
    "--set", "load.warmup=0.5s",
    "--set", "load.duration=2s",
    "--set", "load.concurrency=8",
    *WIDE_HARNESS_LIMITS,
]  # fmt: skip


def loadgate(*args: str, cwd: Path, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LOADGATE_RUNS_DIR=str(cwd / "runs"))
    return subprocess.run(
        [sys.executable, "-m", "loadgate", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def only_result(tmp: Path) -> dict[str, Any]:
    results = list((tmp / "runs").glob("*/result.json"))
    assert len(results) == 1, results
    data: dict[str, Any] = json.loads(results[0].read_text())
    return data


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


def _git_repo(path: Path) -> str:
    """A one-commit repository standing in for the gateway's source tree; returns HEAD."""
    path.mkdir()
    git = ["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (path / "gw.txt").write_text("gateway\n")
    subprocess.run([*git, "add", "gw.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "gw"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True)
    return head.stdout.strip()


def test_passing_smoke_run_writes_a_complete_result(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    commit = _git_repo(tmp_path / "gw")
    hist = tmp_path / "hist"
    proc = loadgate(
        "run", "smoke", *FAST, "--out", str(out), "--quiet",
        "--git-dir", str(tmp_path / "gw"), "--history", str(hist), cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    data = json.loads(out.read_text())
    assert data["git"]["commit"] == commit and data["git"]["dirty"] is False
    # --history filed the same result under <machine>/<commit>.json, and history reads it.
    filed = list(hist.glob(f"*/{commit}.json"))
    assert len(filed) == 1 and json.loads(filed[0].read_text())["started_at"] == data["started_at"]
    shown = loadgate("history", str(hist), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert commit[:7] in shown.stdout
    assert data["schema"] == "loadgate.result/1"
    assert data["verdict"] == "pass" and data["exit_code"] == 0
    req = data["requests"]
    assert req["sent"] > 0 and req["failed"] == 0 and req["ok"] == req["sent"]
    assert data["integrity"]["violations"] == 0
    assert data["integrity"]["checked"] == req["sent"]
    # Every request reached the stub exactly once through the reference gateway.
    assert data["upstream"]["calls"] == req["sent"]
    assert data["upstream"]["calls_per_request"] == 1.0
    assert data["upstream"]["unseen"] == 0
    for m in METRICS:
        if m == "e2e_uncorrected_ms":  # open loop only
            continue
        assert data["metrics"][m]["count"] > 0, m
    # The split is consistent: overhead is never more than end-to-end.
    assert data["metrics"]["overhead_ms"]["p50"] <= data["metrics"]["e2e_ms"]["p50"]
    modes = data["by_mode"]
    assert (
        modes["stream"]["requests"]["sent"] + modes["non_stream"]["requests"]["sent"] == req["sent"]
    )
    assert data["gateway"]["drain"]["checked"] is True
    assert data["gateway"]["drain"]["dropped"] == 0
    assert data["histograms"]["overhead_ms"]
    # Time batches hold exactly the window's samples, nothing lost or doubled.
    batches = data["histogram_batches"]["overhead_ms"]
    assert 1 <= len(batches) <= 20
    batched = sum(decode(b).get_total_count() for b in batches if b)
    assert batched == data["metrics"]["overhead_ms"]["count"]
    run_dir = Path(data["run_dir"])
    assert (run_dir / "result.json").exists()
    assert (run_dir / "gateway.log").exists()
    assert list(run_dir.glob("*.hlog"))


def test_cache_too_small_fails_the_hit_rate_gate(tmp_path: Path) -> None:
    proc = loadgate(
        "run", "phase2-gate", *FAST,
        "--set", "gateway.reference.cache_size=2",
        "--set", "gateway.reference.miss_cost_ms=0",
        "--set", "auth.distribution=uniform",
        "--quiet", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr + proc.stdout
    data = only_result(tmp_path)
    gate = {g["name"]: g for g in data["gates"]}["gateway.auth_cache_hit_rate"]
    assert gate["passed"] is False
    assert gate["value"] is not None and gate["value"] < 0.9
    assert data["verdict"] == "fail"


def test_hit_rate_equals_the_gateways_own_counters(tmp_path: Path) -> None:
    """With no warm-up, a bounded request count and one request at a time, the window
    is the whole run: every key the gateway has not seen before is a miss, every other
    one a hit, so the hit rate is exact arithmetic over the keys the mix drew. (With
    several in flight, two requests with one new key can both miss before either is
    cached, and the gateway counts both, as a cache without single-flight does: 117
    misses for 116 keys in 5 of 6 runs at concurrency 8.)"""
    n = 300
    sets = [
        *FAST,
        "--set", "load.concurrency=1",
        "--set", "load.warmup=0s",
        "--set", "load.duration=60s",
        "--set", f"load.max_requests={n}",
        "--set", "gateway.reference.cache_size=100000",
        "--set", "gateway.reference.miss_cost_ms=0",
        "--set", "gateway.drain_check=false",
    ]  # fmt: skip
    proc = loadgate("run", "phase2-gate", *sets, "--quiet", cwd=tmp_path)
    data = only_result(tmp_path)
    assert data["requests"]["sent"] == n, proc.stderr
    profile = load_profile("phase2-gate", [s for s in sets if s != "--set"])
    pool = KeyPool.from_spec(profile.auth, Path("."))
    mix = RequestMix(
        endpoints=profile.load.endpoints,
        stream_ratio=profile.load.stream_ratio,
        model=profile.load.model,
        anthropic_model=profile.load.anthropic_model,
        prompt_tokens=profile.load.prompt_tokens,
        max_tokens=profile.load.max_tokens,
        stub_output_tokens=profile.stub.output_tokens,
        nonce=1,
        seed=profile.load.seed * 1009,
        draw_key=pool.draw,
    )
    distinct = len({mix.next().auth for _ in range(n)})
    cache = data["gateway"]["auth_cache"]
    assert cache["misses"] == distinct
    assert cache["hits"] == n - distinct
    assert data["gateway"]["auth_cache_hit_rate"] == pytest.approx((n - distinct) / n, abs=1e-12)


def test_preflight_closed_port_is_dep_down(tmp_path: Path) -> None:
    port = closed_port()
    proc = loadgate("run", "smoke", *FAST, "--target", f"http://127.0.0.1:{port}", cwd=tmp_path)
    assert proc.returncode == 70, proc.stderr
    assert "DEP-DOWN" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.fixture
def always_401() -> Iterator[str]:
    """A real HTTP server on a thread that rejects everything with 401."""
    import asyncio
    import threading

    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, Any] = {}

    async def handler(_: web.BaseRequest) -> web.Response:
        return web.json_response({"error": {"message": "no", "type": "auth"}}, status=401)

    async def serve() -> None:
        server = web.Server(handler)
        runner = web.ServerRunner(server)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        holder["port"] = runner.addresses[0][1]
        holder["runner"] = runner
        started.set()

    t = threading.Thread(target=lambda: (loop.run_until_complete(serve()), loop.run_forever()))
    t.start()
    assert started.wait(10)
    yield f"http://127.0.0.1:{holder['port']}"
    loop.call_soon_threadsafe(loop.stop)
    t.join(10)


def test_preflight_401_gateway_is_up_and_the_run_proceeds(tmp_path: Path, always_401: str) -> None:
    proc = loadgate("run", "smoke", *FAST, "--target", always_401, "--quiet", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr  # the run happened, and its error gate failed
    data = only_result(tmp_path)
    assert data["requests"]["sent"] > 0
    assert data["requests"]["errors"] == {"http_4xx": data["requests"]["sent"]}
    assert data["upstream"]["unseen"] == data["requests"]["sent"]


def test_profile_error_is_one_line_naming_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[load]\nconcurrency = 10\nstream_ratio = 1.5\n")
    proc = loadgate("run", str(bad), cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "bad.toml" in lines[0] and "load.stream_ratio" in lines[0]
    assert "Traceback" not in proc.stderr


def test_history_without_git_dir_is_refused_before_running(tmp_path: Path) -> None:
    proc = loadgate("run", "smoke", *FAST, "--history", str(tmp_path / "h"), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "loadgate: error: --history needs --git-dir (the gateway's commit names the entry)"
    ]
    assert not (tmp_path / "runs").exists()


def _run_until_load_flows(tmp_path: Path) -> subprocess.Popen[str]:
    # Answers take 3 s, so a stopped run spends seconds finishing what is in flight:
    # long enough for the presses that follow to land while it does.
    env = dict(os.environ, LOADGATE_RUNS_DIR=str(tmp_path / "runs"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "loadgate", "run", "smoke", *FAST,
         "--set", "load.duration=60s", "--set", "stub.ttft_ms=3000", "--quiet"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    # Wait until load is flowing: the gateway log exists once the gateway is up.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list((tmp_path / "runs").glob("*/gateway.log")):
        time.sleep(0.2)
    time.sleep(2.0)
    return proc


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_writes_a_partial_result(tmp_path: Path, presses: int) -> None:
    # A second Ctrl-C 0.2 s after the first must not cost the result (it did: exit 130).
    proc = _run_until_load_flows(tmp_path)
    try:
        for _ in range(presses):
            proc.send_signal(signal.SIGINT)
            time.sleep(0.2)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 3, err
    data = only_result(tmp_path)
    assert data["interrupted"] == "SIGINT"
    assert data["verdict"] == "invalid"
    assert any("interrupted" in r for r in data["reasons"])
    assert "Traceback" not in err
    if presses == 2:
        assert "writing the result, press Ctrl-C again to abandon it" in err


def test_a_third_ctrl_c_abandons_and_says_so(tmp_path: Path) -> None:
    proc = _run_until_load_flows(tmp_path)
    try:
        for _ in range(3):
            proc.send_signal(signal.SIGINT)
            time.sleep(0.1)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "abandoned: no result written" in err
    assert not list((tmp_path / "runs").glob("*/result.json"))


def test_gateway_dying_mid_run_is_recorded_and_nothing_hangs(tmp_path: Path) -> None:
    # The gateway serves for 3 s, then is killed: load must stop, verdict fail.
    cmd = (
        f"timeout -s KILL 4 {sys.executable} -m reference_gateway "
        "--upstream {stub_url} --port {port}"
    )
    proc = loadgate(
        "run", "smoke", *FAST,
        "--set", "load.duration=60s",
        "--set", "gateway.kind=command",
        "--set", f"gateway.command={cmd}",
        "--set", "gateway.url=http://127.0.0.1:{port}",
        "--quiet", cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr + proc.stdout
    data = only_result(tmp_path)
    assert data["interrupted"] == "gateway_died"
    assert data["verdict"] == "fail"
    assert any("gateway process exited" in r for r in data["reasons"])
    assert data["duration_s"] < 60


def test_two_load_workers_merge_into_one_result(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    proc = loadgate(
        "run", "smoke", *FAST, "--set", "load.workers=2", "--out", str(out), "--quiet",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    data = json.loads(out.read_text())
    req = data["requests"]
    assert data["harness"]["workers"] == 2
    assert req["sent"] > 0 and req["failed"] == 0
    # Both workers' requests were joined with the ledger: their nonces differ, and
    # neither counted the other's records as its own.
    assert data["upstream"]["calls"] == req["sent"]
    assert data["upstream"]["unseen"] == 0
    assert data["metrics"]["overhead_ms"]["count"] == req["sent"]
    assert data["integrity"]["violations"] == 0


def test_busy_stub_port_is_a_one_line_usage_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert FAST[:2] == ["--set", "stub.port=0"]
        proc = loadgate("run", "smoke", *FAST[2:], "--set", f"stub.port={port}", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "stub upstream did not start" in lines[0]
    assert f"stub.port {port} is taken" in lines[0]


def test_goodput_is_judged_per_request_through_the_reference_gateway(tmp_path: Path) -> None:
    # Lopsided bounds: every loopback request takes far more than 1 µs of overhead and
    # far less than 60 s end to end, so each one meets 2 of 3 bounds: none is good.
    slo = ["--set", "slo.overhead_ms=0.001", "--set", "slo.e2e_ms=60000",
           "--set", "slo.ttft_ms=60000", "--set", 'gates.goodput.ratio="> 0.99"']  # fmt: skip
    proc = loadgate("run", "smoke", *FAST, *slo, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr + proc.stdout
    data = only_result(tmp_path)
    g, req = data["goodput"], data["requests"]
    assert g["requests"] == req["sent"] > 0 and g["failed"] == req["failed"]
    assert g["good"] == 0 and g["ratio"] == 0.0
    assert g["missed"] == {"ttft_ms": 0, "e2e_ms": 0, "overhead_ms": req["sent"] - req["failed"]}
    non_stream = data["by_mode"]["non_stream"]["requests"]
    assert g["not_applicable"]["ttft_ms"] == non_stream["ok"]
    gate = next(x for x in data["gates"] if x["name"] == "goodput.ratio")
    assert (gate["value"], gate["passed"]) == (0.0, False)
    assert "goodput (every SLO met)" in proc.stdout
