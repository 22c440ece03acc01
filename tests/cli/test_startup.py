"""A command imports what it uses, and nothing else: the CLI's start-up.

``aoe-pack verify`` on a 1 GiB bundle has a budget of 0.7x openssl, and
``aoe-pack client check`` runs on small devices, so interpreter start-up and
imports are a large share of them. Each check runs one command in a fresh
interpreter and looks at ``sys.modules`` afterwards: what was imported, not
how long it took, so a slow or busy machine cannot make it fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from aoe_pack import api
from aoe_pack.keys import keygen

REPO = Path(__file__).resolve().parents[2]

FRAMEWORKS = ("tensorflow", "keras", "onnx", "onnxruntime", "tf2onnx", "MNN", "ncnn", "torch")
REMOTE = ("fsspec", "boto3", "botocore", "s3fs", "http.client", "urllib.request", "ssl")
SERVER = ("aoe_pack.serve", "uvicorn", "h11", "asyncio")  # `aoe-pack serve` alone
# Never needed to parse a command line or to show its help.
NOT_AT_START = (
    *FRAMEWORKS,
    *REMOTE,
    *SERVER,
    "numpy",
    "jsonschema",
    "cryptography",
    "importlib.metadata",
    "email",
    "aoe_pack.assemble",
    "aoe_pack.bench",
    "aoe_pack.bundle",
    "aoe_pack.client",
    "aoe_pack.config",
    "aoe_pack.convert",
    "aoe_pack.interop",
    "aoe_pack.keys.generate",
    "aoe_pack.keys.export",
    "aoe_pack.publish",
    "aoe_pack.repository",
    "aoe_pack.signers",
    "aoe_pack.storage",
)
# Verifying a local bundle needs the bundle reader and the public keys only.
NOT_FOR_VERIFY = (
    *FRAMEWORKS,
    *REMOTE,
    *SERVER,
    "numpy",
    "jsonschema",
    "importlib.metadata",
    "email",
    "aoe_pack.assemble",
    "aoe_pack.bench",
    "aoe_pack.bundle.build",
    "aoe_pack.client",
    "aoe_pack.config",
    "aoe_pack.convert",
    "aoe_pack.interop",
    "aoe_pack.keys.generate",
    "aoe_pack.keys.export",
    "aoe_pack.publish",
    "aoe_pack.repository",
    "aoe_pack.signers",
    "aoe_pack.storage",
)


def modules_after(argv: Sequence[str]) -> set[str]:
    """Every module loaded by ``import aoe_pack.cli`` then ``aoe-pack ARGV``, in a fresh process.

    The command runs through click's CliRunner, as the tests of tests/cli do,
    and must succeed.
    """
    probe = (
        "import json, sys\n"
        "from click.testing import CliRunner\n"
        "from aoe_pack.cli import cli\n"
        f"result = CliRunner().invoke(cli, {list(argv)!r})\n"
        "assert result.exit_code == 0, result.output\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO
    )
    return set(json.loads(out.stdout.splitlines()[-1]))


def loaded(modules: set[str], names: Sequence[str]) -> list[str]:
    """Those of ``names`` (a module, or a package and everything in it) that were loaded."""
    return [n for n in names if any(m == n or m.startswith(f"{n}.") for m in modules)]


def test_importing_the_cli_loads_no_command_module() -> None:
    modules = modules_after(["--version"])
    assert loaded(modules, NOT_AT_START) == []
    assert sorted(m for m in modules if m.startswith("aoe_pack.cli.") and "_cmd" in m) == []


@pytest.mark.parametrize(
    "argv",
    [
        ["verify", "--help"],
        ["build", "--help"],
        ["validate", "--help"],
        ["manifest", "publish", "--help"],
        ["client", "check", "--help"],
        ["serve", "--help"],
        ["--help"],
    ],
    ids=" ".join,
)
def test_help_loads_nothing_the_command_would_run(argv: list[str]) -> None:
    assert loaded(modules_after(argv), NOT_AT_START) == []


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Files of a small signed bundle and its repository, by name."""
    root = tmp_path_factory.mktemp("startup")
    keygen("ed25519", root / "release")
    model = root / "model"
    model.mkdir()
    (model / "model.tflite").write_bytes((REPO / "sample_models/mnist/mnist.tflite").read_bytes())
    (model / "config.json").write_text(
        json.dumps(
            {
                "version": "1.0.0",
                "tag": "tag_startup",
                "runtime": "tflite",
                "source": "remote",
                "modelDir": ".",
                "modelName": "model.tflite",
                "encrypt": False,
            }
        ),
        encoding="utf-8",
    )
    bundle = root / "small.aoe"
    api.build(configs=model / "config.json", out=bundle, sign_keys=[root / "release.key"])
    api.init_repository(
        repo=root / "repo", root_keys=[root / "release.pub"], sign_keys=[root / "release.key"]
    )
    api.publish(repo=root / "repo", bundles=[bundle], sign_keys=[root / "release.key"])
    return lambda name: root / name


