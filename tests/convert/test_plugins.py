"""Adding a runtime needs no change to aoe-pack: a plugin package is found through entry points."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "tests/fixtures/plugins/aoe-pack-echo"
SQUEEZENET = REPO / "sample_models/squeezenet"


def _aoe(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aoe_pack", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_installed_plugin_converts_and_is_recorded(tmp_path: Path) -> None:
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(PLUGIN),
        ],
        check=True,
        capture_output=True,
    )
    model = tmp_path / "model"
    shutil.copytree(SQUEEZENET, model)
    config = json.loads((model / "config.json").read_text())
    config["targets"] = [{"runtime": "echo"}]
    (model / "config.json").write_text(json.dumps(config))
    env = {**os.environ, "PYTHONPATH": str(site), "AOE_PACK_PASSWORD": ""}
    assert _aoe("keygen", "--out", str(tmp_path / "k"), env=env).returncode == 0
    bundle = tmp_path / "b.aoe"
    built = _aoe(
        "build",
        str(model / "config.json"),
        "--out",
        str(bundle),
        "--sign-key",
        str(tmp_path / "k.key"),
        "--no-encrypt",
        "--json",
        env=env,
    )
    assert built.returncode == 0, built.stderr
    doc = json.loads(_aoe("inspect", str(bundle), "--json", env=env).stdout)
    paths = {f["path"]: f for f in doc["files"]}
    assert paths["echo/copy/squeezenet.echo.onnx"]["runtime"] == "echo"
    assert "labels.txt" in paths
    (conversion,) = doc["provenance"]["conversions"]
    assert conversion["target"] == "echo-copy"
    assert conversion["tools"] == {"aoe-pack-echo": "0.1.0"}
    assert float(conversion["parity"]["maxAbs"]) <= 1e-6
    # Without the plugin on the path, the same config names an unknown runtime.
    missing = _aoe(
        "build",
        str(model / "config.json"),
        "--out",
        str(tmp_path / "c.aoe"),
        "--sign-key",
        str(tmp_path / "k.key"),
        "--no-encrypt",
        "--json",
        env={**os.environ, "AOE_PACK_PASSWORD": ""},
    )
    assert missing.returncode == 1  # the config is well-formed; no converter is installed
    assert json.loads(missing.stdout)["error"]["code"] == "converter-not-found"
