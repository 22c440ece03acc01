"""Every target is tried and reported; a runtime's crash fails only its own target.

The crash is real: MNN 3.6 dies with SIGSEGV running a ReduceMax over an
empty axis (ONNX's own ``test_reduce_max_empty_set`` describes the model),
which onnxruntime runs. If a later MNN stops crashing there, these tests say
so and need another crash. The builds run the installed command in a
subprocess, as users do, so what the runtimes print on file descriptors 1 and
2 is seen too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from _cli import NO_PASSWORD, Cli

from aoe_pack.convert.api import Parity, Precision, Target
from aoe_pack.convert.measure import vouched
from aoe_pack.convert.outcome import Status, TargetOutcome
from aoe_pack.convert.pipeline import _with_controls
from aoe_pack.errors import AoePackError, ParityError, RuntimeCrashError

aoe = Cli(env=NO_PASSWORD, process=True)


def onnx_model(folder: Path, nodes: list[Any], inputs: list[Any], outputs: list[Any]) -> Path:
    import onnx
    from onnx import helper

    graph = helper.make_graph(nodes, "g", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(folder / "model.onnx"))
    return folder / "model.onnx"


def config(folder: Path, targets: Sequence[str], **extra: Any) -> Path:
    doc = {
        "version": "1.0.0",
        "tag": "outcomes",
        "runtime": "onnx",
        "modelDir": ".",
        "modelName": "model.onnx",
        "targets": [dict(zip(("runtime", "variant"), t.split(":"), strict=False)) for t in targets],
        **extra,
    }
    path = folder / "config.json"
    path.write_text(json.dumps(doc, indent=2))
    return path


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    prefix = tmp_path_factory.mktemp("keys") / "signer"
    assert aoe("keygen", "--out", prefix).exit_code == 0
    return prefix.with_suffix(".key")


@pytest.fixture(scope="module")
def maxpool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A crash for MNN: ReduceMax over an empty axis; onnx and ort run it."""
    from onnx import TensorProto, helper

    folder = tmp_path_factory.mktemp("empty-reduce")
    onnx_model(
        folder,
        [helper.make_node("ReduceMax", ["x"], ["y"], axes=[1], keepdims=1)],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 0, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 1, 4])],
    )
    # Declared: onnx states the empty axis as a size of 0, which reads as unknown.
    inputs = [{"name": "x", "dtype": "float32", "shape": [2, 0, 4]}]
    return config(folder, ["onnx:basic", "mnn:fp32", "ort:mobile"], inputs=inputs)


def test_pooling_without_strides_no_longer_crashes_mnn(signer: Path, tmp_path: Path) -> None:
    """MNN divides by a missing "strides" (SIGFPE); the build spells out ONNX's default."""
    from onnx import TensorProto, helper

    onnx_model(
        tmp_path,
        [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 31, 31])],
    )
    cfg = config(tmp_path, ["mnn:fp32", "mnn:fp16"])
    r = aoe("build", cfg, "--out", tmp_path / "p.aoe", "--sign-key", signer, "--no-encrypt")
    assert r.exit_code == 0, r.stdout + r.stderr
    rows = [line.split()[:2] for line in r.stdout.splitlines() if line.startswith("  mnn")]
    assert rows == [["mnn-fp32", "ok"], ["mnn-fp16", "ok"]]


def statuses(doc: dict[str, Any]) -> dict[str, str]:
    return {t["target"]: t["status"] for t in doc["targets"]}


def test_a_runtime_crash_fails_only_its_target_and_json_stays_valid(
    maxpool: Path, signer: Path, tmp_path: Path
) -> None:
    out = tmp_path / "pool.aoe"
    r = aoe("build", maxpool, "--out", out, "--sign-key", signer, "--no-encrypt", "--json")
    assert r.exit_code == 1, r.stderr
    doc = json.loads(r.stdout)  # nothing MNN printed got in
    assert doc["ok"] is False
    assert doc["error"]["code"] == "targets-failed"
    assert doc["error"]["message"] == "1 of 3 failed (mnn-fp32); no bundle written"
    assert statuses(doc) == {"onnx-basic": "ok", "mnn-fp32": "crashed", "ort-mobile": "ok"}
    (crash,) = [t for t in doc["targets"] if t["status"] == "crashed"]
    assert crash["code"] == "runtime-crash"
    assert crash["reason"].startswith(
        "mnn-fp32: the mnn runtime crashed with signal SIGSEGV (segmentation fault) "
        "while running the model on the parity inputs"
    )
    assert "mnn's last output:" in crash["reason"]  # the tail of the runtime's own log
    assert not out.exists()
    assert r.stderr == ""  # --json: no progress, and no framework chatter


