"""The run directory: where a run's files go, and writing a result into it.

One namer for every kind of run (``run``, ``sweep``, ``ab``):
``<base>/<kind-prefix><profile>-<UTC time>-<pid>/`` under ``$LOADGATE_RUNS_DIR``
(default ``runs``), or beside ``--out``. One writer: ``result.json`` (atomic),
``report.html`` and the ``.hlog`` interval logs of a run that was just measured.
A report that cannot be drawn never costs the result: it becomes a warning.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from loadgate.profile.durations import parse_duration
from loadgate.result.io import write_result
from loadgate.result.model import Result, SweepResult

__all__ = ["RUNS_DIR_ENV", "new_run_dir", "write_run_directory"]

RUNS_DIR_ENV = "LOADGATE_RUNS_DIR"


def new_run_dir(name: str, *, kind: str = "", out: Path | None = None) -> Path:
    """A fresh directory name for one run of profile ``name`` (not created here).

    ``kind`` prefixes it (``sweep-``, ``ab-``); with ``out`` (a result file the
    user asked for) the directory goes beside that file.
    """
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = Path(os.environ.get(RUNS_DIR_ENV, "runs"))
    if out is not None:
        base = Path(out).parent
    prefix = f"{kind}-" if kind else ""
    return base / f"{prefix}{name}-{stamp}-{os.getpid()}"


def write_run_directory(result: Result | SweepResult, run_dir: Path) -> list[str]:
    """Write ``result.json``, ``report.html`` and (for a fresh run) ``.hlog`` files.

    Returns warnings (a report that could not be written), never raises for them.
    """
    from loadgate.histograms.hlog import write_all_hlogs
    from loadgate.report import write_reports

    run_dir.mkdir(parents=True, exist_ok=True)
    warnings: list[str] = []
    if isinstance(result, Result) and result.recorder is not None and not result.hlogs:
        started = datetime.fromisoformat(result.started_at).timestamp()
        measure_start = started + parse_duration(result.profile.get("load", {}).get("warmup", 0))
        if result.shard is not None:  # a shard waited for the common start
            measure_start = result.shard.measure_start
        result.hlogs = [p.name for p in write_all_hlogs(run_dir, result.recorder, measure_start)]
    write_result(result, run_dir / "result.json")
    try:
        write_reports(result, html=run_dir / "report.html")
    except Exception as exc:  # a report must never cost the result
        warnings.append(f"report.html not written: {exc}")
    return warnings
