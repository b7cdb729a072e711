"""``loadgate run phase2-exit`` with the witness, end to end: reference gateway, stub, a real
throwaway PostgreSQL, both ways.

Configured correctly the witness finds every sampled record and the run passes; with the
gateway's trace rows held back (1.5 s against a 500 ms gate: lopsided) only the latency
gate fails, with rows dropped only ``missing`` does — each defect found by the witness
and by nothing else. The speed gates of the profile are widened here (tests assert
behaviour, never speed on a loaded machine); the auth pool is small so the hit-rate gate
is met in a 2 s run.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from loadgate.gateway.postgres_server import find_pg_bin
from tests.support.postgres import SKIP_REASON
from tests.support.run_args import QUICK_STUB, WIDE_HARNESS_LIMITS

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.postgres,
    pytest.mark.skipif(find_pg_bin() is None, reason=SKIP_REASON),
]

WITNESS_GATES = ("probes.witness.latency_ms.p99", "probes.witness.missing")

FAST = [
    *QUICK_STUB,
    "--set", "load.warmup=0.5s",
    "--set", "load.duration=2s",
    "--set", "load.concurrency=4",
    "--set", "auth.keys=20",
    "--set", "gateway.reference.trace_flush_ms=20",
    "--set", "probes.witness.sample=0.1",
    "--set", "probes.witness.timeout=4s",
    "--set", "gates.overhead_ms.p99=< 1000",
    *WIDE_HARNESS_LIMITS,
]  # fmt: skip


def run(tmp: Path, *sets: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    out = tmp / "result.json"
    env = dict(os.environ, LOADGATE_RUNS_DIR=str(tmp / "runs"))
    proc = subprocess.run(
        [sys.executable, "-m", "loadgate", "run", "phase2-exit", *FAST, *sets, "--out", str(out)],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    data: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    return proc, data


def gate_results(data: dict[str, Any]) -> dict[str, bool]:
    return {g["name"]: g["passed"] for g in data["gates"]}


def leftover_clusters() -> set[str]:
    return {p.name for p in Path("/tmp").glob("loadgate-pg-*")}


def ready_postmaster(pid_file: Path) -> int | None:
    """The server's PID once its lock file's status line says ``ready``, read once.

    The file exists (port line included) before the server binds: a server that loses
    its port to another process removes it and the harness starts another, so a PID
    read before ``ready`` may name a server already gone.
    """
    try:
        lines = pid_file.read_text().splitlines()
    except FileNotFoundError:
        return None
    return int(lines[0]) if len(lines) >= 8 and lines[7].strip() == "ready" else None


def test_configured_correctly_every_sampled_record_is_found(tmp_path: Path) -> None:
    before = leftover_clusters()
    proc, data = run(tmp_path)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    w = data["probes"]["witness"]
    assert w["sampled"] > 0 and w["found"] == w["sampled"] and w["missing"] == 0
    assert all(gate_results(data).values())
    # The bound is explicit: each figure is the midpoint of [lower, upper] and its half-width.
    assert w["latency_ms"]["max"] <= w["upper_ms"]["max"]
    assert w["error_ms"]["count"] == w["found"]
    assert w["polls"] >= w["sampled"] and w["poll_errors"] == 0
    assert 1 <= w["max_in_flight"] <= 4  # probes.witness.max_concurrency
    assert "Probes" in proc.stdout and "witness (sql) sampled / found / missing" in proc.stdout
    # The throwaway cluster is gone, its log kept with the run.
    assert leftover_clusters() <= before
    assert (Path(data["run_dir"]) / "postgres.log").exists()


def test_rows_written_late_fail_only_the_latency_gate(tmp_path: Path) -> None:
    proc, data = run(tmp_path, "--set", "gateway.reference.trace_delay_ms=1500")
    assert proc.returncode == 1, proc.stderr + proc.stdout
    gates = gate_results(data)
    assert gates.pop("probes.witness.latency_ms.p99") is False
    assert all(gates.values()), gates  # nothing else noticed
    w = data["probes"]["witness"]
    assert w["missing"] == 0 and w["found"] == w["sampled"] > 0
    # Not visible before the rows were released: even the lower bound is past 1.5 s.
    assert w["latency_ms"]["p50"] - w["error_ms"]["max"] >= 1400


def test_rows_dropped_are_missing_and_only_that_gate_fails(tmp_path: Path) -> None:
    proc, data = run(
        tmp_path,
        "--set", "gateway.reference.trace_drop_share=0.25",
        "--set", "probes.witness.timeout=1s",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr + proc.stdout
    gates = gate_results(data)
    assert gates.pop("probes.witness.missing") is False
    assert all(gates.values()), gates
    w = data["probes"]["witness"]
    assert w["missing"] > 0 and w["found"] + w["missing"] == w["sampled"]


def test_the_http_kind_reads_a_clickhouse_style_query_url(tmp_path: Path) -> None:
    proc, data = run(
        tmp_path,
        "--set", "probes.witness.kind=http",
        "--set", "probes.witness.url={gateway_url}/admin/traces?corr_id={corr_id}",
        "--set", "gateway.drain_check=false",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    w = data["probes"]["witness"]
    assert w["kind"] == "http" and w["sampled"] > 0 and w["found"] == w["sampled"]


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (
            ["--set", "probes.witness.dsn=mysql://x"],
            "probes.witness.dsn: must be a postgresql:// DSN",
        ),
        (
            ["--set", "gateway.reference.trace_db=false"],
            'probes.witness.dsn: "auto" needs gateway.kind = "reference"',
        ),
        (
            ["--set", "probes.witness.kind=http"],
            'probes.witness.url: kind = "http" needs a url containing {corr_id}',
        ),
        (["--target", "http://127.0.0.1:9"], "gateway.reference.trace_db: needs a launched"),
    ],
)
def test_bad_witness_config_is_one_line_exit_2_nothing_started(
    tmp_path: Path, sets: list[str], message: str
) -> None:
    before = leftover_clusters()
    proc, data = run(tmp_path, *sets)
    assert proc.returncode == 2, proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and data == {}
    assert leftover_clusters() == before and not (tmp_path / "runs").exists()


def test_a_witness_store_that_is_down_is_dep_down_before_any_load(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dsn = f"postgresql://user:secret@127.0.0.1:{port}/traces"
    proc, data = run(
        tmp_path,
        "--set", "gateway.reference.trace_db=false",
        "--set", f"probes.witness.dsn={dsn}",
    )  # fmt: skip
    assert proc.returncode == 70, proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "DEP-DOWN: probes.witness: cannot connect" in lines[0]
    assert f"127.0.0.1:{port}/traces" in lines[0] and "secret" not in lines[0]
    assert data == {}


def test_an_interrupted_run_still_stops_and_removes_its_cluster(tmp_path: Path) -> None:
    before = leftover_clusters()
    env = dict(os.environ, LOADGATE_RUNS_DIR=str(tmp_path / "runs"))
    argv = [sys.executable, "-m", "loadgate", "run", "phase2-exit", *FAST]
    proc = subprocess.Popen(
        [*argv, "--set", "load.duration=60s", "--quiet"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        server_pid: int | None = None
        while server_pid is None:  # the cluster is up once postmaster.pid says "ready"
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
            for d in leftover_clusters() - before:
                server_pid = ready_postmaster(Path("/tmp") / d / "data" / "postmaster.pid")
            time.sleep(0.05)
        time.sleep(1.0)  # into the load (a state the interrupt must handle, not a timing)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode in (1, 3), proc.stderr
    assert leftover_clusters() <= before
    assert not psutil.pid_exists(server_pid)
