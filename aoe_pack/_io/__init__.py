"""Small file-system helpers, one module each.

- :mod:`.folder`: a folder whose entries are reached without following links;
- :mod:`.temporaries`: its held temporaries, and the sweep of dead writers' ones;
- :mod:`.atomic`: write a file atomically through such a folder;
- :mod:`.capped`: the one capped reader of the files a user names;
- :mod:`.writebehind`: flush a large output in the background;
- :mod:`.locks`: locks on open files; :mod:`.entries`: what an ``lstat`` says;
- :mod:`.digest`: a file's SHA-256; :mod:`.pread`: read at an offset, from many threads;
- :mod:`.facilities`: what the OS offers, asked at each use (docs/platforms.md);
- :mod:`.arenas`: one malloc arena for a pipeline's threads (glibc).
"""

from __future__ import annotations

from aoe_pack._io.atomic import atomic_output, refuse_existing, write_atomic
from aoe_pack._io.capped import FileTooLargeError, read_capped
from aoe_pack._io.digest import file_sha256
from aoe_pack._io.folder import Folder
from aoe_pack._io.locks import lock_exclusive, lock_within
from aoe_pack._io.writebehind import WriteBehind

__all__ = [
    "FileTooLargeError",
    "Folder",
    "WriteBehind",
    "atomic_output",
    "file_sha256",
    "lock_exclusive",
    "lock_within",
    "read_capped",
    "refuse_existing",
    "write_atomic",
]
