"""Generated from the profile models: the key reference (docs/profile.md) and the JSON Schema.

``python -m loadgate.profile.reference`` rewrites both files; a test fails when
either differs from what the models say, so the docs cannot drift from the code.
The JSON Schema describes the TOML shape (durations as ``"10s"`` strings or
numbers) so editors with TOML schema support (Taplo, Even Better TOML) can check
a profile while it is written: ``#:schema ./profile.schema.json`` on its first line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from loadgate.profile.durations import format_duration
from loadgate.profile.loading import is_duration, toml_fields
from loadgate.profile.models import TABLES, Profile

__all__ = ["DOC_PATH", "SCHEMA_PATH", "json_schema", "main", "markdown"]

_ROOT = Path(__file__).resolve().parents[2]
DOC_PATH = _ROOT / "docs" / "profile.md"
SCHEMA_PATH = _ROOT / "profiles" / "profile.schema.json"

_HEAD = """\
# Profile keys

Generated from `loadgate/profile/models.py` by `python -m loadgate.profile.reference`
(a test fails when this file and the models disagree). A profile is a TOML file of
these tables; unknown keys are errors naming the file and key. Durations are strings
like `"500ms"`, `"10s"`, `"2m"`, `"1h"` (or a number of seconds). Any key can be set
from the command line with `--set table.key=value` (the value is TOML, else a string),
and any string value may use `${VAR}` from the environment (such values are shown as
`***` in results). Editors can validate profiles against
[`profiles/profile.schema.json`](../profiles/profile.schema.json).
"""


def _type_text(info: FieldInfo) -> str:
    if is_duration(info):
        return "duration"
    ann = info.annotation
    args = [a for a in get_args(ann) if a is not type(None)]
    optional = type(None) in get_args(ann)
    if optional and len(args) == 1:
        ann = args[0]
    origin = get_origin(ann)
    if origin is not None and origin.__name__ == "Literal":
        text = " \\| ".join(f'`"{a}"`' for a in get_args(ann))
    elif origin is dict:
        text = "table"
    elif origin is list:
        text = "list"
    else:
        names: dict[Any, str] = {bool: "bool", int: "int", float: "float", str: "string"}
        text = names.get(ann, str(ann))
    return text + (" (optional)" if optional else "")


def _default_text(info: FieldInfo) -> str:
    if info.default_factory is not None:
        value: Any = info.default_factory()  # type: ignore[call-arg]
        if isinstance(value, BaseModel):
            return ""
    else:
        value = info.default
    if value is None or value is PydanticUndefined:
        return "—"
    if is_duration(info):
        return f'`"{format_duration(float(value))}"`'
    return f"`{json.dumps(value, ensure_ascii=False)}`"


def _bounds_text(info: FieldInfo) -> str:
    out = []
    for m in info.metadata:
        for attr, sym in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            if hasattr(m, attr):
                out.append(f"{sym} {getattr(m, attr):g}")
    return ", ".join(out)


def _tables(model: type[BaseModel], prefix: str) -> list[tuple[str, type[BaseModel]]]:
    out = [(prefix, model)]
    for key, (_attr, info) in toml_fields(model).items():
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out += _tables(ann, f"{prefix}.{key}")
    return out


def markdown() -> str:
    """The key reference, one table per TOML table."""
    lines = [_HEAD]
    for top in TABLES:
        _attr, info = toml_fields(Profile)[top]
        ann = info.annotation
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            lines += [
                f"## [{top}]",
                "",
                str(info.description or ""),
                "",
                'Example: `"overhead_ms.p99" = "< 20"`. Names: results/README.md.',
                "",
            ]
            continue
        for name, model in _tables(ann, top):
            doc = (model.__doc__ or "").strip().splitlines()[0]
            lines += [f"## [{name}]", "", doc.split("``: ", 1)[-1], ""]
            scalars = {
                key: f
                for key, (_a, f) in toml_fields(model).items()
                if not (isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel))
            }
            if not scalars:
                continue  # only sub-tables: each has its own section
            lines += ["| key | type | default | bounds | meaning |", "|---|---|---|---|---|"]
            for key, f in scalars.items():
                desc = (f.description or "").replace("|", "\\|")
                lines.append(
                    f"| `{key}` | {_type_text(f)} | {_default_text(f)} | {_bounds_text(f)} "
                    f"| {desc} |"
                )
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def json_schema() -> str:
    """JSON Schema (draft 2020-12) of a profile file, TOML keys (aliases) throughout."""
    schema = Profile.model_json_schema(by_alias=True, mode="validation")
    props = schema.get("properties", {})
    for internal in ("name", "source", "secret_paths"):
        props.pop(internal, None)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "loadgate profile"
    schema["additionalProperties"] = False
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write docs/profile.md and profiles/profile.schema.json (``--check``: compare only)."""
    check = "--check" in (argv if argv is not None else sys.argv[1:])
    stale = []
    for path, text in ((DOC_PATH, markdown()), (SCHEMA_PATH, json_schema())):
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print("out of date (run python -m loadgate.profile.reference): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
