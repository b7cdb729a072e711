"""``[slo]``: bounds are positive numbers; a goodput gate needs a bound."""

from __future__ import annotations

import pytest

from loadgate.errors import UsageError
from loadgate.profile import parse_profile


def _error(data: dict[str, object]) -> str:
    with pytest.raises(UsageError) as info:
        parse_profile(data, source="p.toml")
    return str(info.value)


def test_slo_bounds_load_and_default_to_not_set() -> None:
    p = parse_profile({"slo": {"ttft_ms": 200, "itl_ms": 20.5}})
    assert (p.slo.ttft_ms, p.slo.itl_ms, p.slo.e2e_ms, p.slo.overhead_ms) == (200, 20.5, None, None)
    assert parse_profile({}).slo.model_dump() == dict.fromkeys(
        ("ttft_ms", "itl_ms", "e2e_ms", "overhead_ms")
    )


def test_a_bad_slo_key_or_value_is_one_line_naming_it() -> None:
    assert "slo.ttft" in _error({"slo": {"ttft": 200}})
    assert "slo.e2e_ms" in _error({"slo": {"e2e_ms": -1}})


def test_a_goodput_gate_without_bounds_is_refused_at_load() -> None:
    message = _error({"gates": {"goodput.ratio": "> 0.99"}})
    assert "gates.goodput.ratio" in message and "[slo]" in message
    ok = parse_profile({"slo": {"overhead_ms": 5}, "gates": {"goodput.ratio": "> 0.99"}})
    assert ok.gates == {"goodput.ratio": "> 0.99"}
