"""Stopping a run from outside it: a stop request, and the signal handlers of a library run.

A run stops early when asked — Ctrl-C, SIGTERM, a caller's own reason — and
still returns its (partial, ``invalid``) result. Who listens for signals depends
on who is running loadgate:

* the CLI owns the process's signals for its whole life (:mod:`loadgate.interrupts`:
  the first Ctrl-C stops the run, the result is still written, a third abandons)
  and passes a :class:`StopRequest` in ``RunOptions.stop``;
* a library caller that passes none gets :class:`LibrarySignals` for the length
  of the run: SIGINT/SIGTERM stop it, and the caller's own handlers are put back
  afterwards (not the defaults: a second Ctrl-C must not surprise it).
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Coroutine
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["LibrarySignals", "StopRequest", "run_on_uvloop"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """A stop asked for from outside the run's event loop (a signal handler, a thread).

    :meth:`request` may be called before the run starts (the run then does not
    start measuring), during it, or after; only the first reason is kept.
    """

    def __init__(self) -> None:
        self.reason: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._callback: Callable[[str], None] | None = None

    def request(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        loop, callback = self._loop, self._callback
        if loop is not None and callback is not None and not loop.is_closed():
            loop.call_soon_threadsafe(callback, self.reason)

    def attach(self, loop: asyncio.AbstractEventLoop, callback: Callable[[str], None]) -> None:
        """The running run: ``callback(reason)`` on its loop, now if already requested."""
        self._loop, self._callback = loop, callback
        if self.reason is not None:
            loop.call_soon(callback, self.reason)

    def detach(self) -> None:
        self._loop = self._callback = None


class LibrarySignals:
    """SIGINT/SIGTERM → a stop request, for one run; previous handlers restored after."""

    def __init__(self, stop: StopRequest) -> None:
        self._stop = stop
        self._previous: dict[int, Callable[[int, FrameType | None], Any] | int | None] = {}

    def __enter__(self) -> LibrarySignals:
        loop = asyncio.get_running_loop()
        for sig in _SIGNALS:
            try:
                previous = signal.getsignal(sig)
                loop.add_signal_handler(sig, self._stop.request, sig.name)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
                continue
            self._previous[sig] = previous
        return self

    def __exit__(self, *exc: object) -> None:
        loop = asyncio.get_running_loop()
        for sig, previous in self._previous.items():
            loop.remove_signal_handler(sig)
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()


def run_on_uvloop(coro: Coroutine[Any, Any, T]) -> T:
    """``uvloop.run(coro)``, and the process's SIGINT/SIGTERM handlers as they were.

    Closing a uvloop loop resets SIGINT and SIGTERM to their defaults in the
    kernel (libuv's signal teardown) while Python's ``signal.getsignal`` still
    names the old handler: a Ctrl-C after a run would then kill the process
    outright, result unwritten. Installing the same handlers again fixes both.
    """
    import uvloop

    if threading.current_thread() is not threading.main_thread():
        return uvloop.run(coro)
    saved = {sig: signal.getsignal(sig) for sig in _SIGNALS}
    try:
        return uvloop.run(coro)
    finally:
        for sig, handler in saved.items():
            if handler is not None:
                signal.signal(sig, handler)
