"""HTTP/1.1 request parsing for the stub, free of I/O (one parser per connection).

``RequestParser.feed(data)`` takes whatever bytes a read returned and gives back
the requests completed by them, in order. Each :class:`Request` is stamped with
``t_recv = clock()`` the moment its last body byte was parsed: the stub's ledger
reports that instant, so nothing (parser objects, task dispatch) may sit between
the bytes arriving and the stamp.

Covered: request line + headers (CRLF), ``Content-Length`` and chunked bodies
(extensions and trailers skipped), ``Expect: 100-continue`` (``want_continue``),
keep-alive for HTTP/1.1 and HTTP/1.0, pipelining, a head size limit (431) and a
body limit (``too_big``, answered 413). Anything malformed yields a request with
``bad_status`` set; after it, or after a too-big body, the parser discards all
further input (the connection is closed once the answer is out).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote

__all__ = ["MAX_HEAD_BYTES", "Request", "RequestParser"]

#: Request line + headers (and, separately, chunk trailers) may not exceed this.
MAX_HEAD_BYTES = 65_536
_MAX_CHUNK_LINE = 1024
_HEX = b"0123456789abcdefABCDEF"

_HEAD, _BODY, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILER, _DEAD = range(7)


class Request:
    """One parsed request, as the handler sees it."""

    __slots__ = (
        "_query", "bad_message", "bad_status", "body", "headers", "http10", "keep_alive",
        "method", "path", "t_recv", "target", "too_big", "transport",
    )  # fmt: skip

    def __init__(
        self,
        method: str,
        target: str,
        path: str,
        headers: dict[str, str],
        http10: bool,
        keep_alive: bool,
        transport: Any,
    ) -> None:
        self.method = method
        self.target = target
        self.path = path
        self.headers = headers  # lower-case names; repeated fields joined with ", "
        self.http10 = http10
        self.keep_alive = keep_alive
        self.transport = transport
        self.body = b""
        self.t_recv = 0
        self.too_big = False
        self.bad_status = 0  # 400/431: unparseable; the answer closes the connection
        self.bad_message = ""
        self._query: dict[str, str] | None = None

    @property
    def query(self) -> dict[str, str]:
        if self._query is None:
            _, _, qs = self.target.partition("?")
            self._query = dict(parse_qsl(qs, keep_blank_values=True)) if qs else {}
        return self._query


class _Malformed(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _path_of(target: str) -> str:
    if not target.startswith("/"):
        if target.startswith(("http://", "https://")):  # absolute-form (proxies)
            slash = target.find("/", target.index("//") + 2)
            target = target[slash:] if slash >= 0 else "/"
        elif target == "*":
            return target
        else:
            raise _Malformed(400, "invalid request target")
    path = target.partition("?")[0]
    if "#" in path:
        path = path.partition("#")[0]
    return unquote(path) if "%" in path else path


class RequestParser:
    """Incremental HTTP/1.x request parser; see the module docstring."""

    __slots__ = (
        "_body_total", "_buf", "_clock", "_head_limit", "_max_body", "_need", "_parts", "_req",
        "_scanned", "_state", "_trailer_bytes", "_transport", "want_continue",
    )  # fmt: skip

    def __init__(
        self,
        transport: Any,
        max_body: int,
        max_head: int = MAX_HEAD_BYTES,
        clock: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self._transport = transport
        self._max_body = max_body
        self._head_limit = max_head
        self._clock = clock
        self._state = _HEAD
        self._buf = b""  # unparsed head / chunk-size / trailer bytes only, never body
        self._scanned = 0  # bytes of _buf already searched for the end of the head
        self._req: Request | None = None
        self._parts: list[bytes] = []
        self._need = 0
        self._body_total = 0
        self._trailer_bytes = 0
        #: The request being read asked for ``100 Continue`` and has not got it.
        self.want_continue = False

    @property
    def dead(self) -> bool:
        """True after a malformed or too-big request: further input is ignored."""
        return self._state == _DEAD

    def feed(self, data: bytes) -> list[Request]:
        out: list[Request] = []
        if self._state == _DEAD:
            return out
        buf = self._buf + data if self._buf else data
        end = len(buf)
        pos = 0
        try:
            while pos < end:
                st = self._state
                if st == _HEAD:
                    if buf[pos] == 13 or buf[pos] == 10:  # stray CRLF between requests
                        while pos < end and buf[pos] in b"\r\n":
                            pos += 1
                        self._scanned = 0
                        continue
                    i = buf.find(b"\r\n\r\n", pos + max(self._scanned - 3, 0))
                    if i < 0:
                        if end - pos > self._head_limit:
                            raise _Malformed(431, "request header fields too large")
                        self._scanned = end - pos
                        break
                    if i - pos > self._head_limit:
                        raise _Malformed(431, "request header fields too large")
                    self._scanned = 0
                    req = self._head(buf[pos:i])
                    pos = i + 4
                    if req is not None:
                        out.append(req)
                        if req.too_big:
                            self._state = _DEAD
                            break
                elif st in (_BODY, _CHUNK_DATA):
                    need = self._need
                    if end - pos >= need:
                        self._parts.append(buf[pos : pos + need])
                        pos += need
                        if st == _BODY:
                            out.append(self._complete())
                        else:
                            self._state = _CHUNK_END
                    else:
                        self._parts.append(buf[pos:] if pos else buf)
                        self._need = need - (end - pos)
                        pos = end
                elif st == _CHUNK_SIZE:
                    i = buf.find(b"\r\n", pos)
                    if i < 0:
                        if end - pos > _MAX_CHUNK_LINE:
                            raise _Malformed(400, "chunk size line too long")
                        break
                    if i - pos > _MAX_CHUNK_LINE:
                        raise _Malformed(400, "chunk size line too long")
                    size = buf[pos:i].partition(b";")[0].strip(b" \t")
                    if not size or len(size) > 15 or size.translate(None, _HEX):
                        raise _Malformed(400, "invalid chunk size")
                    pos = i + 2
                    n = int(size, 16)
                    if n == 0:
                        self._state = _TRAILER
                        self._trailer_bytes = 0
                        continue
                    self._body_total += n
                    if self._body_total > self._max_body:
                        out.append(self._too_big())
                        break
                    self._need = n
                    self._state = _CHUNK_DATA
                elif st == _CHUNK_END:
                    if end - pos < 2:
                        if buf[pos] != 13:
                            raise _Malformed(400, "chunk data not followed by CRLF")
                        break
                    if buf[pos] != 13 or buf[pos + 1] != 10:
                        raise _Malformed(400, "chunk data not followed by CRLF")
                    pos += 2
                    self._state = _CHUNK_SIZE
                else:  # _TRAILER: skip trailer fields up to the empty line
                    i = buf.find(b"\r\n", pos)
                    if i < 0:
                        if self._trailer_bytes + end - pos > self._head_limit:
                            raise _Malformed(431, "trailer fields too large")
                        break
                    self._trailer_bytes += i + 2 - pos
                    if self._trailer_bytes > self._head_limit:
                        raise _Malformed(431, "trailer fields too large")
                    empty = i == pos
                    pos = i + 2
                    if empty:
                        out.append(self._complete())
        except _Malformed as e:
            out.append(self._bad(e.status, e.message))
        if self._state == _DEAD or pos >= end:
            self._buf = b""
        else:
            self._buf = buf[pos:]
        return out

    # ------------------------------------------------------------ internals

    def _head(self, raw: bytes) -> Request | None:
        """Parse request line + headers; returns the request if it has no body."""
        text = raw.decode("ascii") if raw.isascii() else raw.decode("utf-8", "replace")
        lines = text.split("\r\n")
        n = len(lines) - 1
        if text.count("\n") != n or text.count("\r") != n:
            raise _Malformed(400, "bare CR or LF in the request head")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            raise _Malformed(400, "malformed request line")
        method, target, version = parts
        if version == "HTTP/1.1":
            http10 = False
        elif version == "HTTP/1.0":
            http10 = True
        else:
            raise _Malformed(400, f"unsupported protocol version {version[:16]!r}")
        if not method.isalpha() or not method.isascii():
            raise _Malformed(400, "malformed request method")
        path = _path_of(target)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or " " in name or "\t" in name:
                raise _Malformed(400, "malformed header field")
            name = name.lower()
            value = value.strip(" \t")
            old = headers.get(name)
            if old is not None:
                if name == "content-length" and old != value:
                    raise _Malformed(400, "conflicting content-length")
                if name != "content-length":
                    value = old + ", " + value
            headers[name] = value
        conn = headers.get("connection")
        if http10:
            keep_alive = conn is not None and "keep-alive" in conn.lower()
        else:
            keep_alive = conn is None or "close" not in conn.lower()
        req = Request(method, target, path, headers, http10, keep_alive, self._transport)
        self._req = req
        te = headers.get("transfer-encoding")
        if te is not None:
            if "content-length" in headers:
                raise _Malformed(400, "both content-length and transfer-encoding")
            if te.rpartition(",")[2].strip(" \t").lower() != "chunked":
                raise _Malformed(400, f"unsupported transfer-encoding {te[:32]!r}")
            self._state = _CHUNK_SIZE
            self._body_total = 0
        else:
            cl = headers.get("content-length")
            if cl is None or cl == "0":
                req.t_recv = self._clock()
                self._req = None
                return req
            if not cl.isdigit() or not cl.isascii() or len(cl) > 18:
                raise _Malformed(400, "invalid content-length")
            n = int(cl)
            if n > self._max_body:
                return self._too_big()
            if n == 0:
                req.t_recv = self._clock()
                self._req = None
                return req
            self._need = n
            self._state = _BODY
        if not http10 and headers.get("expect", "").lower() == "100-continue":
            self.want_continue = True
        return None

    def _complete(self) -> Request:
        req = self._req
        assert req is not None
        parts = self._parts
        req.body = parts[0] if len(parts) == 1 else b"".join(parts)
        return self._hand_over(req, _HEAD)

    def _too_big(self) -> Request:
        """The body limit is exceeded: the request is answered unread, then the connection ends."""
        req = self._req
        assert req is not None
        req.too_big = True
        return self._end_dead(req)

    def _bad(self, status: int, message: str) -> Request:
        req = self._req
        if req is None:
            req = Request("", "", "", {}, False, False, self._transport)
        req.bad_status = status
        req.bad_message = message
        return self._end_dead(req)

    def _end_dead(self, req: Request) -> Request:
        """Answer ``req`` and read nothing more on this connection."""
        req.keep_alive = False
        return self._hand_over(req, _DEAD)

    def _hand_over(self, req: Request, state: int) -> Request:
        """Stamp ``t_recv`` (the request is fully read) and reset for what comes next."""
        req.t_recv = self._clock()
        self._parts = []
        self._req = None
        self._state = state
        self.want_continue = False
        return req
