"""ab: run order, side parsing and profile rewriting (pure; no runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadgate.errors import UsageError
from loadgate.pipeline.ab import SideSpec, parse_side, plan_rounds, profile_for_side, result_path
from loadgate.profile import load_profile


def test_rounds_alternate_and_counterbalance() -> None:
    assert plan_rounds(1) == ["a", "b"]
    assert plan_rounds(4) == ["a", "b", "b", "a", "a", "b", "b", "a"]
    order = plan_rounds(6)
    # every side runs once per round, and on average at the same position in time
    assert order.count("a") == order.count("b") == 6
    mean_pos = {s: sum(i for i, x in enumerate(order) if x == s) / 6 for s in "ab"}
    assert mean_pos["a"] == mean_pos["b"]
    with pytest.raises(UsageError):
        plan_rounds(0)


def test_parse_side() -> None:
    assert parse_side("http://127.0.0.1:4000") == SideSpec("target", "http://127.0.0.1:4000")
    assert parse_side(" https://gw.example/v1 ") == SideSpec("target", "https://gw.example/v1")
    cmd = "./gw --upstream {stub_url} --listen 127.0.0.1:{port}"
    assert parse_side(cmd) == SideSpec("command", cmd)
    with pytest.raises(UsageError, match="--b: 'gw' is neither a URL"):
        parse_side("gw", "--b")
    with pytest.raises(UsageError, match="--a: empty"):
        parse_side("  ")


def test_profile_for_side() -> None:
    base = load_profile("smoke", ["gateway.reference.delay_ms=1"])
    prof, target = profile_for_side(base, parse_side("http://127.0.0.1:9"))
    assert prof is base and target == "http://127.0.0.1:9"
    prof, target = profile_for_side(base, parse_side("gw --up {stub_url} --port {port}"))
    assert target is None
    assert prof.gateway.kind == "command"
    assert prof.gateway.command == "gw --up {stub_url} --port {port}"
    # everything else is the same profile
    assert prof.load == base.load and prof.stub == base.stub
    assert prof.gateway.reference == base.gateway.reference
    assert base.gateway.kind == "reference"  # the original is untouched


def test_result_paths() -> None:
    assert result_path(Path("out"), "a", 1) == Path("out/a-1.json")
    assert result_path(Path("out"), "b", 3) == Path("out/b-3.json")
