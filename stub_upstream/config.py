"""The stub's settings, defined once: a pydantic model every entry point reads.

The same :class:`StubConfig` is the ``[stub]`` table of a loadgate profile
(loadgate's ``StubSpec`` extends it), the flags of ``python -m stub_upstream``
and ``loadgate stub`` (generated from these fields: :mod:`stub_upstream.cli`),
and what :class:`~stub_upstream.process.StubProcess` hands its child (as JSON).
A field's description is its help text everywhere; ``flag`` in its extra
metadata names its command-line flag when that differs from ``--field-name``.

Validation happens on construction: a bad value raises ``pydantic.ValidationError``
(a ``ValueError``) naming the field. Cross-field rules (fault names and rates)
raise with the offending key first in the message (``faults.gremlins: …``), so a
caller can name the full path.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from stub_upstream.assertions import UpstreamRules
from stub_upstream.ledger_format import FAULT_CODES

__all__ = ["INJECTABLE_FAULTS", "StubConfig", "flag_of"]

#: Faults a rate (or the ``x-stub-fault`` header) can inject. ``auth`` and
#: ``bad_request`` are outcomes of the request itself, never injected; ``history``
#: marks an answer whose request resent a wrong conversation (stub_upstream.history).
INJECTABLE_FAULTS: tuple[str, ...] = tuple(
    name for name in FAULT_CODES if name not in ("none", "auth", "bad_request", "history")
)


def _f(default: Any, description: str, flag: str | None = None, **bounds: Any) -> Any:
    extra: dict[str, Any] | None = {"flag": flag} if flag else None
    return Field(default, description=description, json_schema_extra=extra, **bounds)


class StubConfig(BaseModel):
    """Latency model, faults and limits of one stub server (all its workers)."""

    model_config = ConfigDict(
        extra="forbid", strict=True, frozen=True, populate_by_name=True, allow_inf_nan=False
    )

    host: str = _f("127.0.0.1", "Address the stub binds.")
    port: int = _f(18000, "Port the stub binds (0 = any free port).", ge=0, le=65535)
    ttft_ms: float = _f(50.0, "Time to first token, ms.", ge=0)
    itl_ms: float = _f(10.0, "Inter-token interval, ms.", ge=0)
    output_tokens: int = _f(
        16, "Tokens per answer (capped by the request's max_tokens).", "--tokens", ge=1, le=65_536
    )
    jitter_ms: float = _f(0.0, "Uniform [0, jitter) added to every deadline, seeded.", ge=0)
    workers: int = _f(1, "Stub worker processes (SO_REUSEPORT).", ge=1, le=64)
    seed: int = _f(1, "Seed of jitter and fault draws.")
    faults: dict[str, float] = Field(
        default_factory=dict,
        description=f"Fault name → rate 0..1 ({', '.join(INJECTABLE_FAULTS)}).",
        json_schema_extra={"flag": "--fault"},
    )
    stall_ms: float = _f(2000.0, "Length of a stall or slow-headers fault, ms.", ge=0)
    retry_after_s: float = _f(1.0, "retry-after sent with injected 429/503, s.", ge=0)
    no_retry: bool = _f(False, "Send x-should-retry: false with injected faults.")
    expected_keys: list[str] = Field(
        default_factory=list,
        description="Upstream keys the stub accepts ([] = no auth check).",
        json_schema_extra={"flag": "--expect-key"},
    )
    embedding_dims: int = _f(16, "Embedding vector length.", ge=1)
    ledger_capacity: int = _f(1_048_576, "Ledger records per stub worker ring.", ge=1)
    max_body_bytes: int = _f(4 * 1024 * 1024, "Largest request body accepted (else 413).", ge=1)
    head_timeout_s: float = _f(10.0, "A request head must arrive within this, s (else 408).", gt=0)
    body_timeout_s: float = _f(
        30.0, "A request body must arrive within this after its head, s (else 408).", gt=0
    )
    keepalive_timeout_s: float = _f(
        75.0, "An idle keep-alive connection closes after this, s.", gt=0
    )
    assertions: UpstreamRules | None = Field(
        None,
        description="Rules checked on every API request (JSON; loadgate sets them from "
        "[checks.upstream]); failures go to the ledger's checks_failed bits.",
        json_schema_extra={"json": True},
    )
    clock_offset_ns: int = _f(
        0,
        "TESTS ONLY: added to every ledger time and to the clock /_loadgate/info reports, "
        "as a stub on another machine's monotonic clock would read (docs/distributed.md).",
    )

    @model_validator(mode="after")
    def _faults_known_and_bounded(self) -> StubConfig:
        for name, rate in self.faults.items():
            if name not in INJECTABLE_FAULTS:
                raise ValueError(
                    f"faults.{name}: unknown fault (one of {', '.join(INJECTABLE_FAULTS)})"
                )
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"faults.{name}: rate must be between 0 and 1 (got {rate:g})")
        if sum(self.faults.values()) > 1.0 + 1e-9:
            raise ValueError("faults: fault rates add up to more than 1")
        return self


def flag_of(name: str) -> str:
    """The command-line flag of a :class:`StubConfig` field."""
    extra = StubConfig.model_fields[name].json_schema_extra
    flag = extra.get("flag") if isinstance(extra, dict) else None
    return str(flag) if flag else "--" + name.replace("_", "-")