@pytest.mark.parametrize("command", ["verify", "inspect"])
def test_verify_and_inspect_load_neither_builder_nor_publisher_nor_schemas(
    command: str, small: Callable[[str], Path]
) -> None:
    keys = ["--trusted-key", str(small("release.pub"))] if command == "verify" else []
    modules = modules_after([command, str(small("small.aoe")), *keys])
    assert "aoe_pack.bundle.verify" in modules
    assert loaded(modules, NOT_FOR_VERIFY) == []


def test_client_check_loads_no_publishing_building_or_remote_code(
    small: Callable[[str], Path],
) -> None:
    repo = small("repo")
    modules = modules_after(
        [
            *("client", "check", "--repo", str(repo), "--trusted-root", str(repo / "root.json")),
            *("--tag", "tag_startup", "--installed-version", "0.9.0", "--app-version", "1.0.0"),
            *("--device-id", "d1", "--state", str(small("state.json"))),
        ]
    )
    assert "aoe_pack.client.check" in modules
    publishing = sorted(m for m in modules if m.startswith("aoe_pack.publish."))
    assert publishing == ["aoe_pack.publish.names"]
    unused = ("aoe_pack.assemble", "aoe_pack.bundle.build", "aoe_pack.convert", "aoe_pack.bench")
    assert loaded(modules, (*FRAMEWORKS, *REMOTE, *SERVER, "numpy", *unused)) == []
    assert loaded(modules, ("aoe_pack.keys.generate",)) == []


def test_an_as_is_onnx_build_loads_no_framework_and_no_package_metadata(tmp_path: Path) -> None:
    """The model is checked by its structure (the ONNX wire format), not by onnx;
    the provenance's cryptography version comes from the package, not importlib.metadata."""
    keygen("ed25519", tmp_path / "release")
    sample = REPO / "sample_models" / "squeezenet"
    config = json.loads((sample / "config.json").read_text(encoding="utf-8"))
    as_is = {k: v for k, v in config.items() if k not in ("targets", "files")}
    (tmp_path / "squeezenet.onnx").write_bytes((sample / "squeezenet.onnx").read_bytes())
    (tmp_path / "config.json").write_text(json.dumps({**as_is, "encrypt": False}), "utf-8")
    modules = modules_after(
        [
            *("build", str(tmp_path / "config.json"), "--out", str(tmp_path / "m.aoe")),
            *("--sign-key", str(tmp_path / "release.key")),
        ]
    )
    assert "aoe_pack.bundle.build" in modules
    unused = ("importlib.metadata", "aoe_pack.publish", "aoe_pack.client", "aoe_pack.storage")
    assert loaded(modules, (*FRAMEWORKS, *REMOTE, *SERVER, "numpy", *unused)) == []
    assert loaded(modules, ("aoe_pack.keys.generate",)) == []
