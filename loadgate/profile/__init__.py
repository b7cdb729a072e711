"""Profiles: typed, validated, frozen (ARCHITECTURE "The Profile object").

This module owns the path from a TOML file (or a bundled name) plus ``--set``
overrides and ``${VAR}`` environment references to a :class:`Profile` every
stage of a run reads. Anything wrong — an unknown key, a wrong type, an
impossible value — becomes one :class:`~loadgate.errors.UsageError` line that
names the file (or ``--set``) and the dotted key.

The schema is the dataclasses themselves: field types drive the type checks,
field metadata carries the TOML key when it differs (durations: ``duration`` in
TOML, ``duration_s`` in Python) and numeric bounds. Cross-field rules (exactly
one of concurrency/rate, known endpoints and faults, parsable gates) live in
:func:`_semantic_errors`.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import os
import re
import tomllib
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeAlias

from loadgate.errors import UsageError
from loadgate.judge.gates import parse_gate
from loadgate.profile.durations import format_duration, parse_duration

__all__ = [
    "ENDPOINTS",
    "AuthCacheSpec",
    "AuthSpec",
    "GatewaySpec",
    "HarnessSpec",
    "LoadSpec",
    "Profile",
    "ReferenceSpec",
    "StubSpec",
    "bundled_profiles",
    "load_profile",
    "parse_profile",
]

ENDPOINTS = ("chat", "responses", "messages", "embeddings")
_SET_LABEL = "--set"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

Path_: TypeAlias = tuple[str | int, ...]


def _f(
    default: Any,
    *,
    key: str | None = None,
    duration: bool = False,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
) -> Any:
    """A dataclass field with its TOML key, duration flag and numeric bounds."""
    meta = {"key": key, "duration": duration, "ge": ge, "gt": gt, "le": le}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class LoadSpec:
    concurrency: int | None = _f(100, ge=1)
    rate: float | None = _f(None, gt=0)
    arrival: Literal["constant", "poisson"] = "constant"
    max_inflight: int = _f(1000, ge=1)
    duration_s: float = _f(60.0, key="duration", duration=True, gt=0)
    warmup_s: float = _f(10.0, key="warmup", duration=True)
    cooldown_s: float = _f(0.0, key="cooldown", duration=True)
    ramp_up_s: float = _f(0.0, key="ramp_up", duration=True)
    stream_ratio: float = _f(0.5, ge=0, le=1)
    endpoints: dict[str, float] = field(default_factory=lambda: {"chat": 1.0})
    prompt_tokens: int = _f(64, ge=0)
    max_tokens: int = _f(16, ge=1)
    model: str = "gpt-4o-mini"
    anthropic_model: str = "claude-3-5-haiku-20241022"
    seed: int = 1
    workers: int = _f(1, ge=1)
    timeout_s: float = _f(30.0, key="timeout", duration=True, gt=0)
    max_requests: int | None = _f(None, ge=1)
    #: Extra request headers for every request (e.g. a gateway's routing headers).
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StubSpec:
    host: str = "127.0.0.1"
    port: int = _f(18000, ge=0, le=65535)
    ttft_ms: float = _f(50.0, ge=0)
    itl_ms: float = _f(10.0, ge=0)
    output_tokens: int = _f(16, ge=1)
    jitter_ms: float = _f(0.0, ge=0)
    workers: int = _f(1, ge=1)
    seed: int = 1
    faults: dict[str, float] = field(default_factory=dict)
    stall_ms: float = _f(2000.0, ge=0)
    retry_after_s: float = _f(1.0, ge=0)
    no_retry: bool = False
    expected_keys: list[str] = field(default_factory=list)
    embedding_dims: int = _f(16, ge=1)
    ledger_capacity: int = _f(1_048_576, ge=1)
    #: Pin the stub process to these CPUs (benchmarks: keep it off the harness's core).
    cpus: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class AuthSpec:
    header: Literal["authorization", "x-api-key", "api-key", "none"] = "authorization"
    keys: int = _f(1000, ge=1)
    keys_file: str | None = None
    prefix: str = "sk-lg-"
    distribution: Literal["zipf", "uniform"] = "zipf"
    zipf_s: float = _f(1.1, gt=0)
    invalid_ratio: float = _f(0.0, ge=0, le=1)
    provision_command: str | None = None
    seed: int = 7


@dataclass(frozen=True)
class AuthCacheSpec:
    hits: str = "auth_cache_hits_total"
    misses: str = "auth_cache_misses_total"


@dataclass(frozen=True)
class ReferenceSpec:
    cache_size: int = _f(4096, ge=0)
    miss_cost_ms: float = _f(2.0, ge=0)
    delay_ms: float = _f(0.0, ge=0)
    workers: int = _f(1, ge=1)


@dataclass(frozen=True)
class GatewaySpec:
    kind: Literal["reference", "direct", "command"] = "reference"
    command: str | None = None
    ready_url: str | None = None
    ready_timeout_s: float = _f(30.0, key="ready_timeout", duration=True, gt=0)
    url: str | None = None
    metrics_url: str = ""
    scrape_interval_s: float = _f(2.0, key="scrape_interval", duration=True, gt=0)
    auth_cache: AuthCacheSpec = field(default_factory=AuthCacheSpec)
    counters: dict[str, str] = field(default_factory=dict)
    reference: ReferenceSpec = field(default_factory=ReferenceSpec)
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    drain_check: bool = True
    stop_timeout_s: float = _f(10.0, key="stop_timeout", duration=True, gt=0)


@dataclass(frozen=True)
class HarnessSpec:
    max_loop_lag_p99_ms: float = _f(5.0, gt=0)
    max_cpu_percent: float = _f(95.0, gt=0)
    min_achieved_rate_ratio: float = _f(0.95, ge=0, le=1)
    max_stub_lateness_p99_ms: float = _f(5.0, gt=0)
    max_send_lag_p99_ms: float = _f(5.0, gt=0)
    floor_warn_share: float = _f(0.25, gt=0, le=1)


@dataclass(frozen=True)
class Profile:
    name: str = "custom"
    source: str = "<code>"
    load: LoadSpec = field(default_factory=LoadSpec)
    stub: StubSpec = field(default_factory=StubSpec)
    auth: AuthSpec = field(default_factory=AuthSpec)
    gateway: GatewaySpec = field(default_factory=GatewaySpec)
    harness: HarnessSpec = field(default_factory=HarnessSpec)
    gates: dict[str, str] = field(default_factory=dict)
    #: Raw TOML paths whose value came from a ``${VAR}``: hidden by :meth:`redacted`.
    secret_paths: frozenset[Path_] = field(default=frozenset(), repr=False, compare=False)

    def redacted(self) -> dict[str, Any]:
        """The resolved profile, TOML-shaped, every ``${VAR}``-derived value as ``"***"``."""
        out: dict[str, Any] = {"name": self.name, "source": self.source}
        out.update(_to_toml(self))
        for path in self.secret_paths:
            _replace(out, path, "***")
        return out


# --------------------------------------------------------------------------- schema

_TOP_TABLES = ("load", "stub", "auth", "gateway", "harness", "gates")


def _toml_key(f: dataclasses.Field[Any]) -> str:
    return str(f.metadata.get("key") or f.name)


def _schema_fields(cls: type) -> dict[str, tuple[dataclasses.Field[Any], Any]]:
    """TOML key → (field, resolved type) for a spec dataclass."""
    hints = typing.get_type_hints(cls)
    out: dict[str, tuple[dataclasses.Field[Any], Any]] = {}
    for f in dataclasses.fields(cls):
        if cls is Profile and f.name not in _TOP_TABLES:
            continue
        out[_toml_key(f)] = (f, hints[f.name])
    return out


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _optional_inner(tp: Any) -> Any | None:
    """``X`` for ``X | None``, else None."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return None


