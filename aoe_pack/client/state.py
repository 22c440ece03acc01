"""What a device remembers of a repository between checks (docs/format.md §15.6).

The state is one JSON file per repository, shared by every check of it: every
tag, every URL, and checks that run at the same time (an app checking two
tags at once, a scheduled check meeting one the user started). A check reads
the state, spends seconds on the network, then writes what it accepted; two
that interleave would let the later write lower the floor the other saved.
So a check holds ``<state>.lock`` from the read to the write (:func:`held`),
and the write never lowers what the file holds (:meth:`ClientState.save`)
even for a writer that does not lock.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aoe_pack._io import FileTooLargeError, lock_within, read_capped, write_atomic
from aoe_pack._io.facilities import base_flags, flag
from aoe_pack.errors import (
    OutputError,
    RepositoryFormatError,
    StateLockedError,
    StoreError,
    UntrustedMetadataError,
)
from aoe_pack.repository.limits import DEFAULT_LIMITS
from aoe_pack.repository.root import Root, verify_self_signed
from aoe_pack.repository.trust import Floor

MAX_STATE_BYTES = 4 * DEFAULT_LIMITS.max_root_bytes
"""A state holds one root (base64) and a few fields: anything larger is not ours."""

STATE_LOCK_WAIT = 60.0
"""Seconds a check waits for another check of the same repository to finish with the state.

