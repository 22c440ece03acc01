"""Release records that repair lost updates on stores without compare-and-swap.

An OCI registry (distribution 2.8) cannot make a manifest PUT conditional, so
two publishers can both write manifest version N and the later one drops the
other's release. Before its first manifest write, a publisher on such a store
leaves a signed record of each release as ``pending/<sha256>.json``. Every
publisher merges the records the manifest lacks into its edit, and only stops
after reading back a manifest that holds every record. Whoever writes last has
then seen every record written before its final check, so no release is lost.

Records are signed like the manifest (by a threshold of the root's keys) and
the bundle they name must be uploaded with the recorded size; a record that
fails either check is ignored, so push access to the registry alone cannot
add a release.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

from aoe_pack.errors import RepositoryError, StoreConflictError, StoreError
from aoe_pack.keys import SigningKey
from aoe_pack.repository import envelope
from aoe_pack.repository.model import Manifest, Release, check_schema
from aoe_pack.repository.root import Root, bundle_key
from aoe_pack.storage.store import Store

PENDING_TYPE = "application/vnd.aoe.repository.pending.v1+json"
MAX_RECORD_BYTES = 64 << 10


def record_name(sha256: str) -> str:
    return f"pending/{sha256}.json"


def write_records(
    store: Store,
    new: Sequence[tuple[str, Release]],
    signers: Sequence[SigningKey],
    bundle_keys: Mapping[str, str],
) -> None:
    """Leave a signed record of each release about to be published."""
    for tag, rel in new:
        keys = {k: bundle_keys[k] for k in rel.signers if k in bundle_keys}
        doc = {"tag": tag, "release": rel.to_dict(), "bundleKeys": keys}
        data = envelope.sign(PENDING_TYPE, doc, list(signers)).to_bytes()
        # A conflict: the same bundle is already recorded (by us, or another run).
        with contextlib.suppress(StoreConflictError):
            store.replace(record_name(rel.sha256), data, expected=None)


def missing_records(
    store: Store, manifest: Manifest, root: Root
) -> list[tuple[str, Release, dict[str, str]]]:
    """Valid records of releases that ``manifest`` does not hold, with their bundle keys."""
    list_pending = getattr(store, "list_pending", None)
    if list_pending is None:
        return []
    have = manifest.models.sha256s()
    folded = {t.casefold() for t in manifest.models}
    found: list[tuple[str, Release, dict[str, str]]] = []
    for name in list_pending():
        sha = name.removeprefix("pending/").removesuffix(".json")
        if sha in have:
            continue
        try:
            doc = store.read(name, max_bytes=MAX_RECORD_BYTES)
        except StoreError:
            continue  # junk under a record's name (push access alone) blocks nothing
        if doc is None:
            continue
        try:
            env = envelope.parse(doc.data, PENDING_TYPE, what=name)
            if len(env.valid_keyids(dict(root.keys))) < root.threshold:
                continue
            body = env.document()
            check_schema(body.get("release"), "manifest.schema.json", what=name, part="release")
            tag, rel = body["tag"], Release.from_dict(body["release"])
            keys = {str(k): str(v) for k, v in body.get("bundleKeys", {}).items()}
            for kid, pem in keys.items():
                bundle_key(kid, pem)  # a malformed key would be signed into the manifest
        except (RepositoryError, AttributeError, KeyError, TypeError):
            continue
        if not isinstance(tag, str):
            continue
        entry = manifest.models.get(tag)
        if entry is not None and entry.find(rel.version) is not None:
            continue  # that version is taken (by this bundle or, refused, another one)
        if entry is None and tag.casefold() in folded:
            continue  # a tag that differs only in case from one the manifest has: refused
        if rel.sha256 == sha and store.has_blob(rel.url) == rel.size:
            found.append((tag, rel, keys))
    return found
