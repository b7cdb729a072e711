"""vectors.encode gives content.embedding's numbers, byte for byte, in both encodings."""

from __future__ import annotations

import base64
import json
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from stub_upstream import content, vectors

cids = st.integers(0, 2**64 - 1)


@settings(derandomize=True, database=None, max_examples=200)
@given(ids=st.lists(cids, min_size=1, max_size=4), dims=st.integers(1, 300))
def test_same_numbers_as_content_embedding(ids: list[int], dims: int) -> None:
    floats = vectors.encode(ids, dims, as_base64=False)
    packed = vectors.encode(ids, dims, as_base64=True)
    for cid, text, b64 in zip(ids, floats, packed, strict=True):
        want = content.embedding(cid, dims)
        assert text == json.dumps(want)  # the exact bytes the stub used to write
        raw = base64.b64decode(json.loads(b64))
        assert list(struct.unpack(f"<{dims}f", raw)) == want


def test_edges() -> None:
    assert vectors.encode([], 8, as_base64=False) == []
    top = 2**64 - 1  # the hash input wraps past 2**64, as content's masking does
    assert json.loads(vectors.encode([top], 5, as_base64=False)[0]) == content.embedding(top, 5)
