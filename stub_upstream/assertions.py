"""Upstream assertions: rules the stub checks on every API request it receives.

The stub is the request log a gateway's upstream sees, so it is where "the
directive is injected into every request" or "the client's own key never
reaches the provider" can be checked, request by request. The rules come from
the profile's ``[checks.upstream]`` (through :class:`StubConfig.assertions`);
each failed rule sets one bit in the request's ledger record (``checks_failed``),
so the harness counts failures per rule and names failing correlation ids.

Robust to gateways that rewrite requests: header names are compared
case-insensitively (the parser lowercases them), header values are matched by
glob, and the directive is searched as a substring of every system-role text:
chat ``messages`` with role ``system``/``developer`` (string or text parts),
Responses ``instructions`` and system/developer items of ``input``, Anthropic
``system`` (string or text blocks). Costs nothing when no rule is configured:
the handler calls :meth:`Rules.evaluate` only then.
"""

from __future__ import annotations

import fnmatch
from typing import Any

import msgspec
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["MAX_RULES", "Rules", "UpstreamRules", "system_texts"]

#: The ledger's ``checks_failed`` is a u16 bitmask: one bit per rule.
MAX_RULES = 16
_SYSTEM_ROLES = frozenset({"system", "developer"})


class UpstreamRules(BaseModel):
    """What every upstream request must (not) carry; empty = no rule."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    require_system: str = Field(
        "", description='Text every system message / instructions / system must contain ("" = off).'
    )
    require_headers: dict[str, str] = Field(
        default_factory=dict, description='Header name → value glob it must match ("*": present).'
    )
    forbid_headers: list[str] = Field(
        default_factory=list, description="Headers no upstream request may carry."
    )

    @model_validator(mode="after")
    def _bounded(self) -> UpstreamRules:
        if len(self.names()) > MAX_RULES:
            raise ValueError(f"at most {MAX_RULES} upstream rules (one ledger bit each)")
        for name in [*self.require_headers, *self.forbid_headers]:
            if not name.strip() or any(c in name for c in " :\r\n"):
                raise ValueError(f"{name!r}: not a header name")
        return self

    def names(self) -> list[str]:
        """Rule names in bit order: bit ``i`` of ``checks_failed`` is ``names()[i]``."""
        out = ["require_system"] if self.require_system else []
        out += [f"require_headers.{h.lower()}" for h in self.require_headers]
        out += [f"forbid_headers.{h.lower()}" for h in self.forbid_headers]
        return out

    @property
    def configured(self) -> bool:
        return bool(self.names())


class _Part(msgspec.Struct):
    text: Any = None


class _Msg(msgspec.Struct):
    role: Any = None
    content: Any = None


class _Body(msgspec.Struct):
    messages: list[_Msg] | None = None
    instructions: Any = None
    input: Any = None
    system: Any = None


_DECODE = msgspec.json.Decoder(_Body).decode
_DECODE_ITEMS = msgspec.json.Decoder(list[_Msg]).decode


def _texts(content: Any) -> list[str]:
    """The text of a content value: a string, or a list of ``{"text": …}`` parts."""
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [
            p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        ]
    return []


def system_texts(raw: bytes) -> list[str] | None:
    """Every system-role text of a request body; None when it is not a JSON object."""
    try:
        body = _DECODE(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    out: list[str] = []
    for m in body.messages or ():
        if m.role in _SYSTEM_ROLES:
            out += _texts(m.content)
    out += _texts(body.instructions)
    out += _texts(body.system)
    if isinstance(body.input, list):
        for item in body.input:
            if isinstance(item, dict) and item.get("role") in _SYSTEM_ROLES:
                out += _texts(item.get("content"))
    return out


class Rules:
    """The configured rules, compiled for the request path."""

    __slots__ = ("_forbid", "_require", "_system", "names")

    def __init__(self, rules: UpstreamRules) -> None:
        self.names = rules.names()
        bit = 0
        self._system: tuple[str, int] | None = None
        if rules.require_system:
            self._system = (rules.require_system, 1)
            bit = 1
        self._require: list[tuple[str, str, int]] = []
        for name, glob in rules.require_headers.items():
            self._require.append((name.lower(), glob, 1 << bit))
            bit += 1
        self._forbid: list[tuple[str, int]] = []
        for name in rules.forbid_headers:
            self._forbid.append((name.lower(), 1 << bit))
            bit += 1

    def evaluate(self, headers: dict[str, str], raw: bytes, has_system: bool) -> int:
        """The failed rules' bits for one request (0: every rule held).

        ``headers``: lowercased names (the stub's parser). ``has_system``: the
        endpoint has a system message at all (not embeddings or models).
        """
        failed = 0
        for name, glob, bit in self._require:
            value = headers.get(name)
            if value is None or not fnmatch.fnmatchcase(value, glob):
                failed |= bit
        for name, bit in self._forbid:
            if name in headers:
                failed |= bit
        if self._system is not None and has_system:
            text, bit = self._system
            texts = system_texts(raw)
            if texts is None or not any(text in t for t in texts):
                failed |= bit
        return failed
