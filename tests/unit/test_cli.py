"""The CLI through its real entry point: one-line errors, exit codes, no tracebacks.

``run`` is not exercised end to end here (the lead's integration tests do);
every error below is raised before the runner is imported.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loadgate.cli import split_compare_files
from loadgate.errors import UsageError
from tests.support.cli import run_cli
from tests.support.paths import ROOT

_cli = run_cli


def _profile(tmp_path: Path, body: str) -> str:
    path = tmp_path / "bad.toml"
    path.write_text(body)
    return str(path)


@pytest.mark.parametrize(
    ("body", "key", "detail"),
    [
        ("[load]\nbogus = 1\n", "load.bogus", "unknown key"),
        ('[load]\nconcurrency = "x"\n', "load.concurrency", "must be an integer"),
        ('[load]\nduration = "-1s"\n', "load.duration", "must not be negative"),
        ("[load]\nstream_ratio = 1.5\n", "load.stream_ratio", "must be between 0 and 1 (got 1.5)"),
        ("[load]\nconcurrency = 5\nrate = 10\n", "load.concurrency", "not both"),
        (
            "[load]\nendpoints = { completions = 1.0 }\n",
            "load.endpoints.completions",
            "unknown endpoint",
        ),
        ("[stub.faults]\nboom = 0.1\n", "stub.faults.boom", "unknown fault"),
        ('[stub.faults]\n"500" = 2\n', "stub.faults.500", "between 0 and 1"),
        ('[gates]\n"overhead_ms.p99" = "below 20"\n', "gates.overhead_ms.p99", "<op> <number>"),
        ('[gateway]\nkind = "nginx"\n', "gateway.kind", "must be one of"),
        ('[gateway]\nkind = "command"\n', "gateway.command", "needs a command"),
        (
            '[gateway.env]\nTOKEN = "${LG_SURELY_UNSET_VAR}"\n',
            "gateway.env.TOKEN",
            "LG_SURELY_UNSET_VAR",
        ),
    ],
)
def test_profile_errors_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, body: str, key: str, detail: str
) -> None:
    ref = _profile(tmp_path, body)
    code, out, err = _cli(capsys, "run", ref)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith(f"loadgate: error: {ref}: {key}: ")
    assert detail in err
    assert "Traceback" not in err


def test_set_of_unknown_key(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(capsys, "run", "smoke", "--set", "load.durration=5s")
    assert code == 2
    assert err == "loadgate: error: --set load.durration: unknown key (did you mean 'duration'?)\n"


def test_wrong_git_dir_is_refused_before_the_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Raised before the runner starts anything: no stub, no gateway, no run directory.
    code, _, err = _cli(capsys, "run", "smoke", "--git-dir", str(tmp_path))
    assert code == 2
    assert err.startswith(f"loadgate: error: --git-dir {tmp_path}: not a git work tree")
    assert len(err.strip().splitlines()) == 1


def test_set_of_bad_value(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(capsys, "run", "smoke", "--set", "load.stream_ratio=7")
    assert (code, err) == (
        2,
        "loadgate: error: --set load.stream_ratio: must be between 0 and 1 (got 7)\n",
    )


def test_unknown_profile(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(capsys, "run", "no-such-profile")
    assert code == 2
    assert err.startswith("loadgate: error: no-such-profile: no such profile")


@pytest.mark.parametrize(
    "argv",
    [
        ("run",),
        ("run", "smoke", "--bogus"),
        ("run", "smoke", "--metrics-port", "many"),
        ("nosuchcommand",),
        ("ab", "smoke", "--a", "x"),
    ],
)
def test_typer_usage_errors_are_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    code, _, err = _cli(capsys, *argv)
    assert code == 2
    assert err.startswith("loadgate: error: ") and err.count("\n") == 1, err


def test_sweep_step_lists(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(capsys, "sweep", "smoke", "--concurrency", "8,x")
    assert (code, err) == (
        2,
        "loadgate: error: --concurrency: expected comma-separated integers (got '8,x')\n",
    )
    code, _, err = _cli(capsys, "sweep", "smoke")
    assert code == 2 and "--concurrency" in err
    code, _, err = _cli(capsys, "sweep", "smoke", "--concurrency", "8", "--rates", "10")
    assert code == 2 and "not both" in err


def test_stub_fault_errors(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(capsys, "stub", "--fault", "500")
    assert code == 2 and "--fault: '500': expected NAME=RATE" in err and err.count("\n") == 1
    code, _, err = _cli(capsys, "stub", "--fault", "boom=0.1")
    assert code == 2 and "loadgate stub: error: --fault boom: unknown fault" in err


def test_compare_format_checked(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(capsys, "compare", "a.json", "b.json", "--format", "xml")
    assert (code, err) == (
        2,
        "loadgate: error: --format: must be table, markdown or json (got 'xml')\n",
    )


def test_profiles_lists_bundled_with_first_comment(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(capsys, "profiles")
    assert code == 0
    lines = out.splitlines()
    names = [line.split()[0] for line in lines]
    assert {"phase2-gate", "smoke", "calibrate", "faults", "soak"} <= set(names)
    phase2 = next(line for line in lines if line.startswith("phase2-gate"))
    assert "p99 proxy overhead < 20 ms" in phase2


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(capsys, "--version")
    assert code == 0 and out.startswith("loadgate ")
    code, out, _ = _cli(capsys, "run", "--help")
    assert code == 0 and "--target" in out and "--set" in out


P = Path


@pytest.mark.parametrize(
    ("files", "base", "cand", "want_base", "want_cand"),
    [
        (["a.json", "b.json"], [], [], [P("a.json")], [P("b.json")]),
        (["a1", "a2", "--vs", "b1", "b2"], [], [], [P("a1"), P("a2")], [P("b1"), P("b2")]),
        (["a1", "--vs=b1", "b2"], [], [], [P("a1")], [P("b1"), P("b2")]),
        ([], [P("a1"), P("a2")], [P("b1")], [P("a1"), P("a2")], [P("b1")]),
        (["a1", "a2"], [], [P("b1")], [P("a1"), P("a2")], [P("b1")]),
        (["b1", "b2"], [P("a1")], [], [P("a1")], [P("b1"), P("b2")]),
    ],
)
def test_compare_file_spellings(
    files: list[str],
    base: list[Path],
    cand: list[Path],
    want_base: list[Path],
    want_cand: list[Path],
) -> None:
    assert split_compare_files(files, base, cand) == (want_base, want_cand)


@pytest.mark.parametrize(
    "files",
    [
        ["a.json"],
        ["a", "b", "c"],
        ["a", "--vs"],
        ["--vs", "b"],
        ["a", "--vs", "b", "--vs", "c"],
        ["a", "-x", "b"],
    ],
)
def test_compare_file_spellings_rejected(files: list[str]) -> None:
    with pytest.raises(UsageError):
        split_compare_files(files, [], [])


def test_python_dash_m_entry_point_no_traceback(tmp_path: Path) -> None:
    ref = _profile(tmp_path, "[load]\nstream_ratio = 1.5\n")
    proc = subprocess.run(
        [sys.executable, "-m", "loadgate", "run", ref],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert (
        proc.stderr
        == f"loadgate: error: {ref}: load.stream_ratio: must be between 0 and 1 (got 1.5)\n"
    )
    assert proc.stdout == ""


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--target", "not-a-url"], "loadgate: error: --target 'not-a-url': not an http(s) URL"),
        (["--out", "/proc/nope/result.json"], "loadgate: error: --out /proc/nope/result.json:"),
        (["--set", "load.rate=1e9"], "loadgate: error: --set load.rate: must be at most 1e+06"),
    ],
)
def test_bad_run_options_are_one_line_and_start_nothing(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    args: list[str],
    expected: str,
) -> None:
    monkeypatch.setenv("LOADGATE_RUNS_DIR", str(tmp_path / "runs"))
    code, _out, err = _cli(capsys, "run", "smoke", "--set", "stub.port=0", *args)
    assert code == 2
    assert err.startswith(expected) and err.count("\n") == 1, err
    assert not (tmp_path / "runs").exists()  # nothing started, nothing written


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shard", "3/3"], "--shard '3/3': expected i/N with 0 <= i < N"),
        (["--shard", "0/2", "--start-at", "soon"], "--start-at 'soon': not UNIX seconds"),
        (["--start-at", "100"], "--start-at needs --shard i/N"),
        (["--shard", "0/200"], "load.concurrency = 4 cannot be split over 200 shards"),
    ],
)
def test_shard_options_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    message: str,
) -> None:
    monkeypatch.delenv("LOADGATE_SHARDS", raising=False)
    code, _, err = _cli(capsys, "run", "smoke", "--set", "load.concurrency=4", *args)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_merge_refuses_a_result_that_is_not_a_shards(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from loadgate.result import Result, write_result

    plain = write_result(Result(), tmp_path / "plain.json")
    code, _, err = _cli(capsys, "merge", str(plain), "-o", str(tmp_path / "m.json"))
    assert code == 2 and "plain.json: not a shard's result" in err, err
    assert not (tmp_path / "m.json").exists()
