"""Could the harness have spoilt the run? Its figures against the profile's limits.

What spoils a run depends on where its timestamps came from (docs/method.md,
"The harness judging itself"):

* always: the schedule not kept (open loop: achieved vs offered rate, send lag
  after the scheduled time; closed loop: concurrency not sustained *because* the
  harness turned round late — in flight below its share of ``load.concurrency``
  with send lag past its limit), the stub late beyond its limit — the load the
  gateway saw was not the load the profile asked for. A closed-loop send lag past
  its limit with the concurrency held is a warning: the load held, and the lag is
  in no latency (closed-loop latencies start at the send). Concurrency short with
  a prompt harness is a figure: responses faster than any client turns round
  (a gateway answering 401 in 0.1 ms) are the gateway's doing;
* with kernel timestamps: the control group's overhead p99 (harness + loopback +
  stub, measured beside the load) a large share of a latency gate's budget —
  the floor leaves too little room to judge the gateway;
* with user-space timestamps, also the harness's own event-loop lag and CPU: a
  late loop stamps responses late, and that lateness lands in every latency.
  With kernel timestamps it does not, so lag and CPU are only warnings.

Pure: plain numbers in, reasons out, so the rules are unit-tested as arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence

from loadgate.judge.gates import is_latency_gate
from loadgate.profile import HarnessSpec
from loadgate.result.model import Gate, Harness

__all__ = [
    "control_reasons",
    "invalid_reasons",
    "kernel_stamped",
    "lag_warnings",
    "send_lag_warnings",
]


def kernel_stamped(harness: Harness) -> bool:
    """Both sides' arrival times came from the kernel."""
    return harness.timestamps == "kernel"


def _lag_and_cpu(harness: Harness, limits: HarnessSpec) -> list[str]:
    out: list[str] = []
    lag = harness.loop_lag_ms
    if lag is not None and lag.p99 > limits.max_loop_lag_p99_ms:
        out.append(
            f"harness event-loop lag p99 {lag.p99:.2f} ms > {limits.max_loop_lag_p99_ms} ms: "
            "loadgate read responses late, which inflates overhead: the machine is short of "
            "CPU for harness + stub + gateway (other load? load.workers helps only with a "
            "spare core)"
        )
    cpu = harness.cpu_percent
    if cpu is not None and cpu > limits.max_cpu_percent:
        out.append(
            f"harness CPU {cpu:.0f} % of a core > {limits.max_cpu_percent:.0f} %: "
            "loadgate was saturated (load.workers = N spreads it over N processes, given "
            "spare cores)"
        )
    return out


def invalid_reasons(harness: Harness, limits: HarnessSpec) -> list[str]:
    """``invalid`` reasons: each names the figure, its limit and what it means."""
    reasons = [] if kernel_stamped(harness) else _lag_and_cpu(harness, limits)
    ratio = harness.achieved_rate_ratio
    if ratio is not None and ratio < limits.min_achieved_rate_ratio:
        reasons.append(
            f"achieved/offered rate {ratio:.3f} < {limits.min_achieved_rate_ratio}: "
            "the schedule was not kept"
        )
    stub = harness.stub_timer_lateness_ms
    if stub is not None and stub.p99 > limits.max_stub_lateness_p99_ms:
        reasons.append(
            f"stub timer lateness p99 {stub.p99:.2f} ms > {limits.max_stub_lateness_p99_ms} ms:"
            " the stub upstream was short of CPU (other load on the machine? rerun when it is"
            " quiet; with a core to spare, stub.workers = 2)"
        )
    send = harness.send_lag_ms
    late = send is not None and send.p99 > limits.max_send_lag_p99_ms
    held = harness.concurrency_ratio
    if late and held is None:  # open loop (or a file without the figure)
        assert send is not None
        reasons.append(
            f"send lag p99 {send.p99:.2f} ms > {limits.max_send_lag_p99_ms} ms: requests "
            "left later than scheduled, so the gateway saw less load than the profile "
            "asked for"
        )
    elif late and held is not None and held < limits.min_concurrency_ratio:
        assert send is not None
        reasons.append(
            f"in flight {held:.3f} of load.concurrency < {limits.min_concurrency_ratio} with "
            f"send lag p99 {send.p99:.2f} ms > {limits.max_send_lag_p99_ms} ms: the harness "
            "turned round late after responses, so the gateway saw less concurrency than "
            "the profile asked for"
        )
    return reasons


def send_lag_warnings(harness: Harness, limits: HarnessSpec) -> list[str]:
    """Closed loop: a send lag past its limit while the concurrency held is said, not judged."""
    send, held = harness.send_lag_ms, harness.concurrency_ratio
    if send is None or held is None or send.p99 <= limits.max_send_lag_p99_ms:
        return []
    if held < limits.min_concurrency_ratio:
        return []  # a reason, not a warning
    return [
        f"send lag p99 {send.p99:.2f} ms > {limits.max_send_lag_p99_ms} ms (closed loop: the "
        f"harness's turnaround after a response), but {100 * held:.1f} % of load.concurrency "
        "stayed in flight: the load held, and closed-loop latencies start at the send"
    ]


def lag_warnings(harness: Harness, limits: HarnessSpec) -> list[str]:
    """With kernel timestamps, lag and CPU past their limits are said, not judged."""
    if not kernel_stamped(harness):
        return []
    return [
        f"{text.split(':')[0]}: not in the figures (kernel timestamps), but the harness was "
        "busy; a slower machine would start to miss the schedule"
        for text in _lag_and_cpu(harness, limits)
    ]


def control_reasons(gates: Sequence[Gate], harness: Harness, limits: HarnessSpec) -> list[str]:
    """Kernel timestamps: a latency gate whose budget the control group's p99 eats."""
    control = harness.control
    floor = control.p99() if control is not None else None
    if not kernel_stamped(harness) or floor is None:
        return []
    out: list[str] = []
    for g in gates:
        if not is_latency_gate(g.name) or g.op not in ("<", "<=") or g.threshold <= 0:
            continue
        if floor > limits.max_control_share * g.threshold:
            out.append(
                f"control group overhead p99 {floor:.2f} ms is "
                f"{100 * floor / g.threshold:.0f} % of {g.name}'s {g.threshold:g} ms budget "
                f"(> {100 * limits.max_control_share:.0f} %, harness.max_control_share): the "
                "harness + loopback + stub floor leaves too little room to judge the gateway"
            )
    return out
