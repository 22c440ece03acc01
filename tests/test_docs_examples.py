"""Every ```python block of docs/library.md runs, in order, as a reader would run them.

The blocks share one namespace and one empty folder holding a copy of
sample_models/, exactly as the page says. A failure's traceback names the
line of docs/library.md it happened on.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "library.md"
FENCE = re.compile(r"^```(\S*)\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """Each ```python block with the line of the page its code starts on."""
    return [
        (text.count("\n", 0, m.start(2)) + 1, m.group(2))
        for m in FENCE.finditer(text)
        if m.group(1) == "python"
    ]


def test_every_code_block_of_the_page_is_python_and_so_runs() -> None:
    text = PAGE.read_text(encoding="utf-8")
    languages = [m.group(1) for m in FENCE.finditer(text)]
    assert len(languages) >= 8
    assert set(languages) == {"python"}, "a block in another language would not be run here"
    assert text.count("```") == 2 * len(languages), "a fence the pattern did not pair"


def test_the_library_page_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(REPO / "sample_models", tmp_path / "sample_models")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AOE_PACK_PASSWORD", raising=False)
    namespace: dict[str, object] = {"__name__": "library_md"}
    before = set(os.environ)
    try:
        for line, code in python_blocks(PAGE.read_text(encoding="utf-8")):
            # Padded so that line numbers in a traceback are the page's own.
            exec(compile("\n" * (line - 1) + code, str(PAGE), "exec"), namespace)  # noqa: S102
    finally:
        for name in set(os.environ) - before:  # the page sets a variable, as a reader would
            del os.environ[name]
    assert (tmp_path / "models").is_dir()  # the last step, a device's download, happened
