"""compare against the same-run control group: a change the harness floor moved with is
the machine's, not a regression; one it did not explain stays a regression."""

from __future__ import annotations

import json
from typing import Any

import pytest

from loadgate.analysis.compare import (
    FLOOR,
    IMPROVEMENT,
    MACHINE_CHANGED,
    NO_CHANGE,
    REGRESSION,
    Comparison,
    Row,
    compare_results,
)
from loadgate.analysis.compare_render import render
from loadgate.analysis.floor import FLOOR_SHARE, control_p99, explains
from loadgate.analysis.history import _summarize_step
from loadgate.result.model import Result
from tests.support import synthetic

N = 20_000  # 1000 control requests per run: p99 has 10 samples beyond it
LATENCY_ROWS = [(q, m) for q in ("p50", "p90", "p99") for m in ("all", "stream", "non_stream")]


def run(seed: int, **kw: Any) -> Result:
    return Result.model_validate(synthetic.make_result(seed, n=N, **kw))


def row(c: Comparison, name: str, mode: str = "all") -> Row:
    (r,) = [r for r in c.rows if r.name == name and r.mode == mode]
    return r


# ------------------------------------------------------------------ the rule


@pytest.mark.parametrize(
    "floor,change,expected",
    [
        (0.5, 1.0, True),  # exactly half, the same way: the machine's
        (0.499, 1.0, False),
        (2.0, 1.0, True),  # the floor moved more than the row
        (-0.6, -1.0, True),  # an improvement the floor explains
        (0.6, -1.0, False),  # the floor rose while the figure fell: not the machine
        (-0.8, 1.0, False),
        (0.0, 1.0, False),
        (0.3, 0.0, False),  # nothing to explain
    ],
)
def test_explains(floor: float, change: float, expected: bool) -> None:
    assert FLOOR_SHARE == 0.5
    assert explains(floor, change) is expected


def test_a_change_the_floor_moved_with_is_the_machines() -> None:
    # The gateway's overhead rose by 1 ms, and so did the control group's by 0.8 ms.
    base = run(1, control_shift_ms=0.0)
    cand = run(2, shift_ms=1.0, control_shift_ms=0.8)
    c = compare_results([base], [cand])
    for q, mode in LATENCY_ROWS:
        r = row(c, f"overhead_ms.{q}", mode)
        assert r.verdict == MACHINE_CHANGED and r.gating, r
        assert r.note.startswith(f"control.overhead_ms.{q} (straight to the stub) moved +0.")
        assert r.note.endswith("the machine changed, not the gateway; was regression")
    assert c.regressions == [] and c.exit_code == 0
    assert c.verdict == MACHINE_CHANGED
    # p50/p90/p99 in every mode, and p99.9 of all modes (20 000 samples: 20 beyond it),
    # held against the control group's p99: its p99.9 has 1 control sample beyond it
    p999 = row(c, "overhead_ms.p999")
    assert p999.verdict == MACHINE_CHANGED and p999.note.startswith("control.overhead_ms.p99 ")
    assert len(c.machine_changed) == 10
    assert any(w.startswith("the machine changed between the runs: 10 latency") for w in c.warnings)
    # The statistics are the ones compare finds without a control group.
    plain = compare_results([run(1)], [run(2, shift_ms=1.0)])
    for q, mode in LATENCY_ROWS:
        with_floor, without = row(c, f"overhead_ms.{q}", mode), row(plain, f"overhead_ms.{q}", mode)
        assert without.verdict == REGRESSION
        assert (with_floor.change, with_floor.ci_low, with_floor.ci_high, with_floor.p_value) == (
            without.change,
            without.ci_low,
            without.ci_high,
            without.p_value,
        )
    assert c.tests == plain.tests  # control rows are not tests: Bonferroni's m is unchanged


