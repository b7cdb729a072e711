"""What the handler takes from headers: the correlation id and the auth hash."""

from __future__ import annotations

import hashlib

import pytest

from stub_upstream import content
from stub_upstream.handler import _cached_blake64, auth_hash


@pytest.mark.parametrize(
    "text",
    ["-000000000000001", "+00000000000000f", "0x0000000000000f", " 0000000000000f ",
     "0000_0000_00000f", "000000000000000g", "00000000000000f\n", "0" * 15, "0" * 17],
)  # fmt: skip
def test_corr_id_header_is_exactly_16_hex_digits(text: str) -> None:
    assert content.parse_corr_id(text) is None


def test_corr_id_round_trip() -> None:
    assert content.parse_corr_id("00000000000000Ff") == 0xFF
    assert content.parse_corr_id(content.format_corr_id(2**64 - 1)) == 2**64 - 1


def test_auth_hash_value_and_bounded_cache() -> None:
    def want(v: str) -> int:
        return int.from_bytes(hashlib.blake2b(v.encode()).digest()[:8], "little")

    assert auth_hash("") == 0
    assert auth_hash("Bearer sk-1") == want("Bearer sk-1")
    before = _cached_blake64.cache_info().currsize
    for i in range(50):  # long values are hashed, never kept: they could fill memory
        assert auth_hash(f"{i:04d}" + "k" * 60_000) == want(f"{i:04d}" + "k" * 60_000)
    assert _cached_blake64.cache_info().currsize == before
