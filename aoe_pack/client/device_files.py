"""The files a device keeps: the root shipped with the app, and its state.

The state (:class:`aoe_pack.client.state.ClientState`) is one file per
repository, by default under ``$XDG_STATE_HOME/aoe-pack/client/`` (or
``~/.local/state`` when the variable is unset), named by the repository's
identity so that every URL serving the same repository shares the same
rollback floor.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

from aoe_pack._io import FileTooLargeError, read_capped
from aoe_pack.errors import RepositoryError, RepositoryFormatError
from aoe_pack.repository.limits import DEFAULT_LIMITS


def read_trusted_root(path: str | os.PathLike[str]) -> bytes:
    """The bytes of the trusted root file, read at most to the root's size cap.

    Whatever the file is: a FIFO or ``/dev/zero`` has no size to check first.
    """
    cap = DEFAULT_LIMITS.max_root_bytes
    try:
        return read_capped(path, cap)
    except FileTooLargeError as e:
        raise RepositoryFormatError(
            f"--trusted-root {path} holds more than {cap} bytes; a root is at most {cap >> 20} MiB",
            hint="pass the root.json the repository was created with (or a later one)",
        ) from e
    except OSError as e:
        raise RepositoryError(f"cannot read --trusted-root {path}: {e.strerror}") from e


def state_folder() -> Path:
    """Where states are kept unless the caller names a file."""
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "aoe-pack" / "client"


def _legacy_state(repo: str) -> Path:
    """Where states were kept before they were keyed by the repository's identity."""
    if "://" not in repo:
        repo = str(Path(repo).resolve())
    return state_folder() / f"{hashlib.sha256(repo.rstrip('/').encode()).hexdigest()[:16]}.json"


def default_state_path(identity: str | None, repo: str) -> Path:
    """The state file of the repository with this ``repositoryId``, served at ``repo``.

    ``identity`` comes from the shipped root
    (:func:`aoe_pack.client.check.repository_identity`); None for a chain
    from before repository ids, whose state stays named by its URL.
    """
    # One state per repository, not per tag and not per URL: the manifest
    # version floor that stops rollback is the repository's, whichever model a
    # check is for and whichever mirror serves it.
    legacy = _legacy_state(repo)
    if identity is None:
        return legacy
    path = state_folder() / f"{identity}.json"
    if not path.exists() and legacy.is_file():
        # The state kept under this URL's name carries over (a concurrent
        # check may have moved it already: then it is there).
        with contextlib.suppress(FileNotFoundError):
            legacy.replace(path)
    return path
