"""What a publisher remembers of each repository: a floor against its storage rolled back.

A manifest's signatures say who wrote it, not that it is the newest: someone
with write access to the storage can put back an older manifest.json, validly
signed, from before a yank. Devices that saw the newer one refuse it (§15.6),
but a publisher that edited on top of it, or a ceremony whose proposal was
prepared from it, would sign the yank away again for every device. So, like
a device, a publisher keeps the newest root and manifest versions it has
written, or read for an edit (under a root its own keys signed: a chain
someone swapped in never sets it), one file per repository, by default
``$XDG_STATE_HOME/aoe-pack/publisher/<repositoryId>.json`` (``~/.local/state``
when the variable is unset), and :func:`check` refuses anything older, in
every edit, every proposal prepared and every one installed.

A publisher with no such file (a new machine) has no floor, exactly as a
device on its first update; its first edit sets one.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aoe_pack._io import FileTooLargeError, read_capped, write_atomic
from aoe_pack.errors import OutputError, RepositoryFormatError, RollbackError, StoreError
from aoe_pack.repository.root import Root
from aoe_pack.repository.trust import Floor

MAX_FLOOR_BYTES = 64 << 10
"""A floor holds two versions, a digest and a root's key ids: anything larger is not ours."""


def state_folder() -> Path:
    """Where publishers keep their floors."""
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "aoe-pack" / "publisher"


def floor_path(root: Root, url: str) -> Path:
    """The floor file of the repository ``root`` heads, served at ``url``.

    Named by the ``repositoryId``, the same for every URL that serves the
    repository; by the URL for a chain from before ids.
    """
    if root.repository_id is not None:
        return state_folder() / f"{root.repository_id}.json"
    return state_folder() / f"url-{hashlib.sha256(url.rstrip('/').encode()).hexdigest()[:32]}.json"


@dataclass(frozen=True)
class PublisherFloor:
    """The newest root version, and manifest (:class:`Floor`), a publisher read or wrote."""

    root_version: int
    manifest: Floor

    def to_bytes(self) -> bytes:
        doc = {
            "rootVersion": self.root_version,
            "manifestVersion": self.manifest.version,
            "manifestSha256": self.manifest.payload_sha256,
            "manifestRootKeys": sorted(self.manifest.root_keys),
        }
        return json.dumps(doc, indent=2).encode() + b"\n"

    @classmethod
    def from_bytes(cls, data: bytes) -> PublisherFloor:
        doc: Any = json.loads(data)
        root_version, version = doc["rootVersion"], doc["manifestVersion"]
        digest, keys = doc["manifestSha256"], doc["manifestRootKeys"]
        if not all(type(v) is int and v >= 1 for v in (root_version, version)):
            raise TypeError("rootVersion and manifestVersion must be positive integers")
        if not (isinstance(digest, str) and len(digest) == 64):
            raise TypeError("manifestSha256 must be 64 hex digits")
        if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
            raise TypeError("manifestRootKeys must be a list of key ids")
        return cls(root_version, Floor(version, digest, frozenset(keys)))


def load(path: Path) -> PublisherFloor | None:
    """The floor kept at ``path``; None if there is none yet."""
    try:
        return PublisherFloor.from_bytes(read_capped(path, MAX_FLOOR_BYTES))
    except FileNotFoundError:
        return None
    except FileTooLargeError:
        raise _unreadable(path, f"larger than {MAX_FLOOR_BYTES} bytes") from None
    except OSError as e:
        raise StoreError(f"cannot read the publisher state {path}: {e.strerror}") from e
    except (ValueError, KeyError, TypeError, RecursionError) as e:
        raise _unreadable(path, f"{type(e).__name__}: {str(e)[:200]}") from None


def _unreadable(path: Path, why: str) -> RepositoryFormatError:
    return RepositoryFormatError(
        f"publisher state {path} is unreadable: {why}",
        hint="delete it; this publisher's next edit sets the floor again",
    )


def check(
    path: Path,
    floor: PublisherFloor | None,
    *,
    url: str,
    root: Root,
    version: int,
    sha256: str,
    same_version_is_one: bool,
) -> None:
    """Refuse a root or manifest older than the floor: storage rolled back.

    ``same_version_is_one``: the store writes by atomic compare-and-swap, so
    two manifests at one version cannot both have been written there (on OCI
    registries without conditional writes they can, §15.8.4).
    """
    if floor is None:
        return
    hint = (
        "someone with write access to the storage put back an older copy, undoing the "
        "edits since (a yank, say); restore the newest manifest.json and roots/ from a "
        "backup or another publisher before editing. Delete "
        f"{path} only if the repository was re-created on purpose"
    )
    if root.version < floor.root_version:
        raise RollbackError(
            f"{url} is at root version {root.version}, older than version "
            f"{floor.root_version}, which this publisher already saw",
            hint=hint,
        )
    held = floor.manifest
    if not held.holds_under(root):  # a rotation revoked the keys that signed it
        return
    if version < held.version:
        raise RollbackError(
            f"{url}/manifest.json is version {version}, older than version {held.version}, "
            "which this publisher already saw or wrote",
            hint=hint,
        )
    if same_version_is_one and version == held.version and sha256 != held.payload_sha256:
        raise RollbackError(
            f"{url}/manifest.json is not the version {version} this publisher already saw or "
            "wrote: same version, different content",
            hint=hint,
        )


def record(
    path: Path, floor: PublisherFloor | None, *, root: Root, version: int, sha256: str
) -> None:
    """Set the floor at ``path`` to this root and manifest, read (once :func:`check`
    passed) or written: never older than ``floor``, or one a rotation made moot."""
    new = PublisherFloor(root.version, Floor(version, sha256, frozenset(root.keys)))
    if new == floor:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, new.to_bytes(), mode=0o600)
    except OSError as e:
        raise StoreError(f"cannot save the publisher state {path}: {e.strerror}") from e
    except OutputError as e:
        raise StoreError(f"cannot save the publisher state: {e.message}") from e
