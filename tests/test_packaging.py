"""`python -m build` makes a wheel and an sdist, and the wheel works on its own."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_and_sdist_build_and_wheel_runs_outside_the_repo(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(REPO)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
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
