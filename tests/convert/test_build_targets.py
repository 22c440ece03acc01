"""`aoe-pack build` with targets: every artifact in one signed bundle, with recorded parity.

These run the real CLI (in-process for speed, or in a subprocess where the
environment matters: no network, a separate HOME).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _cli import NO_PASSWORD, aoe

REPO = Path(__file__).resolve().parents[2]

MNIST_TARGETS = [
    {"runtime": "tensorflow", "variant": "fp32"},
    {"runtime": "tflite", "variant": "fp16"},
    {"runtime": "tflite", "variant": "int8"},
    {"runtime": "onnx"},
    {"runtime": "ort"},
    {"runtime": "mnn"},
    {"runtime": "ncnn"},
]
MNIST_EXPECTED = {
    "tflite-fp32",
    "tflite-fp16",
    "tflite-int8",
    "onnx-basic",
    "ort-mobile",
    "mnn-fp32",
    "ncnn-fp32",
}


def sample_with_targets(
    tmp_path: Path, sample: str, targets: list[dict[str, Any]], model_name: str | None = None
) -> Path:
    """A copy of a sample model whose config converts for ``targets``."""
    folder = tmp_path / sample
    shutil.copytree(REPO / "sample_models" / sample, folder)
    config = json.loads((folder / "config.json").read_text())
    config["targets"] = targets
    if model_name:
        config["modelName"] = model_name
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return folder / "config.json"


def build(config: Path, out: Path, signer: Path, *extra: str):
    """`aoe-pack build CONFIG --out OUT` signed by ``signer``, unencrypted, via the CLI."""
    return aoe("build", config, "--out", out, "--sign-key", f"{signer}.key", "--no-encrypt", *extra)


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    prefix = tmp_path_factory.mktemp("keys") / "signer"
    r = aoe("keygen", "--out", prefix, env=NO_PASSWORD)
    assert r.exit_code == 0, r.output
    return prefix


def test_mnist_keras_to_every_runtime_in_one_bundle(tmp_path: Path, signer: Path) -> None:
    config = sample_with_targets(tmp_path, "mnist", MNIST_TARGETS, model_name="mnist.keras")
    bundle = tmp_path / "mnist.aoe"
    r = build(config, bundle, signer, "--json")
    assert r.exit_code == 0, r.output
    v = aoe("verify", bundle, "--trusted-key", f"{signer}.pub", json=True)
    assert v.exit_code == 0, v.output
    doc = aoe("inspect", bundle, json=True).doc
    conversions = {c["target"]: c for c in doc["provenance"]["conversions"]}
    assert set(conversions) == MNIST_EXPECTED
    for name, c in conversions.items():
        parity = c["parity"]
        assert parity["passed"] is True, name
        for out in parity["outputs"]:
            allowed = float(parity["tolerance"]["atol"]) + float(
                parity["tolerance"]["rtol"]
            ) * float(out["peak"])
            assert float(out["maxAbs"]) <= allowed, name
        assert parity["top1"] is not None
        assert "seconds" not in c  # timings stay out of the signed bundle
    runtimes = {f["runtime"] for f in doc["files"] if f["role"] == "model"}
    assert runtimes == {"tflite", "onnx", "ort", "mnn", "ncnn"}
    assert doc["provenance"]["source"]["format"] == "keras"
    text = aoe("inspect", bundle).stdout
    assert "parity    tflite-int8: max" in text


def test_target_flag_overrides_config(tmp_path: Path, signer: Path) -> None:
    config = sample_with_targets(tmp_path, "squeezenet", [{"runtime": "mnn"}])
    bundle = tmp_path / "s.aoe"
    r = build(
        config, bundle, signer, "--target", "onnx:extended", "--target", "ncnn:fp16", "--json"
    )
    assert r.exit_code == 0, r.output
    doc = aoe("inspect", bundle, json=True).doc
    assert [c["target"] for c in doc["provenance"]["conversions"]] == ["onnx-extended", "ncnn-fp16"]


def test_parity_over_tolerance_fails_the_build(tmp_path: Path, signer: Path) -> None:
    config = sample_with_targets(
        tmp_path, "squeezenet", [{"runtime": "mnn", "variant": "int8-weights", "tolerance": 1e-9}]
    )
    bundle = tmp_path / "s.aoe"
    r = build(config, bundle, signer, "--json")
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert doc["error"]["code"] == "targets-failed"
    assert "no target passed (mnn-int8-weights); no bundle written" in doc["error"]["message"]
    (target,) = [t for t in doc["targets"] if t["target"] == "mnn-int8-weights"]
    assert target["status"] == "parity-failed"
    assert target["code"] == "parity"
    assert "mnn-int8-weights: output 0 (probabilities): max abs error" in target["reason"]
    assert not bundle.exists()


def test_unknown_variant_in_the_config_is_refused(tmp_path: Path, signer: Path) -> None:
    config = sample_with_targets(tmp_path, "squeezenet", [{"runtime": "onnx", "variant": "all"}])
    r = build(config, tmp_path / "s.aoe", signer, "--json")
    assert r.exit_code == 1
    assert "has no variant 'all'" in json.loads(r.stdout)["error"]["message"]


def test_every_target_builds_without_network_and_leaves_home_alone(
    tmp_path: Path, signer: Path
) -> None:
    """The whole build, every target, in a network namespace with no network (CI runs as root)."""
    config = sample_with_targets(tmp_path, "mnist", MNIST_TARGETS, model_name="mnist.keras")
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "AOE_PACK_PASSWORD": ""}
    env.pop("XDG_CACHE_HOME", None)
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    assert probe.returncode == 0, f"unshare -n is required for this test: {probe.stderr!r}"
    r = subprocess.run(
        [
            "unshare",
            "-n",
            sys.executable,
            "-m",
            "aoe_pack",
            "build",
            str(config),
            "--out",
            str(tmp_path / "m.aoe"),
            "--sign-key",
            f"{signer}.key",
            "--no-encrypt",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    doc = json.loads(r.stdout)
    assert doc["ok"] is True
    written = sorted(str(p.relative_to(home)) for p in home.rglob("*"))
    assert written == []


def test_parity_runs_on_the_configs_sample_inputs(tmp_path: Path, signer: Path) -> None:
    import numpy as np

    config_path = sample_with_targets(tmp_path, "squeezenet", [{"runtime": "onnx"}])
    rng = np.random.default_rng(7)
    np.savez(
        config_path.parent / "samples.npz", image=rng.random((3, 1, 3, 64, 64), dtype=np.float32)
    )
    config = json.loads(config_path.read_text())
    config["sampleInputs"] = "samples.npz"
    config_path.write_text(json.dumps(config))
    bundle = tmp_path / "s.aoe"
    r = build(config_path, bundle, signer, "--json")
    assert r.exit_code == 0, r.output
    doc = aoe("inspect", bundle, json=True).doc
    assert doc["provenance"]["conversions"][0]["parity"]["samples"] == 3
