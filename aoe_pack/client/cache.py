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
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aoe_pack._io import read_capped, write_atomic
from aoe_pack.errors import AoePackError
from aoe_pack.repository.limits import DEFAULT_LIMITS
from aoe_pack.storage.store import Validators

MAX_CACHED_TAGS = 32
"""Tag documents kept (an app checks a few tags); the least recently written go first."""
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_INDEX_FILE_CAP = DEFAULT_LIMITS.max_index_bytes * 4 // 3 + 4096


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
        try:
            doc: Any = json.loads(read_capped(self.folder / "index.json", _INDEX_FILE_CAP))
            data = base64.b64decode(doc["envelope"], validate=True)
            validators = Validators(
                etag=_text_or_none(doc.get("etag")),
                last_modified=_text_or_none(doc.get("lastModified")),
            )
        except (OSError, ValueError, KeyError, TypeError, RecursionError, AoePackError):
            return None
        if len(data) > DEFAULT_LIMITS.max_index_bytes:
            return None
        return CachedIndex(data, validators)

    def tag(self, tag: str) -> bytes | None:
        if not _TAG.fullmatch(tag):
            return None
        try:
            return read_capped(self._tag_path(tag), DEFAULT_LIMITS.max_manifest_bytes)
        except (OSError, AoePackError):
            return None

    def save(
        self, *, index: bytes, validators: Validators, tag: str | None, document: bytes | None
    ) -> None:
        """Remember an accepted index and (when there is one) the tag document used."""
        record = {
            "envelope": base64.b64encode(index).decode(),
            "etag": validators.etag,
            "lastModified": validators.last_modified,
        }
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if tag is not None and document is not None and _TAG.fullmatch(tag):
                path = self._tag_path(tag)
                path.parent.mkdir(exist_ok=True)
                if not path.exists() or path.read_bytes() != document:
                    write_atomic(path, document)
                self._prune()
            write_atomic(self.folder / "index.json", json.dumps(record).encode())
        except (OSError, AoePackError):
            return  # an optimisation: the next check reads the documents again

    def _tag_path(self, tag: str) -> Path:
        return self.folder / "tags" / f"{tag}.json"

    def _prune(self) -> None:
        files = sorted(
            (p for p in (self.folder / "tags").iterdir() if p.suffix == ".json"),
            key=lambda p: p.stat().st_mtime_ns,
        )
        for p in files[: max(0, len(files) - MAX_CACHED_TAGS)]:
            p.unlink(missing_ok=True)
