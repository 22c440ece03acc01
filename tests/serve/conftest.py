"""The ``published`` repository every service test starts from (helpers: _serve.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _serve import Published, release


@pytest.fixture
def published(tmp_path: Path) -> Published:
    """A folder repository with two tags."""
    p = Published(str(tmp_path / "repo"))
    p.set("tag_a", release("1.0.0"), release("1.1.0", rollout_bp=5000))
    p.set("tag_b", release("2.0.0", runtimes=("onnx",)))
    return p
