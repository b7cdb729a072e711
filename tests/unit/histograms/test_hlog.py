"""``.hlog`` export: readable by hdrh's own log reader, counts preserved."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hdrh.log import HistogramLogReader

from loadgate.histograms.hdr import counts_of, new_histogram
from loadgate.histograms.hlog import read_total, write_all_hlogs, write_hlog
from loadgate.histograms.recorder import Recorder

S = 1_000_000_000


def _recorder() -> Recorder:
    rec = Recorder(start_ns=10 * S)
    rng = np.random.default_rng(7)
    for k in range(3000):
        at = 10 * S + int(rng.integers(0, 5 * S))
        rec.record("overhead_ms", bool(k % 2), int(rng.integers(50_000, 5_000_000)), at)
    rec.record("ttft_ms", True, 50_000_000, 10 * S)
    return rec


def test_round_trip_through_hdrh_reader(tmp_path: Path) -> None:
    rec = _recorder()
    p = tmp_path / "overhead_ms.hlog"
    write_hlog(p, rec, "overhead_ms", start_time_s=1_700_000_000.0)
    text = p.read_text()
    assert "#[StartTime: 1700000000.000 (seconds since epoch), 2023-11-14 22:13:20+00:00]" in text
    assert "#[BaseTime: 1700000000.000000 (seconds since epoch)]" in text
    assert text.count("Tag=overhead_ms,") == 5

    reader = HistogramLogReader(str(p), new_histogram())
    got = []
    while (h := reader.get_next_interval_histogram()) is not None:
        got.append(h)
    reader.close()
    assert [h.get_tag() for h in got] == ["overhead_ms"] * 5
    assert reader.get_start_time_sec() == 1_700_000_000.0
    # interval j starts j seconds after the start, absolute in ms
    assert [h.get_start_time_stamp() for h in got] == [
        (1_700_000_000.0 + j) * 1000.0 for j in range(5)
    ]
    for (_, mine), theirs in zip(rec.intervals("overhead_ms"), got, strict=True):
        assert np.array_equal(counts_of(mine), counts_of(theirs))
    assert sum(h.get_total_count() for h in got) == rec.count("overhead_ms") == 3000


def test_write_all(tmp_path: Path) -> None:
    rec = _recorder()
    paths = write_all_hlogs(tmp_path / "run", rec, 1_700_000_000.0)
    names = sorted(p.name for p in paths)
    assert names == [
        "non_stream.overhead_ms.hlog",
        "overhead_ms.hlog",
        "stream.overhead_ms.hlog",
        "ttft_ms.hlog",
    ]
    for p in paths:
        mode, _, metric = p.name.removesuffix(".hlog").rpartition(".")
        total = read_total(p)
        assert total.get_total_count() == rec.count(metric, mode or None)
        assert np.array_equal(counts_of(total), counts_of(rec.histogram(metric, mode or None)))
