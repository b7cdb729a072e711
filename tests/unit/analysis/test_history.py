"""history: the results layout, step detection across commits, and its views."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from loadgate.analysis.history import (
    load_history,
    machine_dir,
    render_svg,
    render_table,
    store_result,
)
from loadgate.errors import UsageError
from loadgate.result.io import load_run_result
from loadgate.result.model import Result
from tests.support import synthetic
from tests.support.cli import run_cli

SVG = "{http://www.w3.org/2000/svg}"


def make_result(seed: int, **kw: Any) -> Result:
    return Result.model_validate(synthetic.make_result(seed, **kw))


def _at(i: int) -> str:
    return f"2026-01-0{i}T00:00:00+00:00"


def test_store_result_layout(tmp_path: Path) -> None:
    r = make_result(1, commit="abc123", started_at=_at(1))
    p1 = store_result(r, tmp_path)
    p2 = store_result(r, tmp_path)
    assert p1 == tmp_path / "m1" / "abc123.json"
    assert p2 == tmp_path / "m1" / "abc123.2.json"  # repeated runs are kept
    stored = load_run_result(p1)
    assert stored.git is not None and stored.git.commit == "abc123"
    assert stored.histograms == r.histograms  # the whole result, readable again
    dirty = make_result(1, commit="abc123")
    assert dirty.git is not None
    dirty.git.dirty = True
    assert store_result(dirty, tmp_path).name == "abc123+dirty.json"
    with pytest.raises(UsageError, match=r"git\.commit"):
        store_result(make_result(1), tmp_path)
    nomachine = make_result(1, commit="x")
    nomachine.environment.machine_id = None
    with pytest.raises(UsageError, match=r"environment\.machine_id"):
        store_result(nomachine, tmp_path)


def test_store_result_writes_through_the_atomic_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A rename that fails (disk full, a crash) leaves neither a half file nor a temp file.
    def failing_replace(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("loadgate.result.io.os.replace", failing_replace)
    with pytest.raises(OSError, match="No space left"):
        store_result(make_result(1, commit="abc"), tmp_path)
    assert list((tmp_path / "m1").iterdir()) == []


def _history(tmp_path: Path) -> Path:
    # c1, c2 alike; c3 is 0.5 ms slower; two runs each. Files written out of time order.
    for i, (commit, shift) in enumerate([("c3", 0.5), ("c1", 0.0), ("c2", 0.0)]):
        day = {"c1": 1, "c2": 2, "c3": 3}[commit]
        for k in range(2):
            r = make_result(10 * i + k, n=20_000, shift_ms=shift, commit=commit,
                            started_at=_at(day))  # fmt: skip
            store_result(r, tmp_path)
    return tmp_path / "m1"


def test_history_orders_by_time_and_marks_the_step(tmp_path: Path) -> None:
    entries = load_history(_history(tmp_path))
    assert [e.commit for e in entries] == ["c1", "c2", "c3"]
    assert [len(e.runs) for e in entries] == [2, 2, 2]
    assert all(isinstance(r, Result) for e in entries for r in e.runs)
    assert entries[0].step is None
    assert entries[1].step is not None and entries[1].step.exit_code == 0
    assert entries[1].step_note == "no significant change"
    assert entries[2].step is not None and entries[2].step.regressions
    assert entries[2].step_note.startswith("regression: overhead_ms.p50 +")
    f1, f3 = entries[0].figures, entries[2].figures
    assert f1.p50_ms is not None and f3.p50_ms is not None
    assert f3.p50_ms - f1.p50_ms == pytest.approx(0.5, abs=0.05)
    assert f1.rps == 1000.0 and f1.error_rate == 0.0


def test_table_text(tmp_path: Path) -> None:
    text = render_table(load_history(_history(tmp_path)), "m1")
    lines = text.splitlines()
    assert "loadgate history — machine m1" in lines[0]
    rows = [line for line in lines if line.startswith("│")]  # the data rows, not the header
    assert [r.split("│")[2].strip() for r in rows] == ["c1", "c2", "c3"]
    assert rows[2].split("│")[1].strip() == "3"  # the plot's x
    assert "regression: overhead_ms.p50" in rows[2]


def test_cli_table_and_svg(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _history(tmp_path)
    plot = tmp_path / "h.svg"
    code, out, err = run_cli(capsys, "history", str(tmp_path), "--plot", str(plot))
    assert code == 0
    assert "c1" in out and "c3" in out and "regression" in out
    assert err == f"plot written to {plot}\n"
    svg = ElementTree.fromstring(plot.read_text())  # well-formed XML
    lines = {p.get("data-series"): p for p in svg.iter(f"{SVG}path") if p.get("class") == "series"}
    assert set(lines) == {"p50", "p99"}
    assert lines["p50"].get("data-x") == "1,2,3"
    (step,) = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "rule"]  # c2 → c3
    assert step.get("data-rule") == "c3 regression" and step.get("data-value") == "3"
    line = step.find(f"{SVG}line")
    assert line is not None and line.get("stroke") == "#c0392b"


def test_svg_marks_an_improvement_in_green(tmp_path: Path) -> None:
    store_result(make_result(1, n=20_000, shift_ms=0.5, commit="a", started_at=_at(1)), tmp_path)
    store_result(make_result(2, n=20_000, commit="b", started_at=_at(2)), tmp_path)
    svg = ElementTree.fromstring(render_svg(load_history(tmp_path / "m1")))
    (step,) = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "rule"]
    assert step.get("data-rule") == "b improvement"
    line = step.find(f"{SVG}line")
    assert line is not None and line.get("stroke") == "#1e7e34"


def test_machine_choice(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"no results filed yet .*--history"):
        machine_dir(tmp_path, None)
    store_result(make_result(1, commit="a"), tmp_path)
    store_result(make_result(2, commit="a", machine="m2"), tmp_path)
    with pytest.raises(UsageError, match="choose a machine"):
        machine_dir(tmp_path, None)
    with pytest.raises(UsageError, match="no results for 'm9'"):
        machine_dir(tmp_path, "m9")
    with pytest.raises(UsageError, match="no such results directory"):
        machine_dir(tmp_path / "nope", None)
    assert machine_dir(tmp_path, "m2") == tmp_path / "m2"


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.mkdir(tmp_path / "m1")
    code, _, err = run_cli(capsys, "history", str(tmp_path))
    assert (code, err) == (2, f"loadgate: error: {tmp_path / 'm1'}: no result files\n")
    (tmp_path / "m1" / "c1.json").write_text("{")
    code, _, err = run_cli(capsys, "history", str(tmp_path))
    assert code == 2 and "c1.json: not valid JSON" in err


def test_incomparable_step_is_said_not_hidden(tmp_path: Path) -> None:
    store_result(make_result(1, commit="a", started_at=_at(1)), tmp_path)
    store_result(make_result(2, commit="b", concurrency=5, started_at=_at(2)), tmp_path)
    entries = load_history(tmp_path / "m1")
    assert entries[1].step is None
    assert entries[1].step_note.startswith("not comparable: b.json: profile settings differ")
    assert "concurrency" in entries[1].step_note


def test_svg_of_no_commit() -> None:
    svg = render_svg([])
    assert svg.startswith("<svg") and "no data" in svg
