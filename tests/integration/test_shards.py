"""Sharded runs as local processes (issue 17): 3 shards through one reference gateway.

The very commands ``loadgate k8s`` puts in its Indexed Job run here as local
processes, laid out as in the cluster: each shard starts its own stub on a port the
test chose (the pod's stub behind the headless Service), the gateway's upstreams
are those three stubs, round-robin per request (the Service), so a request of shard
i lands on any shard's stub; every shard joins every stub's ledger
(``--stub-ledger`` × 3, its own one skipped). That requests really crossed stubs is
asserted from each shard's ``upstream.records_by_stub`` and the gateway's
per-upstream counter; that the join still found every one, from ``unseen``. The
merge is checked by arithmetic on the files: the merged histograms are the shards'
bucket-for-bucket sums, counts add up, the gates are evaluated on the merged
figures, and an invalid shard makes the merge invalid with its name. A fourth stub
carries the test-only clock offset: overhead is still measured, ingress/egress are
not and say why. Behaviour, never speed.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from loadgate.histograms.hdr import counts_of, decode
from loadgate.result import load_run_result
from loadgate.result.merge import ShardResult, merge_results
from tests.support.run_args import QUICK_STUB, WIDE_HARNESS_LIMITS

pytestmark = pytest.mark.timeout(240)

ROOT = Path(__file__).resolve().parents[2]
SHARD_SETS = [
    *QUICK_STUB,
    "--set", "load.warmup=0.5s",
    "--set", "load.duration=2s",
    "--set", "load.concurrency=6",
    "--set", "load.control_ratio=0",
    *WIDE_HARNESS_LIMITS,
    "--set", "harness.min_concurrency_ratio=0",
    "--set", "gates={\"overhead_ms.p99\" = \"< 5000\", \"requests.error_rate\" = \"<= 0\"}",
]  # fmt: skip


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ, LOADGATE_RUNS_DIR=str(tmp / "runs"), PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    for k in ("LOADGATE_SHARDS", "JOB_COMPLETION_INDEX", "LOADGATE_START_AT"):
        env.pop(k, None)
    return env


def _started(
    argv: list[str], pattern: bytes, tmp: Path, log: str
) -> tuple[subprocess.Popen[bytes], str]:
    out: IO[bytes] = (tmp / log).open("wb")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=out, env=_env(tmp))
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        m = re.search(pattern, line)
        if m:
            return proc, m.group(1).decode()
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"{argv[2]} did not start: {(tmp / log).read_text()}")


def _free_ports(n: int) -> list[int]:
    """``n`` distinct ports free now (held open together, then released).

    The shards' stubs must be at addresses known before they start: the gateway's
    upstreams and every shard's ``--stub-ledger`` name them, as the headless
    Service's DNS names do in the cluster. Another process could take one in the
    moment between; the shard then fails to start its stub and says so.
    """
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for sk in socks:
            sk.bind(("127.0.0.1", 0))
        return [int(sk.getsockname()[1]) for sk in socks]


@dataclass(frozen=True)
class Rig:
    gateway: str
    #: shard i's own stub (``stub.port``), one of the gateway's upstreams
    shard_ports: list[int]
    #: a stub on an offset clock, outside the gateway
    skewed: str

    @property
    def shard_stubs(self) -> list[str]:
        return [f"http://127.0.0.1:{p}" for p in self.shard_ports]

    def upstream_requests(self) -> dict[str, float]:
        """The gateway's ``gateway_upstream_requests_total`` by ``upstream`` label."""
        with urllib.request.urlopen(self.gateway + "/metrics", timeout=10) as resp:
            text = resp.read().decode()
        return {
            s.labels["upstream"]: s.value
            for fam in text_string_to_metric_families(text)
            if fam.name == "gateway_upstream_requests"
            for s in fam.samples
            if s.name.endswith("_total")
        }


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    py = sys.executable
    stub_args = ["--port", "0", "--ttft-ms", "5", "--itl-ms", "1", "--tokens", "4"]
    # An hour ahead: what a stub on a machine booted an hour earlier would report.
    skewed, skewed_url = _started(
        [py, "-m", "stub_upstream", *stub_args, "--clock-offset-ns", str(3600 * 10**9)],
        rb"listening on (http://\S+)",
        tmp_path,
        "k.log",
    )
    procs = [skewed]
    ports = _free_ports(3)
    # The shards' stubs are not up yet: the gateway connects on the first request.
    upstreams = ",".join(f"http://127.0.0.1:{p}" for p in ports)
    try:
        gw, gw_url = _started(
            [py, "-m", "reference_gateway", "--upstream", upstreams, "--port", "0"],
            rb"reference_gateway listening on (http://\S+)",
            tmp_path,
            "g.log",
        )
        procs.append(gw)
        yield Rig(gw_url, ports, skewed_url)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=10)


