"""The checks end to end against the reference gateway: configured, then each defect.

``loadgate run phase2-exit`` on loopback with short runs. Each defect switch of the
reference gateway must be found by its own check and by nothing else: the other
checks' gates still pass. Assertions are on counts and gate outcomes; the one
latency gate is lopsided: a buffered stream's first token waits ~7 × 50 ms = 350 ms
against a 250 ms budget; a relayed one waits well under a millisecond — plus, on a
starved machine, the stub's own lateness (each delay is an over-estimate by up to
``stream.realtime.derivation_bound_ms``: one run here saw a 200 ms stall of the
whole machine, hence the wide margin).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.run_args import WIDE_HARNESS_LIMITS

pytestmark = pytest.mark.timeout(240)

GATES = (
    'gates={"upstream.assertions.failed" = "== 0", "stream.token_delay_ms.p99" = "< 250", '
    '"stream.realtime.buffered" = "== 0", "gateway.metrics_lint.problems" = "== 0", '
    '"integrity.violations" = "== 0", "requests.error_rate" = "< 0.001"}'
)
CHECK_GATES = {
    "upstream.assertions.failed",
    "stream.token_delay_ms.p99",
    "stream.realtime.buffered",
    "gateway.metrics_lint.problems",
}
FAST = [
    "--set", "stub.port=0",
    "--set", "stub.ttft_ms=5",
    "--set", "stub.itl_ms=50",
    "--set", "stub.output_tokens=8",
    "--set", "load.max_tokens=8",
    "--set", "load.warmup=0.5s",
    "--set", "load.duration=3s",
    "--set", "load.concurrency=8",
    "--set", "load.endpoints={chat = 1.0, responses = 1.0, messages = 1.0}",
    "--set", "auth.keys=20",
    *WIDE_HARNESS_LIMITS,
    "--set", GATES,
    # The revocation and tenant probes send requests the gateway forwards but the load
    # does not count: off here, where shares of forwarded requests are asserted exactly.
    "--set", "probes.revocation.url=",
    "--set", "probes.tenants.share=0",
]  # fmt: skip


def run_exit_profile(tmp: Path, *sets: str) -> tuple[int, dict[str, Any]]:
    out = tmp / "result.json"
    extra = [a for s in sets for a in ("--set", s)]
    env = dict(os.environ, LOADGATE_RUNS_DIR=str(tmp / "runs"))
    proc = subprocess.run(
        [sys.executable, "-m", "loadgate", "run", "phase2-exit", *FAST, *extra, "--out", str(out)],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )
    assert out.exists(), proc.stderr[-2000:]
    data: dict[str, Any] = json.loads(out.read_text())
    return proc.returncode, data


def failed_gates(result: dict[str, Any]) -> set[str]:
    return {g["name"] for g in result["gates"] if not g["passed"]}


def test_configured_every_check_passes(tmp_path: Path) -> None:
    rc, r = run_exit_profile(tmp_path)
    assert failed_gates(r) == set(), r["reasons"]
    assert r["verdict"] == "pass" and rc == 0
    a = r["upstream"]["assertions"]
    assert a["checked"] > 0 and a["failed"] == 0
    assert set(a["by_rule"]) == {
        "require_system", "require_headers.x-agent-id", "forbid_headers.authorization"
    }  # fmt: skip
    # The control group went straight to the stub without a directive: not counted.
    assert r["harness"]["control"]["requests"] > 0
    rt = r["by_mode"]["stream"]["realtime"]
    assert rt["streams"] > 0 and rt["buffered"] == 0
    lint = r["gateway"]["metrics_lint"]
    assert lint["series"] > 0 and lint["problems"] == 0 and lint["missing"] == 0


def test_a_share_without_the_directive_fails_the_assertions_only(tmp_path: Path) -> None:
    rc, r = run_exit_profile(tmp_path, "gateway.reference.defect_skip_directive=0.25")
    assert failed_gates(r) & CHECK_GATES == {"upstream.assertions.failed"} and rc == 1
    a = r["upstream"]["assertions"]
    # Every 4th request the gateway forwarded went without the directive (exact share).
    assert a["failed"] == a["by_rule"]["require_system"] == a["checked"] // 4
    assert a["by_rule"]["require_headers.x-agent-id"] == 0
    assert len(a["examples"]) == 5


def test_a_buffering_gateway_fails_the_stream_checks_only(tmp_path: Path) -> None:
    rc, r = run_exit_profile(tmp_path, "gateway.reference.defect_buffer_streams=true")
    assert failed_gates(r) & CHECK_GATES == {
        "stream.token_delay_ms.p99", "stream.realtime.buffered"
    } and rc == 1  # fmt: skip
    rt = r["by_mode"]["stream"]["realtime"]
    assert rt["buffered"] == rt["streams"] > 0
    assert r["upstream"]["assertions"]["failed"] == 0


def test_a_badly_named_metric_fails_the_lint_only(tmp_path: Path) -> None:
    rc, r = run_exit_profile(tmp_path, "gateway.reference.defect_bad_metric=true")
    assert failed_gates(r) & CHECK_GATES == {"gateway.metrics_lint.problems"} and rc == 1
    rules = {(p["metric"], p["rule"]) for p in r["gateway"]["metrics_lint"]["details"]}
    assert rules == {
        ("gateway_key_requests", "counter_total"), ("gateway_key_requests", "high_cardinality")
    }  # fmt: skip
    assert r["by_mode"]["stream"]["realtime"]["buffered"] == 0
