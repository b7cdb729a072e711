"""Key pool: deterministic keys, rank CDF arithmetic, header forms, invalid share, files."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from loadgate.errors import UsageError
from loadgate.load.keys import (
    INVALID_PREFIX,
    KeyPool,
    generate_keys,
    header_for,
    rank_cdf,
    run_provisioning,
)
from loadgate.profile import AuthSpec


def test_generated_keys_are_deterministic_distinct_and_prefixed() -> None:
    a = generate_keys("sk-lg-", 500, seed=7)
    assert a == generate_keys("sk-lg-", 500, seed=7)
    assert len(set(a)) == 500
    assert all(k.startswith("sk-lg-") for k in a)
    assert a[3].startswith("sk-lg-000003")
    assert generate_keys("sk-lg-", 500, seed=8) != a


def test_zipf_cdf_is_exact_arithmetic() -> None:
    cdf = rank_cdf(3, "zipf", 1.0)
    h = 1 + 1 / 2 + 1 / 3
    assert cdf == pytest.approx([1 / h, 1.5 / h, 1.0], rel=1e-12)
    assert cdf[-1] == 1.0


def test_uniform_cdf_and_probability() -> None:
    pool = KeyPool.from_spec(AuthSpec(keys=4, distribution="uniform"), Path("."))
    assert list(pool.cdf) == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert [pool.probability(r) for r in range(4)] == pytest.approx([0.25] * 4)


def test_zipf_probability_ratio_follows_s() -> None:
    pool = KeyPool.from_spec(AuthSpec(keys=1000, zipf_s=1.1), Path("."))
    assert pool.probability(0) / pool.probability(9) == pytest.approx(10**1.1)
    assert sum(pool.probability(r) for r in range(1000)) == pytest.approx(1.0)


def test_draw_maps_rng_uniform_to_rank_by_the_cdf() -> None:
    """The rank drawn is the first whose CDF exceeds the RNG's uniform: replay the RNG."""
    pool = KeyPool.from_spec(AuthSpec(keys=50, zipf_s=1.2, header="x-api-key"), Path("."))
    rng, replay = random.Random(3), random.Random(3)
    for _ in range(200):
        u = replay.random()
        expected = next(r for r, c in enumerate(pool.cdf) if c > u)
        assert pool.draw(rng) == ("x-api-key", pool.keys[expected])


def test_draws_are_reproducible_per_seed() -> None:
    pool = KeyPool.from_spec(AuthSpec(keys=100, invalid_ratio=0.1), Path("."))

    def run(seed: int) -> list[str]:
        rng = random.Random(seed)
        return [pool.draw_key(rng) for _ in range(100)]

    assert run(9) == run(9)
    assert run(9) != run(10)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("authorization", ("authorization", "Bearer k1")),
        ("x-api-key", ("x-api-key", "k1")),
        ("api-key", ("api-key", "k1")),
        ("none", None),
    ],
)
def test_header_forms(header: str, expected: tuple[str, str] | None) -> None:
    assert header_for(header, "k1") == expected


def test_header_none_pool_draws_nothing() -> None:
    pool = KeyPool.from_spec(AuthSpec(header="none", keys=3), Path("."))
    assert pool.draw(random.Random(1)) is None


def test_invalid_ratio_share_is_decided_by_the_first_uniform() -> None:
    pool = KeyPool.from_spec(AuthSpec(keys=10, invalid_ratio=0.25), Path("."))
    rng, replay = random.Random(11), random.Random(11)
    invalid = 0
    for _ in range(400):
        want_invalid = replay.random() < 0.25
        replay.random()  # the rank draw
        key = pool.draw_key(rng)
        assert key.startswith(INVALID_PREFIX) == want_invalid
        assert key.removeprefix(INVALID_PREFIX) in pool.keys
        invalid += want_invalid
    assert 0 < invalid < 400


def test_prefix_that_would_accept_invalid_keys_is_rejected() -> None:
    with pytest.raises(UsageError, match=r"auth\.prefix"):
        KeyPool.from_spec(AuthSpec(prefix="inv", invalid_ratio=0.1), Path("."))


def test_keys_file_relative_to_base_dir_in_file_order(tmp_path: Path) -> None:
    (tmp_path / "k.txt").write_text("# comment\nalpha\n\n  beta  \ngamma\n")
    pool = KeyPool.from_spec(
        AuthSpec(keys_file="k.txt", keys=999, distribution="uniform"), tmp_path
    )
    assert pool.keys == ("alpha", "beta", "gamma")
    assert len(pool) == 3


def test_missing_keys_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"nope\.txt: auth\.keys_file not found"):
        KeyPool.from_spec(AuthSpec(keys_file="nope.txt"), tmp_path)


def test_empty_keys_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("# only a comment\n\n")
    with pytest.raises(UsageError, match=r"empty\.txt: auth\.keys_file has no keys"):
        KeyPool.from_spec(AuthSpec(keys_file="empty.txt"), tmp_path)


def test_write_keys_file_round_trips(tmp_path: Path) -> None:
    spec = AuthSpec(keys=20)
    pool = KeyPool.from_spec(spec, tmp_path)
    pool.write_keys_file(tmp_path / "out" / "keys.txt")
    again = KeyPool.from_spec(spec.model_copy(update={"keys_file": "out/keys.txt"}), tmp_path)
    assert again.keys == pool.keys


async def test_provisioning_runs_with_keys_file_substituted(tmp_path: Path) -> None:
    keys = tmp_path / "my keys.txt"
    keys.write_text("a\nb\n")
    copy = tmp_path / "copy.txt"
    await asyncio.wait_for(
        run_provisioning(f"cp {{keys_file}} {copy}", keys, tmp_path / "p.log", timeout_s=20),
        30,
    )
    assert copy.read_text() == "a\nb\n"


async def test_provisioning_failure_reports_code_and_log_tail(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"exited with code 3 .*boom"):
        await asyncio.wait_for(
            run_provisioning(
                "echo boom; exit 3", tmp_path / "k.txt", tmp_path / "p.log", timeout_s=20
            ),
            30,
        )


async def test_provisioning_timeout_is_reported(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"timed out after 0\.2 s"):
        await asyncio.wait_for(
            run_provisioning("sleep 30", tmp_path / "k.txt", tmp_path / "p.log", timeout_s=0.2),
            30,
        )


def test_partitioned_pools_split_the_keys_and_keep_relative_weights() -> None:
    pool = KeyPool(
        keys=tuple(generate_keys("sk-", 7, 1)),
        header="authorization",
        cdf=tuple(rank_cdf(7, "zipf", 1.0)),
    )
    parts = [pool.partition(i, 3) for i in range(3)]
    assert [len(p) for p in parts] == [3, 2, 2]
    assert sorted(k for p in parts for k in p.keys) == sorted(pool.keys)  # each key once
    # Shard 0 holds ranks 0, 3, 6: weights 1, 1/4, 1/7, renormalised.
    total = 1 + 1 / 4 + 1 / 7
    assert parts[0].probability(0) == pytest.approx(1 / total)
    assert parts[0].probability(2) == pytest.approx((1 / 7) / total)
    assert parts[0].cdf[-1] == 1.0
    with pytest.raises(UsageError, match="shard 8 of 9"):
        pool.partition(8, 9)
