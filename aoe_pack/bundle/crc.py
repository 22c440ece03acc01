"""CRC-32 of a concatenation from the CRCs of its pieces.

Python's :mod:`zlib` has ``crc32`` but not zlib's ``crc32_combine``, which the
bundle writer needs: worker threads checksum 1 MiB pieces in parallel and the
writer joins their CRCs into the entry's CRC without touching the data again.

This is a port of zlib's GF(2) matrix algorithm. Appending ``n`` zero bytes to a
message is a linear map on the 32-bit CRC register, so

    crc32(a + b) == zeros(len(b)) @ crc32(a) ^ crc32(b)

where ``zeros(n)`` is a 32x32 bit matrix. Building ``zeros(n)`` costs about
``log2(n)`` matrix squarings; applying it is one matrix-vector product (at most
32 XORs). Writers feed pieces of one fixed size, so the operator is cached per
length and the steady-state cost of a call is just that product.
"""

from __future__ import annotations

from functools import lru_cache

_CRC32_POLY = 0xEDB88320  # reflected CRC-32 polynomial, as zlib uses it
_MASK32 = 0xFFFFFFFF

# A matrix is 32 columns; column i is the image of the register bit 1 << i.
_Matrix = tuple[int, ...]

# The operator for one zero *bit*: shift right, folding the polynomial in when
# the bit shifted out was set (column 0 maps to the polynomial).
_ONE_ZERO_BIT: _Matrix = (_CRC32_POLY, *(1 << n for n in range(31)))


def _times(matrix: _Matrix, vector: int) -> int:
    """The matrix-vector product over GF(2)."""
    result = 0
    column = 0
    while vector:
        if vector & 1:
            result ^= matrix[column]
        vector >>= 1
        column += 1
    return result


def _compose(outer: _Matrix, inner: _Matrix) -> _Matrix:
    """The matrix of ``outer(inner(x))``."""
    return tuple(_times(outer, column) for column in inner)


@lru_cache(maxsize=128)
def _zero_bytes_pow2(k: int) -> _Matrix:
    """The operator that appends ``2**k`` zero bytes."""
    if k == 0:
        op = _ONE_ZERO_BIT
        for _ in range(3):  # one bit -> two -> four -> eight bits
            op = _compose(op, op)
        return op
    half = _zero_bytes_pow2(k - 1)
    return _compose(half, half)


@lru_cache(maxsize=256)
def _zero_bytes(length: int) -> _Matrix | None:
    """The operator that appends ``length`` zero bytes (None for the identity)."""
    op: _Matrix | None = None
    k = 0
    while length:
        if length & 1:
            power = _zero_bytes_pow2(k)
            # Powers of one matrix commute, so the order of composition is free.
            op = power if op is None else _compose(power, op)
        length >>= 1
        k += 1
    return op


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """Return ``zlib.crc32(a + b)`` from ``crc32(a)``, ``crc32(b)`` and ``len(b)``.

    Matches zlib >= 1.2.12 exactly, including ``len2 == 0`` (``crc1 ^ crc2``,
    which is ``crc1`` for the CRC of an empty piece, 0). Raises ``ValueError``
    for a negative length, which is always a caller bug.
    """
    if len2 < 0:
        raise ValueError(f"crc32_combine: len2 must be >= 0, got {len2}")
    crc1 &= _MASK32
    crc2 &= _MASK32
    op = _zero_bytes(len2)
    if op is None:
        return crc1 ^ crc2
    return _times(op, crc1) ^ crc2
