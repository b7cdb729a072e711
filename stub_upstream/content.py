"""Deterministic response content: the one source of truth for integrity checks.

The stub writes, and the load generator re-derives, the same content from a
request's correlation id and token count (DESIGN §3). Keep this module free of
I/O and of imports beyond the standard library: both hot paths import it.

Shape of a completion of ``n`` tokens for correlation id ``cid``:

* token 0 is ``"[" + 16 hex digits of cid + "]"``: a response names the request
  it belongs to, so a swapped response is attributable (cross-talk), not just
  "wrong";
* token i >= 1 is ``" " + word`` where the word is drawn from a fixed syllable
  table by a splitmix64 hash of (cid, i): cheap, stable across versions and
  platforms, and ASCII so it never needs JSON escaping.
"""

from __future__ import annotations

import array
import functools
import re
import sys

__all__ = [
    "CORR_HEADER",
    "embedding",
    "expected_text",
    "find_corr_id",
    "format_corr_id",
    "marker",
    "parse_corr_id",
    "text_bytes",
    "token",
    "tokens",
]

#: Header that carries the correlation id beside the in-body marker.
CORR_HEADER = "x-loadgate-id"

_MASK64 = (1 << 64) - 1
_MARKER_RE = re.compile(rb"loadgate:([0-9a-f]{16})")
_HEX16 = re.compile(r"[0-9a-fA-F]{16}")
_SYLLABLES = (
    "ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo",
    "ba", "de", "fi", "go", "hu", "ja", "ko", "pe",
)  # fmt: skip


def _mix(x: int) -> int:
    """splitmix64 finaliser: a fast, well-distributed 64-bit hash."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def format_corr_id(cid: int) -> str:
    """The 16-hex-digit text form used in headers, markers and token 0."""
    return f"{cid:016x}"


def parse_corr_id(text: str) -> int | None:
    """Inverse of :func:`format_corr_id`; ``None`` for anything else."""
    # Not int(text, 16) alone: it also takes a sign, "0x", "_" and blanks ("-000000000000001").
    if _HEX16.fullmatch(text) is None:
        return None
    return int(text, 16)


def marker(cid: int) -> str:
    """In-body marker placed in the last user message.

    Gateways rewrite headers and re-serialise JSON but pass message text
    through, so the body is where the id survives.
    """
    return f"[loadgate:{cid:016x}]"


def find_corr_id(body: bytes) -> int | None:
    """Find the marker anywhere in a raw request body (the last one wins)."""
    found = _MARKER_RE.findall(body)
    if not found:
        return None
    return int(found[-1], 16)


# Word i is " " + syllables of bits 0-3, 4-7 and 8-11 of i: the low 12 bits of
# the hash pick the word in one lookup (4096 entries, built once).
_WORDS = tuple(
    " " + _SYLLABLES[i & 15] + _SYLLABLES[(i >> 4) & 15] + _SYLLABLES[(i >> 8) & 15]
    for i in range(4096)
)


# The same words as ASCII bytes: a non-streaming answer is built as bytes (text_bytes).
_WORDS_B = tuple(w.encode() for w in _WORDS)


def token(cid: int, i: int) -> str:
    """Token ``i`` of the completion for ``cid``."""
    if i == 0:
        return f"[{cid:016x}]"
    return _WORDS[_mix((cid * 0x100000001B3 + i) & _MASK64) & 0xFFF]


def tokens(cid: int, n: int) -> list[str]:
    """The first ``n`` tokens for ``cid`` (same as ``token(cid, i)`` for each i).

    The stub derives these for every answer and the harness for every check.
    Short answers inline splitmix64 per token; from ``_LANES_FROM`` tokens on,
    :func:`_hash_lanes` hashes them all at once (2x faster at 16 tokens, 4.6x at 128).
    """
    if n <= 0:
        return []
    out = [f"[{cid:016x}]"]
    words = _WORDS
    if n >= _LANES_FROM:
        out += [words[i] for i in _hash_lanes(cid, n - 1)]
        return out
    mask = _MASK64
    base = cid * 0x100000001B3
    for i in range(1, n):
        x = (((base + i) & mask) + 0x9E3779B97F4A7C15) & mask
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
        out.append(words[(x ^ (x >> 31)) & 0xFFF])
    return out


# The lane trick reads 16-bit words of a little-endian byte image natively.
_LANES_FROM = 8 if sys.byteorder == "little" else 1 << 62


@functools.lru_cache(maxsize=32)
def _lane_constants(k: int) -> tuple[int, int, int, int]:
    """For ``k`` lanes of 128 bits: ones, 1..k, 64-bit lane masks, 12-bit lane masks."""
    idx = array.array("Q", bytes(16 * k))
    idx[::2] = array.array("Q", range(1, k + 1))
    return (
        int.from_bytes((b"\x01" + bytes(15)) * k, "little"),
        int.from_bytes(idx.tobytes(), sys.byteorder),
        int.from_bytes((b"\xff" * 8 + bytes(8)) * k, "little"),
        int.from_bytes((b"\xff\x0f" + bytes(14)) * k, "little"),
    )


def _hash_lanes(cid: int, k: int) -> memoryview:
    """Word indexes of tokens 1..k: splitmix64 on k 64-bit lanes of one Python int.

    Lane j (bits 128j..128j+63) holds the hash input of token j+1. A lane's
    product with a 64-bit constant fits its 128 bits, and every step masks the
    lanes back to 64 bits, so lanes never disturb each other; what a right shift
    carries into the lane below lands above its bit 63 and is masked off. One
    big-int operation per splitmix64 step then replaces k small ones.
    """
    rep, idx, lanes, low12 = _lane_constants(k)
    x = (((cid * 0x100000001B3 + 0x9E3779B97F4A7C15) & _MASK64) * rep + idx) & lanes
    x = (((x ^ (x >> 30)) & lanes) * 0xBF58476D1CE4E5B9) & lanes
    x = (((x ^ (x >> 27)) & lanes) * 0x94D049BB133111EB) & lanes
    x = (x ^ (x >> 31)) & low12
    return memoryview(x.to_bytes(16 * k, "little")).cast("H")[::8]


def text_bytes(cid: int, n: int) -> bytes:
    """``expected_text(cid, n).encode()``, built as bytes (a non-streaming answer's text).

    No per-token ``str``, no list: ``map`` over the lane hashes joins the words in C.
    """
    if n <= 0:
        return b""
    first = b"[%016x]" % cid
    if n >= _LANES_FROM:
        return first + b"".join(map(_WORDS_B.__getitem__, _hash_lanes(cid, n - 1)))
    return first + "".join(tokens(cid, n)[1:]).encode()


def expected_text(cid: int, n: int) -> str:
    """The whole completion text for ``cid`` with ``n`` tokens."""
    return "".join(tokens(cid, n))


def embedding(cid: int, dims: int) -> list[float]:
    """A deterministic embedding vector.

    Values are multiples of 1/1024 in [-1, 1): exact in float32, so the base64
    (little-endian float32) and JSON encodings both round-trip exactly.
    """
    out: list[float] = []
    for i in range(dims):
        h = _mix((cid ^ 0xE3B0C44298FC1C14) + i)
        out.append(((h & 2047) - 1024) / 1024.0)
    return out
