"""TRANSITIONAL (issue 12): dict views of typed results for readers not yet converted.

Every reader is moving to attribute access on :mod:`loadgate.result.model`; this
module goes away with the last of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

__all__ = ["as_dict", "dig"]


def dig(node: Any, *path: str) -> Any:
    """``node[path[0]][path[1]]…`` of a result dict, or None where a step is missing."""
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def as_dict(result: Any) -> dict[str, Any]:
    """The JSON form of a typed result (a dict passes through)."""
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json", by_alias=True, exclude_unset=True)
    if isinstance(result, dict):
        return result
    raise TypeError(f"expected a result, got {type(result).__name__}")
