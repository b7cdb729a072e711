"""The revocation probe's hooks (url, command) against the in-process reference gateway.

The gateway runs in the test's loop with its admin endpoint; the probe revokes keys
through a POST or a command, then probes them. Counts and statuses are asserted; the
only timing is a lopsided one (a 60 s propagation never lands in a 1 s probe).
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from loadgate.probes.revocation import KeyProbe, PlannedRevocation, RevocationProbe, summarize
from loadgate.profile import Profile, parse_profile
from tests.integration.test_reference_gateway_http import gateway
from tests.support.rawhttp_peers import upstream

pytestmark = pytest.mark.timeout(60)
MS = 1_000_000

REVOKE_SCRIPT = """\
import json, sys, urllib.request
req = urllib.request.Request(
    sys.argv[1], data=json.dumps({"key": sys.argv[2]}).encode(),
    headers={"authorization": "Bearer adm", "content-type": "application/json"},
)
urllib.request.urlopen(req, timeout=10)
"""


def _profile(**revocation: object) -> Profile:
    return parse_profile(
        {"stub": {"output_tokens": 4}, "probes": {"revocation": {"interval_ms": 20, **revocation}}}
    )


async def _probe(
    profile: Profile, url: str, keys: list[str], watch_ms: int = 400
) -> list[KeyProbe]:
    now = time.monotonic_ns()
    plan = [PlannedRevocation(i, k, now + (50 + 30 * i) * MS) for i, k in enumerate(keys)]
    probe = RevocationProbe(
        profile, plan, gateway_url=url, nonce=5, stop_ns=now + (100 + watch_ms) * MS
    )
    return await asyncio.wait_for(probe.run(asyncio.Event()), 30)


async def test_url_hook_revokes_and_every_key_lands() -> None:
    async with upstream() as up, gateway(up, admin_key="adm") as gw:
        url = f"http://127.0.0.1:{gw.port}"
        profile = _profile(
            url="{gateway_url}/admin/keys/revoke", headers={"authorization": "Bearer adm"}
        )
        keys = await _probe(profile, url, ["sk-lg-a", "sk-lg-b"])
    figs = summarize(keys, profile.probes.revocation, measure_start_ns=0)
    assert (figs.revoked, figs.never_rejected, figs.hook_failed) == (2, 0, 0)
    assert all(k.baseline_status == 200 for k in figs.keys)
    assert all(k.probes > 3 and k.rejections == k.probes for k in figs.keys)  # landed at once
    assert figs.propagation_s.max is not None and figs.bound_s is not None
    assert gw.validator.revoked == {"sk-lg-a", "sk-lg-b"}


async def test_command_hook_with_the_key_substituted(tmp_path: Path) -> None:
    script = tmp_path / "revoke.py"
    script.write_text(REVOKE_SCRIPT)
    async with upstream() as up, gateway(up, admin_key="adm") as gw:
        url = f"http://127.0.0.1:{gw.port}"
        cmd = f"{sys.executable} {script} {url}/admin/keys/revoke {{key}}"
        profile = _profile(command=cmd)
        keys = await _probe(profile, url, ["sk-lg-it's"])  # quoted for the shell
    figs = summarize(keys, profile.probes.revocation, measure_start_ns=0)
    assert (figs.revoked, figs.hook_failed, figs.never_rejected) == (1, 0, 0)
    assert gw.validator.revoked == {"sk-lg-it's"}


async def test_failing_hooks_and_a_revocation_that_never_lands(tmp_path: Path) -> None:
    async with upstream() as up, gateway(up, admin_key="adm", revoke_propagation_ms=60_000) as gw:
        url = f"http://127.0.0.1:{gw.port}"
        wrong = _profile(url=f"{url}/admin/keys/revoke", headers={"authorization": "Bearer no"})
        failed = await _probe(wrong, url, ["sk-lg-a"])
        exits = _profile(command="echo refused >&2; exit 3 # {key}")
        exited = await _probe(exits, url, ["sk-lg-b"])
        slow = _profile(url=f"{url}/admin/keys/revoke", headers={"authorization": "Bearer adm"})
        never = await _probe(slow, url, ["sk-lg-c"])
    a = summarize(failed, wrong.probes.revocation, 0)
    assert a.hook_failed == 1 and a.keys[0].hook_error == (
        f"POST {url}/admin/keys/revoke: status 401"
    )
    b = summarize(exited, exits.probes.revocation, 0)
    assert b.keys[0].hook_error == "command exited with code 3: refused"
    c = summarize(never, slow.probes.revocation, 0)
    assert (c.revoked, c.never_rejected) == (1, 1)
    assert c.propagation_s.max is None and c.keys[0].rejections == 0 and c.keys[0].probes > 3
