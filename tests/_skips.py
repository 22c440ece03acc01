"""Skips for tests that need an OS facility macOS or Windows lacks, each named by the facility.

A test uses a mark from here only where the facility is what it checks (a
planted symbolic link, a file mode); where a facility only provokes a case
that every OS has, the test provokes it another way instead.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest


def _can_symlink() -> bool:
    """Whether this process may create symbolic links: Windows allows it only with a
    privilege (an elevated administrator) or in Developer Mode."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            (Path(tmp) / "link").symlink_to(tmp, target_is_directory=True)
        except OSError:
            return False
    return True


needs_symlinks = pytest.mark.skipif(
    not _can_symlink(), reason="creating symbolic links needs a privilege here (Windows)"
)
needs_posix_modes = pytest.mark.skipif(
    sys.platform == "win32", reason="Windows has no POSIX permission bits, only a read-only flag"
)
needs_fifos = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here (Windows)")


def _names_keep_case() -> bool:
    """Whether the temporary folder's file system tells two names apart by case alone:
    those of macOS and Windows mostly do not."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "a").touch()
        return not (Path(tmp) / "A").exists()


needs_case_sensitive_names = pytest.mark.skipif(
    not _names_keep_case(), reason="this file system ignores the case of names"
)
