"""Response-body decoders: body pieces → content deltas, terminator, usage.

One decoder per endpoint and mode (WIRE.md). A decoder is fed the body pieces
with the timestamps the transport took when they arrived, and records:

* ``parts`` / ``token_times``: each non-empty content delta and its arrival
  time. Gateways may coalesce several tokens into one delta or split a token
  over two, so deltas are *not* tokens: tokens are counted on the final text
  (:func:`count_tokens`);
* ``terminated``: the stream's terminator (``[DONE]``, ``response.completed``,
  ``message_stop``) was seen, or a non-stream body parsed as a whole document;
* ``malformed``: an event (or the non-stream body) was not decodable JSON;
* ``cut``: a non-stream body ended mid-document (a truncated JSON text);
* ``stream_error``: the server reported an error inside a 2xx stream;
* ``usage``: the usage object, when one came;
* ``embedding``: the first vector of an embeddings response.

Decoders never raise on server data: whatever arrives is recorded as one of
the flags above, which :mod:`loadgate.client.integrity` turns into a class.
"""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

from loadgate.client.sse import SSEParser

__all__ = ["Decoder", "count_tokens", "make_decoder"]

_loads = json.loads


def count_tokens(text: str) -> int:
    """Content tokens in a completion: ``[hex]`` then space-separated words."""
    return len(text.split())


class Decoder:
    """Common state; subclasses implement :meth:`feed` and :meth:`finish`."""

    __slots__ = (
        "cut",
        "embedding",
        "malformed",
        "parts",
        "stream_error",
        "terminated",
        "token_times",
        "usage",
    )

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.token_times: list[int] = []
        self.terminated = False
        self.malformed = False
        self.cut = False
        self.stream_error = False
        self.usage: dict[str, Any] | None = None
        self.embedding: list[float] | None = None

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def feed(self, data: bytes, t: int) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """The body ended (cleanly, as far as HTTP framing is concerned)."""

    def _delta(self, text: Any, t: int) -> None:
        if isinstance(text, str) and text:
            self.parts.append(text)
            self.token_times.append(t)
        elif text is not None and not isinstance(text, str):
            self.malformed = True


class _StreamDecoder(Decoder):
    __slots__ = ("_sse",)

    def __init__(self) -> None:
        super().__init__()
        self._sse = SSEParser()

    def feed(self, data: bytes, t: int) -> None:
        for ev in self._sse.feed(data):
            try:
                self._event(ev.type, ev.data, t)
            except (ValueError, TypeError, KeyError, IndexError, AttributeError):
                self.malformed = True  # undecodable JSON or an unexpected shape

    def _event(self, etype: bytes, data: bytes, t: int) -> None:
        raise NotImplementedError


class ChatStream(_StreamDecoder):
    """``data: {chat.completion.chunk}`` … ``data: [DONE]``."""

    __slots__ = ()

    def _event(self, etype: bytes, data: bytes, t: int) -> None:
        if data == b"[DONE]":
            self.terminated = True
            return
        obj = _loads(data)
        if not isinstance(obj, dict):
            raise ValueError("event is not an object")
        if obj.get("error") is not None:
            self.stream_error = True
            return
        choices = obj.get("choices")
        if choices:
            delta = choices[0].get("delta")
            if delta:
                self._delta(delta.get("content"), t)
        usage = obj.get("usage")
        if usage is not None:
            self.usage = usage


class ResponsesStream(_StreamDecoder):
    """OpenAI Responses events; terminator ``response.completed``."""

    __slots__ = ()

    def _event(self, etype: bytes, data: bytes, t: int) -> None:
        obj = _loads(data)
        if not isinstance(obj, dict):
            raise ValueError("event is not an object")
        kind = obj.get("type")
        if kind == "response.output_text.delta":
            self._delta(obj.get("delta"), t)
        elif kind == "response.completed":
            self.terminated = True
            resp = obj.get("response")
            if isinstance(resp, dict):
                self.usage = resp.get("usage")
        elif kind in ("error", "response.failed") or etype == b"error":
            self.stream_error = True


