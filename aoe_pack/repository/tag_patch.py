"""Tag document patches: ``tags/<tag>/<N>.from-<M>.zst`` (docs/format.md §15.12).

A tag document changes by a release or two, yet a device whose tag changed
downloads all of it again: 100 releases are 11 KB of gzip, since each
carries about 48 bytes no compressor removes (a SHA-256, a rollout salt).
The device already holds, verified, the document it accepted last. A patch
is one zstd frame compressed with that old document's **payload** (the
canonical JSON, not the envelope) as a raw prefix, whose content is the new
envelope's ``signatures`` array in canonical JSON, one ``\\n`` byte, then the
new payload: what the new document says beyond the old one, a few hundred
bytes.

The prefix is the payload, not the envelope, because the envelope holds the
payload in base64: a release inserted anywhere shifts every later base64
group by a byte or two, and the shifted text no longer matches the old one.
The decoded payloads share their unchanged releases byte for byte.

A patch carries no trust of its own: the envelope it rebuilds (with the
envelope writer, so the bytes are those the publisher wrote) goes through
exactly the checks of a downloaded tag document; a patch that fails anything
is dropped and the full document fetched (:mod:`aoe_pack.client.indexed`).
No I/O here.
"""

from __future__ import annotations

import json

from aoe_pack import dsse
from aoe_pack._jcs import canonical_json_integral as canonical_json
from aoe_pack.errors import SignatureError, TagPatchError
from aoe_pack.repository import envelope
from aoe_pack.repository._zstd import compress_from, decompress_from
from aoe_pack.repository.limits import DEFAULT_LIMITS

LEVEL = 19
"""zstd's level for patches: benchmarks/bench_wire.py measured the levels (docs §15.12)."""
SEPARATOR = b"\n"


def patch_name(tag: str, version: int, base: int) -> str:
    """The patch that turns ``tag``'s document ``base`` into its document ``version``."""
    return f"tags/{tag}/{version}.from-{base}.zst"


def make_patch(base_payload: bytes, new: envelope.Envelope, *, level: int = LEVEL) -> bytes:
    """The patch from the document whose payload is ``base_payload`` to the envelope ``new``."""
    sigs = canonical_json(dsse.encode_signatures(new.signatures))
    return compress_from(base_payload, sigs + SEPARATOR + new.payload, level=level)


def apply_patch(
    base_payload: bytes,
    patch: bytes,
    *,
    what: str,
    max_bytes: int = DEFAULT_LIMITS.max_manifest_bytes,
) -> bytes:
    """The tag document envelope ``patch`` rebuilds on ``base_payload``: unverified bytes.

    :class:`~aoe_pack.errors.TagPatchError` when the frame does not decode from
    that base within ``max_bytes`` (the tag document cap, for the content and
    the rebuilt envelope alike), holds no ``\\n``, or its signatures are not a
    well-formed ``signatures`` array. Nothing else is checked: the caller
    verifies the result as a downloaded tag document.
    """
    content = decompress_from(base_payload, patch, max_bytes=max_bytes, what=what)
    sigs_text, newline, payload = content.partition(SEPARATOR)
    if not newline:
        raise TagPatchError(f"{what} holds no newline between signatures and payload")
    try:
        raw = json.loads(sigs_text)
        sigs = dsse.parse_signatures(raw, max_signatures=DEFAULT_LIMITS.max_signatures)
    except (ValueError, RecursionError, SignatureError) as e:
        raise TagPatchError(f"{what}: its signatures are not a DSSE signatures array: {e}") from e
    data = envelope.Envelope(envelope.TAG_TYPE, payload, tuple(sigs)).to_bytes()
    if len(data) > max_bytes:
        raise TagPatchError(f"{what} rebuilds a document of more than {max_bytes} bytes")
    return data