class _Problem(Exception):
    """A validation failure at a raw TOML path (turned into a UsageError line)."""

    def __init__(self, path: Sequence[str | int], message: str) -> None:
        super().__init__(message)
        self.path = tuple(path)
        self.message = message


def _describe_type(tp: Any) -> str:
    inner = _optional_inner(tp)
    if inner is not None:
        return _describe_type(inner)
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin is dict:
        return "a table"
    if origin is list:
        return "a list"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _convert(value: Any, tp: Any, path: Path_, meta: Mapping[str, Any]) -> Any:
    inner = _optional_inner(tp)
    if inner is not None:
        return None if value is None else _convert(value, inner, path, meta)
    if meta.get("duration"):
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise _Problem(path, str(exc)) from None
        _check_bounds(seconds, path, meta, shown=value)
        return seconds
    if _is_dataclass_type(tp):
        if not isinstance(value, Mapping):
            raise _Problem(path, f"must be a table (got {value!r})")
        return _build(tp, value, path)
    origin = typing.get_origin(tp)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed or isinstance(value, bool):
            raise _Problem(path, f"must be {_describe_type(tp)} (got {value!r})")
        return value
    if origin is dict:
        if not isinstance(value, Mapping):
            raise _Problem(path, f"must be a table (got {value!r})")
        item_tp = typing.get_args(tp)[1]
        return {str(k): _convert(v, item_tp, (*path, str(k)), {}) for k, v in value.items()}
    if origin is list:
        if not isinstance(value, list):
            raise _Problem(path, f"must be a list (got {value!r})")
        item_tp = typing.get_args(tp)[0]
        return [_convert(v, item_tp, (*path, i), {}) for i, v in enumerate(value)]
    ok = (
        (tp is bool and isinstance(value, bool))
        or (tp is int and isinstance(value, int) and not isinstance(value, bool))
        or (tp is float and isinstance(value, int | float) and not isinstance(value, bool))
        or (tp is str and isinstance(value, str))
    )
    if not ok:
        raise _Problem(path, f"must be {_describe_type(tp)} (got {value!r})")
    _check_bounds(value, path, meta)
    return float(value) if tp is float else value


