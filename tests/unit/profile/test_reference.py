"""The key reference and the JSON Schema are what the models say, and the schema is right."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import jsonschema
import pytest

from loadgate.profile import bundled_dir
from loadgate.profile.reference import DOC_PATH, SCHEMA_PATH, json_schema, main, markdown


def test_committed_reference_and_schema_are_current() -> None:
    assert DOC_PATH.read_text(encoding="utf-8") == markdown(), (
        "run: python -m loadgate.profile.reference"
    )
    assert SCHEMA_PATH.read_text(encoding="utf-8") == json_schema()
    assert main(["--check"]) == 0


def test_reference_lists_every_key_of_the_bundled_profiles() -> None:
    doc = markdown()
    for path in bundled_dir().glob("*.toml"):
        for table, keys in tomllib.loads(path.read_text()).items():
            if table == "gates":
                continue
            for key, value in keys.items():
                if isinstance(value, dict) and f"## [{table}.{key}]" in doc:
                    # A sub-table (gateway.reference, probes.witness): its keys, too.
                    for sub in value:
                        assert f"| `{sub}` |" in doc, f"{path.name}: {table}.{key}.{sub}"
                    continue
                assert f"| `{key}` |" in doc, f"{path.name}: {table}.{key}"


@pytest.mark.parametrize("path", sorted(bundled_dir().glob("*.toml")), ids=lambda p: p.stem)
def test_bundled_profiles_validate_against_the_schema(path: Path) -> None:
    schema = json.loads(json_schema())
    jsonschema.validate(tomllib.loads(path.read_text()), schema)


@pytest.mark.parametrize(
    "doc",
    [
        {"load": {"duraton": "1s"}},
        {"lod": {}},
        {"load": {"duration": "soon"}},
        {"stub": {"port": "x"}},
    ],
)
def test_schema_rejects_what_loading_rejects(doc: dict[str, object]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, json.loads(json_schema()))
