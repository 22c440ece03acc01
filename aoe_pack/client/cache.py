"""The last index and tag documents a device accepted, kept beside its state.

An unchanged repository then costs a conditional request (a ``304`` over
HTTP) and no tag document at all; a changed one costs the index and the one
tag document that changed. The cache is an optimisation, never a source of
trust: every document in it is verified again, exactly as if it had just been
downloaded, before it is used (docs/format.md §15.12). A cache that is
missing, unreadable, oversized or fails verification is ignored and
rewritten after the next successful check; it never fails a check.

Layout, in ``<state file>.cache/``:

- ``index.json``: ``{"envelope": <base64 of index.json>, "etag": …,
  "lastModified": …}``, one file so that bytes and validators change together;
- ``tags/<tag>.json``: the envelope of the last accepted document of ``tag``.

The folder sits beside the state, where other programs of the same user, or
a broken file system, may leave anything under its names. Everything in it
is reached through :class:`~aoe_pack._io.Folder`, relative to an open
descriptor and never through a link: a link, a FIFO or a device under a
cache name reads as nothing cached (it is never opened, so never blocks) and
the next save renames a file over it; a cache folder or ``tags`` folder that
is a link is neither read nor written through nor pruned, and the next save
replaces the link (never what it points to) with a folder of its own.
Folders the cache creates are the user's alone (0700). Reads are capped and
made in chunks, so a cache costs what its files hold, at most the cap.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aoe_pack._io import Folder
from aoe_pack.errors import AoePackError
from aoe_pack.repository.limits import DEFAULT_LIMITS
from aoe_pack.storage.store import Validators

MAX_CACHED_TAGS = 32
"""Tag documents kept (an app checks a few tags); the least recently written go first."""
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_INDEX = "index.json"
_TAGS = "tags"
_INDEX_FILE_CAP = DEFAULT_LIMITS.max_index_bytes * 4 // 3 + 4096
_FOLDER_MODE = 0o700
_FILE_MODE = 0o600
# Any of these reads as "nothing cached": OSError covers a link where a folder
# must be (ELOOP), FileTooLargeError and the rest of the file system; AoePackError
# a Folder that cannot be opened; the others a record that does not parse.
_UNREADABLE = (
    OSError,
    AoePackError,
    ValueError,
    KeyError,
    TypeError,
    AttributeError,
    RecursionError,
)


@dataclass(frozen=True)
class CachedIndex:
    data: bytes
    validators: Validators


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and len(value) <= 1024 else None


class DocumentCache:
    """Read and write the cache folder; every failure reads as "nothing cached"."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    @classmethod
    def beside(cls, state_path: Path) -> DocumentCache:
        """The cache of the state file ``state_path``."""
        return cls(state_path.with_name(state_path.name + ".cache"))

    def index(self) -> CachedIndex | None:
        """The cached index envelope and its validators, or None."""
        raw = self._read((_INDEX,), _INDEX_FILE_CAP)
        if raw is None:
            return None
        try:
            doc: Any = json.loads(raw)
            if not isinstance(doc, dict):
                return None
            data = base64.b64decode(doc["envelope"], validate=True)
            validators = Validators(
                etag=_text_or_none(doc.get("etag")),
                last_modified=_text_or_none(doc.get("lastModified")),
            )
        except _UNREADABLE:
            return None
        if len(data) > DEFAULT_LIMITS.max_index_bytes:
            return None
        return CachedIndex(data, validators)

    def tag(self, tag: str) -> bytes | None:
        """The cached envelope of ``tag``'s document, or None."""
        if not _TAG.fullmatch(tag):
            return None
        return self._read((_TAGS, f"{tag}.json"), DEFAULT_LIMITS.max_manifest_bytes)

    def save(
        self, *, index: bytes, validators: Validators, tag: str | None, document: bytes | None
    ) -> None:
        """Remember an accepted index and (when there is one) the tag document used."""
        record = json.dumps(
            {
                "envelope": base64.b64encode(index).decode(),
                "etag": validators.etag,
                "lastModified": validators.last_modified,
            }
        ).encode()
        try:
            with self._open(create=True) as cache:
                if tag is not None and document is not None and _TAG.fullmatch(tag):
                    # Apart: a tag document that cannot be kept still leaves the index kept.
                    with contextlib.suppress(*_UNREADABLE):
                        self._save_tag(cache, f"{tag}.json", document)
                _write_if_changed(cache, _INDEX, record)
        except _UNREADABLE:
            return  # an optimisation: the next check reads the documents again

    # --- the folders ----------------------------------------------------------------------

    def _open(self, *, create: bool) -> Folder:
        """The cache folder itself, never a link; with ``create``, made (0700) if it is not
        a folder: a link, FIFO or device in its place is removed first (not what it leads
        to). A regular file there is left alone (OSError): it is not ours to delete."""
        with Folder(self.folder.parent) as parent:
            if create:
                _make_folder(parent, self.folder.name)
            return parent.subfolder(self.folder.name)

    def _read(self, names: tuple[str, ...], cap: int) -> bytes | None:
        """The file at ``names`` inside the cache folder, or None: missing, not a regular
        file of ours, reached through a link, or larger than ``cap``."""
        if not self.folder.parent.is_dir():
            return None  # and nothing created: Folder() would make it
        try:
            with contextlib.ExitStack() as held:
                folder = held.enter_context(self._open(create=False))
                for name in names[:-1]:
                    folder = held.enter_context(folder.subfolder(name))
                data = folder.read(names[-1], limit=cap + 1)
        except _UNREADABLE:
            return None
        return data if data is not None and len(data) <= cap else None

    def _save_tag(self, cache: Folder, name: str, document: bytes) -> None:
        _make_folder(cache, _TAGS)
        with cache.subfolder(_TAGS) as tags:
            _write_if_changed(tags, name, document)
            _prune(tags)


def _make_folder(parent: Folder, name: str) -> None:
    """Make ``name`` a folder of ours in ``parent`` unless it is one; see ``_open``."""
    kind = parent.kind(name)
    if kind == "folder":
        return
    if kind in ("link", "other"):
        try:
            parent.unlink(name)
        except OSError:
            parent.remove_folder(name)  # a Windows junction: removed as a folder, not followed
    parent.mkdir(name, mode=_FOLDER_MODE)


def _write_if_changed(folder: Folder, name: str, data: bytes) -> None:
    """Write ``name`` atomically unless it already holds ``data``; a link or anything
    but a regular file of ours under ``name`` reads as different and is renamed over."""
    if folder.read(name, limit=len(data) + 1) == data:
        return  # unchanged: spares the fsync, and keeps its time for the pruning
    with folder.output(name, mode=_FILE_MODE) as fp:
        fp.write(data)


def _prune(tags: Folder) -> None:
    """Keep the :data:`MAX_CACHED_TAGS` most recently written tag documents.

    Only in ``tags`` itself (never a link: :meth:`Folder.subfolder`), only
    names a tag document has, and a removal removes the entry, never what a
    link there points to.
    """
    held: list[tuple[int, str]] = []
    for name in tags.names():
        if name.endswith(".json") and _TAG.fullmatch(name.removesuffix(".json")):
            st = tags.lstat(name)
            if st is not None:
                held.append((st.st_mtime_ns, name))
    held.sort()
    for _, name in held[: max(0, len(held) - MAX_CACHED_TAGS)]:
        with contextlib.suppress(OSError):
            tags.remove(name)
