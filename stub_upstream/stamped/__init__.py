"""Kernel-timestamped TCP for asyncio: when each byte *arrived*, not when it was read.

Shared by the stub (server side) and the load generator (client side); it
imports nothing but the standard library, and never ``loadgate``.

The interface a protocol implements to receive stamps::

    class MyProtocol(asyncio.Protocol):
        def stamped_data_received(self, data: bytes, t_ns: int) -> None:
            ...  # t_ns: arrival of the read's last segment, time.monotonic_ns() clock

A protocol without that method gets plain ``data_received(data)``. Everything
else is the ordinary ``asyncio.Protocol`` contract (``connection_made``,
``eof_received``, ``pause_writing`` / ``resume_writing``, ``connection_lost``
exactly once).

* :func:`serve` (listening socket -> connections), :func:`connect`,
  :func:`open_transport` (an already connected socket);
* :class:`StampedTransport`: ``mode`` (``"kernel"`` | ``"user"``), ``reads``,
  ``user_reads``, and the ``asyncio.Transport`` methods;
* :func:`clock_bridge` / :class:`ClockBridge` / :class:`ClockStats`: the
  REALTIME -> MONOTONIC conversion and its drift figures;
* :data:`FORCE_USER_ENV`: ``LOADGATE_RX_STAMPS=user`` forces user-space stamps.

How the choices were made, with measurements: docs/timestamps.md.
"""

from stub_upstream.stamped._clock import ClockBridge, ClockStats, clock_bridge
from stub_upstream.stamped._endpoints import StampedServer, connect, open_transport, serve
from stub_upstream.stamped._socket import (
    FORCE_USER_ENV,
    StampMode,
    enable_rx_timestamps,
    hold_stamping_on,
    kernel_stamps_supported,
    rx_timestamps_enabled,
    user_stamps_forced,
)
from stub_upstream.stamped._transport import READ_SIZE, StampedReceiver, StampedTransport

__all__ = [
    "FORCE_USER_ENV",
    "READ_SIZE",
    "ClockBridge",
    "ClockStats",
    "StampMode",
    "StampedReceiver",
    "StampedServer",
    "StampedTransport",
    "clock_bridge",
    "connect",
    "enable_rx_timestamps",
    "hold_stamping_on",
    "kernel_stamps_supported",
    "open_transport",
    "rx_timestamps_enabled",
    "serve",
    "user_stamps_forced",
]
