"""`aoe-pack validate` and as-is builds check the model itself, not only the config."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from _cli import NO_PASSWORD, aoe

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests/fixtures/models"


def test_validate_reports_the_checked_model() -> None:
    r = aoe("validate", REPO / "sample_models/squeezenet/config.json", json=True)
    assert r.exit_code == 0, r.output
    model = json.loads(r.stdout)["model"]
    assert model["checked"] is True
    assert model["format"] == "onnx"
    assert model["details"]["opset"] == 17


def test_validate_refuses_a_model_that_disagrees_with_its_config() -> None:
    r = aoe("validate", FIXTURES / "io-disagrees/config.json", json=True)
    assert r.exit_code == 1
    err = json.loads(r.stdout)["error"]
    assert err["code"] == "model-signature"
    assert "declared input float16 [1, 4] | model x float32 [1, 4]" in err["message"]


def test_validate_no_model_skips_the_model(tmp_path: Path) -> None:
    r = aoe("validate", FIXTURES / "io-disagrees/config.json", "--no-model", json=True)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["model"] is None


def test_as_is_build_refuses_a_truncated_model(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    shutil.copytree(REPO / "sample_models/squeezenet", folder)
    shutil.copyfile(FIXTURES / "truncated.onnx", folder / "squeezenet.onnx")
    config = json.loads((folder / "config.json").read_text())
    config.pop("targets")
    (folder / "config.json").write_text(json.dumps(config))
    assert aoe("keygen", "--out", tmp_path / "k", env=NO_PASSWORD).exit_code == 0
    r = aoe(
        "build",
        folder / "config.json",
        "--out",
        tmp_path / "b.aoe",
        "--sign-key",
        tmp_path / "k.key",
        "--no-encrypt",
        json=True,
    )
    assert r.exit_code == 1
    assert json.loads(r.stdout)["error"]["code"] == "model-invalid"
    assert not (tmp_path / "b.aoe").exists()
