"""HTTP/1.1 request framing for the stub: llhttp (``httptools``) does the parsing,
this module turns its callbacks into :class:`Request` objects. Free of I/O.

``RequestParser.feed(data, t_ns)`` takes what one read returned and the arrival
stamp of that read (``stub_upstream.stamped``: the kernel's stamp of its last
segment) and gives back the requests that read completed, in order, each with
``t_recv = t_ns``: the read that brought a request's last body byte is the one
whose arrival the ledger reports, however late the event loop got to it.

On top of llhttp's strict parsing (bare CR/LF, bad tokens, conflicting or
invalid lengths, chunk syntax are its errors, answered 400) this adds what the
stub promises and llhttp leaves to its user:

* HTTP/1.0 and 1.1 only; a request line with runs of spaces is refused (llhttp
  accepts them; the stub's clients never send them, so one is garbage);
* limits: request line + headers over ``max_head`` -> 431 (checked when the
  head completes, and while it is still arriving once a later read brings more
  than the limit); chunk trailers likewise; a body over ``max_body`` ->
  ``too_big`` (413), declared or while it arrives;
* ``Expect: 100-continue`` -> ``want_continue`` for the connection to answer;
* an ``Upgrade`` / ``CONNECT`` is answered as a plain request, then the
  connection reads nothing more (the stub speaks no other protocol).

After a request that does not keep the connection alive, a malformed or
too-big one, or :meth:`RequestParser.expire` (a read timeout, 408), the parser
is dead: it ignores all further input.
"""

from __future__ import annotations

from typing import Any, NoReturn
from urllib.parse import parse_qsl, unquote

import httptools

__all__ = ["BODY", "DEAD", "HEAD", "IDLE", "MAX_HEAD_BYTES", "Request", "RequestParser"]

#: Request line + headers (and, separately, chunk trailers) may not exceed this.
MAX_HEAD_BYTES = 65_536
_CHUNK_FRAMING = 1024  # wire bytes a chunk's size line and framing may take

#: Parser phases: between requests, reading a head, reading a body, dead.
IDLE, HEAD, BODY, DEAD = range(4)

_METHODS = {m.encode(): m for m in ("GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH")}
_NO_REQUESTS: list[Request] = []  # returned (never mutated) by a dead parser
# Header names as the handler sees them (lower-case str), by their wire spelling:
# clients repeat the same few, and a lookup is cheaper than decode + lower.
_NAMES: dict[bytes, str] = {}
_NAMES_MAX = 512


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
        self.t_recv = 0  # arrival (monotonic ns) of the read that completed the request
        self.too_big = False
        self.bad_status = 0  # 400/408/431: unparseable or timed out; the answer closes
        self.bad_message = ""
        self._query: dict[str, str] | None = None

    @property
    def query(self) -> dict[str, str]:
        if self._query is None:
            _, _, qs = self.target.partition("?")
            self._query = dict(parse_qsl(qs, keep_blank_values=True)) if qs else {}
        return self._query


class _Stop(Exception):
    """Raised from a callback to stop llhttp; the reason is on the parser."""


def _path_of(target: str) -> str | None:
    """The decoded path of a request target, or None if the target is unusable."""
    if not target.startswith("/"):
        if target.startswith(("http://", "https://")):  # absolute-form (proxies)
            slash = target.find("/", target.index("//") + 2)
            target = target[slash:] if slash >= 0 else "/"
        elif target == "*":
            return target
        else:
            return None
    path = target.partition("?")[0]
    if "#" in path:
        path = path.partition("#")[0]
    return unquote(path) if "%" in path else path


