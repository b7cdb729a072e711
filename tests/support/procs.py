"""Waiting for a process the test started to be gone (exited, or a zombie)."""

from __future__ import annotations

import time

import psutil

__all__ = ["gone"]


def gone(pid: int, timeout_s: float = 10.0) -> bool:
    """True once ``pid`` has exited (or is a zombie nobody reaped yet) within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.02)
    return False
