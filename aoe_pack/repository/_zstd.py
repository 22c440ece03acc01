"""zstd with a raw prefix (``--patch-from``), bounded: the only module that imports zstd.

Python 3.14's ``compression.zstd``, and ``backports.zstd`` (the same API)
before it. A frame is compressed with the old bytes as a raw-content prefix,
so the new bytes refer back to every string they share with the old ones;
decompressing needs the same prefix and is held to a cap on the output and
on the window, so a hostile frame can make a reader hold neither more than
the cap nor a window larger than a document can need.
"""

from __future__ import annotations

import sys

from aoe_pack.errors import TagPatchError

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

MAX_WINDOW_LOG = 27
"""128 MiB: a prefix and an output of at most 32 MiB each need no more (zstd's own
default limit too)."""


def _prefix(base: bytes) -> zstd.ZstdDict | None:
    return zstd.ZstdDict(base, is_raw=True) if base else None


def compress_from(base: bytes, data: bytes, *, level: int) -> bytes:
    """One frame of ``data``, with ``base`` as its raw prefix; records the content size."""
    p = zstd.CompressionParameter
    options: dict[int, int] = {
        p.compression_level: level,
        p.window_log: max(10, min(MAX_WINDOW_LOG, (len(base) + len(data)).bit_length())),
        p.content_size_flag: 1,
        p.checksum_flag: 0,  # the result is signed: a checksum would add 4 bytes and nothing
    }
    prefix = _prefix(base)
    cctx = zstd.ZstdCompressor(options=options, zstd_dict=prefix.as_prefix if prefix else None)
    return cctx.compress(data, mode=zstd.ZstdCompressor.FLUSH_FRAME)


def decompress_from(base: bytes, frame: bytes, *, max_bytes: int, what: str) -> bytes:
    """The content of one frame made by :func:`compress_from` with ``base``.

    :class:`~aoe_pack.errors.TagPatchError` when it is not exactly one
    complete frame, needs a larger window, or holds more than ``max_bytes``
    (zstd stops one byte past the cap: a bomb costs no more than that).
    """
    prefix = _prefix(base)
    dctx = zstd.ZstdDecompressor(
        zstd_dict=prefix.as_prefix if prefix else None,
        options={zstd.DecompressionParameter.window_log_max: MAX_WINDOW_LOG},
    )
    try:
        out = dctx.decompress(frame, max_length=max_bytes + 1)
    except zstd.ZstdError as e:
        raise TagPatchError(f"{what} is not a zstd frame made from its base: {e}") from e
    if len(out) > max_bytes:
        raise TagPatchError(f"{what} inflates to more than {max_bytes} bytes (the cap); stopped")
    if not dctx.eof:
        raise TagPatchError(f"{what} ends before its frame does (truncated)")
    if dctx.unused_data:
        raise TagPatchError(f"{what}: {len(dctx.unused_data)} bytes follow its frame")
    return out
