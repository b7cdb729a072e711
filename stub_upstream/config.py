"""The stub's configuration: one frozen-by-convention dataclass shared by the CLI,
the server, the subprocess launcher and the harness (``loadgate.pipeline.run.stub_config``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stub_upstream.ledger_format import FAULT_CODES

__all__ = ["INJECTABLE_FAULTS", "StubConfig"]

#: Faults a rate (or the ``x-stub-fault`` header) can inject. ``auth`` and
#: ``bad_request`` are outcomes of the request itself, never injected.
INJECTABLE_FAULTS: tuple[str, ...] = tuple(
    name for name in FAULT_CODES if name not in ("none", "auth", "bad_request")
)


@dataclass(slots=True)
class StubConfig:
    """Latency model, faults and limits of one stub server (all workers)."""

    host: str = "127.0.0.1"
    port: int = 18000  # 0 = any free port (reported through the ready file)
    ttft_ms: float = 50.0
    itl_ms: float = 10.0
    output_tokens: int = 16
    jitter_ms: float = 0.0  # uniform [0, jitter) added to every deadline, seeded
    workers: int = 1
    seed: int = 1
    faults: dict[str, float] = field(default_factory=dict)  # fault name -> rate 0..1
    stall_ms: float = 2000.0  # mid-stream stall and slow-headers delay
    retry_after_s: float = 1.0
    no_retry: bool = False  # send x-should-retry: false on injected faults
    expected_keys: list[str] = field(default_factory=list)  # [] = no auth check
    embedding_dims: int = 16
    ledger_capacity: int = 1_048_576  # records per worker ring
    max_body_bytes: int = 4 * 1024 * 1024
    # Read timeouts: a request head must arrive within head_timeout_s of its first
    # byte, its body within body_timeout_s of the head (else 408 and close); an idle
    # keep-alive connection closes after keepalive_timeout_s.
    head_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keepalive_timeout_s: float = 75.0

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field."""
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port: {self.port} is not a TCP port")
        for name in ("ttft_ms", "itl_ms", "jitter_ms", "stall_ms", "retry_after_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0")
        if not 1 <= self.output_tokens <= 65_536:
            raise ValueError("output_tokens: must be in 1..65536")
        if not 1 <= self.workers <= 64:
            raise ValueError("workers: must be in 1..64")
        if self.embedding_dims < 1:
            raise ValueError("embedding_dims: must be >= 1")
        if self.ledger_capacity < 1:
            raise ValueError("ledger_capacity: must be >= 1")
        if self.max_body_bytes < 1:
            raise ValueError("max_body_bytes: must be >= 1")
        for name in ("head_timeout_s", "body_timeout_s", "keepalive_timeout_s"):
            if not getattr(self, name) > 0:  # also rejects NaN
                raise ValueError(f"{name}: must be > 0")
        for name, rate in self.faults.items():
            if name not in INJECTABLE_FAULTS:
                raise ValueError(f"faults.{name}: unknown fault (one of {INJECTABLE_FAULTS})")
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"faults.{name}: rate {rate} is not in 0..1")
        if sum(self.faults.values()) > 1.0 + 1e-9:
            raise ValueError("faults: rates add up to more than 1")
