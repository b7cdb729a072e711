"""How the CLI answers Ctrl-C and SIGTERM: never lose a result by accident.

For the whole of a command that runs load (``run``, ``sweep``, ``ab``):

1. the first signal stops the run; loadgate finishes the requests in flight,
   then writes the (partial, ``invalid``) result as usual and exits 3;
2. a second says what is happening ("writing the result, press Ctrl-C again to
   abandon it") and changes nothing;
3. a third abandons: every child loadgate started is killed, nothing more is
   written, exit 130 — and it says so.

The handlers are plain ``signal.signal`` handlers installed before anything
else the command does, so a Ctrl-C while a profile is still being read also
stops the run before it starts (and that result is written too). They do
nothing but count, print one line and hand the stop to the run's event loop
(:class:`~loadgate.pipeline.stopping.StopRequest`), so they are safe to run
between any two lines of Python.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from loadgate.gateway.processes import kill_children
from loadgate.pipeline.stopping import StopRequest

__all__ = ["ABANDONED_EXIT", "Interrupts"]

#: Exit code of a run abandoned by a third Ctrl-C (128 + SIGINT, as shells report it).
ABANDONED_EXIT = 130


class Interrupts:
    """``with Interrupts() as it: run(profile, RunOptions(stop=it.stop))``."""

    def __init__(self, err: TextIO | None = None, *, restore: bool = True) -> None:
        """``restore=False`` (the CLI): the handlers stay until the process exits, so a
        press between the end of the command and the exit is still counted."""
        self._restore = restore
        self.stop = StopRequest()
        self.presses = 0
        self._err = err or sys.stderr
        self._previous: dict[int, Any] = {}
        #: where the result went, once it has been written (the CLI says so)
        self.written: Path | None = None

    def __enter__(self) -> Interrupts:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._restore:
            for sig, previous in self._previous.items():
                signal.signal(sig, previous)
        self._previous.clear()

    def _say(self, text: str) -> None:
        self._err.write(f"loadgate: {text}\n")
        self._err.flush()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.presses += 1
        name = signal.Signals(signum).name
        if self.presses == 1:
            self._say(
                f"{name}: stopping the run; its partial result will be written "
                "(press Ctrl-C twice more to abandon it)"
            )
            self.stop.request(name)
        elif self.presses == 2:
            self._say("writing the result, press Ctrl-C again to abandon it")
        else:
            done = f"the result was already written to {self.written}" if self.written else None
            self._say(f"abandoned: {done or 'no result written'}")
            kill_children()
            os._exit(ABANDONED_EXIT)