def test_a_change_the_floor_does_not_explain_stays_a_regression() -> None:
    base = run(1, control_shift_ms=0.0)
    for floor in (0.3, -0.8):  # too small, or the other way
        c = compare_results([base], [run(2, shift_ms=1.0, control_shift_ms=floor)])
        for q, mode in LATENCY_ROWS:
            assert row(c, f"overhead_ms.{q}", mode).verdict == REGRESSION
        assert c.exit_code == 1 and c.verdict == REGRESSION
        assert not c.machine_changed
        assert not any("machine changed" in w for w in c.warnings)


def test_an_improvement_the_floor_explains_is_the_machines_too() -> None:
    c = compare_results(
        [run(1, shift_ms=1.0, control_shift_ms=1.0)], [run(2, control_shift_ms=0.0)]
    )
    r = row(c, "overhead_ms.p50")
    assert r.verdict == MACHINE_CHANGED and r.note.endswith("was improvement")
    assert c.verdict == MACHINE_CHANGED and c.exit_code == 0 and not c.improvements


def test_an_unexplained_regression_beside_a_machine_change_still_fails() -> None:
    base = run(1, control_shift_ms=0.0)
    cand = run(2, shift_ms=1.0, control_shift_ms=0.8)
    # p50 moved by 1 ms like the rest, but the control group's p50 did not.
    control = cand.harness.control
    assert control is not None
    base_control = base.harness.control
    assert base_control is not None
    control.metrics["overhead_ms"].p50 = base_control.metrics["overhead_ms"].p50
    c = compare_results([base], [cand])
    assert row(c, "overhead_ms.p50").verdict == REGRESSION
    assert row(c, "overhead_ms.p99").verdict == MACHINE_CHANGED
    assert c.exit_code == 1 and c.verdict == REGRESSION


def test_a_control_group_too_small_to_back_any_quantile_explains_nothing() -> None:
    # 400 requests: 20 in the control group, 10 on each side of its median: backed;
    # 200 requests: 10 in it, 5 beyond its median: no control quantile can be trusted.
    def pair(n: int) -> Comparison:
        base = Result.model_validate(synthetic.make_result(1, n=n, control_shift_ms=0.0))
        cand = synthetic.make_result(2, n=n, shift_ms=1.0, control_shift_ms=0.8)
        return compare_results([base], [Result.model_validate(cand)])

    assert row(pair(400), "overhead_ms.p50").verdict == MACHINE_CHANGED
    small = pair(200)
    assert row(small, "overhead_ms.p50").verdict == REGRESSION and small.exit_code == 1
    notes = [r.note for r in small.rows if r.kind == "control"]
    assert notes and all("thin tail: 10 control samples" in n for n in notes)


def test_without_a_control_group_on_both_sides_the_rule_is_off() -> None:
    c = compare_results([run(1)], [run(2, shift_ms=1.0, control_shift_ms=0.8)])
    assert row(c, "overhead_ms.p50").verdict == REGRESSION and c.exit_code == 1
    assert not [r for r in c.rows if r.kind == "control"]
    assert any(w.startswith("not every run has a control group") for w in c.warnings)
    assert c.control_p99[0] is None and c.control_p99[1] is not None
    plain = compare_results([run(1)], [run(2)])
    assert not any("control group" in w for w in plain.warnings)
    assert plain.control_p99 == (None, None)


# ------------------------------------------------------------------ the control rows


def test_control_rows_are_the_floor_never_a_regression() -> None:
    # The floor rose by 5 ms while the gateway's figures stayed put.
    base, cand = run(1, control_shift_ms=0.0), run(1, control_shift_ms=5.0)
    c = compare_results([base], [cand])
    floor = [r for r in c.rows if r.kind == "control"]
    assert [r.name for r in floor] == [
        f"control.overhead_ms.{q}" for q in ("p50", "p90", "p99", "p999")
    ]
    bc, cc = base.harness.control, cand.harness.control
    assert bc is not None and cc is not None
    for r in floor:
        q = r.name.rsplit(".", 1)[1]
        b, k = getattr(bc.metrics["overhead_ms"], q), getattr(cc.metrics["overhead_ms"], q)
        assert (r.base, r.cand, r.change) == (b, k, round(k - b, 4))
        assert r.verdict == FLOOR and not r.gating and r.ci_low is None
        assert r.note.startswith("harness floor (control group, straight to the stub)")
    assert "thin tail: 1000 control samples" in row(c, "control.overhead_ms.p999").note
    assert "thin tail" not in row(c, "control.overhead_ms.p99").note
    assert c.exit_code == 0 and c.verdict == NO_CHANGE
    assert c.control_p99 == (bc.p99(), cc.p99())
    # Without verbose, the p90 and p99.9 control rows are shown only when a latency row at
    # that quantile moved with them; here none did.
    md = render(c, "markdown")
    assert "| control.overhead_ms.p50 |" in md and "| control.overhead_ms.p99 |" in md
    assert "| control.overhead_ms.p90 |" not in md and "| control.overhead_ms.p999 |" not in md
    assert "| control.overhead_ms.p90 |" in render(c, "markdown", verbose=True)


