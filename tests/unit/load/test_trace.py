"""Trace replay by arithmetic: each sample trace's rows, skips and send times, exactly."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loadgate.client.transport import MockTransport, ScriptedResponse, SentRequest
from loadgate.errors import UsageError
from loadgate.load import trace
from loadgate.load.generator import Engine, WorkerPlan
from loadgate.profile import parse_profile
from loadgate.profile.models import LoadSpec
from tests.support.fake_ledger import FakeLedger
from tests.support.paths import ROOT
from tests.support.streams import stream_events

DATA = ROOT / "tests" / "data" / "traces"
MS = 1_000_000
START = 1_000_000_000_000  # a round start instant, ns

# The samples' rows as (ms after the first row, input tokens, output tokens).
Rows = list[tuple[float, int, int]]
MOONCAKE: Rows = [(0, 1100, 12), (250, 700, 5), (500, 1536, 20), (1200, 300, 3), (1200, 1024, 9),
                  (2050, 900, 30)]  # fmt: skip
AZURE: Rows = [
    (0, 374, 44),
    (128.41, 96, 3),
    (319.41, 1021, 17),
    (831.755, 12, 1),
    (1569.41, 640, 25),
]
# BurstGPT: rows 2 and 5 recorded 0 response tokens (failed requests): skipped.
BURSTGPT: Rows = [
    (0, 472, 18),
    (1000, 87, 40),
    (2500, 310, 6),
    (4000, 12, 2),
]
SAMPLES: dict[str, tuple[str, Rows, int, dict[str, int]]] = {
    "mooncake-sample.jsonl": ("mooncake", MOONCAKE, 6, {}),
    "azure-sample.csv": ("azure", AZURE, 5, {}),
    "burstgpt-sample.csv": ("burstgpt", BURSTGPT, 6, {"failed": 2}),
}


def spec(file: str | Path, **replay: Any) -> LoadSpec:
    load: dict[str, Any] = {"trace": str(file)}
    if replay:
        load["replay"] = replay
    return parse_profile({"load": load}).load


def schedule(load: LoadSpec, end_ns: int = START + 3600 * 10**9, **kw: Any) -> list[int]:
    info = trace.scan(load, DATA)
    chunks = trace.iter_schedule(load, DATA, info, START, end_ns, **kw)
    return [int(t) - START for c in chunks for t in c.times.tolist()]


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_each_sample_is_detected_and_scanned(name: str) -> None:
    fmt, rows, total, skipped = SAMPLES[name]
    assert trace.detect_format(DATA / name) == fmt
    info = trace.scan(spec(name), DATA)
    assert (info.format, info.rows, info.skipped, info.in_window) == (
        fmt,
        total,
        skipped,
        len(rows),
    )
    assert info.max_output == max(r[2] for r in rows)
    assert info.max_input == max(r[1] for r in rows)


@pytest.mark.parametrize("name", sorted(SAMPLES))
@pytest.mark.parametrize("speedup", [1.0, 2.0, 0.5])
def test_replay_reproduces_the_send_times(name: str, speedup: float) -> None:
    _fmt, rows, _n, _s = SAMPLES[name]
    got = schedule(spec(name, speedup=speedup))
    assert got == [round(ms * MS / speedup) for ms, _i, _o in rows]


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_replay_sends_each_rows_sizes(name: str) -> None:
    _fmt, rows, _n, _s = SAMPLES[name]
    load = spec(name)
    info = trace.scan(load, DATA)
    sent = [
        (r.input_tokens, r.output_tokens)
        for c in trace.iter_schedule(load, DATA, info, START, START + 10**12)
        for r in c.rows
    ]
    assert sent == [(i, o) for _ms, i, o in rows]


def test_a_window_of_the_trace_starts_at_its_start() -> None:
    # Rows at 250, 500, 1200, 1200 ms fall in [0.25 s, 1.3 s): sent 0, 250, 950, 950 ms in.
    got = schedule(spec("mooncake-sample.jsonl", start="250ms", end="1.3s"))
    assert got == [0, 250 * MS, 950 * MS, 950 * MS]


def test_loop_repeats_the_window_one_period_later_until_the_run_ends() -> None:
    # Window [0, 1 s): rows at 0, 250, 500 ms; period = end - start = 1 s; run 2.6 s long.
    got = schedule(spec("mooncake-sample.jsonl", end="1s", loop=True), end_ns=START + 2600 * MS)
    assert got == [t * MS for t in (0, 250, 500, 1000, 1250, 1500, 2000, 2250, 2500)]


def test_loop_without_an_end_keeps_the_mean_gap_after_the_last_row() -> None:
    # BurstGPT sample: rows at 0, 1, 2.5, 4 s (3 gaps, span 4 s): period 4 s + 4/3 s.
    info = trace.scan(spec("burstgpt-sample.csv", loop=True), DATA)
    assert info.period_us == 4_000_000 + 1_333_333
    got = schedule(spec("burstgpt-sample.csv", loop=True), end_ns=START + 6 * 10**9)
    assert got == [0, 1000 * MS, 2500 * MS, 4000 * MS, 5_333_333_000]


def test_the_run_window_cuts_the_replay() -> None:
    assert schedule(spec("mooncake-sample.jsonl"), end_ns=START + 1200 * MS) == [
        0,
        250 * MS,
        500 * MS,
    ]


def test_workers_interleave_rows_and_max_count_stops() -> None:
    load = spec("mooncake-sample.jsonl")
    every = schedule(load)
    shares = [schedule(load, worker_index=i, workers=2) for i in (0, 1)]
    assert shares == [every[0::2], every[1::2]]
    assert schedule(load, max_count=4) == every[:4]


def test_chunks_bound_memory_and_keep_order() -> None:
    load = spec("mooncake-sample.jsonl")
    info = trace.scan(load, DATA)
    chunks = list(trace.iter_schedule(load, DATA, info, START, START + 10**12, chunk=4))
    assert [len(c.rows) for c in chunks] == [4, 2]
    times = np.concatenate([c.times for c in chunks])
    assert times.dtype == np.int64 and bool(np.all(np.diff(times) >= 0))


def test_unclear_format_is_a_one_line_error_naming_the_key(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text("time,prompt,completion\n1,2,3\n")
    with pytest.raises(UsageError) as err:
        trace.scan(spec(f), tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and str(f) in msg and "load.trace_format" in msg
    # Named, the format is read as that one: a missing column is the error then.
    with pytest.raises(UsageError, match=r"no .TIMESTAMP. column"):
        trace.scan(
            parse_profile({"load": {"trace": str(f), "trace_format": "azure"}}).load, tmp_path
        )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"timestamp": 0, "input_length": 5}\n', "no 'output_length'"),
        ('{"timestamp": 0, "input_length": -5, "output_length": 3}\n', "must not be negative"),
        ('{"timestamp": 0, "input_length": 5, "output_length": 3, "hash_ids": ["a"]}\n',
         "hash_ids"),
        ('{"timestamp": 9, "input_length": 5, "output_length": 3}\n'
         '{"timestamp": 2, "input_length": 5, "output_length": 3}\n', "must not decrease"),
        ('{"timestamp": 0, "input_length": 5.5, "output_length": 3}\n', "whole number"),
        ("{not json\n", "not a JSON object"),
    ],
)  # fmt: skip
def test_a_bad_row_is_one_line_naming_file_line_and_key(
    tmp_path: Path, text: str, problem: str
) -> None:
    f = tmp_path / "t.jsonl"
    f.write_text(text)
    with pytest.raises(UsageError) as err:
        trace.scan(spec(f), tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{f}:") and "load.trace" in msg and problem in msg


def test_missing_file_and_empty_window_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"load\.trace: file not found"):
        trace.scan(spec(tmp_path / "nope.jsonl"), tmp_path)
    with pytest.raises(UsageError, match="no row to replay"):
        trace.scan(spec("mooncake-sample.jsonl", start="1h"), DATA)


def test_relative_trace_is_relative_to_the_profile() -> None:
    assert trace.trace_path(spec("x/t.jsonl"), Path("/p")) == Path("/p/x/t.jsonl")
    assert trace.trace_path(spec("/abs/t.jsonl"), Path("/p")) == Path("/abs/t.jsonl")


def test_azure_timestamps_with_a_zone_are_utc(tmp_path: Path) -> None:
    f = tmp_path / "a.csv"
    f.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2024-05-10 10:00:00.0000000+02:00,10,2\n"
        "2024-05-10 08:00:01.5000000,10,2\n"
    )
    assert schedule(spec(f)) == [0, 1500 * MS]


def test_fit_stub_raises_output_tokens_to_the_longest_answer() -> None:
    profile = parse_profile({"load": {"trace": "mooncake-sample.jsonl"}})
    info = trace.scan(profile.load, DATA)
    fitted = trace.fit_stub(profile, info)
    assert profile.stub.output_tokens == 16 and fitted.stub.output_tokens == 30
    roomy = parse_profile({"load": {"trace": "x"}, "stub": {"output_tokens": 64}})
    assert trace.fit_stub(roomy, info) is roomy


class TraceStub(FakeLedger):
    """Answers each chat stream with as many tokens as it asks for (max_tokens)."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[dict[str, Any]] = []
        self.transport = MockTransport(self.answer, clock=time.monotonic_ns)

    def answer(self, req: SentRequest) -> ScriptedResponse:
        body = json.loads(req.body)
        self.bodies.append(body)
        corr, n = int(dict(req.headers)["x-loadgate-id"], 16), body["max_tokens"]
        self.note(corr, req.t_send, n)
        events = stream_events("chat", corr, n)
        return ScriptedResponse(status=200, head_after_ns=MS, pieces=[(MS, b"".join(events))])


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", sorted(SAMPLES))
async def test_the_engine_sends_each_row_at_its_time_with_its_sizes(name: str) -> None:
    _fmt, rows, _n, _s = SAMPLES[name]
    profile = parse_profile(
        {
            "load": {
                "trace": name,
                "warmup": "0s",
                "duration": "20s",
                "stream_ratio": 1.0,
                "control_ratio": 0.0,
                "replay": {"speedup": 4},
            },
        },
        source=str(DATA / "profile.toml"),
    )
    info = trace.scan(profile.load, DATA)
    profile = trace.fit_stub(profile, info)
    stub = TraceStub()
    seen: list[Any] = []
    t0 = time.monotonic_ns() + 50 * MS
    plan = WorkerPlan(profile, "http://gw.invalid", "http://s.invalid", t0, 7, base_dir=str(DATA))
    engine = Engine(
        plan, transport=stub.transport, ledger=stub, on_observation=lambda o, m: seen.append(o)
    )
    out = await engine.run()
    # Intended send times are the trace's, exactly (a late wake-up shows as latency).
    assert sorted(o.t_intended - t0 for o in seen) == [round(ms * MS / 4) for ms, _i, _o in rows]
    assert sorted(o.tokens for o in seen) == sorted(o for _ms, _i, o in rows)
    assert [b["max_tokens"] for b in stub.bodies] == [o for _ms, _i, o in rows]
    words = [len(b["messages"][0]["content"].split()) - 1 for b in stub.bodies]  # - marker
    assert words == [max(1, i) for _ms, i, _o in rows]
    assert (out.trace_rows_sent, out.trace_passes, out.violations) == (len(rows), 1, {})
    assert out.offered == out.sent == len(rows)
