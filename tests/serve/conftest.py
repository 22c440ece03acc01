"""The ``published`` repository every service test starts from (helpers: _serve.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from _aoe_world import World
from _serve import Published, release

from aoe_pack._crypto.asymmetric import PrivateKey
from aoe_pack.config.model import ModelConfig


@pytest.fixture
def published(tmp_path: Path) -> Published:
    """A folder repository with two tags."""
    p = Published(str(tmp_path / "repo"))
    p.set("tag_a", release("1.0.0"), release("1.1.0", rollout_bp=5000))
    p.set("tag_b", release("2.0.0", runtimes=("onnx",)))
    return p


@pytest.fixture
def world(tmp_path: Path, signer: PrivateKey, config_writer: Callable[..., ModelConfig]) -> World:
    return World.create(tmp_path, signer, config_writer)
