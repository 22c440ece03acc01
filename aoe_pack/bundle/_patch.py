"""Binary patches between two versions of one file: zstd's ``--patch-from``.

The old file is loaded as a zstd *prefix* (a raw dictionary that the
long-distance matcher also searches), the window covers both files, and
long-distance matching finds every unchanged tensor however far it moved.
The zstd is Python 3.14's ``compression.zstd`` (``backports.zstd`` before
3.14). benchmarks/bench_delta.py chose it over bsdiff4, detools and a plain
zstd dictionary on size, time and memory (docs/format.md §16.1).

A patch is one zstd frame that records its content size and a checksum.
Applying one is bounded before any byte is produced: the frame must declare
exactly the expected output size, the decoder refuses a window beyond what
the two files need, and the output is taken in pieces and cut off at that
size, so a hostile patch can neither allocate nor write more than the signed
target size (a decompression bomb stops at the first byte too many).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

from aoe_pack.errors import PatchError

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

METHOD = "zstd-patch-from"
"""The only patch method of delta format v1."""
LEVEL = 9
"""Compression level: docs/format.md §16.1 has the measured trade-off."""
MAX_WINDOW_LOG = 31
"""zstd's largest window (2 GiB): files larger than 1 GiB are not patched (format §16.1)."""
_PIECE = 1 << 20


def window_log(base_size: int, target_size: int) -> int:
    """The window that lets every byte of the target reach back over the whole base."""
    return max(10, (max(base_size, target_size, 1) * 2 - 1).bit_length())


def fits(base_size: int, target_size: int) -> bool:
    """Whether zstd can patch between files of these sizes."""
    return window_log(base_size, target_size) <= MAX_WINDOW_LOG


def _prefix(base: bytes) -> zstd.ZstdDict | None:
    if not base:  # nothing to refer to: a new file compresses alone
        return None
    return zstd.ZstdDict(base, is_raw=True)


def make_patch(base: bytes, target: bytes, *, level: int = LEVEL) -> bytes:
    """A patch that turns ``base`` into ``target``."""
    p = zstd.CompressionParameter
    options: dict[int, int] = {
        p.compression_level: level,
        p.window_log: window_log(len(base), len(target)),
        p.enable_long_distance_matching: 1,
        p.content_size_flag: 1,
        p.checksum_flag: 1,
    }
    prefix = _prefix(base)
    cctx = zstd.ZstdCompressor(options=options, zstd_dict=prefix.as_prefix if prefix else None)
    return cctx.compress(target, mode=zstd.ZstdCompressor.FLUSH_FRAME)


def apply_patch(base: bytes, patch: bytes, *, target_size: int, name: str) -> Iterator[bytes]:
    """The target's bytes, in pieces; PatchError if the patch is not one for this size.

    Never yields more than ``target_size`` bytes in total, and never lets zstd
    use a window beyond what files of these sizes need.
    """
    try:
        frame = zstd.get_frame_info(patch)
    except zstd.ZstdError as e:
        raise PatchError(f"{name}: the patch is not a zstd frame: {e}") from e
    if frame.decompressed_size is None:
        raise PatchError(f"{name}: the patch does not declare its output size")
    if frame.decompressed_size != target_size:
        raise PatchError(
            f"{name}: the patch declares {frame.decompressed_size} bytes of output, "
            f"the target is {target_size}"
        )
    yield from _bounded(base, patch, target_size=target_size, name=name)


def _bounded(base: bytes, patch: bytes, *, target_size: int, name: str) -> Iterator[bytes]:
    """Decode ``patch`` in pieces, refusing a byte beyond ``target_size``."""
    prefix = _prefix(base)
    dctx = zstd.ZstdDecompressor(
        zstd_dict=prefix.as_prefix if prefix else None,
        options={zstd.DecompressionParameter.window_log_max: window_log(len(base), target_size)},
    )
    produced = 0
    data = patch
    try:
        while not dctx.eof:
            piece = dctx.decompress(data, max_length=_PIECE)
            data = b""
            if not piece and dctx.needs_input:
                raise PatchError(f"{name}: the patch is truncated")
            produced += len(piece)
            if produced > target_size:
                raise PatchError(f"{name}: the patch produces more than {target_size} bytes")
            yield piece
    except zstd.ZstdError as e:
        raise PatchError(f"{name}: the patch is corrupt: {e}") from e
    if dctx.unused_data:
        raise PatchError(f"{name}: {len(dctx.unused_data)} bytes follow the patch's frame")
    if produced != target_size:
        raise PatchError(f"{name}: the patch produced {produced} bytes, expected {target_size}")