class MessagesStream(_StreamDecoder):
    """Anthropic Messages events; terminator ``message_stop``."""

    __slots__ = ()

    def _event(self, etype: bytes, data: bytes, t: int) -> None:
        if etype == b"error":
            self.stream_error = True
            return
        obj = _loads(data)
        if not isinstance(obj, dict):
            raise ValueError("event is not an object")
        kind = obj.get("type")
        if kind == "content_block_delta":
            delta = obj["delta"]
            if delta.get("type") == "text_delta":
                self._delta(delta.get("text"), t)
        elif kind == "message_stop":
            self.terminated = True
        elif kind == "message_delta":
            self.usage = obj.get("usage")
        elif kind == "error":
            self.stream_error = True


class _JSONBody(Decoder):
    """Non-stream: collect the body, parse it once at the end."""

    __slots__ = ("_pieces", "_t_last")

    def __init__(self) -> None:
        super().__init__()
        self._pieces: list[bytes] = []
        self._t_last = 0

    def feed(self, data: bytes, t: int) -> None:
        self._pieces.append(data)
        self._t_last = t

    def finish(self) -> None:
        doc = b"".join(self._pieces)
        try:
            obj = _loads(doc)
        except ValueError:
            # A document that is fine up to where it stops was cut short; one
            # with a bad byte in the middle is malformed.
            if not doc.strip() or _unclosed(doc):
                self.cut = True
            else:
                self.malformed = True
            return
        self.terminated = True
        try:
            self._extract(obj)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, struct.error):
            self.malformed = True

    def _extract(self, obj: Any) -> None:
        raise NotImplementedError


class ChatJSON(_JSONBody):
    __slots__ = ()

    def _extract(self, obj: Any) -> None:
        self.usage = obj.get("usage")
        self._delta(obj["choices"][0]["message"].get("content"), self._t_last)


class ResponsesJSON(_JSONBody):
    __slots__ = ()

    def _extract(self, obj: Any) -> None:
        self.usage = obj.get("usage")
        for item in obj["output"]:
            for part in item.get("content") or ():
                if part.get("type") == "output_text":
                    self._delta(part.get("text"), self._t_last)


class MessagesJSON(_JSONBody):
    __slots__ = ()

    def _extract(self, obj: Any) -> None:
        self.usage = obj.get("usage")
        for block in obj["content"]:
            if block.get("type") == "text":
                self._delta(block.get("text"), self._t_last)


class EmbeddingsJSON(_JSONBody):
    """A float list, or base64 little-endian float32 (``encoding_format: base64``)."""

    __slots__ = ()

    def _extract(self, obj: Any) -> None:
        self.usage = obj.get("usage")
        vec = obj["data"][0]["embedding"]
        if isinstance(vec, str):
            raw = base64.b64decode(vec, validate=True)
            self.embedding = list(struct.unpack(f"<{len(raw) // 4}f", raw))
        elif isinstance(vec, list) and all(isinstance(v, int | float) for v in vec):
            self.embedding = [float(v) for v in vec]
        else:
            raise TypeError("embedding is neither a list of numbers nor base64")


_DECODERS: dict[tuple[str, bool], type[Decoder]] = {
    ("chat", True): ChatStream,
    ("chat", False): ChatJSON,
    ("responses", True): ResponsesStream,
    ("responses", False): ResponsesJSON,
    ("messages", True): MessagesStream,
    ("messages", False): MessagesJSON,
    ("embeddings", False): EmbeddingsJSON,
}


def make_decoder(endpoint: str, stream: bool) -> Decoder:
    """A fresh decoder for one response body; ``KeyError`` for an unknown pair."""
    return _DECODERS[(endpoint, stream)]()


def _unclosed(doc: bytes) -> bool:
    """True when a JSON text stops inside a string or an open object/array.

    That is a cut-short document (truncated), as opposed to one with a bad byte in
    the middle (malformed). Runs only on the error path.
    """
    depth = 0
    in_string = escaped = False
    for byte in doc:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x7B, 0x5B):  # { [
            depth += 1
        elif byte in (0x7D, 0x5D):  # } ]
            depth -= 1
    return in_string or depth > 0
