"""Ctrl-C policy of the CLI: stop, then say so, then abandon — counted, not timed."""

from __future__ import annotations

import io
import os
import os as os_mod
import signal

import pytest

import loadgate.interrupts as interrupts_mod
from loadgate.interrupts import ABANDONED_EXIT, Interrupts


def test_presses_stop_then_warn_then_abandon(monkeypatch: pytest.MonkeyPatch) -> None:
    exits: list[int] = []
    killed: list[bool] = []
    monkeypatch.setattr(os_mod, "_exit", exits.append)
    monkeypatch.setattr(interrupts_mod, "kill_children", lambda: killed.append(True))
    err = io.StringIO()
    before = signal.getsignal(signal.SIGINT)
    with Interrupts(err) as it:
        os.kill(os.getpid(), signal.SIGINT)
        assert it.stop.reason == "SIGINT" and exits == []
        os.kill(os.getpid(), signal.SIGTERM)
        assert it.stop.reason == "SIGINT"  # the first reason stands
        assert "writing the result, press Ctrl-C again to abandon it" in err.getvalue()
        assert exits == [] and killed == []
        os.kill(os.getpid(), signal.SIGINT)
        assert exits == [ABANDONED_EXIT] and killed == [True]
        assert "abandoned: no result written" in err.getvalue()
    assert signal.getsignal(signal.SIGINT) is before  # handlers put back


def test_abandon_after_writing_names_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os_mod, "_exit", lambda code: None)
    monkeypatch.setattr(interrupts_mod, "kill_children", lambda: None)
    err = io.StringIO()
    with Interrupts(err) as it:
        from pathlib import Path

        it.written = Path("runs/x/result.json")
        for _ in range(3):
            os.kill(os.getpid(), signal.SIGINT)
    assert "abandoned: the result was already written to runs/x/result.json" in err.getvalue()