def _shards(
    tmp: Path,
    count: int,
    extra: list[str],
    start_in_s: float = 8.0,
    stub_ports: list[int] | None = None,
) -> list[Path]:
    """``count`` shard processes at once, each ``loadgate run --shard i/count``; their files.

    ``stub_ports``: shard i's own stub listens on ``stub_ports[i]`` (else any port).
    """
    start = time.time() + start_in_s
    procs, files = [], []
    for i in range(count):
        f = tmp / f"shard-{i}.json"
        own = ["--set", f"stub.port={stub_ports[i]}"] if stub_ports else []
        argv = [
            sys.executable, "-m", "loadgate", "run", "smoke", *SHARD_SETS, *own, *extra,
            "--shard", f"{i}/{count}", "--start-at", f"{start:.3f}", "--out", str(f), "--quiet",
        ]  # fmt: skip
        procs.append(
            subprocess.Popen(argv, env=_env(tmp), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        )
        files.append(f)
    for p in procs:
        out, err = p.communicate(timeout=150)
        assert p.returncode in (0, 1, 3), err.decode() + out.decode()
    return files


def _counts(b64: str) -> np.ndarray[Any, Any]:
    return counts_of(decode(b64)).astype(np.int64)


def test_three_shards_across_three_stubs_merge_exactly(rig: Rig, tmp_path: Path) -> None:
    stubs = rig.shard_stubs
    ledgers = [arg for url in stubs for arg in ("--stub-ledger", url)]
    files = _shards(tmp_path, 3, ["--target", rig.gateway, *ledgers], stub_ports=rig.shard_ports)
    shards = [load_run_result(f) for f in files]
    assert [s.shard.index for s in shards if s.shard] == [0, 1, 2]
    # Concurrency 6 split 2 + 2 + 2; the profile in every file is the whole run's.
    assert [s.shard.concurrency for s in shards if s.shard] == [2, 2, 2]
    assert all(s.profile["load"]["concurrency"] == 6 for s in shards)
    for s in shards:
        assert s.shard is not None and s.shard.peers == stubs  # as given; its own read once
        # Every request was found, in whichever stub's ledger it landed.
        up = s.upstream
        why = f"calls {up.calls} unseen {up.unseen} pull error {up.pull_error}"
        why += f" clocks {s.harness.stub_clocks}"
        assert s.requests.sent > 0 and up.calls == s.requests.sent, why
        assert s.upstream.unseen == 0
        assert s.harness.cross_clock_requests is None  # same machine, same clock
        # It crossed: this shard's requests are in every stub's ledger, its own and
        # both peers', and it read the other shards' records there too (foreign).
        by_stub = s.upstream.records_by_stub or {}
        assert sorted(by_stub) == sorted(stubs) and min(by_stub.values()) > 0, by_stub
        assert s.upstream.foreign > 0
    # The gateway spread them: round-robin per request, counts at most 1 apart.
    sent_to = rig.upstream_requests()
    assert sorted(sent_to) == sorted(f"127.0.0.1:{p}" for p in rig.shard_ports)
    assert max(sent_to.values()) - min(sent_to.values()) <= 1, sent_to
    # What the shards read of each stub is exactly what the gateway sent it: every
    # request (warm-up included) was recorded once and read by its own shard once.
    for url, port in zip(stubs, rig.shard_ports, strict=True):
        recorded = sum((s.upstream.records_by_stub or {})[url] for s in shards)
        assert recorded == sent_to[f"127.0.0.1:{port}"], (url, recorded, sent_to)

    out = tmp_path / "merged.json"
    proc = subprocess.run(
        [sys.executable, "-m", "loadgate", "merge", *map(str, files), "-o", str(out)],
        env=_env(tmp_path), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    merged = load_run_result(out)
    assert proc.returncode == merged.exit_code, proc.stderr
    # Histograms: the merged one is the shards' sum, bucket for bucket, for every key.
    assert set(merged.histograms) == {k for s in shards for k in s.histograms}
    for key, b64 in merged.histograms.items():
        total = sum(_counts(s.histograms[key]) for s in shards if key in s.histograms)
        assert np.array_equal(_counts(b64), total), key
        assert merged.metrics.get(key, merged.by_mode.get(key.split(".")[0])) is not None
    assert merged.metrics["e2e_ms"].count == sum(s.metrics["e2e_ms"].count for s in shards)
    # Counts add up.
    for k in ("sent", "ok", "failed", "warmup_excluded", "cooldown_excluded"):
        assert getattr(merged.requests, k) == sum(getattr(s.requests, k) for s in shards), k
    assert merged.upstream.calls == sum(s.upstream.calls for s in shards)
    assert merged.upstream.records_by_stub == {
        url: sum((s.upstream.records_by_stub or {})[url] for s in shards) for url in stubs
    }
    assert merged.integrity.checked == sum(s.integrity.checked for s in shards)
    # Gates: evaluated once, on the merged figures.
    gate = {g.name: g for g in merged.gates}
    assert gate["overhead_ms.p99"].value == merged.metrics["overhead_ms"].p99
    assert gate["requests.error_rate"].value == merged.requests.error_rate
    assert merged.shards is not None and [e.shard.index for e in merged.shards] == [0, 1, 2]
    invalid = [s for s in shards if s.verdict == "invalid"]
    if not invalid:  # a busy machine may spoil a shard; then the merge says so (below)
        assert merged.verdict == "pass", merged.reasons
    # Rates over the union window.
    assert merged.window is not None
    span = merged.window[1] - merged.window[0]
    assert merged.requests.rate_achieved == pytest.approx(merged.requests.sent / span)

    # A shard made invalid makes the merge invalid, by name.
    spoilt = shards[1].model_copy(deep=True)
    spoilt.verdict, spoilt.reasons = "invalid", ["harness event-loop lag p99 99 ms > 5 ms"]
    again = merge_results(
        [ShardResult(str(files[0]), shards[0]), ShardResult("spoilt.json", spoilt),
         ShardResult(str(files[2]), shards[2])]
    )  # fmt: skip
    assert again.verdict == "invalid" and again.exit_code == 3
    assert again.reasons[0].startswith("shard 1/3 (spoilt.json) was invalid: harness event-loop")
    assert all(not g.decided for g in again.gates)
    # The merged file is an ordinary result: compare and report read it.
    cmp = subprocess.run(
        [sys.executable, "-m", "loadgate", "compare", str(out), str(out), "--format", "json"],
        env=_env(tmp_path), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert cmp.returncode == 0, cmp.stderr
    rep = subprocess.run(
        [sys.executable, "-m", "loadgate", "report", str(out), "--html", str(tmp_path / "r.html")],
        env=_env(tmp_path), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert rep.returncode == 0 and (tmp_path / "r.html").stat().st_size > 0, rep.stderr


def test_a_stub_on_another_clock_keeps_overhead_and_flags_ingress(rig: Rig, tmp_path: Path) -> None:
    """Direct to the offset stub (it is the 'gateway'): overhead = durations, no ingress."""
    skewed = rig.skewed
    [file] = _shards(tmp_path, 1, ["--target", skewed, "--stub-ledger", skewed], start_in_s=5)
    r = load_run_result(file)
    assert r.upstream.calls == r.requests.sent > 0 and r.upstream.unseen == 0
    n = r.requests.ok
    assert r.harness.cross_clock_requests == n
    assert r.harness.stub_clocks and "ms from ours" in r.harness.stub_clocks[0]
    assert "ingress_ms" not in r.metrics and "egress_ms" not in r.metrics
    # Overhead was measured for every request, and an hour of offset is not in it:
    # each duration is on its own clock (lopsided bound: 10 s against 3600 s).
    assert r.metrics["overhead_ms"].count == n
    assert r.metrics["overhead_ms"].max < 10_000
    assert any("another clock" in w for w in r.harness.warnings)


def test_a_shard_that_misses_the_common_start_says_so(rig: Rig, tmp_path: Path) -> None:
    # Straight at a stub that is up (the gateway's upstreams are the shards' stubs,
    # and the other shards do not run here): the window, not the path, is under test.
    gw = stub = rig.skewed
    out = tmp_path / "late.json"
    start = time.time() - 0.5  # already past: the measured window opened before it could send
    proc = subprocess.run(
        [sys.executable, "-m", "loadgate", "run", "smoke", *SHARD_SETS, "--set", "load.duration=4s",
         "--target", gw, "--stub-ledger", stub, "--shard", "1/2", "--start-at", f"{start:.3f}",
         "--out", str(out), "--quiet"],
        env=_env(tmp_path), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr + proc.stdout
    r = load_run_result(out)
    assert r.shard is not None and r.shard.missed_start_s > 0.5
    assert r.reasons[0].startswith("shard 1/2 missed the common start by")
    assert r.shard.measure_start == pytest.approx(start + r.shard.missed_start_s, abs=1e-3)
    assert r.requests.sent > 0  # it measured what was left of the window