def test_the_table_shows_every_target_with_its_reason(
    maxpool: Path, signer: Path, tmp_path: Path
) -> None:
    r = aoe("build", maxpool, "--out", tmp_path / "p.aoe", "--sign-key", signer, "--no-encrypt")
    assert r.exit_code == 1
    rows = [line.split()[:2] for line in r.stdout.splitlines() if line.startswith("  ")]
    assert ["onnx-basic", "ok"] in rows
    assert ["mnn-fp32", "crashed"] in rows
    assert ["ort-mobile", "ok"] in rows
    assert "signal SIGSEGV" in r.stdout
    assert "error: 1 of 3 failed (mnn-fp32); no bundle written" in r.stderr
    assert "--skip-failed-targets" in r.stderr
    assert "Traceback" not in r.stderr


def test_skip_failed_targets_ships_the_others_and_records_the_refusal(
    maxpool: Path, signer: Path, tmp_path: Path
) -> None:
    out = tmp_path / "pool.aoe"
    r = aoe(
        "build", maxpool, "--out", out, "--sign-key", signer, "--no-encrypt",
        "--skip-failed-targets", "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.stdout
    assert statuses(json.loads(r.stdout))["mnn-fp32"] == "crashed"
    doc = json.loads(aoe("inspect", out, "--json").stdout)
    assert [c["target"] for c in doc["provenance"]["conversions"]] == ["onnx-basic", "ort-mobile"]
    (refused,) = doc["provenance"]["refused"]
    assert (refused["target"], refused["status"], refused["code"]) == (
        "mnn-fp32",
        "crashed",
        "runtime-crash",
    )
    assert "seconds" not in refused
    assert not [f for f in doc["files"] if f["path"].startswith("mnn/")]
    text = aoe("inspect", out).stdout
    assert "refused   mnn-fp32: crashed (runtime-crash): mnn-fp32: the mnn runtime crashed" in text


def test_no_target_passing_is_a_failure_even_when_skipping(
    maxpool: Path, signer: Path, tmp_path: Path
) -> None:
    out = tmp_path / "pool.aoe"
    r = aoe(
        "build", maxpool, "--out", out, "--sign-key", signer, "--no-encrypt",
        "--target", "mnn", "--skip-failed-targets", "--json",
    )  # fmt: skip
    assert r.exit_code == 1
    assert json.loads(r.stdout)["error"]["message"] == (
        "no target passed (mnn-fp32); no bundle written"
    )
    assert not out.exists()


def test_a_source_that_fails_on_the_parity_inputs_is_a_named_error(
    signer: Path, tmp_path: Path
) -> None:
    """Resize's scales as a graph input: random samples in [0, 1] are scales it rejects."""
    from onnx import TensorProto, helper

    onnx_model(
        tmp_path,
        [helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="nearest")],
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4]),
            helper.make_tensor_value_info("scales", TensorProto.FLOAT, [3]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, "h", "w"])],
    )
    cfg = config(tmp_path, ["onnx:basic"])
    r = aoe("build", cfg, "--out", tmp_path / "r.aoe", "--sign-key", signer, "--no-encrypt")
    assert r.exit_code == 1
    assert "Traceback" not in r.stderr
    assert "internal error" not in r.stderr
    assert "error: the source model fails on the parity inputs: the source model: " in r.stderr
    assert 'hint: declare each input\'s "range"' in r.stderr
    argv = ["build", cfg, "--out", tmp_path / "r.aoe", "--sign-key", signer, "--no-encrypt"]
    doc = json.loads(aoe(*argv, "--json").stdout)
    assert doc["error"]["code"] == "source-run"


