"""From a TOML file (or a bundled name), ``--set`` overrides and ``${VAR}``s to a Profile.

The schema is :mod:`loadgate.profile.models` (pydantic); this module owns
everything around it: reading the file, the bundled profiles (top-level
``profiles/``, shipped inside the package through the ``loadgate/profiles``
symlink), applying ``--set KEY=VALUE``, expanding ``${VAR}`` from the environment
(and remembering which values were secrets), the cross-field rules no type can
state, and turning any failure into **one** :class:`~loadgate.errors.UsageError`
line naming the file (or ``--set``) and the dotted key, with "did you mean" for
typos. Pydantic's own messages are reworded here so every line reads the same.

Longer than 400 lines because that rewording is one table of cases, next to the
walk of ``--set`` keys it shares with the error paths.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeAlias, get_args, get_origin

import annotated_types
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from loadgate.errors import UsageError
from loadgate.judge.gates import parse_gate
from loadgate.profile.durations import format_duration
from loadgate.profile.models import ENDPOINTS, TABLES, Profile

__all__ = ["bundled_dir", "bundled_profiles", "load_profile", "parse_profile", "to_toml"]

_SET_LABEL = "--set"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

RawPath: TypeAlias = tuple[str | int, ...]


class _Problem(Exception):
    """A validation failure at a raw TOML path (turned into a UsageError line)."""

    def __init__(self, path: Sequence[str | int], message: str) -> None:
        super().__init__(message)
        self.path = tuple(path)
        self.message = message


# --------------------------------------------------------------------------- schema walk


def toml_fields(model: type[BaseModel]) -> dict[str, tuple[str, FieldInfo]]:
    """TOML key → (attribute name, field) of one table's model."""
    out: dict[str, tuple[str, FieldInfo]] = {}
    for name, info in model.model_fields.items():
        if info.exclude:
            continue
        out[info.alias or name] = (name, info)
    return out


