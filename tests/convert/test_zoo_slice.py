"""A fast slice of the coverage zoo (benchmarks/zoo.py): each failure class stays fixed.

benchmarks/bench_coverage.py builds all 202 zoo models with all 13 targets;
here a handful of its small entries are built with the targets that used to
fail on them, through the installed command, and each outcome must be the
one recorded below: a conversion that works, or a refusal whose reason names
the cause. No build may end in a traceback, and --json must always parse.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _cli import NO_PASSWORD, Cli

REPO = Path(__file__).resolve().parents[2]
aoe = Cli(process=True)

# entry -> {target: expected status, or a text the refusal's reason must contain}
EXPECTED: dict[str, dict[str, str]] = {
    # Keras Normalization: its constants were exported as extra ONNX inputs.
    "pre_normalization": {"onnx-basic": "ok", "mnn-fp32": "ok", "ncnn-fp32": "ok"},
    # An LSTM lowers to builtin TFLite ops once the export knows the batch. Its ONNX
    # form has a Loop whose body's inputs and outputs are tf2onnx-generated names.
    "rnn_lstm": {"tflite-fp32": "ok", "tflite-fp16": "ok", "onnx-basic": "ok"},
    # A Lambda layer: Keras refuses its Python code, and so does aoe-pack, saying why.
    "pre_lambda": {"onnx-basic": "has a Lambda layer holding Python code"},
    # TensorFlow Lite's int8 calibrator dies inside a recurrent layer's WHILE loop;
    # with a known sequence length the loop is unrolled for int8, and calibrates.
    "rnn_embedding_lstm": {"tflite-int8": "ok", "tflite-fp16": "ok"},
    # Over sequences of unknown length the loop stays, and the calibrator still
    # crashes: the crash fails int8 alone, and the worker serving the other
    # variants starts anew.
    "rnn_varlen_lstm": {
        "tflite-int8": "crashed with signal SIGSEGV",
        "tflite-fp16": "ok",
        "tflite-int8-dynamic": "ok",
    },
    # A SavedModel folder is a source; its signature keeps the weights.
    "fmt_savedmodel": {"tflite-fp32": "ok", "onnx-basic": "ok"},
    # A .tflite source: float32 as it is; quantising needs the float model.
    "fmt_tflite": {"tflite-fp32": "ok", "tflite-int8": "quantising needs the float model"},
    # ONNX reaches TFLite through onnx2tf, channels-last, with its layout shipped.
    "onnx_relu": {"tflite-fp32": "ok", "tflite-fp16": "ok", "ncnn-fp32": "ok"},
    # Opset 20 (Gelu): onnx and ort take it as it is, pnnx reads Gelu by name. onnx2tf's
    # flatbuffer writer has no SavedModel for it: fp16 comes from its TensorFlow backend.
    "onnx_gelu_default_1": {
        "onnx-basic": "ok",
        "ort-mobile": "ok",
        "ncnn-fp32": "ok",
        "tflite-fp16": "ok",
    },
    # Clip's scalar min and max: onnx2tf reshapes them (no permutation to record).
    "onnx_clip": {"tflite-fp16": "ok"},
    # Swish is an ONNX function none of MNN, pnnx and onnx2tf know: its body converts.
    # fp16 and int8 share one onnx2tf SavedModel: both must be tried expanded.
    "onnx_swish": {
        "mnn-fp32": "ok",
        "ncnn-fp32": "ok",
        "tflite-fp32": "ok",
        "tflite-fp16": "ok",
        "tflite-int8": "ok",
    },
    # CenterCropPad's body (Shape, Slice, Pad) converts for MNN; pnnx cannot express
    # it either way, and the refusal says both.
    "onnx_center_crop_pad_crop": {
        "mnn-fp32": "ok",
        "ncnn-fp32": "(with its ONNX functions expanded: pnnx could not express",
    },
    # float16 inputs are float32 in onnx2tf's SavedModel: calibration casts to them.
    "onnx_range_float16_type_positive_delta": {"tflite-int8": "ok"},
    # Both the embedding and the logits from Relu(embedding) are outputs: MNN fused
    # the Relu into the embedding's MatMul, whose output then came out activated.
    "multi_io_seq_tab": {"mnn-fp32": "ok", "mnn-int8-weights": "ok"},
    # A node test in exported form: W and B are initializers, as an exporter writes
    # them (as graph inputs, onnx2tf left a custom ONNX_CONV op TFLite cannot run).
    "onnxx_basic_conv_with_padding": {"tflite-fp32": "ok", "mnn-fp32": "ok", "ncnn-fp32": "ok"},
}

# entry -> {target: a text its recorded tools must contain}: the ONNX functions expanded
# by the inliner, or onnx2tf's TensorFlow backend where its own writer had no SavedModel
TOOLS: dict[str, dict[str, str]] = {
    "onnx_swish": dict.fromkeys(
        ("mnn-fp32", "ncnn-fp32", "tflite-fp32", "tflite-fp16", "tflite-int8"), "onnx-inliner"
    ),
    "onnx_center_crop_pad_crop": {"mnn-fp32": "onnx-inliner"},
    "onnx_gelu_default_1": {"tflite-fp16": "tf_converter backend"},
}

# entry -> {target: a text the refusal's hint (in --json and the table) must contain}
HINTS: dict[str, dict[str, str]] = {
    "rnn_varlen_lstm": {"tflite-int8": "declare the length, and aoe-pack unrolls the loop"},
}


@pytest.fixture(scope="module")
def entries(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("zoo")
    subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "zoo.py"), "--out", str(folder), "--only",
         *EXPECTED],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return folder


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    prefix = tmp_path_factory.mktemp("keys") / "k"
    r = aoe("keygen", "--out", prefix, env=NO_PASSWORD)
    assert r.exit_code == 0, r.output
    return prefix.with_suffix(".key")


def build(config: Path, targets: list[str], key: Path, out: Path) -> dict[str, Any]:
    chosen = [a for t in targets for a in ("--target", t.replace("-", ":", 1))]
    r = aoe(
        "build", config, "--out", out, "--sign-key", key, "--no-encrypt",
        "--skip-failed-targets", *chosen, json=True,
    )  # fmt: skip
    assert "Traceback" not in r.stderr, r.stderr
    assert r.exit_code in (0, 1), r.stderr
    doc: dict[str, Any] = r.doc
    return doc


@pytest.mark.parametrize("name", list(EXPECTED))
def test_zoo_entry_converts_or_is_refused_for_its_named_reason(
    name: str, entries: Path, key: Path, tmp_path: Path
) -> None:
    expected = EXPECTED[name]
    doc = build(entries / name / "config.json", list(expected), key, tmp_path / "b.aoe")
    if "targets" not in doc:  # the source itself was refused, before any conversion
        reason = doc["error"]["message"]
        for target, want in expected.items():
            assert want in reason, (target, reason)
        return
    got = {t["target"]: t for t in doc["targets"] if not t.get("control")}
    for target, want in expected.items():
        outcome = got[target]
        if want == "ok":
            assert outcome["status"] == "ok", outcome.get("reason")
        else:
            assert outcome["status"] != "ok", outcome
            assert want in outcome["reason"], outcome["reason"]
    for target, want in TOOLS.get(name, {}).items():
        assert want in json.dumps(got[target]["tools"]), got[target]
    for target, want in HINTS.get(name, {}).items():
        assert want in got[target]["hint"], got[target]


def test_the_exported_form_keeps_the_first_input_and_freezes_the_weights(entries: Path) -> None:
    import onnx

    model = onnx.load(str(entries / "onnxx_basic_conv_with_padding" / "model.onnx"))
    assert [i.name for i in model.graph.input] == ["x"]
    assert sorted(i.name for i in model.graph.initializer) == ["W"]


def test_the_onnx_export_does_not_depend_on_string_hashing(
    entries: Path, key: Path, tmp_path: Path
) -> None:
    """tf2onnx's generated names came out in an order set by PYTHONHASHSEED."""
    bundles = []
    for seed in ("0", "2"):
        out = tmp_path / f"seed{seed}.aoe"
        r = aoe(
            "build", entries / "multi_io_seq_tab" / "config.json", "--out", out,
            "--sign-key", key, "--no-encrypt", "--target", "onnx:basic",
            env={"PYTHONHASHSEED": seed, "SOURCE_DATE_EPOCH": "1700000000"},
        )  # fmt: skip
        assert r.exit_code == 0, r.output
        bundles.append(out.read_bytes())
    assert bundles[0] == bundles[1]
