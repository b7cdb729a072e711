"""One proxied request's life after admission: the relay between client and upstream.

A :class:`Relay` is both the client connection's :class:`~reference_gateway._downstream.Exchange`
(it hears that the client went away, or that the client's socket buffer is full) and the
upstream connection's :class:`~reference_gateway._upstream.ResponseSink` (it hears the
response head, each body piece, the end, or a failure). It reframes nothing but the
head: body bytes go to the client as they come, flushed once per upstream read —
except with ``--defect-buffer-streams`` (tests), where an event stream is held whole
and written at its end, the way a buffering proxy breaks real-time streaming.

Failure mapping: before the response head, an upstream transport failure is a 502 and
a timeout a 504, in the route's provider shape; after the head, the client connection
is cut (what was relayed arrives, the rest does not: the only honest signal left).
A client that goes away closes the upstream connection (the upstream stops generating)
and is counted under status 499, nginx's label for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reference_gateway._downstream import ClientConnection
from reference_gateway._upstream import UpstreamConnection
from reference_gateway._wire import Headers, error_body, filter_headers

if TYPE_CHECKING:
    from reference_gateway._proxy import Proxy

__all__ = ["CLIENT_GONE", "Relay"]

CLIENT_GONE = 499
_NO_DROP: frozenset[bytes] = frozenset()


class Relay:
    """Client ⇄ upstream for one request; :meth:`_finish` runs exactly once."""

    __slots__ = (
        "conn",
        "corr",
        "done",
        "gone",
        "head_sent",
        "hold",
        "proxy",
        "route",
        "started",
        "status",
        "up",
    )

    def __init__(self, proxy: Proxy, conn: ClientConnection, route: str) -> None:
        self.proxy = proxy
        #: for the trace row (set by the proxy only when it writes traces)
        self.corr: str | None = None
        self.started = 0.0
        self.conn = conn
        self.route = route
        self.up: UpstreamConnection | None = None
        self.status = CLIENT_GONE
        self.head_sent = False
        self.gone = False
        self.done = False
        self.hold = False  # --defect-buffer-streams: this answer is held to its end

    # -- from the proxy ---------------------------------------------------------------

    def reject(self, status: int, message: str) -> None:
        """Answer locally (401, 502, 504 ...) without a response from the upstream."""
        if not self.gone:
            self.conn.respond(status, error_body(self.route, status, message))
        self._finish(status)

    def send(self, up: UpstreamConnection, head: bytes, body: bytes) -> None:
        self.up = up
        up.request(head, body, self)

    # -- Exchange (client side) -------------------------------------------------------

    def client_gone(self) -> None:
        self.gone = True
        up, self.up = self.up, None
        if up is not None:
            up.detach()
        self._finish(CLIENT_GONE)

    def pause_upstream(self) -> None:
        if self.up is not None:
            self.up.pause_reading()

    def resume_upstream(self) -> None:
        if self.up is not None:
            self.up.resume_reading()

    # -- ResponseSink (upstream side) -------------------------------------------------

    def on_head(self, status: int, reason: bytes, headers: Headers, length: int | None) -> None:
        self.status = status
        self.head_sent = True
        if self.proxy.cfg.defect_buffer_streams:
            self.hold = any(
                n.lower() == b"content-type" and v.startswith(b"text/event-stream")
                for n, v in headers
            )
        self.conn.begin(status, reason, filter_headers(headers, _NO_DROP), length)

    def on_body(self, data: bytes) -> None:
        self.conn.send(data)

    def on_read(self) -> None:
        if not self.hold:
            self.conn.flush()

    def on_end(self) -> None:
        self.up = None
        self.conn.end()
        self._finish(self.status)

    def on_fail(self, reason: str, after_head: bool) -> None:
        self.up = None
        self.proxy.metrics.count_upstream_error(self.route, reason)
        if after_head:
            self.conn.cut()
            self._finish(self.status)
        else:
            self.reject(502, f"upstream unavailable: {reason}")

    def timed_out(self) -> None:
        """``--upstream-timeout-s`` passed since the request went upstream."""
        up, self.up = self.up, None
        if up is None or self.done:
            return
        up.detach()
        self.proxy.metrics.count_upstream_error(self.route, "TimeoutError")
        if self.head_sent:
            self.conn.cut()
            self._finish(self.status)
        else:
            self.reject(504, "upstream timed out")

    def _finish(self, status: int) -> None:
        if self.done:
            return
        self.done = True
        self.proxy.finished(self, status)
