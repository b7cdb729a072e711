"""Reference SSE streams in the stub's wire format (WIRE.md), built from content.py.

``tests/data/streams/*.sse`` are written by this module (``python -m
tests.support.streams`` regenerates them) and then read back by the tests as
recorded data: a change in this builder shows up as a diff of those files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stub_upstream import content

__all__ = ["CID", "STREAM_DIR", "N", "build_stream", "recorded_streams", "stream_events"]

STREAM_DIR = Path(__file__).resolve().parent.parent / "data" / "streams"
CID = 0x5EED00000000002A
N = 8
_CREATED = 1726623632


def _j(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _chat(cid: int, n: int) -> list[tuple[str | None, str]]:
    hx = content.format_corr_id(cid)
    base = {"id": f"chatcmpl-{hx}", "object": "chat.completion.chunk", "created": _CREATED}
    base["model"] = "gpt-4o-mini"

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return _j({**base, "choices": [choice], "usage": None})

    events: list[tuple[str | None, str]] = [(None, chunk({"role": "assistant", "content": ""}))]
    events += [(None, chunk({"content": tok})) for tok in content.tokens(cid, n)]
    events.append((None, chunk({}, "stop")))
    usage = {"prompt_tokens": 11, "completion_tokens": n, "total_tokens": 11 + n}
    events.append((None, _j({**base, "choices": [], "usage": usage})))
    events.append((None, "[DONE]"))
    return events


def _responses(cid: int, n: int) -> list[tuple[str | None, str]]:
    hx = content.format_corr_id(cid)
    rid, mid = f"resp_{hx}", f"msg_{hx}"
    text = content.expected_text(cid, n)
    usage = {"input_tokens": 11, "output_tokens": n, "total_tokens": 11 + n}
    part = {"type": "output_text", "text": text, "annotations": []}
    item = {"id": mid, "type": "message", "status": "completed", "role": "assistant"}
    shapes: list[dict[str, Any]] = [
        {"type": "response.created", "response": {"id": rid, "status": "in_progress"}},
        {"type": "response.in_progress", "response": {"id": rid, "status": "in_progress"}},
        {"type": "response.output_item.added", "output_index": 0, "item": {**item, "content": []}},
        {
            "type": "response.content_part.added",
            "item_id": mid,
            "output_index": 0,
            "content_index": 0,
            "part": {**part, "text": ""},
        },
    ]
    for tok in content.tokens(cid, n):
        shapes.append(
            {
                "type": "response.output_text.delta",
                "item_id": mid,
                "output_index": 0,
                "content_index": 0,
                "delta": tok,
            }
        )
    done = {"item_id": mid, "output_index": 0, "content_index": 0}
    shapes.append({"type": "response.output_text.done", **done, "text": text})
    shapes.append({"type": "response.content_part.done", **done, "part": part})
    full_item = {**item, "content": [part]}
    shapes.append({"type": "response.output_item.done", "output_index": 0, "item": full_item})
    final = {"id": rid, "status": "completed", "output": [full_item], "usage": usage}
    shapes.append({"type": "response.completed", "response": final})
    return [(shape["type"], _j({**shape, "sequence_number": i})) for i, shape in enumerate(shapes)]


def _messages(cid: int, n: int) -> list[tuple[str | None, str]]:
    hx = content.format_corr_id(cid)
    msg: dict[str, Any] = {
        "id": f"msg_{hx}",
        "type": "message",
        "role": "assistant",
        "model": "claude-3-5-haiku-20241022",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 11, "output_tokens": 1},
    }
    events: list[tuple[str | None, str]] = [
        ("message_start", _j({"type": "message_start", "message": msg})),
        (
            "content_block_start",
            _j(
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                }
            ),
        ),
        ("ping", _j({"type": "ping"})),
    ]
    for tok in content.tokens(cid, n):
        delta = {"type": "text_delta", "text": tok}
        events.append(
            ("content_block_delta", _j({"type": "content_block_delta", "index": 0, "delta": delta}))
        )
    events.append(("content_block_stop", _j({"type": "content_block_stop", "index": 0})))
    stop = {"stop_reason": "end_turn", "stop_sequence": None}
    events.append(
        (
            "message_delta",
            _j({"type": "message_delta", "delta": stop, "usage": {"output_tokens": n}}),
        )
    )
    events.append(("message_stop", _j({"type": "message_stop"})))
    return events


_BUILDERS = {"chat": _chat, "responses": _responses, "messages": _messages}


def stream_events(endpoint: str, cid: int = CID, n: int = N, newline: str = "\n") -> list[bytes]:
    """Each event of the stream the stub sends for ``endpoint``, as wire bytes."""
    out: list[bytes] = []
    for etype, data in _BUILDERS[endpoint](cid, n):
        head = "" if etype is None else f"event: {etype}{newline}"
        out.append(f"{head}data: {data}{newline}{newline}".encode())
    return out


def build_stream(endpoint: str, cid: int = CID, n: int = N, newline: str = "\n") -> bytes:
    """The whole stream body (``newline`` varies the line ends)."""
    return b"".join(stream_events(endpoint, cid, n, newline))


def _variants() -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for endpoint in _BUILDERS:
        files[f"{endpoint}.sse"] = build_stream(endpoint)
        files[f"{endpoint}_crlf.sse"] = build_stream(endpoint, newline="\r\n")
    files["messages_cr.sse"] = build_stream("messages", newline="\r")
    # Spec corners a proxy may legally produce: BOM, comments (keep-alives), a
    # field without a colon, id/retry lines, data split over several lines, no
    # space after the colon.
    chat = [data for _, data in _chat(CID, N)]
    head, tail = chat[0].split(",", 1)  # JSON may be cut at whitespace: one event, two lines
    files["chat_corners.sse"] = (
        f"\ufeff: keep-alive\n\nretry: 1000\nid: 7\ndata:{head},\ndata:{tail}\n\n"
        + f"event\ndata: {chat[1]}\n\n"
        + "".join(f"data: {data}\r\n: ping\r\n\r\n" for data in chat[2:])
    ).encode()
    return files


def recorded_streams() -> dict[str, bytes]:
    """Every recorded stream by file name."""
    return {p.name: p.read_bytes() for p in sorted(STREAM_DIR.glob("*.sse"))}


if __name__ == "__main__":
    STREAM_DIR.mkdir(parents=True, exist_ok=True)
    for name, body in _variants().items():
        (STREAM_DIR / name).write_bytes(body)
        print(f"wrote {STREAM_DIR / name} ({len(body)} bytes)")
