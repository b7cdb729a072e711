"""Could the harness have been the bottleneck? Its figures against the profile's limits.

Each reason names the figure, its limit and what it means for the run; past any
limit the run is ``invalid`` (exit 3) whatever the gates say: a saturated
harness inflates overhead, a late stub deflates throughput. Pure: plain numbers
in, reasons out, so the rules are unit-tested as arithmetic.
"""

from __future__ import annotations

from loadgate.profile import HarnessSpec
from loadgate.result.model import Harness

__all__ = ["invalid_reasons"]


def invalid_reasons(harness: Harness, limits: HarnessSpec) -> list[str]:
    """``invalid`` reasons: each names the figure, its limit and what it means."""
    reasons: list[str] = []
    lag = harness.loop_lag_ms
    if lag is not None and lag.p99 > limits.max_loop_lag_p99_ms:
        reasons.append(
            f"harness event-loop lag p99 {lag.p99:.2f} ms > {limits.max_loop_lag_p99_ms} ms: "
            "loadgate read responses late, which inflates overhead: the machine is short of "
            "CPU for harness + stub + gateway (other load? load.workers helps only with a "
            "spare core)"
        )
    cpu = harness.cpu_percent
    if cpu is not None and cpu > limits.max_cpu_percent:
        reasons.append(
            f"harness CPU {cpu:.0f} % of a core > {limits.max_cpu_percent:.0f} %: "
            "loadgate was saturated (load.workers = N spreads it over N processes, given "
            "spare cores)"
        )
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
            " the stub upstream was short of CPU (other load? stub.workers = 2 given a spare core)"
        )
    send = harness.send_lag_ms
    if send is not None and send.p99 > limits.max_send_lag_p99_ms:
        reasons.append(
            f"open-loop send lag p99 {send.p99:.2f} ms > {limits.max_send_lag_p99_ms} ms: "
            "requests left later than scheduled"
        )
    return reasons
