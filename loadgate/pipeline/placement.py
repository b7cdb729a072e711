"""Which CPUs the harness, the stub and a launched gateway run on (profile ``[cpus]``).

On a small machine the three share cores, and the gateway is the thing measured:
if the harness and the stub compete with it for one core, their work lands in
its latency. So by default, when loadgate launches the gateway on a machine
with at least three usable CPUs, the gateway gets half of them (at least one, the
highest-numbered) and the harness and the stub share the rest. Lists in the
profile (or a ``taskset`` around loadgate, or ``stub.cpus``) win. With
``--target`` the gateway's CPUs are unknown to loadgate: the harness and the stub
take the same lower CPUs, and the result says the gateway's placement is unknown
(start it on the others, e.g. with taskset).

With exactly two usable CPUs and nothing asked for, nothing is pinned: halving two
CPUs leaves the harness and the stub one between them, and their bursts made the
stub late: command A (phase2-gate, 60 s) was ``invalid`` in 2 of 3 runs split and in
1 of 7 unpinned; ``benchmarks/placement.py`` (20 s runs) in 1 of 10 split and none of
12 unpinned. What splitting bought, a gated overhead p99 lower by ~0.2 ms at the
median, is 1 % of the 20 ms budget; a gate that cannot give a verdict is worth less
(docs/method.md, "CPU placement").

:func:`plan_placement` is pure (tested as arithmetic); :func:`pin` applies a
plan to a process and its children (psutil).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import psutil

from loadgate.errors import UsageError
from loadgate.profile import CpusSpec

__all__ = ["Placement", "own_cpus", "parse_cpu_list", "pin", "plan_placement", "usable_cpus"]


@dataclass(frozen=True, slots=True)
class Placement:
    """CPU lists; None: not pinned (the scheduler decides)."""

    harness: list[int] | None
    stub: list[int] | None
    gateway: list[int] | None
    #: False when loadgate did not launch the gateway (``--target``)
    gateway_known: bool
    note: str


#: cgroup v2, then v1: the CPUs a container may use at all
_CPUSETS = (
    Path("/sys/fs/cgroup/cpuset.cpus.effective"),
    Path("/sys/fs/cgroup/cpuset/cpuset.effective_cpus"),
)


#: Halving this many CPUs would leave the harness and the stub one CPU between them.
_TOO_FEW_TO_HALVE = 2
_TWO_CPUS_NOTE = (
    "not pinned: two usable CPUs, and one for the harness and the stub together made the "
    "stub late (docs/method.md); [cpus] lists pin them"
)


def parse_cpu_list(text: str) -> list[int]:
    """``"0-2,5"`` (the kernel's list format) → ``[0, 1, 2, 5]``."""
    out: set[int] = set()
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return sorted(out)


def usable_cpus() -> list[int]:
    """The CPUs processes loadgate starts may run on: the container's cpuset, else all.

    Not this process's own affinity: a harness started under ``taskset -c 0`` may
    still place the stub or the gateway on CPU 1 (see :func:`own_cpus`).
    """
    for path in _CPUSETS:
        with contextlib.suppress(OSError, ValueError):
            cpus = parse_cpu_list(path.read_text())
            if cpus:
                return cpus
    return list(range(psutil.cpu_count() or 1))


def own_cpus() -> list[int]:
    """The CPUs this process is allowed now (a ``taskset`` around loadgate narrows it)."""
    return sorted(os.sched_getaffinity(0))


def _check(name: str, cpus: list[int] | None, usable: list[int]) -> list[int] | None:
    if cpus is None:
        return None
    if not cpus:
        raise UsageError(f"cpus.{name}: give at least one CPU, or leave it out")
    bad = sorted(set(cpus) - set(usable))
    if bad:
        shown = ",".join(map(str, usable))
        raise UsageError(f"cpus.{name}: CPU {bad[0]} is not usable here (usable: {shown})")
    return sorted(set(cpus))


def plan_placement(
    spec: CpusSpec,
    usable: list[int],
    *,
    launched: bool,
    stub_cpus: list[int] | None = None,
    harness_cpus: list[int] | None = None,
    direct: bool = False,
) -> Placement:
    """Where each process goes; ``launched``: loadgate starts the gateway itself.

    ``stub_cpus`` (``stub.cpus``) and ``harness_cpus`` (a ``taskset`` loadgate was
    started under) are defaults that the ``[cpus]`` lists override. ``direct``: no
    gateway at all (``calibrate``).
    """
    harness_default = spec.harness if spec.harness is not None else harness_cpus
    harness = _check("harness", harness_default, usable)
    stub = _check("stub", spec.stub if spec.stub is not None else (stub_cpus or None), usable)
    gateway = _check("gateway", spec.gateway, usable) if launched else None
    if not launched and spec.gateway is not None:
        why = "there is no gateway (direct)" if direct else "loadgate does not launch it (--target)"
        raise UsageError(f"cpus.gateway: {why}")
    if direct:
        return Placement(
            harness, stub, None, False, "no gateway (direct): " + _sides(harness, stub)
        )
    asked = harness is not None or stub is not None or gateway is not None
    if spec.auto and len(usable) == _TOO_FEW_TO_HALVE and not asked:
        return Placement(None, None, None, launched, _TWO_CPUS_NOTE)
    if launched and spec.auto and len(usable) >= 2:
        given = gateway is not None
        if gateway is None:
            # The upper half, less CPUs the harness or the stub already hold (a taskset,
            # stub.cpus); if that leaves nothing, whatever they leave; else the upper half.
            taken = set(harness or ()) | set(stub or ())
            upper = usable[-max(1, len(usable) // 2) :]
            free = [c for c in usable if c not in taken]
            gateway = [c for c in upper if c not in taken] or free or upper
        # The others default to what the gateway leaves (all of it, if it takes all).
        rest = [c for c in usable if c not in gateway] or usable
        harness = harness if harness is not None else rest
        stub = stub if stub is not None else rest
        note = (
            f"gateway on CPU {_text(gateway)}, harness on CPU {_text(harness)}, "
            f"stub on CPU {_text(stub)}"
            + ("" if given else " (default: the gateway gets its own CPUs)")
        )
    elif not launched and spec.auto and len(usable) >= 2:
        # The launched layout's harness side, so a gateway started on the other CPUs
        # (taskset -c …) gets the same split; loadgate cannot check that it was.
        rest = usable[: len(usable) - max(1, len(usable) // 2)]
        harness = harness if harness is not None else rest
        stub = stub if stub is not None else rest
        others = _text([c for c in usable if c not in set(harness) | set(stub)]) or "none"
        note = (
            f"harness on CPU {_text(harness)}, stub on CPU {_text(stub)}; the gateway's CPUs "
            f"are unknown to loadgate (--target): start it on the others ({others}), e.g. "
            "with taskset, or it shares CPUs with the harness"
        )
    elif not launched:
        note = "the gateway's CPUs are unknown to loadgate (--target): it may share CPUs"
    elif len(usable) < 2 and spec.auto:
        note = "one usable CPU: harness, stub and gateway share it"
    else:
        note = "as the profile's [cpus] says"
    return Placement(harness, stub, gateway, launched, note)


def _sides(harness: list[int] | None, stub: list[int] | None) -> str:
    where = [f"{name} on CPU {_text(c)}" for name, c in (("harness", harness), ("stub", stub)) if c]
    return ", ".join(where) or "not pinned"


def _text(cpus: list[int]) -> str:
    return ",".join(map(str, cpus))


def pin(pid: int, cpus: list[int] | None) -> None:
    """Put process ``pid`` and every child it has now on ``cpus`` (None: leave it)."""
    if cpus is None:
        return
    with contextlib.suppress(psutil.Error, OSError):
        proc = psutil.Process(pid)
        for p in [proc, *proc.children(recursive=True)]:
            with contextlib.suppress(psutil.Error, OSError):
                p.cpu_affinity(cpus)
