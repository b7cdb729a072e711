"""Trace replay: a recorded request log as an open-loop schedule (docs/workloads.md).

Owns the three public trace formats loadgate reads, and turning one into send
times:

* **mooncake** — JSON lines ``{"timestamp": ms, "input_length", "output_length",
  "hash_ids": [...]}`` (Mooncake's FAST'25 traces); ``hash_ids`` name the prompt's
  prefix blocks (``load.replay.block_tokens`` tokens each), shared between requests;
* **azure** — CSV ``TIMESTAMP,ContextTokens,GeneratedTokens`` (Azure LLM inference
  traces 2023/2024; the timestamp is a date and time);
* **burstgpt** — CSV ``Timestamp,Model,Request tokens,Response tokens,…``
  (BurstGPT; the timestamp is seconds). A row with 0 response tokens is a request
  that failed when it was recorded: skipped, and counted.

Times are kept as integer microseconds. A send time is
``start_ns + (t − t0 + pass·period) / speedup`` — absolute, fixed before the run
like the open loop's (:mod:`loadgate.load.schedule`), so a slow gateway cannot
slow the replay down (coordinated omission). The file is read twice, never held:
:func:`scan` checks every row before anything starts (a bad row is a one-line
usage error naming the file, line and key) and :func:`iter_schedule` streams the
rows again in chunks while the run sends them.

The standard library's ``csv`` and ``json`` read the rows; no trace library
covers these formats (each benchmark tool carries its own small reader).
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from loadgate.client.observation import RequestSpec
from loadgate.errors import UsageError
from loadgate.load.prompts import prefix_prompt
from loadgate.profile.models import LoadSpec, Profile
from stub_upstream.config import StubConfig

__all__ = [
    "FORMATS",
    "TraceChunk",
    "TraceInfo",
    "TraceRow",
    "detect_format",
    "fit_stub",
    "iter_rows",
    "iter_schedule",
    "row_spec",
    "scan",
    "trace_path",
]

FORMATS = ("mooncake", "azure", "burstgpt")
CHUNK = 4096
_AZURE = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
_BURST = ("Timestamp", "Request tokens", "Response tokens")
_KEY = "load.trace"


@dataclass(frozen=True, slots=True)
class TraceRow:
    """One request of a trace: when (µs, the trace's own clock) and how large."""

    t_us: int
    input_tokens: int
    output_tokens: int
    hash_ids: tuple[int, ...] = ()


@dataclass(slots=True)
class TraceInfo:
    """What :func:`scan` found: the rows a replay will use, and those it skips."""

    path: str
    format: str
    rows: int = 0  # rows in the file (header excluded)
    #: skipped rows by reason: ``failed`` (BurstGPT, 0 response tokens), ``zero_output``
    skipped: dict[str, int] = field(default_factory=dict)
    in_window: int = 0  # usable rows inside [start, end) of load.replay
    t0_us: int = 0  # trace time the replay starts at (the first row + replay.start)
    first_us: int = 0
    last_us: int = 0  # the last usable row inside the window
    period_us: int = 0  # one pass of the window, for load.replay.loop
    max_output: int = 0
    max_input: int = 0
    hash_rows: int = 0  # rows with hash_ids (prefix sharing)


@dataclass(frozen=True, slots=True)
class TraceChunk:
    """Send times (absolute ns, ascending) and the rows sent at them."""

    times: npt.NDArray[np.int64]
    rows: list[TraceRow]
    pass_index: int = 0  # load.replay.loop: which pass over the trace (0: the first)


def trace_path(spec: LoadSpec, base_dir: Path) -> Path:
    """``load.trace``, relative to the profile's directory."""
    assert spec.trace is not None
    path = Path(spec.trace)
    return path if path.is_absolute() else base_dir / path


def _open(path: Path) -> Any:
    try:
        return path.open(encoding="utf-8", newline="")
    except FileNotFoundError:
        raise UsageError(f"{path}: {_KEY}: file not found") from None
    except OSError as exc:
        raise UsageError(f"{path}: {_KEY}: unreadable: {exc.strerror}") from None


def detect_format(path: Path) -> str:
    """The format of ``path`` from its first non-blank line; a UsageError when unclear."""
    with _open(path) as f:
        first = next((line.strip() for line in f if line.strip()), "")
    if first.startswith("{"):
        return "mooncake"
    header = [h.strip() for h in first.split(",")]
    if all(h in header for h in _AZURE):
        return "azure"
    if all(h in header for h in _BURST):
        return "burstgpt"
    raise UsageError(
        f"{path}: load.trace_format: cannot tell the trace's format from its first line "
        f"(set load.trace_format to one of {', '.join(FORMATS)})"
    )


def _bad(path: Path, line: int, what: str) -> UsageError:
    return UsageError(f"{path}:{line}: {_KEY}: {what}")


def _count(path: Path, line: int, name: str, value: Any) -> int:
    """A token count: an integer, or a text or float holding one (``"472"``, ``472.0``)."""
    try:
        number = float(value) if isinstance(value, str) else value
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise TypeError
        n = int(number)
        if n != number:
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise _bad(path, line, f"{name} is not a whole number: {value!r}") from None
    if n < 0:
        raise _bad(path, line, f"{name} must not be negative (got {n})")
    return n


def _mooncake(path: Path, f: Any) -> Iterator[tuple[int, TraceRow]]:
    for line_no, line in enumerate(f, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _bad(path, line_no, f"not a JSON object: {exc.msg}") from None
        if not isinstance(obj, dict):
            raise _bad(path, line_no, "not a JSON object")
        for key in ("timestamp", "input_length", "output_length"):
            if key not in obj:
                raise _bad(path, line_no, f"no {key!r}")
        hashes = obj.get("hash_ids", [])
        if not isinstance(hashes, list) or not all(
            isinstance(h, int) and not isinstance(h, bool) for h in hashes
        ):
            raise _bad(path, line_no, "hash_ids must be a list of integers")
        ts = obj["timestamp"]
        if isinstance(ts, bool) or not isinstance(ts, int | float):
            raise _bad(path, line_no, f"timestamp is not a number: {ts!r}")
        yield (
            line_no,
            TraceRow(
                round(ts * 1000),
                _count(path, line_no, "input_length", obj["input_length"]),
                _count(path, line_no, "output_length", obj["output_length"]),
                tuple(hashes),
            ),
        )


def _azure_time(path: Path, line: int, text: str) -> int:
    """Microseconds since the epoch of an Azure ``TIMESTAMP`` (UTC when it names no zone)."""
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        raise _bad(path, line, f"TIMESTAMP is not a date and time: {text!r}") from None
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return (dt - _EPOCH) // timedelta(microseconds=1)


_EPOCH = datetime(1970, 1, 1)


def _csv(path: Path, f: Any, fmt: str) -> Iterator[tuple[int, TraceRow]]:
    reader = csv.reader(f)
    header = [h.strip() for h in next(reader, [])]
    names = _AZURE if fmt == "azure" else _BURST
    missing = [n for n in names if n not in header]
    if missing:
        raise _bad(path, 1, f"the header has no {missing[0]!r} column ({fmt} format)")
    t_col, in_col, out_col = (header.index(n) for n in names)
    width = max(t_col, in_col, out_col)
    for row in reader:
        line_no = reader.line_num
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) <= width:
            raise _bad(path, line_no, f"{len(row)} columns, the header has {len(header)}")
        if fmt == "azure":
            t_us = _azure_time(path, line_no, row[t_col])
        else:
            try:
                t_us = round(float(row[t_col]) * 1_000_000)
            except ValueError:
                raise _bad(path, line_no, f"Timestamp is not a number: {row[t_col]!r}") from None
        yield (
            line_no,
            TraceRow(
                t_us,
                _count(path, line_no, names[1], row[in_col]),
                _count(path, line_no, names[2], row[out_col]),
            ),
        )


def iter_rows(path: Path, fmt: str) -> Iterator[tuple[int, TraceRow | str]]:
    """``(line, row)`` for every row, or ``(line, skip reason)`` for a row not replayed."""
    with _open(path) as f:
        rows = _mooncake(path, f) if fmt == "mooncake" else _csv(path, f, fmt)
        for line_no, row in rows:
            if row.output_tokens == 0:
                yield line_no, "failed" if fmt == "burstgpt" else "zero_output"
            else:
                yield line_no, row


def _resolved_format(spec: LoadSpec, path: Path) -> str:
    return spec.trace_format if spec.trace_format != "auto" else detect_format(path)


def scan(spec: LoadSpec, base_dir: Path) -> TraceInfo:
    """Check every row of ``load.trace`` and sum up what a replay will use."""
    path = trace_path(spec, base_dir)
    fmt = _resolved_format(spec, path)
    info = TraceInfo(path=str(path), format=fmt)
    replay = spec.replay
    start_us = round(replay.start_s * 1e6)
    end_us = round(replay.end_s * 1e6)
    first: int | None = None
    prev: int | None = None
    gaps = 0
    for line_no, row in iter_rows(path, fmt):
        info.rows += 1
        if isinstance(row, str):
            info.skipped[row] = info.skipped.get(row, 0) + 1
            continue
        if prev is not None and row.t_us < prev:
            raise _bad(path, line_no, "timestamps must not decrease (sort the trace by time)")
        prev = row.t_us
        if first is None:
            first = row.t_us
        rel = row.t_us - first
        if rel < start_us or (end_us and rel >= end_us):
            continue
        if not info.in_window:
            info.first_us = row.t_us
        elif row.t_us > info.last_us:
            gaps += 1
        info.in_window += 1
        info.last_us = row.t_us
        info.max_output = max(info.max_output, row.output_tokens)
        info.max_input = max(info.max_input, row.input_tokens)
        info.hash_rows += bool(row.hash_ids)
    if not info.in_window:
        where = ""
        if start_us or end_us:
            where = f" between start {replay.start_s:g} s and end {replay.end_s:g} s"
        raise UsageError(f"{path}: {_KEY}: no row to replay{where}")
    assert first is not None
    info.t0_us = first + start_us
    span = info.last_us - info.t0_us
    if end_us:
        info.period_us = end_us - start_us
    else:
        # One mean gap after the last row, so a loop keeps the trace's own spacing.
        info.period_us = span + (span // gaps if gaps else 1_000_000)
    return info


def iter_schedule(
    spec: LoadSpec,
    base_dir: Path,
    info: TraceInfo,
    start_ns: int,
    end_ns: int,
    *,
    worker_index: int = 0,
    workers: int = 1,
    max_count: int | None = None,
    chunk: int = CHUNK,
) -> Iterator[TraceChunk]:
    """The replay's send times in ``[start_ns, end_ns)``, with their rows, in chunks.

    Row ``i`` of the window (counting every pass) belongs to worker ``i % workers``.
    With ``load.replay.loop`` the window is replayed again, ``period`` later each
    pass, until ``end_ns`` (or ``max_count`` rows) — never an endless loop: each
    pass moves the send times forward by at least a microsecond of trace time.
    """
    replay = spec.replay
    path = trace_path(spec, base_dir)
    start_us = round(replay.start_s * 1e6)
    end_us = round(replay.end_s * 1e6)
    left = max_count if max_count is not None else -1
    index = 0
    passes = 0
    while True:
        offset_us = passes * max(1, info.period_us) - info.t0_us
        times: list[int] = []
        rows: list[TraceRow] = []
        first: int | None = None
        for _line, row in iter_rows(path, info.format):
            if isinstance(row, str):
                continue
            first = row.t_us if first is None else first
            rel = row.t_us - first
            if end_us and rel >= end_us:
                break  # times never decrease (scan checked): the window is over
            if rel < start_us:
                continue
            t = start_ns + round((row.t_us + offset_us) * 1000 / replay.speedup)
            if t >= end_ns:
                left = 0  # times only grow from here: the replay is over
                break
            mine = index % workers == worker_index
            index += 1
            if not mine:
                continue
            times.append(t)
            rows.append(row)
            left -= 1
            if left == 0:
                break
            if len(times) >= chunk:
                yield TraceChunk(np.array(times, dtype=np.int64), rows, passes)
                times, rows = [], []
        if times:
            yield TraceChunk(np.array(times, dtype=np.int64), rows, passes)
        passes += 1
        if not replay.loop or left == 0:
            return


def row_spec(base: RequestSpec, row: TraceRow, block_tokens: int, stub_tokens: int) -> RequestSpec:
    """The mix's draw for this send (endpoint, mode, key, id), sized as the trace row says.

    The prompt is ``input_tokens`` words built from the row's prefix blocks; ``max_tokens``
    is the row's output length, and the stub answers ``min(stub.output_tokens, max_tokens)``
    (the run raises ``stub.output_tokens`` to the trace's longest output: :func:`fit_stub`).
    """
    text = prefix_prompt(row.hash_ids, row.input_tokens, block_tokens, base.corr)
    return dataclasses.replace(
        base,
        prompt_tokens=max(1, row.input_tokens),
        max_tokens=row.output_tokens,
        expect_tokens=min(stub_tokens, row.output_tokens),
        messages=(("user", text),),
    )


def fit_stub(profile: Profile, info: TraceInfo) -> Profile:
    """``profile`` with ``stub.output_tokens`` at least the trace's longest output.

    The stub answers ``min(stub.output_tokens, max_tokens)``: raised so, every row gets
    exactly the tokens it recorded. The result's profile shows the raised value.
    """
    if info.max_output <= profile.stub.output_tokens:
        return profile
    most = StubConfig.model_fields["output_tokens"].metadata
    limit = next((m.le for m in most if hasattr(m, "le")), 65_536)
    if info.max_output > limit:
        raise UsageError(
            f"{info.path}: {_KEY}: an output of {info.max_output} tokens is more than the stub "
            f"answers ({limit}): replay a window without it (load.replay.start / end)"
        )
    stub = profile.stub.model_copy(update={"output_tokens": info.max_output})
    return profile.model_copy(update={"stub": stub})
