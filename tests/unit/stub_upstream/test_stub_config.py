"""Config validation, CLI flags, fault draws and the metrics exposition."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from stub_upstream.cli import build_parser, config_from_args, main
from stub_upstream.config import INJECTABLE_FAULTS, StubConfig
from stub_upstream.faults import FaultPicker
from stub_upstream.ledger_format import FAULT_CODES
from stub_upstream.metrics import WorkerMetrics, render
from stub_upstream.process import stub_argv, write_config


def test_defaults_match_the_contract() -> None:
    c = StubConfig()
    assert (c.host, c.port, c.ttft_ms, c.itl_ms, c.output_tokens) == (
        "127.0.0.1",
        18000,
        50.0,
        10.0,
        16,
    )
    assert (c.jitter_ms, c.workers, c.seed, c.faults, c.stall_ms) == (0.0, 1, 1, {}, 2000.0)
    assert (c.retry_after_s, c.no_retry, c.expected_keys) == (1.0, False, [])
    assert (c.embedding_dims, c.ledger_capacity, c.max_body_bytes) == (16, 1_048_576, 4 << 20)
    assert (c.head_timeout_s, c.body_timeout_s, c.keepalive_timeout_s) == (10.0, 30.0, 75.0)


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"port": 70000}, "port"),
        ({"itl_ms": -1.0}, "itl_ms"),
        ({"output_tokens": 0}, "output_tokens"),
        ({"workers": 0}, "workers"),
        ({"faults": {"gremlins": 0.1}}, "faults.gremlins"),
        ({"faults": {"500": 1.5}}, "faults.500"),
        ({"faults": {"500": 0.6, "429": 0.6}}, "faults"),
        ({"faults": {"auth": 0.1}}, "faults.auth"),
        ({"head_timeout_s": 0.0}, "head_timeout_s"),
        ({"body_timeout_s": -1.0}, "body_timeout_s"),
        ({"keepalive_timeout_s": float("nan")}, "keepalive_timeout_s"),
    ],
)
def test_validate_names_the_field(kw: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        StubConfig.model_validate(kw)
    err = info.value.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or str(err["msg"]).removeprefix("Value error, ")
    assert where.startswith(field), info.value


def test_injectable_faults_are_the_fault_codes_minus_outcomes() -> None:
    assert set(INJECTABLE_FAULTS) == set(FAULT_CODES) - {"none", "auth", "bad_request", "history"}


def test_cli_round_trips_a_config_through_stub_argv(tmp_path: Path) -> None:
    cfg = StubConfig(
        port=0, ttft_ms=1.5, itl_ms=0.25, output_tokens=7, workers=3, jitter_ms=0.5, seed=9,
        faults={"500": 0.1, "stall": 0.2}, stall_ms=30.0, retry_after_s=4.0, no_retry=True,
        expected_keys=["a", "b"], embedding_dims=5, ledger_capacity=99, max_body_bytes=1234,
        head_timeout_s=1.5, body_timeout_s=2.5, keepalive_timeout_s=3.5,
    )  # fmt: skip
    argv = stub_argv(write_config(cfg, tmp_path / "c.json"))
    assert argv[1:3] == ["-m", "stub_upstream"]
    assert config_from_args(build_parser().parse_args(argv[3:])) == cfg
    assert (tmp_path / "c.json").stat().st_mode & 0o777 == 0o600  # expected keys inside


def test_every_setting_has_a_flag_and_flags_override_the_file(tmp_path: Path) -> None:
    flags = {a.dest: a.option_strings for a in build_parser()._actions}
    assert set(StubConfig.model_fields) <= set(flags)  # one definition, every entry point
    path = write_config(StubConfig(ttft_ms=5.0, seed=3), tmp_path / "c.json")
    ns = build_parser().parse_args(["--config", str(path), "--ttft-ms", "7", "--tokens", "4"])
    cfg = config_from_args(ns)
    assert (cfg.ttft_ms, cfg.seed, cfg.output_tokens) == (7.0, 3, 4)


def test_cli_rejects_bad_values_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--tokens", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m stub_upstream: error: --tokens:") and err.count("\n") == 1
    assert main(["--fault", "nope=0.1"]) == 2
    assert "--fault nope: unknown fault" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["--ttft-ms", "soon"])
    assert e.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1  # one line, no usage block


def test_fault_draws_are_seeded_and_follow_the_rates() -> None:
    a = FaultPicker({"500": 0.25, "reset": 0.25}, 7, 0)
    b = FaultPicker({"500": 0.25, "reset": 0.25}, 7, 0)
    seq_a = [a.draw() for _ in range(4000)]
    assert seq_a == [b.draw() for _ in range(4000)]
    other = FaultPicker({"500": 0.25, "reset": 0.25}, 7, 1)
    assert seq_a != [other.draw() for _ in range(4000)]  # workers draw independently
    assert set(seq_a) == {"none", "500", "reset"}
    assert 800 < seq_a.count("500") < 1200  # 4000 seeded draws: fixed, not sampled anew
    assert FaultPicker({}, 1, 0).draw() == "none"


def test_metrics_sum_every_worker() -> None:
    w0, w1 = WorkerMetrics(), WorkerMetrics()
    w0.request(1, 200)
    w1.request(1, 200)
    w1.request(3, 529)
    w1.request(3, 418)
    w0.in_flight(1)
    w0.lateness(30_000)
    w1.lateness(3_000_000)
    text = render([w0, w1]).decode()
    assert 'stub_requests_total{endpoint="chat",status="200"} 2.0' in text
    assert 'stub_requests_total{endpoint="messages",status="529"} 1.0' in text
    assert 'stub_requests_total{endpoint="messages",status="other"} 1.0' in text
    assert "stub_in_flight 1.0" in text
    assert 'stub_timer_lateness_seconds_bucket{le="5e-05"} 1.0' in text
    assert 'stub_timer_lateness_seconds_bucket{le="0.005"} 2.0' in text
    assert "stub_timer_lateness_seconds_sum 0.00303" in text
