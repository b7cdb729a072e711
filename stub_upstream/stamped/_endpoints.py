"""Both ends of a stamped connection: the accept loop and the connect.

:func:`serve` turns a bound, listening socket into connections (one
:class:`~stub_upstream.stamped._transport.StampedTransport` and one protocol
each); :func:`connect` makes one outgoing connection; :func:`open_transport`
wraps a socket that is already connected (socketpairs in tests). Each switches
kernel stamps on *before* any byte can arrive (on the listener, whose accepted
sockets inherit it; on the client socket before ``connect``) and settles the
mode once: ``"kernel"``, or ``"user"`` when the option is refused or
:data:`~stub_upstream.stamped._socket.FORCE_USER_ENV` / ``force_user`` says so.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from stub_upstream.stamped._socket import (
    StampMode,
    enable_rx_timestamps,
    hold_stamping_on,
    rx_timestamps_enabled,
    user_stamps_forced,
)
from stub_upstream.stamped._transport import StampedTransport

__all__ = ["StampedServer", "connect", "open_transport", "serve"]

P = TypeVar("P", bound=asyncio.BaseProtocol)

_ACCEPT_BATCH = 128  # accepts per readiness callback (more wait for the next turn)
_ACCEPT_RETRY_S = 0.5  # out of file descriptors: pause accepting this long
_RESOURCE_ERRORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


def _mode_for(sock: socket.socket, force_user: bool | None) -> StampMode:
    if user_stamps_forced(force_user):
        return "user"
    if not enable_rx_timestamps(sock):
        return "user"
    hold_stamping_on()
    return "kernel"


def _tune(sock: socket.socket) -> None:
    sock.setblocking(False)
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        # As asyncio and uvloop do: no Nagle delay on small writes (it would hold
        # a request's second segment for the peer's delayed ACK).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class StampedServer:
    """Accepts on one listening socket until :meth:`close`."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        mode: StampMode,
    ) -> None:
        self._loop = loop
        self._sock = sock
        self._factory = protocol_factory
        #: Where the accepted connections' arrival stamps come from.
        self.mode: StampMode = mode
        #: Connections accepted so far.
        self.accepted = 0
        self._inherits: bool | None = None if mode == "kernel" else False
        self._serving = True
        self._retry: asyncio.TimerHandle | None = None
        loop.add_reader(sock.fileno(), self._accept)

    @property
    def sockets(self) -> list[socket.socket]:
        return [self._sock] if self._serving else []

    def is_serving(self) -> bool:
        return self._serving

    def close(self) -> None:
        """Stop accepting and close the listening socket (connections stay)."""
        if not self._serving:
            return
        self._serving = False
        if self._retry is not None:
            self._retry.cancel()
        else:
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()

    def _accept(self) -> None:
        for _ in range(_ACCEPT_BATCH):
            try:
                conn, addr = self._sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno not in _RESOURCE_ERRORS:
                    raise
                print(f"stamped: accept failed ({exc}); pausing accepts", file=sys.stderr)
                self._loop.remove_reader(self._sock.fileno())
                self._retry = self._loop.call_later(_ACCEPT_RETRY_S, self._resume)
                return
            self._start(conn, addr)

    def _resume(self) -> None:
        self._retry = None
        if self._serving:
            self._loop.add_reader(self._sock.fileno(), self._accept)

    def _start(self, conn: socket.socket, addr: object) -> None:
        try:
            _tune(conn)
            mode = self.mode
            if mode == "kernel":
                if self._inherits is None:  # once: does the listener's option carry over?
                    self._inherits = rx_timestamps_enabled(conn)
                if not self._inherits and not enable_rx_timestamps(conn):
                    mode = "user"
        except OSError:  # the peer is already gone
            conn.close()
            return
        self.accepted += 1
        StampedTransport(self._loop, conn, self._factory(), mode=mode, peername=addr).start()


def serve(
    sock: socket.socket,
    protocol_factory: Callable[[], asyncio.BaseProtocol],
    *,
    force_user: bool | None = None,
) -> StampedServer:
    """Serve connections accepted on ``sock`` (bound and listening) in the running loop."""
    loop = asyncio.get_running_loop()
    mode = _mode_for(sock, force_user)
    sock.setblocking(False)
    return StampedServer(loop, sock, protocol_factory, mode)


def open_transport(
    sock: socket.socket, protocol: P, *, force_user: bool | None = None
) -> StampedTransport:
    """Wrap a connected socket and start it (``connection_made`` runs now).

    Segments that arrived before this call carry no stamp; their reads are
    stamped at read time and counted in ``user_reads``.
    """
    mode = _mode_for(sock, force_user)
    _tune(sock)
    transport = StampedTransport(asyncio.get_running_loop(), sock, protocol, mode=mode)
    transport.start()
    return transport


def _address(host: str, port: int) -> tuple[int, Any] | None:
    """Numeric hosts need no resolver round trip (the loop's runs in a thread)."""
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except socket.gaierror:
        return None
    family, _, _, _, addr = info[0]
    return family, addr


async def connect(
    host: str,
    port: int,
    protocol_factory: Callable[[], P],
    *,
    connect_timeout_s: float | None = None,
    force_user: bool | None = None,
) -> tuple[StampedTransport, P]:
    """One outgoing TCP connection; raises ``TimeoutError`` or ``OSError``."""
    loop = asyncio.get_running_loop()
    family: int
    addr: Any
    found = _address(host, port)
    if found is None:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, _, _, _, addr = infos[0]
    else:
        family, addr = found
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        mode = _mode_for(sock, force_user)
        _tune(sock)
        await asyncio.wait_for(loop.sock_connect(sock, addr), connect_timeout_s)
    except BaseException:
        sock.close()
        raise
    protocol = protocol_factory()
    transport = StampedTransport(loop, sock, protocol, mode=mode, peername=addr)
    transport.start()
    return transport, protocol
