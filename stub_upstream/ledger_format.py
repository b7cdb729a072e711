"""Wire format of the stub's ledger, shared by the stub and the harness.

One fixed-size (88-byte) little-endian record per request the stub answered (DESIGN §2).
The harness pulls records from ``GET /_loadgate/ledger`` as raw bytes and views
them with ``numpy.frombuffer(body, dtype=LEDGER_DTYPE)``: no JSON on either side
of a path that carries hundreds of thousands of records.

All ``t_*`` fields are ``time.monotonic_ns()`` values: the same clock as the
load generator's on this host. ``t_sched_first`` is when the stub *meant* to
write the first token; ``t_first_write - t_sched_first`` is its timer lateness.
A field that does not apply (e.g. no first write on an early error) is 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = [
    "BOOT_ID",
    "CLOCK_FIELDS",
    "CONTROL_PREFIX",
    "ENDPOINT_CODES",
    "ENDPOINT_NAMES",
    "FAULT_CODES",
    "FAULT_NAMES",
    "LEDGER_DTYPE",
]

#: Control endpoints live under this path on the stub (never proxied: the
#: harness calls the stub directly).
#:   GET  /_loadgate/ledger?cursor=C -> records since cursor C (raw bytes);
#:        response headers ``x-loadgate-cursor`` (pass back next time) and
#:        ``x-loadgate-lost`` (records overwritten before they were read)
#:   POST /_loadgate/reset           -> forget all records, on every worker
#:   GET  /_loadgate/info            -> JSON: workers, capacity, config
CONTROL_PREFIX = "/_loadgate"

#: The record fields that are CLOCK_MONOTONIC times (0 = does not apply).
CLOCK_FIELDS = ("t_recv", "t_first_write", "t_last_write", "t_sched_first")


def _boot_id() -> str | None:
    # One kernel, one CLOCK_MONOTONIC: the boot id names it (containers share it).
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


#: This kernel's boot id (None where the kernel does not say).
BOOT_ID = _boot_id()

LEDGER_DTYPE = np.dtype(
    [
        ("corr", "<u8"),  # correlation id; 0 when the request carried none
        ("t_recv", "<i8"),  # request fully read
        ("t_first_write", "<i8"),  # first body bytes handed to the socket
        ("t_last_write", "<i8"),  # last body bytes handed to the socket
        ("t_sched_first", "<i8"),  # intended first-write time (timer lateness)
        ("auth_hash", "<u8"),  # first 8 bytes of blake2b(auth header value), 0 if none
        ("bytes", "<u4"),  # response body bytes written
        ("tokens", "<u4"),  # output tokens written
        ("status", "<u2"),  # HTTP status sent
        ("endpoint", "u1"),  # ENDPOINT_CODES
        ("stream", "u1"),  # 1 if SSE
        ("fault", "u1"),  # FAULT_CODES (0 = none)
        ("worker", "u1"),  # stub worker process index
        ("model", "S18"),  # requested model, truncated
        # streams: the largest amount any token's write trailed the nominal schedule
        # t_sched_first + k * itl (timer lateness, jitter, stalls), µs; 0 otherwise
        ("stream_dev_us", "<u4"),
        ("checks_failed", "<u2"),  # bit i: upstream rule i failed (assertions.Rules)
        ("checked", "u1"),  # 1 if the upstream rules were evaluated on this request
        ("_pad", "V1"),
    ]
)
assert LEDGER_DTYPE.itemsize == 88

ENDPOINT_CODES: dict[str, int] = {
    "other": 0,
    "chat": 1,
    "responses": 2,
    "messages": 3,
    "embeddings": 4,
    "models": 5,
}
ENDPOINT_NAMES: dict[int, str] = {v: k for k, v in ENDPOINT_CODES.items()}

FAULT_CODES: dict[str, int] = {
    "none": 0,
    "429": 1,
    "500": 2,
    "503": 3,
    "529": 4,
    "midstream_error": 5,
    "stall": 6,
    "reset": 7,
    "slow_headers": 8,
    "auth": 9,  # 401 from the upstream auth check
    "bad_request": 10,  # 4xx for malformed input
    "history": 11,  # answered, but the resent conversation history was not the stub's
}
FAULT_NAMES: dict[int, str] = {v: k for k, v in FAULT_CODES.items()}
