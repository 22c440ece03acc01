"""Caps that keep a hostile repository from exhausting a device or a publisher.

The repository's counterpart of the bundle's :class:`aoe_pack.bundle.format.Limits`:
every size and count a reader enforces on documents it does not trust yet, in
one frozen value (docs/format.md, §15).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Caps on the repository's documents, enforced before they are trusted."""

    max_root_bytes: int = 1 << 20
    """A root document (and a ``--trusted-root`` file)."""
    max_manifest_bytes: int = 32 << 20
    """manifest.json for devices and publishers alike (10,000 releases: ~6.4 MB)."""
    max_index_bytes: int = 4 << 20
    """index.json (a few bytes per tag: 4 MiB holds ~150 000 tags)."""
    max_signatures: int = 32
    """Signatures in one envelope."""
    max_envelope_values: int = 1_000
    """JSON values an envelope may hold: 7, and 5 per signature (167 at most); the rest is slack.

    Counted before parsing, as every document comes from a repository not yet trusted.
    """
    max_document_values: int = 2_000_000
    """JSON values a signed root or manifest may hold, counted before parsing.

    A release is ~35 values in ~450 bytes, so 2 million is what the 32 MiB
    envelope cap holds of honest releases (~55 000); it keeps a payload of ``{}``
    (3 bytes of JSON, 64 of dict) from becoming gigabytes of objects.
    """
    max_proposal_bytes: int = 2 * (1 << 20) + 2 * (32 << 20) + (64 << 10)
    """A ceremony's proposal file: two roots and two manifests at their caps, and its frame."""
    max_proposal_values: int = 4_000
    """JSON values of a proposal file: four envelopes (each within ``max_envelope_values``)."""
    max_root_steps: int = 64
    """New roots a device accepts in one update: no endless root chain."""
    max_chain_length: int = 1024
    """Publishers walk the whole chain from roots/1; a repository rotates at most this often."""


DEFAULT_LIMITS = Limits()
