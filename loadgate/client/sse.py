"""Incremental Server-Sent Events parser (WHATWG "event stream interpretation").

Owns turning a byte stream, cut into reads at arbitrary offsets, into
``(event type, data)`` pairs. It works on whole reads with ``bytes.split`` and
``bytes.replace`` rather than per character: the parser runs inside the
transport's ``data_received`` for every streamed response, so its cost is
harness overhead.

Rules implemented (https://html.spec.whatwg.org/multipage/server-sent-events.html):

* lines end in CRLF, LF or CR, and a CRLF may be split across two reads;
* a leading UTF-8 BOM is dropped, even when it arrives split across reads;
* ``:`` starts a comment line; a line without a colon is a field with an empty
  value; one space after the colon is dropped;
* ``data`` lines accumulate and are joined with ``"\\n"``; ``event`` sets the
  type; ``id``, ``retry`` and unknown fields are ignored (the harness never
  reconnects);
* a blank line dispatches the event, unless no ``data`` line was seen (then the
  pending type is discarded, as the spec says);
* an event not closed by a blank line when the stream ends is discarded.

Event types and data stay ``bytes``: ``json.loads`` takes bytes, and decoding
would be wasted work for the many events whose type is compared and dropped.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["SSEEvent", "SSEParser"]

_BOM = b"\xef\xbb\xbf"


class SSEEvent(NamedTuple):
    """One dispatched event. ``type`` is ``b"message"`` when no ``event:`` line came."""

    type: bytes
    data: bytes


class SSEParser:
    """Feed reads in order; each :meth:`feed` returns the events they complete."""

    __slots__ = ("_at_start", "_buf", "_data", "_pending_cr", "_type")

    def __init__(self) -> None:
        self._buf = b""  # an incomplete line carried over to the next read
        self._data: list[bytes] = []
        self._type = b""
        self._pending_cr = False  # the previous read ended in CR: a leading LF is its pair
        self._at_start = True  # the BOM check has not been decided yet

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if (
            not self._buf
            and not self._data
            and not self._type
            and not self._at_start
            and not self._pending_cr
            and chunk.endswith(b"\n\n")
            and b"\r" not in chunk
        ):
            return self._whole_events(chunk)
        if self._at_start:
            head = self._buf + chunk
            if len(head) < 3 and _BOM.startswith(head):
                self._buf = head  # may still become a BOM: wait for more bytes
                return []
            self._at_start = False
            self._buf = b""
            chunk = head[3:] if head.startswith(_BOM) else head
        if self._pending_cr:
            self._pending_cr = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if b"\r" in chunk:
            self._pending_cr = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if b"\n" not in chunk:
            self._buf += chunk
            return []
        lines = (self._buf + chunk).split(b"\n")
        self._buf = lines.pop()
        return self._lines(lines, [])

    def idle(self) -> bool:
        """Between events: no partial line, field, type or CR pair is pending.

        The start of the stream counts (a caller that sees ``data: `` first knows
        there is no BOM, and says so with :meth:`started`).
        """
        return not (self._buf or self._data or self._type or self._pending_cr)

    def started(self) -> None:
        """The caller consumed whole events from an idle state: the BOM check is over."""
        self._at_start = False

    def data_only(self, chunk: bytes) -> list[bytes] | None:
        """The data of each event in ``chunk`` when it is whole ``data: x`` events only.

        That is the common read of a chat stream: then the events are exactly
        ``SSEEvent(b"message", x)`` each, and a caller that ignores the type is
        spared building them. ``None`` for any other read; then the caller must
        :meth:`feed` it (nothing was consumed).
        """
        if (
            self._buf
            or self._data
            or self._type
            or self._at_start
            or self._pending_cr
            or not chunk.startswith(b"data: ")
            or not chunk.endswith(b"\n\n")
            or b"\r" in chunk
        ):
            return None
        blocks = chunk[6:-2].split(b"\n\ndata: ")
        for block in blocks:
            if b"\n" in block:
                return None
        return blocks

    def _whole_events(self, chunk: bytes) -> list[SSEEvent]:
        """A read of whole events, LF only: the common case of an LLM stream (one
        read per token). ``data: x`` and ``event: t\ndata: x`` are taken apart
        here; any other block goes through the general rules."""
        events: list[SSEEvent] = []
        for block in chunk[:-2].split(b"\n\n"):
            if block.startswith(b"data: "):
                if b"\n" not in block:
                    events.append(SSEEvent(b"message", block[6:]))
                    continue
            elif block.startswith(b"event: "):
                nl = block.find(b"\n")
                if block.startswith(b"data: ", nl + 1) and b"\n" not in block[nl + 1 :]:
                    events.append(SSEEvent(block[7:nl] or b"message", block[nl + 7 :]))
                    continue
            self._lines([*block.split(b"\n"), b""], events)
        return events

    def _lines(self, lines: list[bytes], events: list[SSEEvent]) -> list[SSEEvent]:
        """The WHATWG rules, line by line; dispatched events are appended to ``events``."""
        data = self._data
        for line in lines:
            if not line:
                if data:
                    events.append(SSEEvent(self._type or b"message", b"\n".join(data)))
                    data.clear()
                self._type = b""
                continue
            colon = line.find(b":")
            if colon == 0:
                continue  # comment
            if colon < 0:
                name, value = line, b""
            else:
                name = line[:colon]
                value = line[colon + 1 :]
                if value[:1] == b" ":
                    value = value[1:]
            if name == b"data":
                data.append(value)
            elif name == b"event":
                self._type = value
        return events
