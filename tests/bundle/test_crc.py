"""crc32_combine must agree with zlib.crc32 over the concatenation."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aoe_pack.bundle.crc import crc32_combine


@given(a=st.binary(max_size=2048), b=st.binary(max_size=2048))
def test_combine_matches_crc_of_concatenation(a: bytes, b: bytes) -> None:
    assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


@given(pieces=st.lists(st.binary(max_size=300), max_size=8))
def test_chained_combine_matches_whole(pieces: list[bytes]) -> None:
    crc = 0
    for piece in pieces:
        crc = crc32_combine(crc, zlib.crc32(piece), len(piece))
    assert crc == zlib.crc32(b"".join(pieces))


@pytest.mark.parametrize("length", [1, 7, 64, 1000, (1 << 20) - 1, 1 << 20, (1 << 20) + 3])
def test_combine_at_piece_sizes(length: int) -> None:
    a = bytes(range(256)) * 3
    b = (b"aoe-pack" * (length // 8 + 1))[:length]
    assert crc32_combine(zlib.crc32(a), zlib.crc32(b), length) == zlib.crc32(a + b)


def test_empty_pieces_are_neutral() -> None:
    crc = zlib.crc32(b"model weights")
    assert crc32_combine(crc, 0, 0) == crc
    assert crc32_combine(0, crc, len(b"model weights")) == crc


def test_crc_values_are_reduced_to_32_bits() -> None:
    a, b = b"left", b"right"
    combined = crc32_combine(zlib.crc32(a) | (1 << 40), zlib.crc32(b), len(b))
    assert combined == zlib.crc32(a + b)


def test_negative_length_is_refused() -> None:
    with pytest.raises(ValueError, match="len2 must be >= 0"):
        crc32_combine(0, 0, -1)
