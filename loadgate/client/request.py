"""One request end to end: build, send, decode, check → :class:`Observation`.

Owns the mapping from what happened on the wire to the Observation's fields
and error classes (ARCHITECTURE "The Observation"). Server misbehaviour never
raises out of :func:`perform`; it becomes ``error`` (the request failed) or
``violation`` (it succeeded with the wrong content). Integrity is checked only
for 2xx responses without a stream error.

Timing fields come from the transport (:mod:`loadgate.client.transport`): ``t_send`` when
the request bytes were handed to the transport, the others when the bytes were
read in ``data_received``. ``t_first_token`` is the arrival of the first
non-empty content delta for streams, and the last byte for non-stream bodies
(their content becomes readable only then).
"""

from __future__ import annotations

from loadgate.client.decoders import Decoder, count_tokens, make_decoder
from loadgate.client.integrity import classify, classify_embedding
from loadgate.client.observation import Observation, RequestSpec
from loadgate.client.transport import (
    ConnectError,
    HTTPError,
    ProtocolError,
    RequestTimeout,
    ResetError,
    Response,
    Transport,
)
from loadgate.load.bodies import build_request

__all__ = ["error_class_for_status", "perform", "tokens_through"]


def error_class_for_status(status: int) -> str | None:
    """The error class of an HTTP status; ``None`` for success (2xx)."""
    if 200 <= status < 300:
        return None
    if status == 429:
        return "http_429"
    if 400 <= status < 500:
        return "http_4xx"
    if status >= 500:
        return "http_5xx"
    return "protocol"  # 1xx/3xx as a final answer: the harness follows no redirects


def _error_class(exc: HTTPError) -> str:
    if isinstance(exc, ConnectError):
        return "connect"
    if isinstance(exc, RequestTimeout):
        return "timeout"
    if isinstance(exc, ResetError):
        return "reset"
    if isinstance(exc, ProtocolError):
        return "protocol"
    return "protocol"  # a response the client could not consume


def tokens_through(parts: list[str]) -> list[int]:
    """Tokens complete after each delta (cumulative): which delta brought token k."""
    out: list[int] = []
    text = ""
    for part in parts:
        text += part
        out.append(count_tokens(text))
    return out


def _fill(obs: Observation, resp: Response, dec: Decoder) -> str:
    """Copy what the response and decoder saw into ``obs``; returns the text."""
    dec.settle()  # on the error paths too: what arrived before the failure counts
    obs.t_send = resp.t_send
    obs.t_first_byte = resp.t_first_byte
    obs.t_last_byte = resp.t_last_byte
    obs.status = resp.status
    obs.bytes_in = resp.bytes_in
    text = dec.text
    obs.tokens = count_tokens(text)
    if obs.stream:
        obs.token_times = dec.token_times
        obs.t_first_token = dec.token_times[0] if dec.token_times else 0
        if len(dec.token_times) != obs.tokens:  # a gateway re-chunked the deltas
            obs.delta_tokens = tokens_through(dec.parts)
    elif text:
        obs.t_first_token = resp.t_last_byte
    return text


async def perform(
    transport: Transport, spec: RequestSpec, t_intended: int, timeout_s: float
) -> Observation:
    """Send ``spec`` through ``transport`` and describe what happened.

    ``t_intended`` is copied into the Observation unchanged (the scheduled send
    time in open loop). ``timeout_s`` bounds the whole request, connect included.
    """
    obs = Observation(
        corr=spec.corr,
        endpoint=spec.endpoint,
        stream=spec.stream,
        t_intended=t_intended,
        cross_tenant=spec.cross_tenant,
    )
    req = build_request(spec)
    dec = make_decoder(spec.endpoint, spec.stream)
    try:
        resp = await transport.request(
            "POST", req.path, req.headers, req.body, sink=dec, timeout_s=timeout_s
        )
    except HTTPError as exc:
        _fill(obs, exc.response, dec)
        obs.error = _error_class(exc)
        return obs
    obs.error = error_class_for_status(resp.status)
    if obs.error is not None:
        _fill(obs, resp, dec)
        return obs
    dec.finish()
    text = _fill(obs, resp, dec)
    if dec.stream_error:
        obs.error = "stream_error"
    elif spec.endpoint == "embeddings":
        obs.violation = classify_embedding(
            spec.corr, dec.embedding, terminated=dec.terminated, malformed=dec.malformed
        )
    else:
        obs.violation = classify(
            spec.corr,
            spec.expect_tokens,
            text,
            terminated=dec.terminated,
            malformed=dec.malformed,
        )
    return obs
