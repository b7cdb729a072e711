"""``loadgate run phase2-exit``'s revocation and tenant checks against the reference gateway.

Three short runs of the whole phase2-exit profile through the real CLI: configured
correctly (every gate of the profile passes, the gateway running two workers that learn
of revocations over a throwaway Redis), with a
revocation that takes 8 s to reach the auth check (only the propagation gate fails),
and with a gateway that admits a quarter of cross-tenant requests (only the leak gate
fails). Each defect is found by its own check and by nothing else. Outcomes and counts
are asserted, never speed: 8 s against a 5 s gate is lopsided on any machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from loadgate.gateway.postgres_server import find_pg_bin
from loadgate.gateway.redis_server import find_redis_server
from tests.integration.test_run import FAST, loadgate, only_result
from tests.support.postgres import SKIP_REASON

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(240),
    # phase2-exit's witness writes trace rows into a throwaway PostgreSQL
    pytest.mark.skipif(find_pg_bin() is None, reason=SKIP_REASON),
]

SHORT = [
    *FAST,
    "--set", "auth.keys=100",  # a short window's compulsory misses stay under 10 %
    "--set", "probes.revocation.keys=2",
]  # fmt: skip
ONE_WORKER = ["--set", "gateway.reference.workers=1", "--set", "gateway.reference.redis=false"]


def gates(result: dict[str, Any]) -> dict[str, bool]:
    return {g["name"]: g["passed"] for g in result["gates"]}


@pytest.mark.redis
@pytest.mark.skipif(
    find_redis_server() is None,
    reason="Debian's redis-server is not installed: scripts/dev.py test installs it",
)
def test_phase2_exit_checks_pass_on_the_reference_gateway_with_redis(tmp_path: Path) -> None:
    proc = loadgate(
        "run", "phase2-exit", "-q", *SHORT,
        "--set", "load.duration=6s",
        "--set", "gateway.reference.workers=2",  # both learn of each revocation over Redis
        cwd=tmp_path,
    )  # fmt: skip
    result = only_result(tmp_path)
    assert proc.returncode == 0, (proc.stdout[-3000:], gates(result))
    rev, ten = result["probes"]["revocation"], result["probes"]["tenants"]
    assert (rev["revoked"], rev["never_rejected"], rev["baseline_rejected"]) == (2, 0, 0)
    assert rev["propagation_s"]["max"] < 5 and rev["bound_s"] is not None
    assert all(k["rejections"] > 0 and k["baseline_status"] == 200 for k in rev["keys"])
    assert ten["tried"] > 0 and ten["leaked"] == 0
    assert set(ten["by_status"]) == {"403"}
    assert result["requests"]["failed"] == 0  # revoked keys left the load's pool in time
    assert "Key revocation and tenant isolation" in proc.stdout
    log = next((tmp_path / "runs").glob("*/gateway.log")).read_text()
    assert "2 workers on port" in log
    for key in rev["keys"]:  # every worker landed every revocation, told over Redis
        assert log.count(f"key revoked: {key['key']}") == 2


def test_a_revocation_that_takes_8_s_fails_only_the_propagation_gate(tmp_path: Path) -> None:
    proc = loadgate(
        "run", "phase2-exit", "-q", *SHORT, *ONE_WORKER,
        "--set", "load.duration=24s",  # keys revoked at 3 s and 9 s: 15 s left to land
        "--set", "gateway.reference.revoke_propagation_ms=8000",
        cwd=tmp_path,
    )  # fmt: skip
    result = only_result(tmp_path)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert {n for n, ok in gates(result).items() if not ok} == {
        "probes.revocation.propagation_s.max"
    }
    rev = result["probes"]["revocation"]
    assert rev["never_rejected"] == 0
    # 8 s in the gateway, plus at most one probe interval and the harness's turnaround
    assert 8.0 <= rev["propagation_s"]["max"] < 8.0 + 1.0
    assert all(k["propagation_s"] >= 8.0 for k in rev["keys"])


def test_a_tenant_leak_fails_only_the_leak_gate(tmp_path: Path) -> None:
    proc = loadgate(
        "run", "phase2-exit", "-q", *SHORT, *ONE_WORKER,
        "--set", "load.duration=4s",
        "--set", "probes.tenants.share=0.1",
        "--set", "gateway.reference.tenant_leak_share=0.25",
        cwd=tmp_path,
    )  # fmt: skip
    result = only_result(tmp_path)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert {n for n, ok in gates(result).items() if not ok} == {"probes.tenants.leaked"}
    ten = result["probes"]["tenants"]
    assert ten["leaked"] > 0 and ten["examples"]
    # every 4th cross-tenant request admitted: about a quarter, never more than a bit
    assert ten["leaked"] <= ten["tried"] // 4 + 1
    assert result["requests"]["failed"] == 0  # leaked or refused, never a load error
