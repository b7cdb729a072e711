"""Kernel receive timestamps on a TCP socket: switching them on, reading them.

Linux stamps every received segment in the kernel (``skb->tstamp``, taken when
the segment reaches the network stack) and, with ``SO_TIMESTAMPNS`` set, hands
the stamp of the *last* segment a ``recvmsg`` returned as an ``SCM_TIMESTAMPNS``
control message (``struct timespec``, CLOCK_REALTIME). So a byte's arrival time
no longer depends on when the process got round to reading it.

Why ``SO_TIMESTAMPNS`` and not ``SO_TIMESTAMPING`` (RX_SOFTWARE | SOFTWARE): both
deliver the same ``skb->tstamp`` (same value, same ns resolution) and cost the
same per ``recvmsg`` here (docs/timestamps.md); the ``SO_TIMESTAMPNS`` control
message is 16 bytes instead of 48 and needs no flag word. Set on a listening
socket it is inherited by every accepted socket (the kernel clones the option
with the socket; checked by tests/unit/stub_upstream/test_stamped_transport.py),
so the first segment of a connection is already stamped.

The kernel only stamps segments while some socket on the host wants stamps,
and it turns stamping on *lazily* (a static key flipped from a workqueue): for
a moment after the first socket asks, segments still arrive unstamped.
:func:`hold_stamping_on` therefore keeps one stamped UDP socket per process and
waits (once, at most ~0.2 s) until a datagram to itself comes back stamped with
its *arrival* time (a stamp older than the read: an unstamped datagram is stamped
by the read instead, which proves nothing), so the first connection's bytes are
stamped too.

Python's ``socket`` module defines none of these names; the numbers are Linux's
asm-generic ones (x86-64, arm64, riscv). Elsewhere ``enable_rx_timestamps``
refuses and callers fall back to user-space stamps (``"user"`` mode).
"""

from __future__ import annotations

import functools
import os
import socket
import struct
import sys
import time
from typing import Literal

__all__ = [
    "ANCILLARY_BUFSIZE",
    "FORCE_USER_ENV",
    "SO_TIMESTAMPNS",
    "StampMode",
    "enable_rx_timestamps",
    "hold_stamping_on",
    "kernel_stamps_supported",
    "rx_timestamps_enabled",
    "stamp_of",
    "user_stamps_forced",
]

#: ``"kernel"``: arrival stamps come from the kernel; ``"user"``: from
#: ``time.monotonic_ns()`` when the read returned (declared, never silent).
StampMode = Literal["kernel", "user"]

#: Set to ``user`` to force user-space stamps in every process that reads it
#: (tests of the fallback path; a kernel that misbehaves).
FORCE_USER_ENV = "LOADGATE_RX_STAMPS"

#: ``SO_TIMESTAMPNS`` (== ``SCM_TIMESTAMPNS``), asm-generic value.
SO_TIMESTAMPNS = 35
#: Room for one ``SCM_TIMESTAMPNS`` message (CMSG_SPACE(16) = 32) and slack.
ANCILLARY_BUFSIZE = 64

_TIMESPEC = struct.Struct("@ll")  # __kernel_old_timespec: two longs
_GENERIC_ARCH = ("x86_64", "aarch64", "arm64", "riscv64", "amd64")


@functools.cache
def kernel_stamps_supported() -> bool:
    """This platform has the asm-generic socket option numbers we use."""
    return sys.platform == "linux" and os.uname().machine.lower() in _GENERIC_ARCH


def user_stamps_forced(force_user: bool | None = None) -> bool:
    """``force_user`` if given, else the :data:`FORCE_USER_ENV` environment variable."""
    if force_user is not None:
        return force_user
    return os.environ.get(FORCE_USER_ENV, "").strip().lower() == "user"


def enable_rx_timestamps(sock: socket.socket) -> bool:
    """Switch on kernel receive stamps; False if the kernel or platform refuses."""
    if not kernel_stamps_supported():
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


_keeper: socket.socket | None = None
_held: tuple[int, bool] = (0, False)  # (pid, result) of the last hold_stamping_on
_PROBE_TRIES = 40
_PROBE_WAIT_S = 0.005


def hold_stamping_on() -> bool:
    """Keep kernel stamping on for this process; True once a probe came back stamped.

    The work is done once per process (a forked child probes again); False if
    stamps are refused or never appeared, and then reads without a stamp are
    stamped in user space and counted, as always.
    """
    global _held
    pid = os.getpid()
    if _held[0] != pid:
        _held = (pid, _probe())
    return _held[1]


def _probe() -> bool:
    global _keeper
    if not kernel_stamps_supported():
        return False
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.bind(("127.0.0.1", 0))
        if not enable_rx_timestamps(probe):
            probe.close()
            return False
        probe.settimeout(_PROBE_WAIT_S)
        here = probe.getsockname()
        for _ in range(_PROBE_TRIES):
            probe.sendto(b"?", here)
            time.sleep(_PROBE_WAIT_S)
            before_read = time.time_ns()
            try:
                _, anc, _, _ = probe.recvmsg(1, ANCILLARY_BUFSIZE)
            except TimeoutError:
                continue
            # A datagram that came in unstamped is stamped by the read itself (UDP's
            # fallback), so "a stamp came back" proves nothing: only a stamp older
            # than the read, by most of the wait, shows the kernel stamps arrivals.
            stamp = stamp_of(anc)
            if stamp and before_read - stamp >= _PROBE_WAIT_S * 1e9 / 2:
                if _keeper is not None:
                    _keeper.close()  # the parent's, inherited over fork
                _keeper = probe
                return True
    except OSError:
        pass
    probe.close()
    return False


def rx_timestamps_enabled(sock: socket.socket) -> bool:
    """The option is on (an accepted socket inherits it from its listener)."""
    if not kernel_stamps_supported():
        return False
    try:
        return sock.getsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS) != 0
    except OSError:
        return False


def stamp_of(ancdata: list[tuple[int, int, bytes]]) -> int:
    """The CLOCK_REALTIME ns of an ``SCM_TIMESTAMPNS`` message, or 0 if there is none."""
    for level, kind, data in ancdata:
        if kind == SO_TIMESTAMPNS and level == socket.SOL_SOCKET and len(data) >= 16:
            sec, nsec = _TIMESPEC.unpack_from(data)
            return int(sec) * 1_000_000_000 + int(nsec)
    return 0