def test_a_source_that_ignores_its_input_is_reported_inconclusive(
    signer: Path, tmp_path: Path
) -> None:
    from onnx import TensorProto, helper

    zero = helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0])
    bias = helper.make_tensor("bias", TensorProto.FLOAT, [1, 4], [0.1, 0.2, 0.3, 0.4])
    onnx_model(
        tmp_path,
        [
            helper.make_node("Constant", [], ["z"], value=zero),
            helper.make_node("Constant", [], ["b"], value=bias),
            helper.make_node("Mul", ["x", "z"], ["xz"]),
            helper.make_node("Add", ["xz", "b"], ["y"]),
        ],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    cfg = config(tmp_path, ["onnx:basic"])
    out = tmp_path / "c.aoe"
    r = aoe("build", cfg, "--out", out, "--sign-key", signer, "--no-encrypt")
    assert r.exit_code == 0, r.stderr
    assert "parity inconclusive: the source's output(s) y barely change" in r.stdout
    doc = json.loads(aoe("inspect", out, "--json").stdout)
    assert doc["provenance"]["parityInconclusive"] == ["y"]
    assert doc["provenance"]["conversions"][0]["parity"]["conclusive"] is False
    assert "INCONCLUSIVE" in aoe("inspect", out).stdout


# --- a reduced variant needs its float32 counterpart ----------------------------------


def _outcome(name: str, status: Status, *, error: AoePackError | None = None) -> TargetOutcome:
    runtime, variant = name.split("-", 1)
    return TargetOutcome(
        target=Target(runtime=runtime, variant=variant),
        status=status,
        error=error,
        parity=Parity(samples=0, tolerance=Precision.FLOAT32, outputs=()),
    )


def test_reduced_variants_bring_their_float32_counterpart_as_a_control() -> None:
    names = [("mnn", "fp16"), ("tflite", "int8"), ("tflite", "fp32"), ("ncnn", "fp32")]
    targets = [Target(runtime=r, variant=v) for r, v in names]
    assert [t.name for t in _with_controls(targets)] == ["mnn-fp32"]


def test_a_reduced_variant_fails_when_its_float32_counterpart_fails_parity() -> None:
    """MNN's batch-norm bug: off by the same 3.8e-3 in fp32 (refused) and fp16 (tolerated)."""
    fp32 = _outcome(
        "mnn-fp32",
        Status.PARITY_FAILED,
        error=ParityError("mnn-fp32: output 0: max abs error 3.80e-03 exceeds 1.00e-04"),
    )
    fp16 = _outcome("mnn-fp16", Status.OK)
    judged = vouched(fp16, {"mnn-fp32": fp32, "mnn-fp16": fp16})
    assert judged.status is Status.PARITY_FAILED
    assert isinstance(judged.error, ParityError)
    assert judged.reason == (
        "mnn-fp16: not accepted because its float32 counterpart mnn-fp32 fails parity "
        "(mnn-fp32: output 0: max abs error 3.80e-03 exceeds 1.00e-04); a looser tolerance "
        "must not hide a conversion error"
    )


def test_a_reduced_variant_fails_when_its_float32_counterpart_crashes() -> None:
    fp32 = _outcome("tflite-fp32", Status.CRASHED, error=RuntimeCrashError("died"))
    int8 = _outcome("tflite-int8", Status.OK)
    judged = vouched(int8, {"tflite-fp32": fp32})
    assert judged.status is Status.PARITY_FAILED
    assert "its float32 counterpart tflite-fp32 was crashed (died)" in (judged.reason or "")


def test_a_reduced_variant_is_remeasured_on_the_graph_its_counterpart_passed_on() -> None:
    """fp32 passed only with the ONNX functions expanded; fp16 passed on the model as it is."""
    fp32 = replace(_outcome("mnn-fp32", Status.OK), expanded=True)
    fp16 = _outcome("mnn-fp16", Status.OK)
    asked: list[tuple[str, bool, bool]] = []

    def failing(target: Target, control: bool, expand: bool) -> TargetOutcome:
        asked.append((target.name, control, expand))
        return _outcome(target.name, Status.PARITY_FAILED, error=ParityError("off by 2"))

    judged = vouched(fp16, {"mnn-fp32": fp32}, failing)
    # fp16 on fp32's graph, then fp32 (as a control) on fp16's graph
    assert asked == [("mnn-fp16", False, True), ("mnn-fp32", True, False)]
    assert judged.status is Status.PARITY_FAILED
    assert judged.reason == (
        "mnn-fp16: not accepted because its float32 counterpart mnn-fp32 passed only on the "
        "model with its ONNX functions expanded, where this variant fails (off by 2)"
    )
    passing = replace(_outcome("mnn-fp16", Status.OK), expanded=True)
    assert vouched(fp16, {"mnn-fp32": fp32}, lambda *_: passing) is passing


def test_a_counterpart_remeasured_on_the_variants_graph_vouches_for_it() -> None:
    fp32 = _outcome("tflite-fp32", Status.OK)
    int8 = replace(_outcome("tflite-int8", Status.OK), expanded=True)

    def only_fp32_passes(target: Target, control: bool, expand: bool) -> TargetOutcome:
        ok = target.name == "tflite-fp32" and control and expand
        return _outcome(target.name, Status.OK if ok else Status.PARITY_FAILED)

    assert vouched(int8, {"tflite-fp32": fp32}, only_fp32_passes) is int8


def test_a_reduced_variant_stands_when_its_float32_counterpart_passes() -> None:
    fp32 = _outcome("ncnn-fp32", Status.OK)
    fp16 = _outcome("ncnn-fp16", Status.OK)
    assert vouched(fp16, {"ncnn-fp32": fp32}) is fp16
