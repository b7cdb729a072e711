"""Writing API answers straight to the transport, bypassing aiohttp's response objects.

aiohttp's ``Response`` costs a CIMultiDict, header validation and serialisation
per answer: on the stub's hot path that was a third of the CPU per request. The
stub instead serialises the status line and headers itself (the values are its
own: never client text) and writes head + body in one ``transport.write``. The
handler then returns :class:`Written`, which satisfies what aiohttp's request loop
needs from a response (``prepare()``, ``write_eof()``, ``keep_alive``) without
writing anything, so keep-alive and pipelining keep working.
"""

from __future__ import annotations

import time
from email.utils import formatdate

from aiohttp.web_request import BaseRequest

__all__ = ["Written", "head"]

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
    529: "Site Overloaded",
}
_tail_cache: tuple[int, bytes] = (0, b"")


class Written:
    """Stands in for a response the stub already wrote itself."""

    __slots__ = ("keep_alive",)

    def __init__(self, keep_alive: bool) -> None:
        self.keep_alive = keep_alive

    async def prepare(self, request: BaseRequest) -> None:
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None


def _tail() -> bytes:
    """Date and server headers plus the blank line; the date changes once a second."""
    global _tail_cache
    now = int(time.time())
    if _tail_cache[0] != now:
        date = formatdate(now, usegmt=True)
        _tail_cache = (now, f"date: {date}\r\nserver: stub_upstream\r\n\r\n".encode())
    return _tail_cache[1]


def head(
    status: int,
    headers: dict[str, str],
    *,
    length: int | None,
    keep_alive: bool,
    chunked: bool = False,
) -> bytes:
    """Status line and headers, ending with the blank line."""
    text = f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
    text += "".join([f"{k}: {v}\r\n" for k, v in headers.items()])
    if length is not None:
        text += f"content-length: {length}\r\n"
    if chunked:
        text += "transfer-encoding: chunked\r\n"
    if not keep_alive:
        text += "connection: close\r\n"
    return text.encode() + _tail()
