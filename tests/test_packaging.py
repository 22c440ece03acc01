"""`python -m build` makes a wheel and an sdist: the wheel works on its own, the sdist is whole."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from _cli import Ran

REPO = Path(__file__).resolve().parents[1]


# What a checkout holds beyond its tracked files (.gitignore's list, and .git).
# The egg-info above all: setuptools adds every file its SOURCES.txt names to
# the next sdist, so a stale one would hide a file MANIFEST.in no longer takes.
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*.egg-info", "dist", "build", ".*_cache", ".hypothesis",
    "out", "demo-out",
)  # fmt: skip


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist ``python -m build`` makes of a clean copy of the checkout, and its wheel."""
    src = tmp_path_factory.mktemp("src") / "aoe-pack"
    shutil.copytree(REPO, src, ignore=_NOT_SOURCE)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(src)],
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
    # The --json output schemas ship like the others: every one of the checkout's.
    cli_schemas = {f"aoe_pack/schemas/cli/{p.name}" for p in (REPO / "schemas/cli").iterdir()}
    assert cli_schemas
    assert cli_schemas <= names
    assert "aoe_pack/py.typed" in names
    assert not any(n.startswith(("tests/", "sample_models/")) for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "aoe-pack = aoe_pack.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    with tarfile.open(sdist) as tf:
        assert any(n.endswith("aoe_pack/schemas/model-config.schema.json") for n in tf.getnames())
        assert any(n.endswith("aoe_pack/schemas/cli/common.schema.json") for n in tf.getnames())
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
        encoding="utf-8",  # the CLI's, not the locale's (Windows)
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


# A markdown link's target: [text](target) or [text](target "title").
_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)")


def _relative_links(doc: str) -> set[str]:
    """The local files a markdown document links to, without anchors."""
    targets = (t.split("#", 1)[0] for t in _LINK.findall(doc))
    return {t for t in targets if t and not re.match(r"[a-z][a-z0-9+.-]*:", t)}


def test_sdist_carries_the_docs_the_license_and_every_linked_file(dist: Path) -> None:
    """Docs, schemas, LICENSE; and no link in a shipped document points outside the sdist."""
    (sdist,) = dist.glob("aoe_pack-*.tar.gz")
    with tarfile.open(sdist) as tf:
        root = tf.getnames()[0].split("/", 1)[0]
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
        data = {
            name: f.read() if (f := tf.extractfile(f"{root}/{name}")) else b""
            for name in names
            if name.endswith(".md") or name == "LICENSE"
        }
    docs = {p.relative_to(REPO).as_posix() for p in (REPO / "docs").glob("*.md")}
    schemas = {p.relative_to(REPO).as_posix() for p in (REPO / "schemas").glob("*.json")}
    assert docs, "the checkout has docs/*.md"
    assert {"README.md", "LICENSE", *docs, *schemas} <= names
    assert data["LICENSE"] == (REPO / "LICENSE").read_bytes()
    readme_links = _relative_links(data["README.md"].decode())
    assert readme_links >= {"docs/converting.md", "docs/format.md", "LICENSE"}
    for doc in ("README.md", *docs):
        base = Path(doc).parent
        for link in _relative_links(data[doc].decode()):
            target = os.path.normpath(base / link).replace(os.sep, "/")
            assert target in names or any(n.startswith(target + "/") for n in names), (
                f"{doc} links to {link}, which the sdist lacks"
            )


def test_the_wheel_metadata_carries_the_license(dist: Path) -> None:
    (wheel,) = dist.glob("aoe_pack-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        info = next(n.split("/", 1)[0] for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = zf.read(f"{info}/METADATA").decode()
        license_file = zf.read(f"{info}/licenses/LICENSE")
    headers = metadata.split("\n\n", 1)[0].splitlines()
    assert "License-Expression: Apache-2.0" in headers
    assert "License-File: LICENSE" in headers
    assert b"Apache License" in license_file
    assert b"Version 2.0, January 2004" in license_file
    assert license_file == (REPO / "LICENSE").read_bytes()


def test_the_base_install_says_which_extra_it_lacks(dist: Path, tmp_path: Path) -> None:
    """A fresh venv with the wheel and its base dependencies only: no numpy, no framework.

    Validating or building a config that needs a framework must name the
    extra to install, never end in a traceback.
    """
    (wheel,) = dist.glob("aoe_pack-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    # Without PYTHONPATH: a checkout on it (PYTHONPATH=$PWD) holds aoe_pack.egg-info
    # after a build, so pip would take aoe-pack as installed and skip the wheel.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
        check=True,
        capture_output=True,
        env=env,
    )
    probe = subprocess.run(
        [str(bin_dir / "python"), "-c", "import numpy"], capture_output=True, check=False, env=env
    )
    assert probe.returncode != 0, "the base install must not bring numpy"
    env["AOE_PACK_PASSWORD"] = ""

    def aoe(*args: object) -> Ran:
        p = subprocess.run(
            [str(bin_dir / "aoe-pack"), *map(str, args)],
            capture_output=True,
            text=True,
            encoding="utf-8",  # the CLI's, not the locale's (Windows)
            env=env,  # os.environ without PYTHONPATH, which _cli.Cli would keep
            cwd=tmp_path,
            check=False,
        )
        return Ran(p.returncode, p.stdout, p.stderr)

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
