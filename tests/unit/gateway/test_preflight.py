"""Preflight's probe URL and the DEP-DOWN line format (network cases: integration)."""

from __future__ import annotations

import pytest

from loadgate.errors import DepDownError
from loadgate.gateway.preflight import preflight, probe_url


@pytest.mark.parametrize(
    ("url", "probe"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/"),
        ("http://gw.local/openai/v1", "http://gw.local/openai/v1"),
    ],
)
def test_probe_url_is_the_base_url(url: str, probe: str) -> None:
    assert probe_url(url) == probe


async def test_malformed_url_is_dep_down_with_one_line() -> None:
    with pytest.raises(DepDownError) as info:
        await preflight("http://[not-a-host/", timeout_s=1.0)
    msg = str(info.value)
    assert msg.startswith("DEP-DOWN: http://[not-a-host/ : ")
    assert "\n" not in msg
    assert info.value.exit_code == 70