def _inner(annotation: Any) -> Any:
    """``X`` for ``X | None``; anything else unchanged."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    if type(None) in get_args(annotation) and len(args) == 1:
        return args[0]
    return annotation


def _is_table(annotation: Any) -> bool:
    inner = _inner(annotation)
    return isinstance(inner, type) and issubclass(inner, BaseModel)


def is_duration(info: FieldInfo) -> bool:
    extra = info.json_schema_extra
    return isinstance(extra, dict) and bool(extra.get("duration"))


def _bounds(info: FieldInfo) -> dict[str, float]:
    out: dict[str, float] = {}
    for m in info.metadata:
        for key in ("ge", "gt", "le", "lt"):
            if isinstance(m, annotated_types.BaseMetadata) and hasattr(m, key):
                out[key] = float(getattr(m, key))
    return out


def _model_at(path: Sequence[str | int]) -> type[BaseModel] | None:
    """The table model a raw path names (the profile itself for ``()``)."""
    if not path:
        return Profile
    info = _field_at(path)
    inner = _inner(info.annotation) if info is not None else None
    return inner if isinstance(inner, type) and issubclass(inner, BaseModel) else None


def _field_at(path: Sequence[str | int]) -> FieldInfo | None:
    """The field a raw path lands on (None inside free-form tables or lists)."""
    model: type[BaseModel] | None = Profile
    info: FieldInfo | None = None
    for part in path:
        if model is None:
            return None
        fields = toml_fields(model)
        if not isinstance(part, str) or part not in fields:
            return None
        info = fields[part][1]
        inner = _inner(info.annotation)
        model = inner if isinstance(inner, type) and issubclass(inner, BaseModel) else None
    return info


# --------------------------------------------------------------------------- errors


def _show(value: Any) -> str:
    return repr(value)


def _raw_at(raw: Any, path: Sequence[str | int]) -> Any:
    node = raw
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _describe(annotation: Any) -> str:
    inner = _inner(annotation)
    if get_origin(inner) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(inner))
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return names.get(inner, "a valid value")


#: pydantic's bound errors → (the bound's name, how we say it)
_BOUND_ERRORS = {
    "greater_than_equal": ("ge", "at least"),
    "greater_than": ("gt", "greater than"),
    "less_than_equal": ("le", "at most"),
    "less_than": ("lt", "less than"),
}


def _message(err: Mapping[str, Any], raw: Any) -> tuple[RawPath, str]:
    """Our one-line wording of one pydantic error."""
    loc: RawPath = tuple(err["loc"])
    kind = err["type"]
    # The user's own spelling ("0s", not 0.0) when the raw document has it.
    got = _raw_at(raw, loc)
    if got is None:
        got = err.get("input")
    if kind == "extra_forbidden":
        parent = _field_at(loc[:-1]) if len(loc) > 1 else None
        model: Any = Profile
        if parent is not None:
            model = _inner(parent.annotation)
        known = list(toml_fields(model)) if isinstance(model, type) else []
        hint = difflib.get_close_matches(str(loc[-1]), known, n=1)
        return loc, "unknown key" + (f" (did you mean {hint[0]!r}?)" if hint else "")
    info = _field_at(loc)
    if kind in _BOUND_ERRORS and info is not None:
        b = _bounds(info)
        if "ge" in b and "le" in b:
            return loc, f"must be between {b['ge']:g} and {b['le']:g} (got {_show(got)})"
        key, text = _BOUND_ERRORS[kind]
        if key in b:
            return loc, f"must be {text} {b[key]:g} (got {_show(got)})"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return loc, f"must be a table (got {_show(got)})"
    if kind in ("list_type", "frozen_set_type", "tuple_type"):
        return loc, f"must be a list (got {_show(got)})"
    if kind == "literal_error" and info is not None:
        return loc, f"must be {_describe(info.annotation)} (got {_show(got)})"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return loc, f"must be an integer (got {_show(got)})"
    if kind in ("float_type", "float_parsing"):
        return loc, f"must be a number (got {_show(got)})"
    if kind in ("bool_type", "bool_parsing"):
        return loc, f"must be true or false (got {_show(got)})"
    if kind == "string_type":
        return loc, f"must be a string (got {_show(got)})"
    if kind == "finite_number":
        return loc, f"must be finite (got {_show(got)})"
    if kind == "value_error":
        text = str(err["msg"]).removeprefix("Value error, ")
        # A table's own rule names its key first ("faults.gremlins: unknown fault"):
        # make that key part of the path, so the line reads stub.faults.gremlins.
        key, sep, rest = text.partition(": ")
        model = _model_at(loc)
        if sep and model is not None and key.split(".")[0] in toml_fields(model):
            return (*loc, *key.split(".")), rest
        return loc, text
    return loc, str(err["msg"])


# --------------------------------------------------------------------------- rules


def _semantic_errors(p: Profile) -> Iterator[tuple[RawPath, str]]:
    """Cross-field rules the types alone cannot state (the stub's own are its model's)."""
    load = p.load
    if load.concurrency is not None and load.rate is not None:
        yield ("load", "concurrency"), "set either concurrency (closed loop) or rate, not both"
    if load.concurrency is None and load.rate is None and load.trace is None:
        yield ("load", "concurrency"), "set concurrency (closed loop) or rate (open loop)"
    yield from _workload_errors(p)
    for name, weight in load.endpoints.items():
        if name not in ENDPOINTS:
            yield ("load", "endpoints", name), f"unknown endpoint (one of {', '.join(ENDPOINTS)})"
        elif weight < 0:
            yield ("load", "endpoints", name), f"weight must not be negative (got {weight:g})"
    if not load.endpoints or sum(load.endpoints.values()) <= 0:
        yield ("load", "endpoints"), "needs at least one endpoint with a positive weight"
    if p.gateway.kind == "command" and not p.gateway.command:
        yield ("gateway", "command"), 'kind = "command" needs a command to launch'
    yield from _probe_errors(p)
    yield from _witness_errors(p)
    for name, expr in p.gates.items():
        try:
            parse_gate(name, expr)
        except ValueError as exc:
            yield ("gates", name), str(exc)
            continue
        slo = p.slo
        if name.startswith("goodput.") and not any(v is not None for _, v in slo):
            yield ("gates", name), "a goodput gate needs [slo] bounds (ttft_ms, itl_ms, ...)"


def _probe_errors(p: Profile) -> Iterator[tuple[RawPath, str]]:
    rev, ten, ref = p.probes.revocation, p.probes.tenants, p.gateway.reference
    if ref.workers > 1 and not ref.redis:
        yield (
            ("gateway", "reference", "workers"),
            "more than 1 needs gateway.reference.redis = true (revocations reach every worker)",
        )
    if rev.url and rev.command:
        yield ("probes", "revocation", "url"), "set either url or command, not both"
    if rev.url and not rev.url.startswith(("http://", "https://", "{gateway_url}")):
        yield ("probes", "revocation", "url"), f"must be an http(s) URL (got {rev.url!r})"
    if rev.command and "{key}" not in rev.command:
        yield ("probes", "revocation", "command"), "must contain {key} (the key to revoke)"
    if (rev.url or rev.command) and p.auth.header == "none":
        yield ("probes", "revocation"), 'needs client keys (auth.header is "none")'
    if (rev.url or rev.command) and rev.keys >= p.auth.keys and not p.auth.keys_file:
        yield ("probes", "revocation", "keys"), f"must be below auth.keys ({p.auth.keys})"
    if ten.share > 0 and p.auth.header == "none":
        yield ("probes", "tenants"), 'needs client keys (auth.header is "none")'
    if ten.share > 0 and not ten.header.strip():
        yield ("probes", "tenants", "header"), "must name a header"


def _witness_errors(p: Profile) -> Iterator[tuple[RawPath, str]]:
    if p.gateway.reference.trace_db and p.gateway.kind != "reference":
        yield ("gateway", "reference", "trace_db"), 'needs gateway.kind = "reference"'
    w, at = p.probes.witness, ("probes", "witness")
    if w.kind == "sql":
        if not w.dsn:
            yield (*at, "dsn"), 'kind = "sql" needs a dsn (postgresql://… or "auto")'
        elif w.dsn == "auto" and not (
            p.gateway.kind == "reference" and p.gateway.reference.trace_db
        ):
            yield (*at, "dsn"), '"auto" needs gateway.kind = "reference" with reference.trace_db'
        elif w.dsn != "auto" and not w.dsn.startswith(("postgresql://", "postgres://")):
            yield (*at, "dsn"), f'must be a postgresql:// DSN or "auto" (got {w.dsn!r})'
        if "$1" not in w.query:
            yield (*at, "query"), "must use $1 for the correlation id"
    if w.kind == "http":
        if not w.url or "{corr_id}" not in w.url:
            yield (*at, "url"), 'kind = "http" needs a url containing {corr_id}'
        elif not w.url.replace("{gateway_url}", "http://gw").startswith(("http://", "https://")):
            yield (*at, "url"), f"must be an http(s) URL (got {w.url!r})"
        elif "{gateway_url}" in w.url and p.gateway.kind == "direct":
            yield (*at, "url"), '{gateway_url} needs a gateway (gateway.kind is "direct")'
        elif "{gateway_url}" in w.url and p.gateway.drain_check:
            # The drain check stops the gateway at the window's end, with the last
            # requests' records still to be looked for through it.
            yield (*at, "url"), "{gateway_url} needs gateway.drain_check = false"


def _workload_errors(p: Profile) -> Iterator[tuple[RawPath, str]]:
    """Trace replay and sessions: what they combine with (docs/workloads.md)."""
    load = p.load
    used = [n for n, w in load.endpoints.items() if w > 0]
    if load.trace is not None:
        if load.rate is not None or load.concurrency is not None:
            other = "rate" if load.rate is not None else "concurrency"
            yield ("load", other), "a trace sets its own send times: drop rate / concurrency"
        if load.sessions.turns > 1:
            yield ("load", "sessions", "turns"), "sessions and a trace do not combine"
        if "embeddings" in used:
            yield ("load", "endpoints", "embeddings"), "a trace replays completions only"
    if load.sessions.turns > 1:
        for name in used:
            if name not in ("chat", "messages"):
                yield ("load", "endpoints", name), "sessions run on chat and messages only"


# --------------------------------------------------------------------------- --set


def _set_target(keys: Sequence[str]) -> tuple[RawPath, Any, FieldInfo | None]:
    """Resolve a dotted ``--set`` key: (raw path to write, value annotation, its field).

    Once the walk reaches a free-form table (gates, counters, faults, endpoints,
    env), the rest of the key is one entry name: gate names contain dots themselves.
    """
    model: type[BaseModel] = Profile
    path: list[str | int] = []
    for i, key in enumerate(keys):
        fields = toml_fields(model)
        if key not in fields:
            hint = difflib.get_close_matches(key, list(fields), n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise _Problem((*path, key), f"unknown key{extra}")
        _, info = fields[key]
        path.append(key)
        if _is_table(info.annotation):
            model = _inner(info.annotation)
            continue
        rest = keys[i + 1 :]
        if not rest:
            return tuple(path), info.annotation, info
        if get_origin(info.annotation) is dict:
            entry = ".".join(rest).strip()
            if len(entry) >= 2 and entry[0] == entry[-1] and entry[0] in "\"'":
                entry = entry[1:-1]
            return (*path, entry), get_args(info.annotation)[1], None
        raise _Problem((*path, rest[0]), "unknown key")
    raise _Problem(tuple(path), "is a table: set its keys one by one")


def _set_value(text: str, annotation: Any, info: FieldInfo | None) -> Any:
    """A TOML value, falling back to the raw string (so ``10s`` and selectors just work)."""
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
    target = _inner(annotation)
    wants_text = target is str or (
        get_origin(target) is Literal and all(isinstance(a, str) for a in get_args(target))
    )
    duration = info is not None and is_duration(info)
    if (wants_text or duration) and not isinstance(value, str):
        # `--set auth.prefix=123` means the text 123; durations take numbers too.
        return value if duration else text
    return value


def _apply_sets(raw: dict[str, Any], sets: Sequence[str]) -> set[RawPath]:
    changed: set[RawPath] = set()
    for item in sets:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"{_SET_LABEL} {item!r}: expected KEY=VALUE")
        try:
            path, annotation, info = _set_target(key.split("."))
        except _Problem as exc:
            raise UsageError(f"{_SET_LABEL} {_key_text(key)}: {exc.message}") from None
        value = _set_value(text, annotation, info)
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
        if path == ("load", "trace"):
            node.pop("rate", None)
            node.pop("concurrency", None)
    return changed


# --------------------------------------------------------------------------- ${VAR}


def _expand(node: Any, path: RawPath, env: Mapping[str, str], secrets: set[RawPath]) -> Any:
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


_PLAIN_KEY = re.compile(r"[^\x00-\x1f\x7f]*")


def _key_text(part: str | int) -> str:
    """A path part as it can be shown on one line (control characters escaped)."""
    text = str(part)
    return text if _PLAIN_KEY.fullmatch(text) else repr(text)


def _locate(path: RawPath, label: str, set_paths: set[RawPath]) -> str:
    dotted = ".".join(_key_text(p) for p in path)
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
    secrets: set[RawPath] = set()
    try:
        expanded = _expand(raw, (), os.environ if env is None else env, secrets)
        load = expanded.get("load")
        if (
            isinstance(load, dict)
            and ("rate" in load or "trace" in load)
            and ("concurrency" not in load)
        ):
            load["concurrency"] = None  # open loop: the closed-loop default steps aside
        for key in expanded:
            if key not in TABLES:
                hint = difflib.get_close_matches(str(key), TABLES, n=1)
                extra = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise _Problem((key,), f"unknown key{extra}")
        try:
            profile = Profile.model_validate(
                {**expanded, "name": name, "source": source, "secret_paths": frozenset(secrets)}
            )
        except ValidationError as exc:
            path, message = _message(exc.errors()[0], expanded)
            raise _Problem(path, message) from None
        for path, message in _semantic_errors(profile):
            raise _Problem(path, message)
    except _Problem as exc:
        raise UsageError(f"{_locate(exc.path, label, set_paths)}: {exc.message}") from None
    return profile


def bundled_dir() -> Path:
    """Where the bundled profiles are (``loadgate/profiles`` → top-level ``profiles/``)."""
    return Path(str(resources.files("loadgate") / "profiles"))


def bundled_profiles() -> dict[str, str]:
    """Bundled profile name → its first comment line (what it answers)."""
    out: dict[str, str] = {}
    for entry in sorted(bundled_dir().glob("*.toml")):
        first = ""
        for line in entry.read_text(encoding="utf-8").splitlines():
            if line.startswith("#"):
                first = line.lstrip("#").strip()
                break
        out[entry.stem] = first
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
        entry = bundled_dir() / f"{ref}.toml"
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


def _table(obj: BaseModel) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, (attr, info) in toml_fields(type(obj)).items():
        value = getattr(obj, attr)
        if isinstance(value, BaseModel):
            out[key] = _table(value)
        elif is_duration(info) and value is not None:
            out[key] = format_duration(value)
        elif isinstance(value, dict | list):
            out[key] = copy.deepcopy(value)
        else:
            out[key] = value
    return out


def _replace(tree: Any, path: RawPath, value: Any) -> None:
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


def to_toml(profile: Profile) -> dict[str, Any]:
    """The resolved profile, TOML-shaped, every ``${VAR}``-derived value as ``"***"``."""
    out: dict[str, Any] = {"name": profile.name, "source": profile.source}
    out.update(_table(profile))
    for path in profile.secret_paths:
        _replace(out, path, "***")
    return out