A check holds it across a few document downloads, each bounded in time: a
wait this long fails only beside a check stuck on a slow network."""


_NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP)
"""What ``flock`` says on a file system that has no locks."""


def lock_path(path: Path) -> Path:
    """The lock file of the state file ``path``: ``<state>.lock``, never removed."""
    return path.with_name(path.name + ".lock")


@contextlib.contextmanager
def held(path: Path, *, wait: float = STATE_LOCK_WAIT) -> Iterator[None]:
    """Hold the state ``path`` exclusively, waiting at most ``wait`` seconds for it.

    The lock is on ``<state>.lock`` (:func:`lock_path`), not on the state,
    which each save replaces with a new file. ``flock`` on POSIX and
    ``msvcrt.locking`` on Windows belong to the open file: a second open, in
    this process too, waits, and the lock goes when its holder ends, killed
    or not, so a lock file left behind holds nothing. The file stays: removing
    it would let two checks lock two different files of that name. On a file
    system without locks (some network ones) the check goes on unlocked: the
    save still never lowers the floor (:meth:`ClientState.save`).
    """
    lock = lock_path(path)
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | flag("O_NOFOLLOW") | base_flags(), 0o600)
    except OSError as e:
        raise StoreError(f"cannot lock the client state {path}: {e.strerror}") from e
    try:
        try:
            got = lock_within(fd, wait)
        except OSError as e:
            if e.errno not in _NO_LOCKS:
                raise StoreError(f"cannot lock the client state {path}: {e.strerror}") from e
            got = True
        if not got:
            raise StateLockedError(
                f"another check holds the client state {path}: its lock {lock.name} was "
                f"still held after {wait:g} s",
                hint="run one check of a repository at a time, or again once the other ends "
                "(its lock goes with it, even if it is killed)",
            )
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _version_floor(value: Any) -> int | None:
    if value is not None and (type(value) is not int or value < 1):
        raise TypeError("manifestVersion must be a positive integer or null")
    return value


def _digest(value: Any, what: str = "manifestSha256") -> str | None:
    if value is not None and not (
        isinstance(value, str) and len(value) == 64 and set(value) <= set("0123456789abcdef")
    ):
        raise TypeError(f"{what} must be 64 lowercase hex digits or null")
    return value


def _key_ids(value: Any) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
        raise TypeError("manifestRootKeys must be a list of key ids or null")
    return frozenset(value)


@dataclass(frozen=True)
class ClientState:
    """What the device remembers between checks (§15.6): its trusted root and floor."""

    root: bytes
    manifest_version: int | None
    manifest_sha256: str | None = None
    manifest_root_keys: frozenset[str] = frozenset()
    """Key ids of the root the last manifest was accepted under."""
    index_sha256: str | None = None
    """Payload digest of the index accepted at ``manifest_version``, if one was: the
    version floor is shared by both documents, each kind keeps its own digest."""

    @property
    def floor(self) -> Floor | None:
        if self.manifest_version is None:
            return None
        return Floor(
            self.manifest_version, self.manifest_sha256, self.manifest_root_keys, self.index_sha256
        )

    @classmethod
    def load(cls, path: Path, shipped_root: bytes) -> ClientState:
        """The state to start a check from: the file's, or the shipped root with no floor.

        An app update may ship a newer root than the one remembered: it replaces
        it, and the floor stays.
        """
        remembered = cls._read(path)
        if remembered is None:
            return cls(shipped_root, None)
        state, root = remembered
        shipped = verify_self_signed(shipped_root, what="--trusted-root")
        if shipped.version > root.version:
            return replace(state, root=shipped_root)
        if shipped.version == root.version and shipped_root != state.root:
            raise UntrustedMetadataError(
                f"--trusted-root differs from the root version {shipped.version} that "
                f"{path} remembers for this repository",
                hint=f"the repository was re-created or --trusted-root is wrong; if it was "
                f"re-created, delete {path} to trust the new one",
            )
        return state

    @classmethod
    def _read(cls, path: Path) -> tuple[ClientState, Root] | None:
        """The state the file holds and its root, verified as self-signed; None if no file."""
        try:
            doc: Any = json.loads(read_capped(path, MAX_STATE_BYTES))
            root_bytes = base64.b64decode(doc["root"], validate=True)
            version = _version_floor(doc["manifestVersion"])
            # Absent in states written before they were kept: unknown, not empty.
            digest = _digest(doc.get("manifestSha256"))
            index_digest = _digest(doc.get("indexSha256"), "indexSha256")
            root_keys = _key_ids(doc.get("manifestRootKeys"))
        except FileNotFoundError:
            return None
        except FileTooLargeError as e:
            raise RepositoryFormatError(
                f"client state {path} is unreadable: larger than {e.cap} bytes",
                hint="delete it to start again from the trusted root",
            ) from None
        except OSError as e:
            raise StoreError(f"cannot read the client state {path}: {e.strerror}") from e
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
            raise RepositoryFormatError(
                f"client state {path} is unreadable: {type(e).__name__}: {str(e)[:200]}",
                hint="delete it to start again from the trusted root",
            ) from None
        root = verify_self_signed(root_bytes, what=f"root remembered in {path}")
        # An old state's manifest was accepted under the root it remembers.
        keys = frozenset(root.keys) if root_keys is None else root_keys
        return cls(root_bytes, version, digest, keys, index_digest), root

    def merged(self, root: Root, on_disk: tuple[ClientState, Root] | None) -> ClientState:
        """This state (whose root is ``root``), never below ``on_disk``.

        The newer root of the two is kept. A floor on disk that is higher than
        ours is kept too, but only if it holds under the root kept
        (:meth:`Floor.holds_under`): one set under keys that root revokes is
        what fast-forward recovery drops (§15.6 step 3), and keeping it would
        lock the device out. At an equal version a digest we lack is taken
        from disk. A check that held the state from its load (:func:`held`)
        finds on disk what it loaded, which its own floor never falls below:
        this guards against writers that do not lock.
        """
        if on_disk is None:
            return self
        theirs, their_root = on_disk
        state = self
        if their_root.version > root.version:
            state, root = replace(state, root=theirs.root), their_root
        floor = theirs.floor
        if floor is None or not floor.holds_under(root):
            return state
        if state.manifest_version is None or floor.version > state.manifest_version:
            return replace(
                state,
                manifest_version=floor.version,
                manifest_sha256=floor.payload_sha256,
                manifest_root_keys=floor.root_keys,
                index_sha256=floor.index_sha256,
            )
        if floor.version == state.manifest_version:
            return replace(
                state,
                manifest_sha256=state.manifest_sha256 or floor.payload_sha256,
                index_sha256=state.index_sha256 or floor.index_sha256,
            )
        return state

    def save(self, path: Path, root: Root) -> ClientState:
        """Write this state (``root`` is its root, parsed), merged with the file's
        (:meth:`merged`, read again now); returns what was written.

        Call it holding the state (:func:`held`) since its :meth:`load`.
        """
        state = self.merged(root, self._read(path))
        doc = {
            "root": base64.b64encode(state.root).decode(),
            "manifestVersion": state.manifest_version,
            "manifestSha256": state.manifest_sha256,
            "manifestRootKeys": sorted(state.manifest_root_keys),
            "indexSha256": state.index_sha256,
        }
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, json.dumps(doc, indent=2).encode() + b"\n")
        except OSError as e:
            raise StoreError(f"cannot save the client state {path}: {e.strerror}") from e
        except OutputError as e:
            raise StoreError(f"cannot save the client state: {e.message}") from e
        return state
