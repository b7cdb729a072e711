"""HdrHistogram interval-log (``.hlog``) export of a run's interval histograms.

One file per metric (all modes, or one mode), in the log format v1.2 that
HdrHistogram's own tools read (``HistogramLogProcessor``, HdrHistogramVisualizer,
``hdrh.log.HistogramLogReader``): a version comment, ``#[StartTime: …]`` and
``#[BaseTime: …]`` headers, the legend, then one line per interval
``Tag=<metric>,<start s>,<length s>,<max>,<base64 histogram>``. Timestamps are
relative to the run's start (BaseTime = StartTime); values are µs and the max
column is in ms.

hdrh's ``output_start_time`` is broken in the installed release (it calls a
non-existent ``iso_format``), so the StartTime line is written here in the
same format.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader, HistogramLogWriter

from loadgate.histograms.hdr import new_histogram
from loadgate.histograms.recorder import METRICS, MODES, Recorder

__all__ = ["hlog_name", "read_total", "write_all_hlogs", "write_hlog"]


def hlog_name(metric: str, mode: str | None = None) -> str:
    """File name of a metric's log: ``overhead_ms.hlog``, ``stream.overhead_ms.hlog``."""
    return f"{metric}.hlog" if mode is None else f"{mode}.{metric}.hlog"


def write_hlog(
    path: Path,
    recorder: Recorder,
    metric: str,
    start_time_s: float,
    mode: str | None = None,
) -> None:
    """Write one metric's interval histograms as an HdrHistogram interval log.

    ``start_time_s`` is the run's start as Unix time (seconds), the wall-clock
    moment that corresponds to ``recorder.start_ns``.
    """
    interval_s = recorder.interval_ns / 1e9
    items = recorder.intervals(metric, mode)
    tag = metric if mode is None else f"{mode}.{metric}"
    with path.open("w", encoding="utf-8") as f:
        w = HistogramLogWriter(f)
        w.output_comment(f"[Logged with loadgate, metric {tag}, values in microseconds]")
        w.output_log_format_version()
        stamp = datetime.fromtimestamp(start_time_s, tz=UTC).isoformat(" ")
        f.write(f"#[StartTime: {start_time_s:.3f} (seconds since epoch), {stamp}]\n")
        w.output_base_time(start_time_s * 1000.0)
        w.output_legend()
        for j, h in items:
            start = j * interval_s
            # The writer has no tag support; the tag prefix is part of the same line.
            f.write(f"Tag={tag},")
            # For the first interval (start 0.0) the writer falls back to the
            # histogram's own start stamp, which is 0 as well.
            w.output_interval_histogram(
                h,
                start_time_stamp_sec=start,
                end_time_stamp_sec=start + interval_s,
                max_value_unit_ratio=1000.0,
            )


def write_all_hlogs(run_dir: Path, recorder: Recorder, start_time_s: float) -> list[Path]:
    """Write ``<metric>.hlog`` (all modes) for every recorded metric into ``run_dir``.

    Per-mode logs are written as well (``stream.<metric>.hlog``) when both modes
    have data, so a tool can plot the two distributions side by side.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for m in METRICS:
        if recorder.count(m) == 0:
            continue
        p = run_dir / hlog_name(m)
        write_hlog(p, recorder, m, start_time_s)
        paths.append(p)
        if all(recorder.count(m, mode) for mode in MODES):
            for mode in MODES:
                p = run_dir / hlog_name(m, mode)
                write_hlog(p, recorder, m, start_time_s, mode)
                paths.append(p)
    return paths


def read_total(path: Path) -> HdrHistogram:
    """Sum of all interval histograms in an ``.hlog`` (for checks and tests)."""
    total = new_histogram()
    reader = HistogramLogReader(str(path), new_histogram())
    try:
        while (h := reader.get_next_interval_histogram()) is not None:
            if h.get_total_count():
                total.add(h)
    finally:
        reader.close()
    return total
