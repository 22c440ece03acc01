"""The repository root: which keys sign the manifest, and how many must.

This is TUF's root role, kept simple: one role, one key list, one threshold.
Root N+1 is accepted only when a threshold of root N's keys and a threshold
of its own keys (its own threshold) have signed it, so a stolen old key alone
cannot hand the repository to an attacker, and a typo in the new key list
cannot lock its owners out.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aoe_pack._crypto.asymmetric import load_public
from aoe_pack.errors import (
    KeyFileError,
    KeyTypeError,
    RepositoryFormatError,
    RootRotationError,
    UntrustedMetadataError,
    UsageError,
)
from aoe_pack.keys import KeyKind, PublicKey
from aoe_pack.repository import envelope
from aoe_pack.repository.model import FORMAT_VERSION, check_schema

ROOT_KIND = "aoe.repository.root"
_ALGORITHMS = {KeyKind.ED25519: "ed25519", KeyKind.P256: "p256"}


@dataclass(frozen=True)
class Root:
    """A parsed root: its version, trusted keys (by key id) and threshold."""

    version: int
    keys: Mapping[str, PublicKey]
    threshold: int
    repository_id: str | None = None
    """Names the repository whatever URL serves it; every root of a chain carries the
    same one (roots written before it existed have none, and the next one adds it)."""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "_type": ROOT_KIND,
            "formatVersion": FORMAT_VERSION,
            "version": self.version,
            "keys": {
                kid: {"algorithm": _ALGORITHMS[k.kind], "publicKey": k.pem.decode()}
                for kid, k in sorted(self.keys.items())
            },
            "threshold": self.threshold,
        }
        if self.repository_id is not None:
            d["repositoryId"] = self.repository_id
        return d

    @classmethod
    def from_dict(cls, d: Any) -> Root:
        check_schema(d, "root.schema.json", what="root")
        keys: dict[str, PublicKey] = {}
        for kid, entry in d["keys"].items():
            try:
                key = load_public(entry["publicKey"].encode(), origin=f"root key {kid[:16]}…")
            except KeyFileError as e:
                raise RepositoryFormatError(f"root: {e.message}") from e
            if key.key_id != kid or _ALGORITHMS.get(key.kind) != entry["algorithm"]:
                raise RepositoryFormatError(
                    f"root: key {kid[:16]}… does not match its id or algorithm"
                )
            keys[kid] = key
        if d["threshold"] > len(keys):
            raise RepositoryFormatError(
                f"root: threshold {d['threshold']} exceeds its {len(keys)} key(s)"
            )
        return cls(d["version"], keys, d["threshold"], d.get("repositoryId"))


def new_repository_id() -> str:
    """A fresh repository id: 128 random bits, hex."""
    return secrets.token_hex(16)


def new_root(
    version: int,
    keys: Sequence[PublicKey],
    threshold: int,
    repository_id: str | None = None,
) -> Root:
    """A root over ``keys``, checked for the mistakes that lock owners out."""
    by_id = {k.key_id: k for k in keys}
    for k in keys:
        if k.kind not in _ALGORITHMS:
            raise KeyTypeError(
                f"root key {k.key_id[:16]}… is a {k.algorithm} key; roots hold signing keys",
                hint="use an ed25519 or p256 .pub (aoe-pack keygen)",
            )
    if len(by_id) != len(keys):
        raise UsageError("the same root key was given twice")
    if not 1 <= threshold <= len(by_id):
        raise UsageError(f"--threshold must be between 1 and the {len(by_id)} root key(s)")
    return Root(version, by_id, threshold, repository_id)


def parse_root(data: bytes, *, what: str = "root") -> tuple[Root, envelope.Envelope]:
    """Parse a root envelope (signatures are checked by the callers that know whom to trust)."""
    env = envelope.parse(data, envelope.ROOT_TYPE, what=what)
    return Root.from_dict(env.document()), env


def verify_self_signed(data: bytes, *, what: str = "trusted root") -> Root:
    """A root a user hands us: it must carry a threshold of its own keys' signatures."""
    root, env = parse_root(data, what=what)
    good = env.valid_keyids(dict(root.keys))
    if len(good) < root.threshold:
        raise UntrustedMetadataError(
            f"{what} version {root.version} has {len(good)} of its own {root.threshold} "
            "required signature(s)"
        )
    return root


def verify_successor(trusted: Root, data: bytes) -> Root:
    """Accept root ``trusted.version + 1`` only if both key sets signed it."""
    new, env = parse_root(data, what=f"root version {trusted.version + 1}")
    if new.version != trusted.version + 1:
        raise RootRotationError(
            f"root chain broken: expected version {trusted.version + 1}, found {new.version}"
        )
    old_ok = env.valid_keyids(dict(trusted.keys))
    if len(old_ok) < trusted.threshold:
        raise RootRotationError(
            f"root version {new.version} is signed by {len(old_ok)} of the "
            f"{trusted.threshold} required key(s) of root version {trusted.version}",
            hint="a new root must be signed by a threshold of the old root's keys",
        )
    new_ok = env.valid_keyids(dict(new.keys))
    if len(new_ok) < new.threshold:
        raise RootRotationError(
            f"root version {new.version} is signed by {len(new_ok)} of its own "
            f"{new.threshold} required key(s)",
            hint="a new root must also be signed by a threshold of its own keys",
        )
    # Checked once both key sets vouch for it, so a forgery is named as such.
    if trusted.repository_id is not None and new.repository_id != trusted.repository_id:
        raise RootRotationError(
            f"root version {new.version} names repository {new.repository_id}, not "
            f"{trusted.repository_id} as root version {trusted.version} does",
            hint="a root chain belongs to one repository; its repositoryId never changes",
        )
    return new


def bundle_key(kid: str, pem: str) -> PublicKey:
    """One ``bundleKeys`` entry: a signing key whose id is ``kid``."""
    try:
        key = load_public(pem.encode(), origin=f"bundleKeys[{kid[:16]}…]")
    except KeyFileError as e:
        raise RepositoryFormatError(f"manifest: {e.message}") from e
    if key.key_id != kid or not key.kind.signs:
        raise RepositoryFormatError(f"manifest: bundleKeys[{kid[:16]}…] is not that signing key")
    return key
