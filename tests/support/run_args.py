"""``--set`` arguments the integration tests' short runs share.

These tests assert behaviour (exit codes, counts, arithmetic), never speed: a busy
2-core CI runner must not turn their runs ``invalid``, so the harness limits are wide,
and the stub answers in a few milliseconds so that a run of seconds sees hundreds of
requests.
"""

from __future__ import annotations

__all__ = ["QUICK_STUB", "WIDE_HARNESS_LIMITS"]

#: harness limits no loaded machine reaches (validity is tested on its own, with
#: lopsided values, in tests/unit/judge)
WIDE_HARNESS_LIMITS = [
    "--set", "harness.max_cpu_percent=100",
    "--set", "harness.max_loop_lag_p99_ms=1000",
    "--set", "harness.max_stub_lateness_p99_ms=1000",
    "--set", "harness.max_send_lag_p99_ms=1000",
]  # fmt: skip

#: a stub on any free port, 5 ms to the first of 4 tokens 1 ms apart
QUICK_STUB = [
    "--set", "stub.port=0",
    "--set", "stub.ttft_ms=5",
    "--set", "stub.itl_ms=1",
    "--set", "stub.output_tokens=4",
    "--set", "load.max_tokens=4",
]  # fmt: skip
