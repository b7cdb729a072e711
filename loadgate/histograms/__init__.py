"""How latencies become numbers: HDR recording, summaries, .hlog export.

The metric names live here, free of numpy and hdrh, so what only needs the names
(gate parsing, profile validation) does not pay for the recording machinery.
"""

__all__ = ["BATCHED_METRICS", "HISTOGRAM_BATCHES", "METRICS", "MODES"]

METRICS = (
    "overhead_ms",
    "e2e_ms",
    "ingress_ms",
    "egress_ms",
    "ttft_ms",
    "ttft_overhead_ms",
    "itl_ms",
    "e2e_uncorrected_ms",
    "token_delay_ms",
)
MODES = ("stream", "non_stream")
# The figures compare tests also get time batches (result "histogram_batches"): 20 of
# them, so compare can merge neighbours into fewer, fuller batches for tail quantiles.
BATCHED_METRICS = ("overhead_ms", "ttft_overhead_ms", "e2e_ms")
HISTOGRAM_BATCHES = 20