def _check_bounds(value: Any, path: Path_, meta: Mapping[str, Any], shown: Any = None) -> None:
    ge, gt, le = meta.get("ge"), meta.get("gt"), meta.get("le")
    got = value if shown is None else shown
    if ge is not None and le is not None and not ge <= value <= le:
        raise _Problem(path, f"must be between {ge:g} and {le:g} (got {got!r})")
    if ge is not None and value < ge:
        raise _Problem(path, f"must be at least {ge:g} (got {got!r})")
    if gt is not None and value <= gt:
        raise _Problem(path, f"must be greater than {gt:g} (got {got!r})")
    if le is not None and value > le:
        raise _Problem(path, f"must be at most {le:g} (got {got!r})")


def _build(cls: type, table: Mapping[str, Any], path: Path_) -> Any:
    schema = _schema_fields(cls)
    for key in table:
        if key not in schema:
            hint = difflib.get_close_matches(str(key), list(schema), n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise _Problem((*path, key), f"unknown key{extra}")
    kwargs: dict[str, Any] = {}
    for key, (f, tp) in schema.items():
        if key in table:
            kwargs[f.name] = _convert(table[key], tp, (*path, key), f.metadata)
    return cls(**kwargs)


# --------------------------------------------------------------------------- rules


def _semantic_errors(p: Profile) -> Iterator[tuple[Path_, str]]:
    """Cross-field rules the types alone cannot state."""
    from stub_upstream.ledger_format import FAULT_CODES

    load = p.load
    if load.concurrency is not None and load.rate is not None:
        yield ("load", "concurrency"), "set either concurrency (closed loop) or rate, not both"
    if load.concurrency is None and load.rate is None:
        yield ("load", "concurrency"), "set concurrency (closed loop) or rate (open loop)"
    for name, weight in load.endpoints.items():
        if name not in ENDPOINTS:
            yield ("load", "endpoints", name), f"unknown endpoint (one of {', '.join(ENDPOINTS)})"
        elif weight < 0:
            yield ("load", "endpoints", name), f"weight must not be negative (got {weight:g})"
    if not load.endpoints or sum(load.endpoints.values()) <= 0:
        yield ("load", "endpoints"), "needs at least one endpoint with a positive weight"
    for name, rate in p.stub.faults.items():
        if name not in FAULT_CODES:
            yield ("stub", "faults", name), f"unknown fault (one of {', '.join(FAULT_CODES)})"
        elif not 0 <= rate <= 1:
            yield ("stub", "faults", name), f"rate must be between 0 and 1 (got {rate:g})"
    if sum(p.stub.faults.values()) > 1:
        yield ("stub", "faults"), "fault rates add up to more than 1"
    if p.gateway.kind == "command" and not p.gateway.command:
        yield ("gateway", "command"), 'kind = "command" needs a command to launch'
    for name, expr in p.gates.items():
        try:
            parse_gate(name, expr)
        except ValueError as exc:
            yield ("gates", name), str(exc)


# --------------------------------------------------------------------------- overrides


def _field_type_at(keys: Sequence[str]) -> tuple[Path_, Any, Mapping[str, Any]]:
    """Resolve a dotted ``--set`` key against the schema.

    Returns the raw path to write, the field type there and its metadata. Once
    the walk reaches a free-form table (gates, counters, faults, endpoints, env),
    the rest of the key is one entry name: gate names contain dots themselves.
    """
    cls: Any = Profile
    path: list[str | int] = []
    for i, key in enumerate(keys):
        schema = _schema_fields(cls)
        if key not in schema:
            hint = difflib.get_close_matches(key, list(schema), n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise _Problem((*path, key), f"unknown key{extra}")
        f, tp = schema[key]
        path.append(key)
        if _is_dataclass_type(tp):
            cls = tp
            continue
        rest = keys[i + 1 :]
        if not rest:
            return tuple(path), tp, f.metadata
        if typing.get_origin(tp) is dict:
            entry = ".".join(rest).strip()
            if len(entry) >= 2 and entry[0] == entry[-1] and entry[0] in "\"'":
                entry = entry[1:-1]
            return (*path, entry), typing.get_args(tp)[1], {}
        raise _Problem((*path, rest[0]), "unknown key")
    raise _Problem(tuple(path), "is a table: set its keys one by one")


def _parse_set_value(text: str, tp: Any, meta: Mapping[str, Any]) -> Any:
    """A TOML value, falling back to the raw string (so ``10s`` and selectors just work)."""
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
    target = _optional_inner(tp) or tp
    wants_text = target is str or (
        typing.get_origin(target) is Literal
        and all(isinstance(a, str) for a in typing.get_args(target))
    )
    if (wants_text or meta.get("duration")) and not isinstance(value, str):
        # `--set auth.prefix=123` means the text 123; durations take numbers too.
        return value if meta.get("duration") else text
    return value


def _apply_sets(raw: dict[str, Any], sets: Sequence[str]) -> set[Path_]:
    changed: set[Path_] = set()
    for item in sets:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"{_SET_LABEL} {item!r}: expected KEY=VALUE")
        try:
            path, tp, meta = _field_type_at(key.split("."))
        except _Problem as exc:
            raise UsageError(f"{_SET_LABEL} {key}: {exc.message}") from None
        value = _parse_set_value(text, tp, meta)
        node: dict[str, Any] = raw
        for part in path[:-1]:
            nxt = node.get(str(part))
            if not isinstance(nxt, dict):
                nxt = {}
                node[str(part)] = nxt
            node = nxt
        node[str(path[-1])] = value
        changed.add(path)
        # Switching the load model from the command line drops the file's other one.
        if path == ("load", "rate") and ("load", "concurrency") not in changed:
            node.pop("concurrency", None)
        if path == ("load", "concurrency") and ("load", "rate") not in changed:
            node.pop("rate", None)
    return changed


# --------------------------------------------------------------------------- ${VAR}


def _expand(node: Any, path: Path_, env: Mapping[str, str], secrets: set[Path_]) -> Any:
    if isinstance(node, dict):
        return {k: _expand(v, (*path, k), env, secrets) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand(v, (*path, i), env, secrets) for i, v in enumerate(node)]
    if not isinstance(node, str) or "${" not in node:
        return node

    def sub(match: re.Match[str]) -> str:
        var = match.group(1)
        if var not in env:
            raise _Problem(path, f"environment variable {var} is not set")
        return env[var]

    secrets.add(path)
    return _VAR.sub(sub, node)


# --------------------------------------------------------------------------- public


def _locate(path: Path_, label: str, set_paths: set[Path_]) -> str:
    dotted = ".".join(str(p) for p in path)
    for s in set_paths:
        if path[: len(s)] == s or s[: len(path)] == path:
            return f"{_SET_LABEL} {dotted}"
    return f"{label}: {dotted}"


def parse_profile(
    data: Mapping[str, Any],
    *,
    name: str = "custom",
    source: str = "<code>",
    label: str | None = None,
    sets: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> Profile:
    """Validate an already-parsed TOML document (plus overrides) into a Profile.

    ``label`` is what error lines start with (the file as the user knows it).
    """
    label = label or source
    raw = copy.deepcopy(dict(data))
    set_paths = _apply_sets(raw, sets)
    secrets: set[Path_] = set()
    try:
        expanded = _expand(raw, (), os.environ if env is None else env, secrets)
        load = expanded.get("load")
        if isinstance(load, dict) and "rate" in load and "concurrency" not in load:
            load["concurrency"] = None  # open loop: the closed-loop default steps aside
        for key in expanded:
            if key not in _TOP_TABLES:
                hint = difflib.get_close_matches(str(key), _TOP_TABLES, n=1)
                extra = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise _Problem((key,), f"unknown key{extra}")
        profile: Profile = _build(Profile, expanded, ())
        for path, message in _semantic_errors(profile):
            raise _Problem(path, message)
    except _Problem as exc:
        raise UsageError(f"{_locate(exc.path, label, set_paths)}: {exc.message}") from None
    return dataclasses.replace(profile, name=name, source=source, secret_paths=frozenset(secrets))


def bundled_profiles() -> dict[str, str]:
    """Bundled profile name → its first comment line (what it answers)."""
    out: dict[str, str] = {}
    folder = resources.files("loadgate") / "profiles"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        first = ""
        for line in entry.read_text(encoding="utf-8").splitlines():
            if line.startswith("#"):
                first = line.lstrip("#").strip()
                break
        out[entry.name.removesuffix(".toml")] = first
    return out


def load_profile(ref: str, sets: Sequence[str] = ()) -> Profile:
    """A Profile from a TOML path or a bundled name (``phase2-gate``), with ``--set``s."""
    path = Path(ref)
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{ref}: cannot read: {exc.strerror}") from None
        name, source, label = path.stem, str(path), ref
    else:
        looks_like_path = "/" in ref or ref.endswith(".toml")
        entry = resources.files("loadgate") / "profiles" / f"{ref}.toml"
        if looks_like_path or not entry.is_file():
            names = ", ".join(bundled_profiles())
            raise UsageError(f"{ref}: no such profile file or bundled profile (bundled: {names})")
        text = entry.read_text(encoding="utf-8")
        name, source, label = ref, f"bundled:{ref}", f"profiles/{ref}.toml"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{label}: not valid TOML: {exc}") from None
    return parse_profile(data, name=name, source=source, label=label, sets=sets)


# --------------------------------------------------------------------------- output


def _to_toml(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, (f, _tp) in _schema_fields(type(obj)).items():
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            out[key] = _to_toml(value)
        elif f.metadata.get("duration"):
            out[key] = format_duration(value)
        elif isinstance(value, dict | list):
            out[key] = copy.deepcopy(value)
        else:
            out[key] = value
    return out


def _replace(tree: Any, path: Path_, value: Any) -> None:
    node = tree
    for part in path[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return
    try:
        node[path[-1]] = value
    except (KeyError, IndexError, TypeError):
        return
