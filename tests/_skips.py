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
