"""Adding a runtime needs no change to aoe-pack: a plugin package is found through entry points."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from _cli import NO_PASSWORD, Cli

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "tests/fixtures/plugins/aoe-pack-echo"
SQUEEZENET = REPO / "sample_models/squeezenet"


aoe = Cli(env=NO_PASSWORD, process=True)


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
    env = {"PYTHONPATH": str(site)}
    assert aoe("keygen", "--out", tmp_path / "k", env=env).exit_code == 0
    bundle = tmp_path / "b.aoe"
    built = aoe(
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
    assert built.exit_code == 0, built.stderr
    doc = aoe("inspect", bundle, env=env, json=True).doc
    paths = {f["path"]: f for f in doc["files"]}
    assert paths["echo/copy/squeezenet.echo.onnx"]["runtime"] == "echo"
    assert "labels.txt" in paths
    (conversion,) = doc["provenance"]["conversions"]
    assert conversion["target"] == "echo-copy"
    assert conversion["tools"] == {"aoe-pack-echo": "0.1.0"}
    assert float(conversion["parity"]["maxAbs"]) <= 1e-6
    # Without the plugin on the path, the same config names an unknown runtime.
    missing = aoe(
        "build",
        str(model / "config.json"),
        "--out",
        str(tmp_path / "c.aoe"),
        "--sign-key",
        str(tmp_path / "k.key"),
        "--no-encrypt",
        "--json",
    )
    assert missing.exit_code == 1  # the config is well-formed; no converter is installed
    assert json.loads(missing.stdout)["error"]["code"] == "converter-not-found"