def test_several_runs_per_side_hold_the_mean_floors() -> None:
    bases = [run(10 + i, control_shift_ms=0.1 * i) for i in range(3)]
    cands = [run(20 + i, shift_ms=1.0, control_shift_ms=1.0 + 0.1 * i) for i in range(3)]
    c = compare_results(bases, cands)
    mean = control_p99(bases)
    assert mean is not None
    each = [b.harness.control.p99() if b.harness.control else None for b in bases]
    assert mean == pytest.approx(sum(v for v in each if v is not None) / 3)
    assert c.control_p99[0] == mean
    r = row(c, "control.overhead_ms.p99")
    assert r.base == round(mean, 4)
    assert row(c, "overhead_ms.p50").verdict == MACHINE_CHANGED
    paired = compare_results(bases, cands, paired=True)
    assert row(paired, "overhead_ms.p50").verdict == MACHINE_CHANGED


# ------------------------------------------------------------------ outputs


def test_outputs_say_the_machine_changed() -> None:
    c = compare_results(
        [run(1, control_shift_ms=0.0)], [run(2, shift_ms=1.0, control_shift_ms=0.8)]
    )
    md = render(c, "markdown")
    assert md.startswith("### loadgate compare: inconclusive: the machine changed, not the gateway")
    assert "| overhead_ms.p99 | all |" in md and "| **machine changed** |" in md
    assert "| control.overhead_ms.p99 | all |" in md and "| harness floor |" in md
    # every quantile moved with the floor: every control row is shown
    assert "| control.overhead_ms.p90 |" in md and "| control.overhead_ms.p999 |" in md
    base_p99, cand_p99 = c.control_p99
    assert base_p99 is not None and cand_p99 is not None
    assert (
        f"Control group overhead p99 (the harness floor): base {base_p99:.3f} ms, "
        f"cand {cand_p99:.3f} ms; a latency change is the machine's"
    ) in md
    table = render(c, "table")
    assert "inconclusive: the machine changed" in table and "harness floor" in table
    doc = json.loads(render(c, "json"))
    assert doc["verdict"] == MACHINE_CHANGED and doc["exit_code"] == 0
    assert doc["control_overhead_p99_ms"] == {
        "base": round(base_p99, 4),
        "cand": round(cand_p99, 4),
    }
    assert doc["floor_share"] == 0.5
    assert {r["kind"] for r in doc["rows"]} == {"quantile", "rate", "scalar", "control"}
    assert _summarize_step(c).startswith("machine changed: overhead_ms.")


def test_history_step_words() -> None:
    base = run(1, control_shift_ms=0.0)
    assert _summarize_step(compare_results([base], [run(2, control_shift_ms=0.0)])) == NO_CHANGE
    worse = compare_results([base], [run(2, shift_ms=1.0, control_shift_ms=0.0)])
    assert _summarize_step(worse).startswith(f"{REGRESSION}: overhead_ms.")
    better = compare_results(
        [run(1, shift_ms=1.0, control_shift_ms=0.0)], [run(2, control_shift_ms=0.0)]
    )
    assert _summarize_step(better).startswith(f"{IMPROVEMENT}: overhead_ms.")
