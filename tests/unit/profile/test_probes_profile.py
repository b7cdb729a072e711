"""``[probes.revocation]`` and ``[probes.tenants]``: defaults off, bad values one line, exit 2."""

from __future__ import annotations

import pytest

from loadgate.errors import UsageError
from loadgate.profile import load_profile, parse_profile
from tests.support.cli import run_cli


def test_probes_are_off_by_default_and_phase2_exit_turns_them_on() -> None:
    p = parse_profile({}, source="p.toml")
    assert p.probes.revocation.url is None and p.probes.revocation.command is None
    assert p.probes.tenants.share == 0.0
    exit_profile = load_profile("phase2-exit")
    assert exit_profile.probes.revocation.url == "{gateway_url}/admin/keys/revoke"
    assert exit_profile.probes.tenants.share == 0.02
    assert exit_profile.gates["probes.revocation.propagation_s.max"] == "< 5"
    assert exit_profile.gates["probes.tenants.leaked"] == "== 0"


@pytest.mark.parametrize(
    ("probes", "message"),
    [
        (
            {"revocation": {"url": "http://g/r", "command": "revoke {key}"}},
            "p.toml: probes.revocation.url: set either url or command, not both",
        ),
        (
            {"revocation": {"url": "g/admin"}},
            "p.toml: probes.revocation.url: must be an http(s) URL (got 'g/admin')",
        ),
        (
            {"revocation": {"command": "revoke-it"}},
            "p.toml: probes.revocation.command: must contain {key} (the key to revoke)",
        ),
        (
            {"revocation": {"url": "http://g/r", "keys": 1000}},
            "p.toml: probes.revocation.keys: must be below auth.keys (1000)",
        ),
        (
            {"revocation": {"url": "http://g/r", "interval_ms": 0}},
            "p.toml: probes.revocation.interval_ms: must be greater than 0 (got 0)",
        ),
        (
            {"tenants": {"share": 0.9}},
            "p.toml: probes.tenants.share: must be between 0 and 0.5 (got 0.9)",
        ),
        ({"tenants": {"shares": 0.1}}, "p.toml: probes.tenants.shares: unknown key"),
    ],
)
def test_bad_probe_keys_are_one_line_naming_file_and_key(
    probes: dict[str, object], message: str
) -> None:
    with pytest.raises(UsageError) as info:
        parse_profile({"probes": probes}, source="p.toml")
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


def test_an_empty_url_turns_the_bundled_probe_off() -> None:
    p = load_profile("phase2-exit", ["probes.revocation.url=", "probes.tenants.share=0"])
    assert not p.probes.revocation.url and p.probes.tenants.share == 0


def test_reference_workers_need_redis() -> None:
    with pytest.raises(UsageError) as info:
        parse_profile({"gateway": {"reference": {"workers": 2}}}, source="p.toml")
    assert str(info.value) == (
        "p.toml: gateway.reference.workers: more than 1 needs gateway.reference.redis = true "
        "(revocations reach every worker)"
    )
    ok = parse_profile({"gateway": {"reference": {"workers": 2, "redis": True}}})
    assert ok.gateway.reference.workers == 2


def test_probes_need_client_keys() -> None:
    with pytest.raises(UsageError, match=r"probes.tenants: needs client keys"):
        parse_profile({"auth": {"header": "none"}, "probes": {"tenants": {"share": 0.1}}})


def test_a_bad_probe_set_exits_2_before_anything_starts(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "run", "phase2-gate", "--set", "probes.revocation.command=x")
    assert code == 2
    assert err == (
        "loadgate: error: --set probes.revocation.command: must contain {key} (the key to revoke)\n"
    )
