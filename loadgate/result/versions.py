"""Result schema versions and their loaders, in pyperf's manner.

A file names its version in ``schema``. Each version this loadgate can read has
a loader that turns the file's JSON into today's classes
(:mod:`loadgate.result.model`); a file of an unknown version is refused with one
line naming it. Adding keys is compatible and does not bump the version (the
models keep unknown keys); a key that changes meaning or goes away does, and the
old version keeps its loader.

History:

    loadgate.result/1  (loadgate 0.1.0)  first version: verdict/reasons/exit_code,
                       gates, metrics + by_mode (ms), requests, integrity,
                       upstream, gateway, harness, timeseries, histograms (base64
                       HdrHistogram, µs), profile (redacted), environment, git,
                       started_at, duration_s, run_dir; sweep (kind = "sweep"):
                       steps, knee. Added later, compatibly: histogram_batches
                       (20 time batches of the compared histograms, for compare's
                       batch-means intervals); harness.limits.max_send_lag_p99_ms
                       and floor_warn_share.
                       loadgate 0.2.0, compatibly: gates[].decided and
                       undecided_reason; harness.timestamps, timestamp_sources,
                       clock, deltas_same_read_ratio (kernel arrival stamps);
                       harness.control (same-run control group), placement,
                       concurrency_ratio, limits.max_control_share;
                       harness.send_lag_ms also in closed loop (was null there);
                       gateway.drain.refused; sweep step values as floats;
                       sweep steps[].harness.control_overhead_p99_ms;
                       harness.first_token_same_read_ratio,
                       harness.limits.min_concurrency_ratio.
                       loadgate 0.3.0, compatibly (each None / absent when not
                       configured): upstream.assertions, upstream.records_by_stub;
                       by_mode.stream.realtime and the token_delay_ms metric;
                       gateway.metrics_lint; probes.{witness, revocation, tenants};
                       trace, sessions (with by_turn); goodput; shard, shards[],
                       window (sharded runs and `loadgate merge`);
                       harness.cross_clock_requests, stub_clocks; sweep: frontier,
                       steps[].goodput_ratio, steps[].metrics.*.p99_low/p99_high.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from loadgate.errors import UsageError
from loadgate.result.model import SCHEMA, Result, SweepResult

__all__ = ["LOADERS", "load_document"]


def _load_v1(data: Mapping[str, Any]) -> Result | SweepResult:
    if data.get("kind") == "sweep":
        return SweepResult.model_validate(data)
    return Result.model_validate(data)


#: schema name → loader; today's version is :data:`~loadgate.result.model.SCHEMA`.
LOADERS: dict[str, Callable[[Mapping[str, Any]], Result | SweepResult]] = {
    "loadgate.result/1": _load_v1,
}
assert SCHEMA in LOADERS


def _where(exc: ValidationError) -> str:
    err = exc.errors()[0]
    path = ".".join(str(p) for p in err["loc"])
    return f"{path}: {err['msg']}" if path else str(err["msg"])


def load_document(data: Any, source: str) -> Result | SweepResult:
    """Today's typed result from a parsed file; ``source`` names it in errors."""
    if not isinstance(data, Mapping) or "schema" not in data:
        raise UsageError(f"{source}: schema: missing (not a loadgate result file)")
    loader = LOADERS.get(str(data["schema"]))
    if loader is None:
        known = ", ".join(LOADERS)
        raise UsageError(
            f"{source}: schema: unsupported {data['schema']!r} (this loadgate reads {known})"
        )
    try:
        return loader(data)
    except ValidationError as exc:
        raise UsageError(f"{source}: {_where(exc)}") from None
