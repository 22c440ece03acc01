"""The package graph stays one-directional, layered, and private modules stay private.

The contracts live in pyproject.toml ([tool.importlinter]) and `lint-imports`
checks them in .ci/test; these tests run the same check and prove that each
contract can fail, on a copy of the package with one offending import added.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# This interpreter's own: beside it in a venv, but in Scripts\ of a Windows install.
LINT_IMPORTS = Path(sysconfig.get_path("scripts")) / "lint-imports"


def _lint(project: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(project)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(project / "pyproject.toml"), "--no-cache"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    shutil.copytree(
        ROOT / "aoe_pack", tmp_path / "aoe_pack", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def test_the_package_keeps_every_contract() -> None:
    run = _lint(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 kept, 0 broken" in run.stdout


def _add(copy: Path, module: str, line: str) -> None:
    path = copy / "aoe_pack" / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")


def test_a_cycle_between_sibling_packages_breaks_the_contract(copy: Path) -> None:
    _add(copy, "storage/store.py", "import aoe_pack.publish.edits  # noqa")
    run = _lint(copy)
    assert run.returncode == 1
    broken = run.stdout.split("Broken contracts")[1]
    assert "No cycles are allowed in aoe_pack.\n" in broken
    assert "- .storage -> .publish (1 import)" in broken


def test_a_cycle_inside_a_package_breaks_the_contract(copy: Path) -> None:
    _add(copy, "convert/frameworks.py", "import aoe_pack.convert.sources  # noqa")
    run = _lint(copy)
    assert run.returncode == 1
    assert "No cycles are allowed in aoe_pack.convert" in run.stdout


def test_a_private_module_imported_from_another_package_breaks_the_contract(copy: Path) -> None:
    _add(copy, "bundle/inspect.py", "from aoe_pack.config import _schema  # noqa")
    run = _lint(copy)
    assert run.returncode == 1
    broken = run.stdout.split("Broken contracts")[1]
    assert "A private module (_name) is imported only from inside its parent package" in broken
    assert "aoe_pack.bundle.inspect -> aoe_pack.config._schema" in broken


def test_a_lower_layer_importing_a_higher_one_breaks_the_contract(copy: Path) -> None:
    _add(copy, "bundle/inspect.py", "import aoe_pack.client.decide  # noqa")
    run = _lint(copy)
    assert run.returncode == 1
    broken = run.stdout.split("Broken contracts")[1]
    assert "Layers: the command line on top" in broken
    assert "aoe_pack.bundle.inspect -> aoe_pack.client.decide" in broken
