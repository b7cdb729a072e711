"""The seam between "one request" and the sockets: a small transport interface.

Everything above this line — building the request, decoding the response,
integrity, the load generator — talks to a :class:`Transport`; everything below
it (connections, HTTP/1.1 framing, timestamps) is the transport's. This is
httpx's ``AsyncBaseTransport`` idea: the socket layer can be replaced without
touching the request path, and the request path and the load generator are
unit-tested with :class:`MockTransport` (scripted answers on a fake clock, no
sockets).

A transport delivers the response *as it arrives* to a :class:`ResponseSink`
(head, then body pieces, each with the time it arrived), so a stream is decoded
without a task switch per read, and returns the whole :class:`Response` when it
is complete. Failures raise :class:`HTTPError` subclasses carrying the partial
response (timestamps and byte counts up to the failure).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "ConnectError",
    "HTTPError",
    "MockTransport",
    "ProtocolError",
    "RequestTimeout",
    "ResetError",
    "Response",
    "ResponseSink",
    "ScriptedResponse",
    "SentRequest",
    "Transport",
]


class Response:
    """What came back (so far). Timestamps are the transport's clock (ns); 0 = not yet."""

    __slots__ = (
        "body",
        "bytes_in",
        "headers",
        "retried",
        "reused",
        "status",
        "t_first_byte",
        "t_head",
        "t_last_byte",
        "t_send",
    )

    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""
        self.bytes_in = 0  # all bytes read, head included
        self.t_send = 0  # request bytes handed to the socket
        self.t_first_byte = 0
        self.t_head = 0  # status line and headers complete
        self.t_last_byte = 0
        self.reused = False  # sent on a connection that had served a request before
        self.retried = False  # second attempt after a stale keep-alive connection


class ResponseSink(Protocol):
    """Receives a response as it arrives (the transport calls it from its read path).

    ``on_body`` may come once per read or once per HTTP chunk; ``t`` is always
    the arrival of the read that brought ``data``.
    """

    def on_head(self, status: int, headers: dict[str, str], t: int) -> None: ...

    def on_body(self, data: bytes, t: int) -> None: ...


class HTTPError(Exception):
    """A request failed; ``response`` holds what had arrived before it did."""

    def __init__(self, message: str, response: Response | None = None) -> None:
        super().__init__(message)
        self.response = response if response is not None else Response()


class ConnectError(HTTPError):
    """The connection could not be opened (refused, unreachable, connect timeout)."""


class RequestTimeout(HTTPError):
    """The whole request did not finish within its timeout."""


class ResetError(HTTPError):
    """The connection closed before the response was complete."""


class ProtocolError(HTTPError):
    """The response was not parseable HTTP/1.1."""


class Transport(Protocol):
    """Sends one request to the target and reports its response as it arrives."""

    async def request(
        self,
        method: str,
        path: str,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        *,
        sink: ResponseSink | None = None,
        timeout_s: float | None = None,
    ) -> Response:
        """The complete response; raises an :class:`HTTPError` subclass on failure.

        Without a sink, the body is collected into :attr:`Response.body`.
        """
        ...

    async def close(self) -> None:
        """Close every connection; requests in flight fail."""
        ...


@dataclass(slots=True)
class ScriptedResponse:
    """What a :class:`MockTransport` answers: body pieces and when each arrives.

    Times are nanoseconds after the send. ``error`` (an :class:`HTTPError` type)
    is raised after the pieces are delivered, as a connection that breaks
    mid-response would.
    """

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    #: ``(ns after the send, bytes)`` per read
    pieces: list[tuple[int, bytes]] = field(default_factory=list)
    head_after_ns: int = 0
    error: type[HTTPError] | None = None


@dataclass(slots=True)
class SentRequest:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    #: when the transport "sent" it (its clock)
    t_send: int = 0


class MockTransport:
    """A transport that answers from a handler, on a fake clock: no sockets, no waiting.

    ``handler(request)`` returns a :class:`ScriptedResponse`; the request's send
    time is ``clock()`` (default: a counter the test controls through
    :attr:`now_ns`) and every arrival time is relative to it.
    """

    def __init__(
        self,
        handler: Callable[[SentRequest], ScriptedResponse],
        *,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self._handler = handler
        self.now_ns = 1_000_000_000
        self._clock = clock or (lambda: self.now_ns)
        self.sent: list[SentRequest] = []
        self.closed = False

    async def request(
        self,
        method: str,
        path: str,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        *,
        sink: ResponseSink | None = None,
        timeout_s: float | None = None,
    ) -> Response:
        if self.closed:
            raise ConnectError("transport is closed")
        t0 = self._clock()
        req = SentRequest(method, path, list(headers), body, t0)
        self.sent.append(req)
        script = self._handler(req)
        resp = Response()
        resp.t_send = t0
        resp.t_head = resp.t_first_byte = t0 + script.head_after_ns
        resp.status = script.status
        resp.headers = dict(script.headers)
        if sink is not None:
            sink.on_head(script.status, resp.headers, resp.t_head)
        pieces: list[bytes] = []
        resp.t_last_byte = resp.t_head
        for after, data in script.pieces:
            t = t0 + after
            resp.bytes_in += len(data)
            resp.t_last_byte = t
            if sink is not None:
                sink.on_body(data, t)
            else:
                pieces.append(data)
        resp.body = b"".join(pieces)
        if script.error is not None:
            raise script.error("scripted failure", resp)
        return resp

    async def close(self) -> None:
        self.closed = True
