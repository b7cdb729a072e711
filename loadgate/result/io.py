"""Result files on disk: the one atomic writer, and reading a file once, at the edge.

Every file loadgate writes for a reader to pick up (result.json, reports, sweep
plots and CSV) goes through :func:`write_atomic`, so no reader — a CI uploader,
``loadgate compare`` on a file still being written — ever sees half a file.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path

from loadgate.errors import UsageError
from loadgate.result.model import Result, SweepResult
from loadgate.result.versions import load_document

__all__ = ["check_writable", "load_result", "load_run_result", "write_atomic", "write_result"]


def write_atomic(path: Path, text: str | bytes) -> Path:
    """Write ``text`` to ``path`` so that readers only ever see a whole file.

    Temp file in the same directory (same file system, so the rename is atomic),
    fsync, ``os.replace``, then fsync the directory so the rename survives a crash.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8") if isinstance(text, str) else text
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the file from a CI uploader
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if sys.platform != "win32":
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path


def check_writable(path: Path, option: str) -> None:
    """Raise a one-line UsageError now if ``path`` could not be written after a run.

    Tried for real (the directory is made, a temporary file created and removed
    in it): permission bits say nothing for root, and nothing at all for /proc.
    """
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent, prefix=f".{path.name}."):
            pass
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot write there: {exc.strerror or exc}") from None


def to_json(result: Result | SweepResult) -> str:
    """The file form: strict JSON (NaN/inf become null), the contract's key names."""
    return result.model_dump_json(by_alias=True, indent=2) + "\n"


def write_result(result: Result | SweepResult, path: Path) -> Path:
    return write_atomic(path, to_json(result))


def load_result(path: Path) -> Result | SweepResult:
    """Read a result file of any supported schema version; UsageError naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    return load_document(data, str(path))


def load_run_result(path: Path) -> Result:
    """A run's result (not a sweep's): what compare, history and gates read."""
    result = load_result(path)
    if isinstance(result, SweepResult):
        raise UsageError(f"{path}: a sweep result, not a run's (give a step's result.json)")
    return result
