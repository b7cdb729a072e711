"""HTTP/1.1 bytes the gateway writes itself: status lines, header blocks, error bodies.

Everything here is pure (no I/O) so the proxy's hot path only joins prebuilt pieces:
status lines are built once per status code, and header filtering works on the raw
``(name, value)`` byte pairs the parser handed over, keeping the sender's spelling.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from http import HTTPStatus

__all__ = [
    "HOP_BY_HOP",
    "Headers",
    "chunk",
    "connection_tokens",
    "error_body",
    "filter_headers",
    "header_block",
    "status_line",
]

Headers = list[tuple[bytes, bytes]]

# RFC 9110 §7.6.1 hop-by-hop fields, plus the framing and routing fields every hop
# recomputes for itself (host, content-length) and expect (the gateway buffers the
# body and answers 100-continue itself, so the upstream never needs to).
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
        b"expect",
    }
)

_STATUS_LINES: dict[tuple[int, bytes], bytes] = {}


def status_line(status: int, reason: bytes = b"") -> bytes:
    """``HTTP/1.1 <status> <reason>\\r\\n``, cached per (status, reason)."""
    line = _STATUS_LINES.get((status, reason))
    if line is None:
        if not reason:
            try:
                reason = HTTPStatus(status).phrase.encode()
            except ValueError:
                reason = b""
        line = b"HTTP/1.1 %d %s\r\n" % (status, reason)
        if len(_STATUS_LINES) < 1024:  # bounded: reasons come from the upstream
            _STATUS_LINES[(status, reason)] = line
    return line


def connection_tokens(headers: Headers) -> frozenset[bytes]:
    """Field names a ``Connection`` header declares hop-by-hop (lower case)."""
    tokens: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            tokens.update(t.strip().lower() for t in value.split(b","))
    return frozenset(tokens)


def filter_headers(headers: Headers, drop: frozenset[bytes]) -> Headers:
    """``headers`` minus hop-by-hop fields, the Connection tokens, and ``drop``."""
    extra = connection_tokens(headers)
    return [
        (n, v)
        for n, v in headers
        if (low := n.lower()) not in HOP_BY_HOP and low not in drop and low not in extra
    ]


def header_block(headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """``Name: value\\r\\n`` lines, without the blank line that ends a head."""
    return b"".join(b"%s: %s\r\n" % (n, v) for n, v in headers)


def chunk(data: bytes) -> list[bytes]:
    """One chunk of a chunked body, as pieces for ``writelines`` (no copy of ``data``)."""
    return [b"%x\r\n" % len(data), data, b"\r\n"]


_OPENAI = {
    400: ("invalid_request_error", "bad_request"),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "permission_denied"),
    404: ("invalid_request_error", "not_found"),
    413: ("invalid_request_error", "request_too_large"),
    431: ("invalid_request_error", "headers_too_large"),
    502: ("server_error", "bad_gateway"),
    503: ("server_error", "unavailable"),
    504: ("server_error", "gateway_timeout"),
}
_ANTHROPIC = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    431: "invalid_request_error",
    502: "api_error",
    503: "api_error",
    504: "timeout_error",
}


def error_body(route: str, status: int, message: str) -> bytes:
    """An error body in the shape the route's provider SDK parses (WIRE.md, Errors)."""
    if route == "messages":
        body: dict[str, object] = {
            "type": "error",
            "error": {"type": _ANTHROPIC[status], "message": message},
        }
    else:
        etype, code = _OPENAI[status]
        body = {"error": {"message": message, "type": etype, "param": None, "code": code}}
    return json.dumps(body).encode()
