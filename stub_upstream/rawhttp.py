"""Serialising the stub's answers: status line and headers, written by the caller
together with the body in one ``transport.write``.

The header values are the stub's own (never client text), so no validation or
multidict is needed. :class:`Written` is what the handler returns once it has
written an answer: it tells the connection whether to keep the connection open.
"""

from __future__ import annotations

import time
from email.utils import formatdate

__all__ = ["Written", "head", "json_ok_head", "request_id"]

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Payload Too Large",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
    529: "Site Overloaded",
}
_tail_cache: tuple[int, bytes] = (0, b"")


class Written:
    """An answer the handler wrote itself; ``keep_alive``: serve the next request."""

    __slots__ = ("keep_alive",)

    def __init__(self, keep_alive: bool) -> None:
        self.keep_alive = keep_alive


def _tail() -> bytes:
    """Date and server headers plus the blank line; the date changes once a second."""
    global _tail_cache
    now = int(time.time())
    if _tail_cache[0] != now:
        date = formatdate(now, usegmt=True)
        _tail_cache = (now, f"date: {date}\r\nserver: stub_upstream\r\n\r\n".encode())
    return _tail_cache[1]


_JSON_OK = (
    b"HTTP/1.1 200 OK\r\nx-request-id: req_%016x%02x%08x\r\nopenai-processing-ms: %d\r\n"
    b"content-type: application/json\r\ncontent-length: %d\r\n%s%s"
)
_JSON_OK_ANTHROPIC = (
    b"HTTP/1.1 200 OK\r\nx-request-id: req_%016x%02x%08x\r\nopenai-processing-ms: %d\r\n"
    b"request-id: req_%016x%02x%08x\r\n"
    b"content-type: application/json\r\ncontent-length: %d\r\n%s%s"
)
_CONNECTION = (b"connection: close\r\n", b"", b"connection: keep-alive\r\n")


def request_id(cid: int, worker: int, seq: int) -> str:
    """The ``x-request-id`` of an answer: correlation id, worker, the worker's answer count."""
    return f"req_{cid:016x}{worker:02x}{seq:08x}"


def json_ok_head(
    cid: int, worker: int, seq: int, anthropic: bool, processing_ms: int, length: int,
    keep_alive: bool, http10: bool,
) -> bytes:  # fmt: skip
    """``head(200, ...)`` of a JSON answer, from one bytes template (every answer's hot path).

    Same bytes as ``head`` with headers ``x-request-id`` (:func:`request_id`),
    ``openai-processing-ms``, (Anthropic) ``request-id`` and
    ``content-type: application/json``.
    """
    conn = _CONNECTION[(1 + http10) if keep_alive else 0]
    if anthropic:
        return _JSON_OK_ANTHROPIC % (
            cid, worker, seq, processing_ms, cid, worker, seq, length, conn, _tail(),
        )  # fmt: skip
    return _JSON_OK % (cid, worker, seq, processing_ms, length, conn, _tail())


def head(
    status: int,
    headers: dict[str, str],
    *,
    length: int | None,
    keep_alive: bool,
    chunked: bool = False,
    http10: bool = False,
) -> bytes:
    """Status line and headers, ending with the blank line.

    ``http10``: the client spoke HTTP/1.0, which closes unless told otherwise.
    """
    text = f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
    text += "".join([f"{k}: {v}\r\n" for k, v in headers.items()])
    if length is not None:
        text += f"content-length: {length}\r\n"
    if chunked:
        text += "transfer-encoding: chunked\r\n"
    if not keep_alive:
        text += "connection: close\r\n"
    elif http10:
        text += "connection: keep-alive\r\n"
    return text.encode() + _tail()
