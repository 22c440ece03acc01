"""Segmented AES-256-GCM (docs/format.md, "Payload encryption").

A payload of ``n`` plaintext bytes is cut into segments of
``segment_size - 16`` bytes (the last may be shorter; an empty payload is one
empty segment). Segment ``i`` is sealed with the bundle's data key under

    nonce = prefix (7 random bytes, per file) || uint32_be(i) || last (0x00/0x01)

and the associated data is the payload's ZIP entry name in UTF-8. So each
ciphertext segment is exactly ``segment_size`` bytes except the last, and:
dropping the tail fails (no segment carries ``last=1``), reordering fails
(counter in the nonce), moving segments between files fails (prefix and
entry name differ), renaming fails (entry name is authenticated).
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from aoe_pack.errors import DecryptionError

TAG_SIZE = 16
PREFIX_SIZE = 7
KEY_SIZE = 32
MAX_SEGMENTS = 1 << 32


def new_data_key() -> bytes:
    """A fresh random 256-bit data key."""
    return os.urandom(KEY_SIZE)


def new_prefix() -> bytes:
    """A fresh random per-file nonce prefix."""
    return os.urandom(PREFIX_SIZE)


def segment_count(plain_size: int, segment_size: int) -> int:
    """How many segments a payload of ``plain_size`` bytes has (at least one)."""
    p = segment_size - TAG_SIZE
    return max(1, -(-plain_size // p))


def stored_size(plain_size: int, segment_size: int) -> int:
    """Ciphertext size of a payload of ``plain_size`` bytes."""
    return plain_size + TAG_SIZE * segment_count(plain_size, segment_size)


def plain_size_of(stored: int, segment_size: int) -> int | None:
    """Inverse of :func:`stored_size`; None when no plaintext size maps to ``stored``."""
    n = max(1, -(-stored // segment_size))
    plain = stored - TAG_SIZE * n
    if plain < 0 or stored_size(plain, segment_size) != stored:
        return None
    return plain


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return prefix + index.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


class SegmentCipher:
    """Seals and opens the segments of one payload."""

    def __init__(self, data_key: bytes, prefix: bytes, aad: bytes) -> None:
        if len(data_key) != KEY_SIZE or len(prefix) != PREFIX_SIZE:
            raise ValueError("bad data key or nonce prefix length")
        self._aead = AESGCM(data_key)
        self._prefix = prefix
        self._aad = aad

    def seal(self, index: int, last: bool, plaintext: bytes | memoryview) -> bytes:
        """Encrypt segment ``index``."""
        return self._aead.encrypt(_nonce(self._prefix, index, last), plaintext, self._aad)

    def open(self, index: int, last: bool, ciphertext: bytes | memoryview) -> bytes:
        """Decrypt and authenticate segment ``index``; DecryptionError if it fails."""
        try:
            return self._aead.decrypt(_nonce(self._prefix, index, last), ciphertext, self._aad)
        except InvalidTag as e:
            raise DecryptionError(
                f"segment {index} of {self._aad.decode('utf-8', 'replace')} failed authentication"
            ) from e
