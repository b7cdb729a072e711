"""CPU placement as arithmetic: who gets which CPUs, and what the result says."""

from __future__ import annotations

import pytest

from loadgate.errors import UsageError
from loadgate.pipeline.placement import parse_cpu_list, plan_placement
from loadgate.profile import CpusSpec


def test_two_cpus_and_nothing_asked_pin_nothing() -> None:
    # Halving two CPUs would leave the harness and the stub one between them.
    for launched in (True, False):
        p = plan_placement(CpusSpec(), [0, 1], launched=launched)
        assert (p.harness, p.stub, p.gateway, p.gateway_known) == (None, None, None, launched)
        assert p.note.startswith("not pinned: two usable CPUs")


def test_two_cpus_with_one_list_asked_still_give_the_gateway_the_other() -> None:
    p = plan_placement(CpusSpec(harness=[0]), [0, 1], launched=True)
    assert (p.harness, p.stub, p.gateway) == ([0], [0], [1])
    s = plan_placement(CpusSpec(), [3, 7], launched=True, stub_cpus=[3])
    assert (s.harness, s.stub, s.gateway) == ([3], [3], [7])


def test_three_cpus_give_the_launched_gateway_its_own() -> None:
    p = plan_placement(CpusSpec(), [0, 1, 2], launched=True)
    assert (p.harness, p.stub, p.gateway, p.gateway_known) == ([0, 1], [0, 1], [2], True)
    assert "default: the gateway gets its own CPUs" in p.note


def test_eight_cpus_split_in_half_highest_to_the_gateway() -> None:
    p = plan_placement(CpusSpec(), list(range(8)), launched=True)
    assert p.gateway == [4, 5, 6, 7] and p.harness == p.stub == [0, 1, 2, 3]


def test_a_taskset_of_odd_cpus_is_respected() -> None:
    p = plan_placement(CpusSpec(), [1, 3, 5], launched=True)
    assert p.gateway == [5] and p.harness == [1, 3]


def test_profile_lists_win_and_the_rest_is_what_the_gateway_leaves() -> None:
    p = plan_placement(CpusSpec(gateway=[0], harness=[3]), [0, 1, 2, 3], launched=True)
    assert (p.harness, p.stub, p.gateway) == ([3], [1, 2, 3], [0])
    assert "default" not in p.note


def test_a_gateway_on_every_cpu_leaves_the_others_on_all_of_them() -> None:
    p = plan_placement(CpusSpec(gateway=[0, 1]), [0, 1], launched=True)
    assert p.harness == p.stub == [0, 1]


def test_stub_cpus_from_the_stub_table_are_kept() -> None:
    p = plan_placement(CpusSpec(), [0, 1, 2, 3], launched=True, stub_cpus=[0])
    assert p.stub == [0] and p.harness == [0, 1]


def test_one_cpu_or_auto_off_pins_nothing() -> None:
    one = plan_placement(CpusSpec(), [0], launched=True)
    assert (one.harness, one.stub, one.gateway) == (None, None, None)
    assert "one usable CPU" in one.note
    off = plan_placement(CpusSpec(auto=False), [0, 1], launched=True)
    assert (off.harness, off.stub, off.gateway) == (None, None, None)


def test_target_gateway_is_unknown_and_the_harness_takes_the_lower_cpus() -> None:
    p = plan_placement(CpusSpec(), [0, 1, 2, 3], launched=False)
    assert (p.harness, p.stub, p.gateway, p.gateway_known) == ([0, 1], [0, 1], None, False)
    assert "unknown to loadgate (--target): start it on the others (2,3)" in p.note
    one = plan_placement(CpusSpec(), [0], launched=False)
    assert (one.harness, one.stub) == (None, None) and "may share CPUs" in one.note
    asked = plan_placement(CpusSpec(harness=[1], stub=[1]), [0, 1], launched=False)
    assert (asked.harness, asked.stub) == ([1], [1]) and "the others (0)" in asked.note


@pytest.mark.parametrize(
    ("spec", "launched", "message"),
    [
        (CpusSpec(harness=[7]), True, "cpus.harness: CPU 7 is not usable here (usable: 0,1)"),
        (CpusSpec(stub=[]), True, "cpus.stub: give at least one CPU"),
        (CpusSpec(gateway=[1]), False, "cpus.gateway: loadgate does not launch it"),
    ],
)
def test_bad_lists_are_one_line_errors(spec: CpusSpec, launched: bool, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan_placement(spec, [0, 1], launched=launched)


def test_the_kernels_cpu_list_format() -> None:
    assert parse_cpu_list("0-2,5\n") == [0, 1, 2, 5]
    assert parse_cpu_list("3") == [3] and parse_cpu_list("") == []


def test_a_harness_under_taskset_stays_and_the_gateway_gets_the_rest() -> None:
    # loadgate started under `taskset -c 1` on a 2-CPU box: the gateway must not land on 1.
    p = plan_placement(CpusSpec(), [0, 1], launched=True, harness_cpus=[1])
    assert (p.harness, p.stub, p.gateway) == ([1], [1], [0])
    # taskset -c 0 with the stub on 1 (benchmarks/harness_floor.py): gateway-less run.
    d = plan_placement(CpusSpec(), [0, 1], launched=False, harness_cpus=[0], stub_cpus=[1])
    assert (d.harness, d.stub) == ([0], [1])
    # The profile's list beats the taskset.
    q = plan_placement(CpusSpec(harness=[0]), [0, 1], launched=True, harness_cpus=[1])
    assert (q.harness, q.gateway) == ([0], [1])


def test_a_direct_run_has_no_gateway_to_place() -> None:
    d = plan_placement(CpusSpec(), [0, 1], launched=False, direct=True, stub_cpus=[1])
    assert (d.harness, d.stub, d.gateway) == (None, [1], None)
    assert d.note == "no gateway (direct): stub on CPU 1"
    with pytest.raises(UsageError, match="there is no gateway"):
        plan_placement(CpusSpec(gateway=[0]), [0, 1], launched=False, direct=True)
