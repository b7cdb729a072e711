"""The reference gateway's keys-file tenants, revocable validator and worker flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from reference_gateway import parse_args
from reference_gateway._auth import AuthCache, KeyValidator, Principal, parse_keys


def test_keys_file_lines_make_tenants_with_the_union_of_their_agents() -> None:
    keys = parse_keys("# c\nka1 acme a1\nka2 acme a2\nkg globex g1\nplain\nkt solo\n")
    acme = Principal("acme", frozenset({b"a1", b"a2"}))
    assert keys["ka1"] == acme and keys["ka2"] == acme
    assert keys["kg"] == Principal("globex", frozenset({b"g1"}))
    assert keys["plain"] is True
    assert keys["kt"] == Principal("solo", frozenset())  # a tenant with no agent: none allowed


async def test_a_revoked_key_is_invalid_at_its_next_miss(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    path.write_text("k1 acme a1\n")
    validator = KeyValidator("sk-", path)
    cache = AuthCache(8, 0.0, validator)
    assert isinstance(await cache.check("k1"), Principal)
    validator.revoke("k1")
    assert isinstance(cache.lookup("k1"), Principal)  # still cached: not yet evicted
    cache.evict("k1")
    assert await cache.check("k1") is False
    assert (cache.hits, cache.misses) == (1, 2)


def test_worker_flags_repeat_every_setting_on_the_shared_port() -> None:
    cfg = parse_args(
        ["--upstream", "http://127.0.0.1:9,http://127.0.0.1:10", "--workers", "3", "--redis-url", "redis://x:1/0",
         "--admin-key", "adm", "--revoke-propagation-ms", "250", "--port", "0"]
    )  # fmt: skip
    argv = cfg.worker_argv(41000)
    again = parse_args(argv)
    assert again.port == 41000 and again.workers == 1 and again.reuse_port
    assert (again.redis_url, again.admin_key, again.revoke_propagation_ms) == (
        "redis://x:1/0", "adm", 250.0,
    )  # fmt: skip
    assert again.upstreams == cfg.upstreams == ("http://127.0.0.1:9", "http://127.0.0.1:10")
    assert again.cache_size == cfg.cache_size


def test_several_workers_with_an_admin_key_need_redis(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse_args(["--upstream", "http://127.0.0.1:9", "--workers", "2", "--admin-key", "a"])
    assert info.value.code == 2
    assert "--workers > 1 with --admin-key needs --redis-url" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(["--upstream", "http://127.0.0.1:9", "--tenant-leak-share", "2"])
