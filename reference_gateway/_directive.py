"""The agent directive: configured text put into every request's system prompt.

Where it goes, per route (WIRE.md): chat — a leading ``system`` message (or
prepended to an existing leading system message's string content); responses —
``instructions`` (before any the client gave); messages — Anthropic ``system``
(before a string, or as a first text block of a block list). Embeddings and
models have no prompt and pass unchanged, as does a body that is not a JSON
object (the upstream answers it; rewriting it would hide the client's mistake).

``--defect-skip-directive S`` (tests) leaves every request out whose running
count crosses the next multiple of ``1/S``: an exact, deterministic share.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["DirectiveInjector"]

_ROUTES = frozenset({"chat", "responses", "messages"})


class DirectiveInjector:
    """Rewrites request bodies to carry the directive (``text`` "" = never)."""

    __slots__ = ("_seen", "_skipped", "skip_share", "text")

    def __init__(self, text: str, skip_share: float = 0.0) -> None:
        self.text = text
        self.skip_share = skip_share
        self._seen = 0
        self._skipped = 0

    def _skip(self) -> bool:
        self._seen += 1
        if int(self._seen * self.skip_share) > self._skipped:
            self._skipped += 1
            return True
        return False

    def apply(self, route: str, body: bytes) -> bytes:
        """``body`` with the directive in it (unchanged when not applicable)."""
        if not self.text or route not in _ROUTES or self._skip():
            return body
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return body
        if not isinstance(doc, dict):
            return body
        _inject(route, doc, self.text)
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def _inject(route: str, doc: dict[str, Any], text: str) -> None:
    if route == "chat":
        messages = doc.get("messages")
        if not isinstance(messages, list):
            return
        first = messages[0] if messages else None
        system = isinstance(first, dict) and first.get("role") == "system"
        if system and isinstance(first, dict) and isinstance(first.get("content"), str):
            first["content"] = f"{text}\n\n{first['content']}"
            return
        messages.insert(0, {"role": "system", "content": text})
    elif route == "responses":
        given = doc.get("instructions")
        doc["instructions"] = f"{text}\n\n{given}" if isinstance(given, str) and given else text
    else:
        given = doc.get("system")
        if isinstance(given, list):
            doc["system"] = [{"type": "text", "text": text}, *given]
        else:
            doc["system"] = f"{text}\n\n{given}" if isinstance(given, str) and given else text
