"""Running ``loadgate`` in-process through its real entry point, for tests."""

from __future__ import annotations

import pytest

from loadgate.cli import main

__all__ = ["run_cli"]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``(exit code, stdout, stderr)`` of ``loadgate ARGV...``."""
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    out, err = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 1), out, err
