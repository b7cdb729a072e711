"""Serialising the stub's answers: status line and headers, written by the caller
together with the body in one ``transport.write``.

The header values are the stub's own (never client text), so no validation or
multidict is needed. :class:`Written` is what the handler returns once it has
written an answer: it tells the connection whether to keep the connection open.
"""

from __future__ import annotations

import time
from email.utils import formatdate

__all__ = ["Written", "head", "json_ok_head"]

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
    "HTTP/1.1 200 OK\r\nx-request-id: %s\r\nopenai-processing-ms: %d\r\n%s"
    "content-type: application/json\r\ncontent-length: %d\r\n%s"
)
_CONNECTION = ("connection: close\r\n", "", "connection: keep-alive\r\n")


def json_ok_head(
    request_id: str, anthropic: bool, processing_ms: int, length: int, keep_alive: bool,
    http10: bool,
) -> bytes:  # fmt: skip
    """``head(200, ...)`` of a JSON answer, from one template (every answer's hot path).

    Same bytes as ``head`` with headers ``x-request-id``, (Anthropic) ``request-id``,
    ``openai-processing-ms`` and ``content-type: application/json``.
    """
    rid = f"request-id: {request_id}\r\n" if anthropic else ""
    conn = _CONNECTION[(1 + http10) if keep_alive else 0]
    text = _JSON_OK % (request_id, processing_ms, rid, length, conn)
    return text.encode() + _tail()


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