class RequestParser:
    """Incremental HTTP/1.x request parser over llhttp; see the module docstring."""

    __slots__ = (
        "_at_start", "_begin_data", "_body", "_body_size", "_chunks", "_data", "_head_parts",
        "_head_seen", "_head_size", "_headers", "_max_body", "_max_head", "_out", "_parser",
        "_req", "_stop", "_t", "_transport", "_url", "_wire", "phase", "since", "want_continue",
    )  # fmt: skip

    def __init__(self, transport: Any, max_body: int, max_head: int = MAX_HEAD_BYTES) -> None:
        self._transport = transport
        self._max_body = max_body
        self._max_head = max_head
        self._parser = httptools.HttpRequestParser(self)
        # Bytes pipelined after a "Connection: close" request are ignored, not an
        # error: that request is still answered, then the connection closes.
        self._parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self._out: list[Request] = []
        self._t = 0
        self._data = b""
        self._stop: tuple[int, str] | None = None
        self._req: Request | None = None
        self._url = b""
        self._headers: dict[str, str] = {}
        self._head_size = 0
        self._begin_data = b""  # the read in which the current head began
        self._at_start = False  # ... and it began that read
        self._head_parts: list[bytes] = []  # later reads while the head is incomplete
        self._head_seen = 0  # wire bytes the incomplete head may span so far
        self._body: list[bytes] = []
        self._body_size = 0
        self._chunks = 0
        self._wire = 0  # body-phase wire bytes of reads after the head's
        #: IDLE / HEAD / BODY / DEAD, and the arrival stamp of the read that began it.
        self.phase = IDLE
        self.since = 0
        #: The request being read asked for ``100 Continue`` and has not got it.
        self.want_continue = False

    @property
    def dead(self) -> bool:
        """True after a closing, malformed, too-big or timed-out request: input is ignored."""
        return self.phase == DEAD

    def feed(self, data: bytes, t_ns: int) -> list[Request]:
        """The requests completed by ``data``, which arrived at ``t_ns``."""
        phase = self.phase
        if phase == DEAD:
            return _NO_REQUESTS
        out: list[Request] = []
        self._out = out
        self._t = t_ns
        self._data = data
        if phase == HEAD:
            self._head_parts.append(data)
            self._head_seen += len(data)
        elif phase == BODY:
            self._wire += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # The request before the new protocol is answered; nothing after it is HTTP.
            if out:
                out[-1].keep_alive = False
            self.phase = DEAD
        except httptools.HttpParserError as e:
            stop = self._stop
            if stop is not None and stop[0] == 413:
                out.append(self._too_big())
            elif stop is not None:
                out.append(self._bad(*stop))
            else:
                out.append(self._bad(400, str(e) or "malformed request"))
        else:
            self._check_partial(out)
        self._data = b""
        return out

    def expire(self, t_ns: int) -> Request | None:
        """A read timeout: the partial request as a 408 (None if between requests)."""
        if self.phase in (IDLE, DEAD):
            return None
        self._t = t_ns
        return self._bad(408, "request timeout: the request was not received in time")

    def _check_partial(self, out: list[Request]) -> None:
        """Bound what a still-incomplete head or chunk trailer may hold in memory."""
        phase = self.phase
        if phase == HEAD:
            if self._head_seen > self._max_head:
                out.append(self._bad(431, "request header fields too large"))
        elif phase == BODY and self._chunks:
            framing = self._wire - self._body_size
            if framing > self._max_head + self._chunks * _CHUNK_FRAMING:
                out.append(self._bad(431, "chunk framing or trailer fields too large"))

    # ------------------------------------------------------ llhttp callbacks

    def on_message_begin(self) -> None:
        self.phase = HEAD
        self.since = self._t
        self._url = b""
        self._headers = {}
        self._head_size = 0
        self._begin_data = self._data
        self._head_parts = []
        # A head that began a read starts at its first byte and counts the whole
        # read toward the limit; one after other requests in the same read
        # counts from the next read on.
        self._at_start = not self._out
        self._head_seen = len(self._data) if self._at_start else 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        if self.phase == BODY:  # a chunk trailer: bounded, then skipped
            if self._head_size > self._max_head:
                self._stop = (431, "trailer fields too large")
                raise _Stop
            return
        key = _NAMES.get(name)
        if key is None:
            key = name.decode("latin-1").lower()
            if len(_NAMES) < _NAMES_MAX:
                _NAMES[name] = key
        text = value.rstrip(b" \t").decode("utf-8", "replace")
        old = self._headers.get(key)
        self._headers[key] = text if old is None else old + ", " + text

    def on_headers_complete(self) -> None:
        p = self._parser
        raw_method = p.get_method()
        method = _METHODS.get(raw_method) or raw_method.decode("latin-1")
        url = self._url
        target = url.decode("latin-1")
        headers = self._headers
        # The request line as a strict client writes it; one with runs of spaces
        # (which llhttp accepts) is not in the bytes read. The usual case, an
        # HTTP/1.1 request that began the read, costs one startswith.
        line = raw_method + b" " + url + b" HTTP/1.1\r\n"
        head = self._begin_data
        if self._head_parts:
            head = b"".join([head, *self._head_parts])
        if self._at_start and head.startswith(line):
            version = "1.1"
        else:
            version = p.get_http_version()
            line = line[:-5] + version.encode() + b"\r\n"
        req = Request(method, target, "", headers, version == "1.0", False, self._transport)
        self._req = req
        if version != "1.1" and version != "1.0":
            self._fail(400, f"unsupported protocol version HTTP/{version}")
        if line not in head:
            self._fail(400, "malformed request line")
        if target[:1] == "/" and "%" not in target and "?" not in target and "#" not in target:
            req.path = target  # the usual origin-form target is its own path
        else:
            path = _path_of(target)
            if path is None:
                self._fail(400, "invalid request target")
            req.path = path
        self._head_size += len(line)
        if self._head_size > self._max_head:
            self._fail(431, "request header fields too large")
        req.keep_alive = p.should_keep_alive()
        self.phase = BODY
        self.since = self._t
        self._head_size = 0  # from here on: trailer bytes
        self._body = []
        self._body_size = 0
        self._wire = 0
        self._chunks = 0
        cl = headers.get("content-length")
        if cl is not None:
            if int(cl) > self._max_body:
                self._fail(413, "")
            has_body = cl != "0"
        else:
            has_body = "transfer-encoding" in headers
        if has_body and not req.http10 and headers.get("expect", "").lower() == "100-continue":
            self.want_continue = True

    def on_chunk_header(self) -> None:
        self._chunks += 1

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self._max_body:
            self._fail(413, "")
        self._body.append(body)

    def on_message_complete(self) -> None:
        req = self._req
        assert req is not None
        parts = self._body
        if parts:
            req.body = parts[0] if len(parts) == 1 else b"".join(parts)
        # After a request that closes the connection nothing more is read (and
        # the connection drains input before closing, so no RST eats the answer).
        self._out.append(self._hand_over(req, IDLE if req.keep_alive else DEAD))

    # ------------------------------------------------------------ internals

    def _fail(self, status: int, message: str) -> NoReturn:
        self._stop = (status, message)
        raise _Stop

    def _too_big(self) -> Request:
        """The body limit is exceeded: the request is answered unread, then the connection ends."""
        req = self._req
        assert req is not None
        req.too_big = True
        return self._end_dead(req)

    def _bad(self, status: int, message: str) -> Request:
        req = self._req
        if req is None:  # the head is incomplete: keep its path if llhttp got that far
            target = self._url.decode("latin-1") if self.phase == HEAD else ""
            path = (_path_of(target) or "") if target else ""
            req = Request("", target, path, {}, False, False, self._transport)
        req.bad_status = status
        req.bad_message = message
        return self._end_dead(req)

    def _end_dead(self, req: Request) -> Request:
        """Answer ``req`` and read nothing more on this connection."""
        req.keep_alive = False
        return self._hand_over(req, DEAD)

    def _hand_over(self, req: Request, phase: int) -> Request:
        """Stamp ``t_recv`` (the request is fully read) and reset for what comes next."""
        req.t_recv = self.since = self._t
        self._req = None
        self.phase = phase
        self.want_continue = False
        return req
