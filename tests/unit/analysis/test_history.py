"""history: the results layout and step detection across commits."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

import pytest

from loadgate.analysis.history import load_history, main, render_svg, store_result
from loadgate.errors import UsageError
from tests.support.synthetic import make_result


def _at(i: int) -> str:
    return f"2026-01-0{i}T00:00:00+00:00"


def test_store_result_layout(tmp_path: Path) -> None:
    r = make_result(1, commit="abc123", started_at=_at(1))
    p1 = store_result(r, tmp_path)
    p2 = store_result(r, tmp_path)
    assert p1 == tmp_path / "m1" / "abc123.json"
    assert p2 == tmp_path / "m1" / "abc123.2.json"  # repeated runs are kept
    assert json.loads(p1.read_text())["git"]["commit"] == "abc123"
    dirty = make_result(1, commit="abc123")
    dirty["git"]["dirty"] = True
    assert store_result(dirty, tmp_path).name == "abc123+dirty.json"
    with pytest.raises(UsageError, match=r"git\.commit"):
        store_result(make_result(1), tmp_path)
    nomachine = make_result(1, commit="x")
    del nomachine["environment"]["machine_id"]
    with pytest.raises(UsageError, match=r"environment\.machine_id"):
        store_result(nomachine, tmp_path)


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
    assert entries[0].step is None
    assert entries[1].step is not None and entries[1].step.exit_code == 0
    assert entries[1].step_note == "no significant change"
    assert entries[2].step is not None and entries[2].step.regressions
    assert entries[2].step_note.startswith("regression: overhead_ms.p50 +")


def test_main_table_and_svg(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    _history(tmp_path)
    plot = tmp_path / "h.svg"
    assert main(tmp_path, None, plot) == 0
    out = capsys.readouterr().out
    assert "c1" in out and "c3" in out and "regression" in out
    svg = ElementTree.fromstring(plot.read_text())  # well-formed XML
    ns = "{http://www.w3.org/2000/svg}"
    assert len(svg.findall(f"{ns}polyline")) == 2
    (marker,) = svg.findall(f"{ns}circle")  # one step: c2 → c3
    assert marker.get("fill") == "#d62728"


def test_machine_choice(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"no results filed yet .*--history"):
        main(tmp_path, None, None)
    store_result(make_result(1, commit="a"), tmp_path)
    store_result(make_result(2, commit="a", machine="m2"), tmp_path)
    with pytest.raises(UsageError, match="choose a machine"):
        main(tmp_path, None, None)
    with pytest.raises(UsageError, match="no results for 'm9'"):
        main(tmp_path, "m9", None)
    with pytest.raises(UsageError, match="no such results directory"):
        main(tmp_path / "nope", None, None)


def test_incomparable_step_is_said_not_hidden(tmp_path: Path) -> None:
    store_result(make_result(1, commit="a", started_at=_at(1)), tmp_path)
    store_result(make_result(2, commit="b", concurrency=5, started_at=_at(2)), tmp_path)
    entries = load_history(tmp_path / "m1")
    assert entries[1].step is None
    assert entries[1].step_note.startswith("not comparable:")
    assert "concurrency" in entries[1].step_note


def test_svg_of_one_commit() -> None:
    assert render_svg([]).startswith("<svg")
