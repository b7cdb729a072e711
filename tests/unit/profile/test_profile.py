"""Profiles: typed validation, --set, ${VAR} expansion and redaction, bundled profiles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from loadgate.errors import UsageError
from loadgate.profile import Profile, bundled_dir, bundled_profiles, load_profile, parse_profile
from tests.support.paths import ROOT

BUNDLED = ("phase2-gate", "phase2-exit", "smoke", "calibrate", "faults", "soak")


def _error(
    data: dict[str, object], sets: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> str:
    with pytest.raises(UsageError) as info:
        parse_profile(data, source="p.toml", sets=sets, env=env or {})
    return str(info.value)


# --------------------------------------------------------------------------- bundled


@pytest.mark.parametrize("name", BUNDLED)
def test_every_bundled_profile_loads(name: str) -> None:
    p = load_profile(name)
    assert p.name == name
    assert p.source == f"bundled:{name}"
    assert p.gates, "every bundled profile gates on something"
    # exactly one load model: closed loop, open loop, or a trace's own send times
    assert [p.load.concurrency, p.load.rate, p.load.trace].count(None) == 2


def test_bundled_list_names_what_each_answers() -> None:
    listed = bundled_profiles()
    assert set(BUNDLED) <= set(listed)
    assert all(line for line in listed.values())


def test_bundled_profiles_live_in_one_place() -> None:
    # profiles/ holds the files; the package reaches them through a symlink, no copy.
    assert bundled_dir().resolve() == (ROOT / "profiles").resolve()
    assert (ROOT / "loadgate" / "profiles").is_symlink()
    assert {p.stem for p in (ROOT / "profiles").glob("*.toml")} == set(bundled_profiles())


def test_phase2_gate_is_the_checklist() -> None:
    p = load_profile("phase2-gate")
    assert p.load.concurrency == 100
    assert p.load.rate is None
    assert p.load.stream_ratio == 0.5
    assert p.load.warmup_s == 10.0
    assert p.load.duration_s == 60.0
    assert (p.auth.keys, p.auth.distribution) == (1000, "zipf")
    assert p.gateway.kind == "reference"
    assert p.gates == {
        "overhead_ms.p99": "< 20",
        "gateway.auth_cache_hit_rate": "> 0.90",
        "requests.error_rate": "< 0.001",
        "integrity.violations": "== 0",
    }


def test_calibrate_is_direct_and_soak_is_open_loop() -> None:
    assert load_profile("calibrate").gateway.kind == "direct"
    soak = load_profile("soak")
    assert soak.load.rate == 200.0
    assert soak.load.duration_s == 1800.0


def test_load_by_path(tmp_path: Path) -> None:
    f = tmp_path / "mine.toml"
    f.write_text('[load]\nconcurrency = 3\nduration = "2s"\n')
    p = load_profile(str(f))
    assert (p.name, p.source, p.load.concurrency, p.load.duration_s) == ("mine", str(f), 3, 2.0)


def test_unknown_profile_lists_bundled() -> None:
    with pytest.raises(UsageError, match=r"no such profile.*phase2-gate"):
        load_profile("nope")


def test_invalid_toml_names_file(tmp_path: Path) -> None:
    f = tmp_path / "broken.toml"
    f.write_text("[load\n")
    with pytest.raises(UsageError, match=r"broken\.toml: not valid TOML"):
        load_profile(str(f))


# --------------------------------------------------------------------------- defaults, types


def test_defaults_follow_architecture() -> None:
    p = parse_profile({})
    assert p.load.concurrency == 100 and p.load.rate is None
    assert p.load.endpoints == {"chat": 1.0}
    assert p.stub.port == 18000 and p.auth.header == "authorization"
    assert p.gateway.auth_cache.hits == "auth_cache_hits_total"
    assert p.harness.floor_warn_share == 0.25
    assert p.gates == {}


def test_profile_is_frozen() -> None:
    p = parse_profile({})
    with pytest.raises(ValidationError, match="frozen"):
        p.load.concurrency = 3  # type: ignore[misc]


def test_ints_become_floats_where_floats_are_expected() -> None:
    p = parse_profile({"stub": {"ttft_ms": 50}, "load": {"rate": 100}})
    assert isinstance(p.stub.ttft_ms, float) and isinstance(p.load.rate, float)


def test_rate_alone_selects_open_loop() -> None:
    p = parse_profile({"load": {"rate": 50}})
    assert (p.load.concurrency, p.load.rate) == (None, 50.0)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"load": {"stream_ratio": 1.5}},
            "p.toml: load.stream_ratio: must be between 0 and 1 (got 1.5)",
        ),
        ({"load": {"bogus": 1}}, "p.toml: load.bogus: unknown key"),
        ({"lod": {}}, "p.toml: lod: unknown key (did you mean 'load'?)"),
        (
            {"load": {"duraton": "1s"}},
            "p.toml: load.duraton: unknown key (did you mean 'duration'?)",
        ),
        (
            {"load": {"concurrency": "ten"}},
            "p.toml: load.concurrency: must be an integer (got 'ten')",
        ),
        (
            {"load": {"concurrency": True}},
            "p.toml: load.concurrency: must be an integer (got True)",
        ),
        ({"load": {"concurrency": 0}}, "p.toml: load.concurrency: must be at least 1 (got 0)"),
        ({"load": {"duration": "-5s"}}, "p.toml: load.duration: must not be negative (got '-5s')"),
        ({"load": {"duration": "0s"}}, "p.toml: load.duration: must be greater than 0 (got '0s')"),
        ({"load": {"warmup": "soon"}}, "p.toml: load.warmup: must be a duration"),
        ({"load": {"rate": 10, "concurrency": 5}}, "p.toml: load.concurrency: set either"),
        (
            {"load": {"arrival": "burst"}},
            "p.toml: load.arrival: must be one of 'constant', 'poisson'",
        ),
        (
            {"load": {"endpoints": {"completions": 1.0}}},
            "p.toml: load.endpoints.completions: unknown endpoint",
        ),
        ({"load": {"endpoints": {"chat": 0.0}}}, "p.toml: load.endpoints: needs at least one"),
        ({"stub": {"faults": {"explode": 0.1}}}, "p.toml: stub.faults.explode: unknown fault"),
        (
            {"stub": {"faults": {"500": 1.5}}},
            "p.toml: stub.faults.500: rate must be between 0 and 1",
        ),
        ({"stub": {"faults": {"500": 0.6, "429": 0.6}}}, "p.toml: stub.faults: fault rates add up"),
        ({"stub": {"port": 70000}}, "p.toml: stub.port: must be between 0 and 65535 (got 70000)"),
        ({"stub": {"expected_keys": "k"}}, "p.toml: stub.expected_keys: must be a list"),
        ({"auth": {"invalid_ratio": -0.1}}, "p.toml: auth.invalid_ratio: must be between 0 and 1"),
        (
            {"gateway": {"kind": "nginx"}},
            "p.toml: gateway.kind: must be one of 'reference', 'direct', 'command'",
        ),
        (
            {"gateway": {"kind": "command"}},
            'p.toml: gateway.command: kind = "command" needs a command',
        ),
        (
            {"gateway": {"auth_cache": {"hit": "x"}}},
            "p.toml: gateway.auth_cache.hit: unknown key (did you mean 'hits'?)",
        ),
        ({"gateway": {"auth_cache": "x"}}, "p.toml: gateway.auth_cache: must be a table"),
        (
            {"gates": {"overhead_ms.p99": "lt 20"}},
            'p.toml: gates.overhead_ms.p99: must be "<op> <number>"',
        ),
        ({"gates": {"overhead_ms.p99": 20}}, "p.toml: gates.overhead_ms.p99: must be a string"),
        ({"gates": {"overhead.p99": "< 20"}}, "p.toml: gates.overhead.p99: unknown figure"),
        ({"gates": {"overhead_ms.p98": "< 20"}}, "p.toml: gates.overhead_ms.p98: a metric gate is"),
    ],
)
def test_one_line_errors_name_file_and_key(data: dict[str, object], expected: str) -> None:
    message = _error(data)
    assert message.startswith(expected), message
    assert "\n" not in message


# --------------------------------------------------------------------------- --set


def test_set_duration_and_selector_examples_from_design() -> None:
    p = parse_profile(
        {},
        sets=["load.duration=10s", 'gateway.auth_cache.hits=x_total{outcome="hit"}'],
    )
    assert p.load.duration_s == 10.0
    assert p.gateway.auth_cache.hits == 'x_total{outcome="hit"}'


def test_set_parses_toml_values() -> None:
    p = parse_profile(
        {},
        sets=[
            "load.concurrency=7",
            "load.stream_ratio=0.25",
            "stub.no_retry=true",
            "load.endpoints={chat = 1, embeddings = 1}",
            'stub.expected_keys=["a", "b"]',
            "load.duration=90",
        ],
    )
    assert p.load.concurrency == 7
    assert p.load.stream_ratio == 0.25
    assert p.stub.no_retry is True
    assert p.load.endpoints == {"chat": 1.0, "embeddings": 1.0}
    assert p.stub.expected_keys == ["a", "b"]
    assert p.load.duration_s == 90.0


def test_set_keeps_text_for_string_fields() -> None:
    p = parse_profile({}, sets=["auth.prefix=123", "stub.host=127.0.0.1", "load.model=gpt-4o"])
    assert (p.auth.prefix, p.stub.host, p.load.model) == ("123", "127.0.0.1", "gpt-4o")


def test_set_into_free_form_tables_keeps_dots_in_entry_names() -> None:
    p = parse_profile(
        {"gates": {"overhead_ms.p99": "< 20"}},
        sets=[
            "gates.overhead_ms.p99=< 5",
            'gates."stream.ttft_overhead_ms.p99"=< 9',
            "stub.faults.500=0.1",
            "gateway.counters.drops=proxy_dropped_total",
        ],
    )
    assert p.gates == {"overhead_ms.p99": "< 5", "stream.ttft_overhead_ms.p99": "< 9"}
    assert p.stub.faults == {"500": 0.1}
    assert p.gateway.counters == {"drops": "proxy_dropped_total"}


def test_set_rate_switches_a_closed_loop_file_to_open_loop() -> None:
    p = parse_profile({"load": {"concurrency": 100}}, sets=["load.rate=500"])
    assert (p.load.concurrency, p.load.rate) == (None, 500.0)
    q = parse_profile({"load": {"rate": 100}}, sets=["load.concurrency=8"])
    assert (q.load.concurrency, q.load.rate) == (8, None)


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("load.nope=1", "--set load.nope: unknown key"),
        ("nope.x=1", "--set nope.x: unknown key"),
        ("load.duration.x=1", "--set load.duration.x: unknown key"),
        ("load=3", "--set load: is a table"),
        ("load.stream_ratio", "--set 'load.stream_ratio': expected KEY=VALUE"),
        ("load.stream_ratio=2", "--set load.stream_ratio: must be between 0 and 1 (got 2)"),
        ("load.concurrency=many", "--set load.concurrency: must be an integer (got 'many')"),
        ("gates.overhead_ms.p99=soon", '--set gates.overhead_ms.p99: must be "<op> <number>"'),
    ],
)
def test_set_errors_name_set_and_key(item: str, expected: str) -> None:
    message = _error({}, sets=(item,))
    assert message.startswith(expected), message


def test_load_profile_applies_sets_to_bundled() -> None:
    p = load_profile("smoke", ["load.concurrency=3", "load.duration=500ms"])
    assert (p.load.concurrency, p.load.duration_s) == (3, 0.5)


# --------------------------------------------------------------------------- ${VAR}


def test_env_expansion_and_redaction() -> None:
    env = {"GW_TOKEN": "s3cr3t-value", "HOSTNAME_X": "gw.internal"}
    p = parse_profile(
        {
            "gateway": {
                "kind": "command",
                "command": "gw --upstream {stub_url} --token ${GW_TOKEN}",
                "env": {"API_KEY": "${GW_TOKEN}", "MODE": "fast"},
                "url": "http://${HOSTNAME_X}:8080",
            },
            "stub": {"expected_keys": ["plain", "${GW_TOKEN}"]},
        },
        env=env,
    )
    assert p.gateway.env == {"API_KEY": "s3cr3t-value", "MODE": "fast"}
    assert p.gateway.command == "gw --upstream {stub_url} --token s3cr3t-value"
    assert p.stub.expected_keys == ["plain", "s3cr3t-value"]
    red = p.redacted()
    assert red["gateway"]["env"] == {"API_KEY": "***", "MODE": "fast"}
    assert red["gateway"]["command"] == "***"
    assert red["gateway"]["url"] == "***"
    assert red["stub"]["expected_keys"] == ["plain", "***"]
    assert "s3cr3t" not in json.dumps(red)


def test_env_expansion_reads_os_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LG_TEST_PREFIX", "sk-live-")
    f = tmp_path / "p.toml"
    f.write_text('[auth]\nprefix = "${LG_TEST_PREFIX}"\n')
    p = load_profile(str(f))
    assert p.auth.prefix == "sk-live-"
    assert p.redacted()["auth"]["prefix"] == "***"


def test_env_expansion_in_set_values_is_redacted_too() -> None:
    p = parse_profile({}, sets=["gateway.env.TOKEN=${T}"], env={"T": "abc"})
    assert p.gateway.env == {"TOKEN": "abc"}
    assert p.redacted()["gateway"]["env"] == {"TOKEN": "***"}


def test_missing_env_var_names_key_and_var() -> None:
    message = _error({"gateway": {"env": {"K": "${NOT_SET_ANYWHERE}"}}})
    assert message == "p.toml: gateway.env.K: environment variable NOT_SET_ANYWHERE is not set"


def test_redacted_is_a_loadable_profile() -> None:
    p = load_profile("soak", ["load.warmup=250ms"])
    red = p.redacted()
    assert (red["name"], red["source"]) == ("soak", "bundled:soak")
    assert red["load"]["duration"] == "1800s"
    body = {k: v for k, v in red.items() if k not in ("name", "source")}
    body["load"] = {k: v for k, v in body["load"].items() if v is not None}
    body["auth"] = {k: v for k, v in body["auth"].items() if v is not None}
    body["gateway"] = {k: v for k, v in body["gateway"].items() if v is not None}
    again = parse_profile(body, name="soak", source="bundled:soak")
    assert again == p


def test_profile_constructible_in_code() -> None:
    p = Profile(name="t")
    assert p.load.concurrency == 100 and p.redacted()["name"] == "t"
