"""What the repository's own files may say: nothing that sends a reader elsewhere."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Spelt in pieces so that this file does not match itself.
_NOTES = re.compile("field" + r"[\s_-]*" + "notes", re.IGNORECASE)


def _tracked_files() -> list[Path]:
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    listed = subprocess.run(
        [git, "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=False
    )
    if listed.returncode != 0:  # an sdist or an export: no history, nothing tracked
        pytest.skip(f"{REPO} is not a git checkout")
    return [REPO / name for name in listed.stdout.decode().split("\0") if name]


def test_no_tracked_file_cites_notes_kept_outside_the_repository() -> None:
    """A reader has only the repository: a fact is stated where it is used, with how
    to see it again, never as a pointer to notes that are not in it."""
    files = _tracked_files()
    assert REPO / "pyproject.toml" in files
    citing = []
    for path in files:
        if not path.is_file():  # deleted in the work tree, not yet in the index
            continue
        text = path.read_bytes().decode(errors="replace")
        citing += [
            f"{path.relative_to(REPO).as_posix()}:{text.count(chr(10), 0, m.start()) + 1}"
            for m in _NOTES.finditer(text)
        ]
    assert citing == []
