"""What the client saw of one request: the unit every later stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ERROR_CLASSES", "INTEGRITY_CLASSES", "Observation", "RequestSpec"]

ERROR_CLASSES = (
    "connect",
    "timeout",
    "reset",
    "http_4xx",
    "http_429",
    "http_5xx",
    "stream_error",
    "protocol",
)
INTEGRITY_CLASSES = (
    "cross_talk",
    "missing_tokens",
    "out_of_order",
    "truncated",
    "malformed_event",
    "corrupted",
    "wrong_embedding",
    "history_mismatch",  # sessions: the stub was resent a history it did not answer
)


@dataclass(slots=True, frozen=True)
class RequestSpec:
    """One request to send, fully decided before it is sent."""

    corr: int
    endpoint: str  # "chat" | "responses" | "messages" | "embeddings"
    stream: bool
    model: str
    prompt_tokens: int
    max_tokens: int
    expect_tokens: int  # min(stub output_tokens, max_tokens): integrity reference
    auth: tuple[str, str] | None = None  # (header name, value), e.g. ("authorization", "Bearer k")
    extra_headers: tuple[tuple[str, str], ...] = ()
    #: names another tenant's agent (probes.tenants): tallied apart from the load
    cross_tenant: bool = False
    #: the conversation as (role, text), system first if any, instead of the filler
    #: prompt (trace replay, sessions); the marker is appended to the last text
    messages: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class Observation:
    """Timestamps are ``time.monotonic_ns()``; 0 means "did not happen"."""

    corr: int
    endpoint: str
    stream: bool
    t_intended: int
    t_send: int = 0
    t_first_byte: int = 0
    t_first_token: int = 0
    t_last_byte: int = 0
    status: int = 0
    error: str | None = None
    tokens: int = 0
    token_times: list[int] = field(default_factory=list)
    #: tokens complete after each delta, when deltas are not one token each (a gateway
    #: re-chunked the stream); None: delta k is token k
    delta_tokens: list[int] | None = None
    violation: str | None = None
    bytes_in: int = 0
    #: sent straight to the stub: the same-run control group (not gateway traffic)
    control: bool = False
    #: a cross-tenant probe request (probes.tenants): not an error, not in histograms
    cross_tenant: bool = False
