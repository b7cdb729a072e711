"""Profile parsing never raises anything but a one-line UsageError, whatever it is fed.

Random TOML-shaped documents (real keys and near-misses, values of every TOML type,
absurd numbers) and random ``--set`` items: each ends as a valid Profile or as one
UsageError line naming where — never a traceback.
"""

from __future__ import annotations

import math
import tomllib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loadgate.errors import UsageError
from loadgate.profile import Profile, parse_profile
from loadgate.profile.loading import toml_fields
from loadgate.profile.models import TABLES

FUZZ = settings(
    max_examples=300, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck)
)


def _keys(model: type[Any]) -> list[str]:
    return list(toml_fields(model))


_TABLE_KEYS: dict[str, list[str]] = {}
for _name in TABLES:
    _ann = Profile.model_fields[_name].annotation
    _TABLE_KEYS[_name] = _keys(_ann) if isinstance(_ann, type) and _name != "gates" else []

scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["10s", "-1s", "1e9", "< 20", "${NOPE}", "poisson", "chat", ""]),
)
values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=8), inner, max_size=4),
    ),
    max_leaves=8,
)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for table in draw(st.lists(st.sampled_from([*TABLES, "lod", "x"]), max_size=4, unique=True)):
        keys = _TABLE_KEYS.get(table) or ["overhead_ms.p99", "bogus"]
        names = st.one_of(st.sampled_from(keys), st.text(max_size=10))
        doc[table] = draw(st.dictionaries(names, values, max_size=5))
    return doc


def _ok_or_one_line(call: Any) -> None:
    try:
        call()
    except UsageError as exc:
        text = str(exc)
        assert text and "\n" not in text, text


@FUZZ
@given(documents())
def test_any_document_is_a_profile_or_one_line(doc: dict[str, Any]) -> None:
    _ok_or_one_line(lambda: parse_profile(doc, source="fuzz.toml", env={}))


set_keys = st.one_of(
    st.sampled_from(
        [f"{t}.{k}" for t, ks in _TABLE_KEYS.items() for k in ks]
        + ["gates.overhead_ms.p99", "gates", "load", "nope.x", "load.duration.x", ""]
    ),
    st.text(max_size=15),
)
set_values = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["1e9", "-1", "nan", "inf", "[1, 2]", "{a = 1}", "true", '"x"', "10s"]),
)


@FUZZ
@given(st.lists(st.tuples(set_keys, set_values), max_size=4))
def test_any_set_items_are_a_profile_or_one_line(items: list[tuple[str, str]]) -> None:
    sets = [f"{k}={v}" for k, v in items]
    _ok_or_one_line(lambda: parse_profile({}, sets=sets, env={}))


@FUZZ
@given(st.text(max_size=200))
def test_any_toml_text_is_a_profile_or_one_line(text: str) -> None:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return  # load_profile turns this into one line naming the file (tested elsewhere)
    _ok_or_one_line(lambda: parse_profile(doc, source="fuzz.toml", env={}))


def test_a_valid_fuzzed_profile_has_finite_durations() -> None:
    p = parse_profile({"load": {"duration": "1e3s"}}, env={})
    assert math.isfinite(p.load.duration_s)
