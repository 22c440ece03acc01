"""Two builds of the same inputs are byte-identical, every target converted.

``publish`` refuses a different bundle for a version it already holds, so a
CI re-run of the same version must produce the same bytes: same config, same
model, same tool versions, ``SOURCE_DATE_EPOCH`` set, no encryption (which
draws fresh keys and nonces by design). Both samples are built with all 13
targets each can reach (--skip-failed-targets: a refusal and its reason must
be reproducible too), twice, in separate processes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _cli import NO_PASSWORD, Cli

REPO = Path(__file__).resolve().parents[2]
TARGETS = [
    "tflite:fp32", "tflite:fp16", "tflite:int8-dynamic", "tflite:int8",
    "onnx:basic", "onnx:extended", "onnx:slim", "ort:mobile",
    "mnn:fp32", "mnn:fp16", "mnn:int8-weights", "ncnn:fp32", "ncnn:fp16",
]  # fmt: skip


aoe = Cli(env={**NO_PASSWORD, "SOURCE_DATE_EPOCH": "1764892800"}, process=True)


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    prefix = tmp_path_factory.mktemp("keys") / "k"
    assert aoe("keygen", "--out", prefix).exit_code == 0
    return prefix.with_suffix(".key")


@pytest.mark.parametrize("sample", ["mnist", "squeezenet"])
def test_two_builds_with_every_target_are_byte_identical(
    sample: str, key: Path, tmp_path: Path
) -> None:
    config = REPO / "sample_models" / sample / "config.json"
    targets = [a for t in TARGETS for a in ("--target", t)]
    bundles = []
    for run in ("a", "b"):
        out = tmp_path / f"{sample}-{run}.aoe"
        r = aoe(
            "build", config, "--out", out, "--sign-key", key, "--no-encrypt",
            "--skip-failed-targets", "--json", *targets,
        )  # fmt: skip
        assert r.exit_code == 0, r.stdout
        bundles.append(out.read_bytes())
    doc = json.loads(aoe("inspect", tmp_path / f"{sample}-a.aoe", "--json").stdout)
    shipped = {c["target"] for c in doc["provenance"]["conversions"]}
    # Every runtime is in the comparison, not just the easy ones.
    assert {t.split("-")[0] for t in shipped} == {"tflite", "onnx", "ort", "mnn", "ncnn"}
    assert len(shipped) + len(doc["provenance"].get("refused", [])) == len(TARGETS)
    assert bundles[0] == bundles[1]
