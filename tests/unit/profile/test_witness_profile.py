"""``[probes.witness]`` and ``trace_db``: what a profile may say; one-line errors."""

from __future__ import annotations

from typing import Any

import pytest

from loadgate.errors import UsageError
from loadgate.profile import load_profile, parse_profile

REF = {"kind": "reference", "reference": {"trace_db": True}}


def _parse(witness: dict[str, Any], gateway: dict[str, Any] | None = None) -> None:
    parse_profile({"probes": {"witness": witness}, "gateway": gateway or REF}, source="p.toml")


def test_off_by_default_and_the_bundled_exit_profile_turns_it_on() -> None:
    assert parse_profile({}).probes.witness.kind == "off"
    p = load_profile("phase2-exit")
    w = p.probes.witness
    assert (w.kind, w.dsn, w.sample, w.interval_s, w.timeout_s) == ("sql", "auto", 0.05, 0.02, 5.0)
    assert p.gateway.reference.trace_db is True
    assert p.gates["probes.witness.latency_ms.p99"] == "< 500"
    assert p.gates["probes.witness.missing"] == "== 0"


@pytest.mark.parametrize(
    ("witness", "gateway", "message"),
    [
        ({"kind": "sql"}, None, 'probes.witness.dsn: kind = "sql" needs a dsn'),
        ({"kind": "sql", "dsn": "auto"}, {"kind": "reference"}, '"auto" needs gateway.kind'),
        ({"kind": "sql", "dsn": "redis://x"}, None, "must be a postgresql:// DSN"),
        ({"kind": "sql", "dsn": "auto", "query": "select 1"}, None, "must use $1"),
        ({"kind": "http"}, None, 'probes.witness.url: kind = "http" needs a url'),
        ({"kind": "http", "url": "ftp://x/{corr_id}"}, None, "must be an http(s) URL"),
        (
            {"kind": "http", "url": "{gateway_url}/admin/traces?corr_id={corr_id}"},
            None,
            "needs gateway.drain_check = false",
        ),
        ({"kind": "sql", "dsn": "auto", "sample": 0}, None, "probes.witness.sample"),
        ({"kind": "sql", "dsn": "auto", "colour": 1}, None, "probes.witness.colour"),
        ({}, {"kind": "command", "command": "gw", "reference": {"trace_db": True}}, "trace_db"),
    ],
)
def test_bad_witness_settings_are_one_line_errors(
    witness: dict[str, Any], gateway: dict[str, Any] | None, message: str
) -> None:
    with pytest.raises(UsageError) as exc:
        _parse(witness, gateway)
    text = str(exc.value)
    assert text.startswith("p.toml: ") and message in text and "\n" not in text


def test_an_http_witness_through_the_gateway_needs_no_drain_check() -> None:
    url = "{gateway_url}/admin/traces?corr_id={corr_id}"
    _parse({"kind": "http", "url": url}, {**REF, "drain_check": False})
