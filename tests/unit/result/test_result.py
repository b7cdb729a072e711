"""Result file: atomic write, schema check on load, machine and git metadata."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic_core import PydanticSerializationError

from loadgate.errors import UsageError
from loadgate.result import (
    GIT_ENV_VARS,
    SCHEMA,
    Result,
    collect_environment,
    git_info,
    load_result,
    to_json,
    write_result,
)
from loadgate.result.model import Git
from tests.support.paths import DATA


def _result(**extra: object) -> Result:
    return Result.model_validate(
        {"schema": SCHEMA, "verdict": "pass", "exit_code": 0, "reasons": [], **extra}
    )


def test_write_leaves_only_the_final_file(tmp_path: Path) -> None:
    out = tmp_path / "runs" / "result.json"
    write_result(_result(gates=[]), out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["result.json"]
    assert json.loads(out.read_text())["verdict"] == "pass"
    assert out.stat().st_mode & 0o777 == 0o644  # readable by a CI artifact uploader


def test_round_trip(tmp_path: Path) -> None:
    summary = {"count": 3, "mean": 1, "stdev": 0, "min": 1, "p50": 1, "p90": 1, "p99": 1.25}
    original = _result(
        metrics={"overhead_ms": {**summary, "p999": 1.25, "max": 1.25}}, profile={"name": "x"}
    )
    path = tmp_path / "r.json"
    write_result(original, path)
    loaded = load_result(path)
    assert loaded == original
    assert isinstance(loaded, Result) and loaded.metrics["overhead_ms"].p99 == 1.25
    assert (loaded.verdict, loaded.exit_code) == ("pass", 0)


def test_a_file_written_by_loadgate_0_1_keeps_loading() -> None:
    # A real run's result.json, written by loadgate 0.1.0 before results were typed.
    loaded = load_result(DATA / "v1_smoke_run.json")
    assert isinstance(loaded, Result)
    raw = json.loads((DATA / "v1_smoke_run.json").read_text())
    assert loaded.schema_ == "loadgate.result/1" == raw["schema"]
    assert loaded.verdict == raw["verdict"] and loaded.exit_code == raw["exit_code"]
    assert loaded.metrics["overhead_ms"].p99 == raw["metrics"]["overhead_ms"]["p99"]
    assert loaded.requests.sent == raw["requests"]["sent"]
    assert loaded.gateway.drain is not None and loaded.gateway.drain.ok is True
    assert loaded.histograms == raw["histograms"]
    # Nothing the file said is lost or changed on the way back out.
    assert _missing_or_changed(raw, json.loads(to_json(loaded))) == []


def _missing_or_changed(old: Any, new: Any, path: str = "") -> list[str]:
    """Paths where ``new`` lacks or alters something ``old`` has (added keys are fine)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for k, v in old.items():
            out += _missing_or_changed(v, new[k], f"{path}.{k}") if k in new else [f"{path}.{k}"]
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            p
            for i, (a, b) in enumerate(zip(old, new, strict=True))
            for p in _missing_or_changed(a, b, f"{path}[{i}]")
        ]
    return [] if old == new else [path]


def test_json_is_strict_nan_and_numpy_made_plain(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    write_result(
        _result(a=float("nan"), b=float("inf"), c=2.5, d=7, e=(1, 2), duration_s=float("nan")),
        path,
    )
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    data = json.loads(text)
    assert (data["a"], data["b"], data["c"], data["d"], data["e"]) == (None, None, 2.5, 7, [1, 2])
    assert data["duration_s"] is None


def test_unserialisable_value_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    with pytest.raises(PydanticSerializationError):
        write_result(_result(bad=object()), path)
    assert list(tmp_path.iterdir()) == []


def test_failed_replace_keeps_the_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "r.json"
    write_result(_result(run=1), path)

    def refuse(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        write_result(_result(run=2), path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]
    assert json.loads(path.read_text())["run"] == 1


def test_overwrite_replaces_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    write_result(_result(payload="x" * 10_000), path)
    write_result(_result(payload="short"), path)
    assert load_result(path).model_extra == {"payload": "short"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", r"bad\.json: not valid JSON \(line 1"),
        ("[1, 2]", r"bad\.json: schema: missing"),
        ('{"verdict": "pass"}', r"bad\.json: schema: missing"),
        ('{"schema": "loadgate.result/0"}', r"bad\.json: schema: unsupported 'loadgate.result/0'"),
    ],
)
def test_load_rejects_non_results(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(UsageError, match=message):
        load_result(path)


def test_load_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"absent\.json: cannot read"):
        load_result(tmp_path / "absent.json")


def test_exit_code_defaults_to_failure_when_absent() -> None:
    absent = Result.model_validate({})
    assert absent.exit_code != 0 and absent.verdict != "pass"
    assert Result.model_validate({"exit_code": 3}).exit_code == 3


def test_environment_metadata() -> None:
    env = collect_environment().model_dump()
    for key in ("host", "machine_id", "cpus", "cpu_model", "python", "platform", "kernel"):
        assert env[key], key
    assert len(env["machine_id"]) == 12 and int(env["machine_id"], 16) >= 0
    assert env["machine_id"] == collect_environment().machine_id  # stable
    assert set(env["packages"]) == {
        "aiohttp",
        "uvloop",
        "hdrhistogram",
        "numpy",
        "prometheus-client",
        "pydantic",
        "httptools",
        "msgspec",
        "psutil",
        "loadgate",
    }
    assert env["packages"]["numpy"] == np.__version__
    assert env["packages"]["loadgate"]


def _clear_git_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in GIT_ENV_VARS:
        monkeypatch.delenv(var, raising=False)


def test_git_info_from_env_in_precedence_order(monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_git_env(monkeypatch)
    assert git_info(None) is None
    monkeypatch.setenv("CI_COMMIT_SHA", "c" * 40)
    assert git_info(None) == Git(commit="c" * 40, dirty=None, source="CI_COMMIT_SHA")
    monkeypatch.setenv("GITHUB_SHA", "b" * 40)
    assert git_info(None) == Git(commit="b" * 40, dirty=None, source="GITHUB_SHA")
    monkeypatch.setenv("LOADGATE_GIT_COMMIT", "a" * 40)
    assert git_info(None) == Git(commit="a" * 40, dirty=None, source="LOADGATE_GIT_COMMIT")


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_git_info_from_repo(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", *args],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    git("init", "-q")
    (tmp_path / "f.txt").write_text("1")
    git("add", "f.txt")
    git("commit", "-q", "-m", "one")
    head = git("rev-parse", "HEAD")
    assert git_info(tmp_path) == Git(commit=head, dirty=False, source="git")
    (tmp_path / "f.txt").write_text("2")
    assert git_info(tmp_path) == Git(commit=head, dirty=True, source="git")


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_git_info_not_a_repo(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"--git-dir .*not a git work tree"):
        git_info(tmp_path)
