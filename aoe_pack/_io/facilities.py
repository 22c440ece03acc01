"""What the OS offers, asked each time it is used.

aoe-pack builds, verifies, unpacks, publishes and checks for updates on Linux,
macOS and Windows. Where an OS lacks a facility, the code that uses it falls
back to the best that OS allows, and says what is weaker (docs/platforms.md).
Every facility is looked up when it is used, not once at import, so that the
tests can take one away on Linux and run the real operation without it
(tests/platform/).
"""

from __future__ import annotations

import os
import sys

WINDOWS = sys.platform == "win32"
"""Windows semantics that no missing attribute reveals:

- a file that is open cannot be removed or renamed, and no file can be renamed
  onto one that is open (Python opens files without ``FILE_SHARE_DELETE``);
- ``os.rename`` never replaces an existing name;
- some names (``CON``, ``aux.txt``, ``x.``, ``a:b``) are devices, streams or
  another name rather than a file of that name.
"""


def flag(name: str) -> int:
    """The ``os.open`` flag ``os.<name>``, or 0 where the OS has none.

    Windows has no ``O_NOFOLLOW``, ``O_DIRECTORY``, ``O_NONBLOCK`` or
    ``O_CLOEXEC``; the callers make up for each (see :mod:`.folder`).
    """
    value = getattr(os, name, 0)
    return value if isinstance(value, int) else 0


def base_flags() -> int:
    """The flags every ``os.open`` of ours takes.

    ``O_BINARY`` on Windows, without which the C runtime opens the file in
    text mode: writes turn LF into CRLF and reads stop at the first Ctrl-Z.
    ``O_CLOEXEC`` elsewhere (Python makes descriptors non-inheritable anyway).
    """
    return flag("O_BINARY") | flag("O_CLOEXEC")


def opens_folders() -> bool:
    """Whether ``os.open`` can open a folder (to fsync, lock or walk it): not on Windows.

    Windows refuses with EACCES, and has no ``O_DIRECTORY`` either: the
    flag's absence stands for the whole facility.
    """
    return hasattr(os, "O_DIRECTORY")


def dir_fds() -> bool:
    """Whether entries can be reached by name relative to an open folder: not on Windows.

    That is ``openat``, ``fstatat``, ``mkdirat``, ``unlinkat`` and ``renameat``
    (``dir_fd=``), and ``fdopendir`` (``os.listdir(fd)``).
    """
    calls = (os.open, os.stat, os.mkdir, os.unlink, os.rmdir, os.rename)
    return (
        opens_folders()
        and all(call in os.supports_dir_fd for call in calls)
        and os.listdir in os.supports_fd
    )


def euid() -> int | None:
    """Our effective uid; None where the OS has no uids (Windows: ACLs decide instead)."""
    geteuid = getattr(os, "geteuid", None)
    return None if geteuid is None else int(geteuid())
