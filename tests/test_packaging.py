"""`python -m build` makes a wheel and an sdist, and the wheel works on its own."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from _cli import NO_PASSWORD, Cli

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel and sdist ``python -m build`` makes of the checkout."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(REPO)],
        check=True,
        capture_output=True,
        cwd=out,
    )
    return out


def test_wheel_and_sdist_build_and_wheel_runs_outside_the_repo(dist: Path, tmp_path: Path) -> None:
    (wheel,) = dist.glob("aoe_pack-*.whl")
    (sdist,) = dist.glob("aoe_pack-*.tar.gz")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        zf.extractall(tmp_path / "site")  # noqa: S202 - the wheel we just built
    assert "aoe_pack/schemas/model-config.schema.json" in names
    assert "aoe_pack/py.typed" in names
    assert not any(n.startswith(("tests/", "sample_models/")) for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "aoe-pack = aoe_pack.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    with tarfile.open(sdist) as tf:
        assert any(n.endswith("aoe_pack/schemas/model-config.schema.json") for n in tf.getnames())
    # Validate a sample config with the unpacked wheel alone, from outside the repo:
    # the schema must come from the package, not from the checkout.
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "aoe_pack",
            "validate",
            str(REPO / "sample_models/mnist/config.json"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    probe = subprocess.run(
        [sys.executable, "-c", "import aoe_pack; print(aoe_pack.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    )
    assert probe.stdout.startswith(str(tmp_path / "site"))


def test_the_base_install_says_which_extra_it_lacks(dist: Path, tmp_path: Path) -> None:
    """A fresh venv with the wheel and its base dependencies only: no numpy, no framework.

    Validating or building a config that needs a framework must name the
    extra to install, never end in a traceback.
    """
    (wheel,) = dist.glob("aoe_pack-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
        check=True,
        capture_output=True,
    )
    probe = subprocess.run(
        [str(bin_dir / "python"), "-c", "import numpy"], capture_output=True, check=False
    )
    assert probe.returncode != 0, "the base install must not bring numpy"
    aoe = Cli(env=NO_PASSWORD, program=[str(bin_dir / "aoe-pack")], cwd=tmp_path)

    hint = "install the conversion extra: pip install 'aoe-pack[convert]'"
    for config in ("mnist/config.json", "squeezenet/config.json"):
        checked = aoe("validate", REPO / "sample_models" / config)
        assert checked.exit_code == 0, checked.stderr
        assert "Traceback" not in checked.stderr
        assert "warning: the model was not checked: numpy is not installed" in checked.stderr
        assert hint in checked.stderr
    assert aoe("keygen", "--out", tmp_path / "k").exit_code == 0
    built = aoe(
        "build", REPO / "sample_models/mnist/config.json", "--out", tmp_path / "m.aoe",
        "--sign-key", tmp_path / "k.key", "--no-encrypt",
    )  # fmt: skip
    assert built.exit_code == 1
    assert "Traceback" not in built.stderr
    assert built.stderr.splitlines()[-2:] == [
        "error: numpy is not installed",
        f"hint: {hint}",
    ]
    as_is = aoe(
        "build", REPO / "sample_models/squeezenet/config.json", "--out", tmp_path / "s.aoe",
        "--sign-key", tmp_path / "k.key", "--no-encrypt", "--target", "onnx",
    )  # fmt: skip
    assert as_is.exit_code == 1
    assert "error: numpy is not installed" in as_is.stderr
