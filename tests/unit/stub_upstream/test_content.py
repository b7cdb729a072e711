"""The shared content module: stable, attributable, exact in float32."""

import struct

from stub_upstream import content


def test_token_zero_names_the_request() -> None:
    assert content.token(0xABC, 0) == "[0000000000000abc]"
    assert content.expected_text(0xABC, 1) == "[0000000000000abc]"


def test_tokens_are_stable_words_with_a_leading_space() -> None:
    # Pinned: a change here silently breaks integrity checks across versions.
    assert content.tokens(1, 4) == ["[0000000000000001]", " gogope", " pebaja", " jarune"]
    for i in range(1, 50):
        t = content.token(12345, i)
        assert t.startswith(" ") and t[1:].isalpha() and t.isascii()


def test_tokens_fast_path_equals_token_by_token() -> None:
    # tokens() inlines the hash for speed; token() is the definition. Ids at the
    # 64-bit edges exercise the masking.
    ids = [0, 1, 2**63, 2**64 - 1, 0x0123456789ABCDEF, *range(3, 3000, 7)]
    for cid in ids:
        assert content.tokens(cid, 40) == [content.token(cid, i) for i in range(40)]
    assert content.tokens(5, 0) == []
    assert content.tokens(2**64 - 1, 3) == ["[ffffffffffffffff]", " pevope", " netivo"]


def test_expected_text_is_a_prefix_family() -> None:
    assert content.expected_text(7, 16).startswith(content.expected_text(7, 5))
    assert content.expected_text(7, 16) != content.expected_text(8, 16)


def test_marker_round_trip() -> None:
    cid = 0x0123456789ABCDEF
    body = f'{{"messages":[{{"role":"user","content":"hi {content.marker(cid)}"}}]}}'.encode()
    assert content.find_corr_id(body) == cid
    assert content.find_corr_id(b"no marker") is None
    assert content.parse_corr_id(content.format_corr_id(cid)) == cid
    assert content.parse_corr_id("xyz") is None
    assert content.parse_corr_id("zzzzzzzzzzzzzzzz") is None


def test_embedding_is_exact_in_float32() -> None:
    v = content.embedding(99, 16)
    assert len(v) == 16
    packed = struct.pack("<16f", *v)
    assert list(struct.unpack("<16f", packed)) == v
    assert all(-1.0 <= x < 1.0 for x in v)
    assert content.embedding(99, 16) == v != content.embedding(100, 16)
