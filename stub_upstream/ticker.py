"""One shared timer for every stream of a worker: absolute monotonic-ns deadlines.

Why not ``asyncio.sleep`` per token: a future, a timer handle and a task wake-up
per event cost more than the write itself, and uvloop's timers have millisecond
granularity (libuv), which alone would be up to 1 ms of lateness. Instead every
due item sits in one heap keyed by its absolute ``time.monotonic_ns()`` deadline,
and a single Linux ``timerfd`` (CLOCK_MONOTONIC, TFD_TIMER_ABSTIME: the same clock,
nanosecond resolution) is armed for the earliest one. When it fires, every due
item's callback runs in that one loop callback, writing synchronously to its
transport. Where timerfd is unavailable the ticker falls back to ``loop.call_at``.

Items are :class:`Timed` objects: ``fire(now_ns)`` returns the next absolute
deadline, or ``None`` when the item is finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import heapq
import os
import time
from typing import Protocol

__all__ = ["Ticker", "Timed", "Waiter"]

_CLOCK_MONOTONIC = 1
_TFD_NONBLOCK = os.O_NONBLOCK
_TFD_CLOEXEC = os.O_CLOEXEC
_TFD_TIMER_ABSTIME = 1


class _Timespec(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long))


class _Itimerspec(ctypes.Structure):
    _fields_ = (("it_interval", _Timespec), ("it_value", _Timespec))


class Timed(Protocol):
    def fire(self, now_ns: int) -> int | None: ...


class Waiter:
    """Resolves a future at a deadline (non-streaming answers, slow headers)."""

    __slots__ = ("fut",)

    def __init__(self, fut: asyncio.Future[None]) -> None:
        self.fut = fut

    def fire(self, now_ns: int) -> int | None:
        if not self.fut.done():
            self.fut.set_result(None)
        return None


class _TimerFd:
    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._settime = libc.timerfd_settime
        self._settime.argtypes = (
            ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Itimerspec), ctypes.c_void_p,
        )  # fmt: skip
        fd = int(libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC))
        if fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create failed")
        self.fd = fd
        self._spec = _Itimerspec()
        self._ref = ctypes.byref(self._spec)

    def arm(self, deadline_ns: int) -> None:
        d = max(deadline_ns, 1)  # 0 would disarm
        self._spec.it_value.tv_sec = d // 1_000_000_000
        self._spec.it_value.tv_nsec = d % 1_000_000_000
        self._settime(self.fd, _TFD_TIMER_ABSTIME, self._ref, None)

    def drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self.fd, 8)

    def close(self) -> None:
        os.close(self.fd)


class Ticker:
    """The worker's single timer; ``add`` an item, it fires on its deadline."""

    def __init__(self, loop: asyncio.AbstractEventLoop, use_timerfd: bool = True) -> None:
        self._loop = loop
        self._heap: list[tuple[int, int, Timed]] = []
        self._n = 0  # tie-breaker: FIFO among equal deadlines
        self._armed = 0  # deadline the timer is set for (0 = none)
        self._fd: _TimerFd | None = None
        self._handle: asyncio.TimerHandle | None = None
        if use_timerfd:
            try:
                self._fd = _TimerFd()
            except (OSError, AttributeError):
                self._fd = None
        if self._fd is not None:
            loop.add_reader(self._fd.fd, self._on_timerfd)

    @property
    def pending(self) -> int:
        return len(self._heap)

    def add(self, deadline_ns: int, item: Timed) -> None:
        self._n += 1
        heapq.heappush(self._heap, (deadline_ns, self._n, item))
        if self._armed == 0 or deadline_ns < self._armed:
            self._arm(deadline_ns)

    async def sleep_until(self, deadline_ns: int) -> None:
        """Wait for an absolute monotonic deadline (returns at once if past)."""
        if deadline_ns <= time.monotonic_ns():
            return
        fut: asyncio.Future[None] = self._loop.create_future()
        self.add(deadline_ns, Waiter(fut))
        await fut

    def _arm(self, deadline_ns: int) -> None:
        self._armed = deadline_ns
        if self._fd is not None:
            self._fd.arm(deadline_ns)
            return
        if self._handle is not None:
            self._handle.cancel()
        delay = (deadline_ns - time.monotonic_ns()) / 1e9
        self._handle = self._loop.call_at(self._loop.time() + max(delay, 0.0), self._run)

    def _on_timerfd(self) -> None:
        assert self._fd is not None
        self._fd.drain()
        self._run()

    def _run(self) -> None:
        self._armed = 0
        self._handle = None
        heap = self._heap
        now = time.monotonic_ns()
        while heap and heap[0][0] <= now:
            _, _, item = heapq.heappop(heap)
            nxt = item.fire(now)
            if nxt is not None:
                self._n += 1
                heapq.heappush(heap, (nxt, self._n, item))
            now = time.monotonic_ns()
        if heap:
            self._arm(heap[0][0])

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        if self._fd is not None:
            self._loop.remove_reader(self._fd.fd)
            self._fd.close()
            self._fd = None
