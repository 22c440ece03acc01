"""TFLite: every variant from mnist.keras within its default tolerance, and the refusals."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from aoe_pack.config import load_config
from aoe_pack.convert import parity
from aoe_pack.convert.api import Target, Tolerance
from aoe_pack.convert.context import BuildContext, load_calibration
from aoe_pack.convert.runners import LiteRTRunner
from aoe_pack.convert.sources import load_source
from aoe_pack.convert.tflite import TFLiteConverter
from aoe_pack.errors import ConversionError, ModelFileError, ParityError

TFLITE = TFLiteConverter()

if TYPE_CHECKING:  # conftest is pytest's to import; only its types are needed here
    from conftest import Converted, Loaded

SAMPLES = Path(__file__).resolve().parents[2] / "sample_models"


@pytest.mark.parametrize("variant", TFLITE.variants)
def test_variant_from_keras_is_within_its_default_tolerance(
    converted: Callable[[str, str, str], Converted], variant: str
) -> None:
    made = converted("mnist.keras", "tflite", variant)
    assert made.parity.tolerance == TFLITE.default_tolerance(variant)
    assert made.parity.passed, made.parity
    assert all(o.mean_abs <= o.max_abs for o in made.parity.outputs)
    assert made.parity.top1 == 1.0
    assert made.parity.samples == parity.DEFAULT_SAMPLES
    (file,) = made.artifact.files
    assert file.bundle_path == f"tflite/{variant}/mnist.tflite"
    assert file.role == "model"
    assert file.local.is_file()
    assert "tensorflow" in made.artifact.tools


def test_float_variants_are_tight_and_quantised_ones_are_not_exact(
    converted: Callable[[str, str, str], Converted],
) -> None:
    errors = {v: converted("mnist.keras", "tflite", v).parity.max_abs for v in TFLITE.variants}
    assert errors["fp32"] < 1e-6
    assert errors["int8-dynamic"] > 0
    assert errors["int8"] > 0


def test_quantised_variants_are_smaller(converted: Callable[[str, str, str], Converted]) -> None:
    size = {
        v: converted("mnist.keras", "tflite", v).artifact.files[0].local.stat().st_size
        for v in TFLITE.variants
    }
    assert size["fp16"] < size["fp32"]
    assert size["int8"] < size["fp16"]
    assert size["int8-dynamic"] < size["fp16"]


def test_converted_keeps_the_tflite_tensor_names_the_config_declares(
    converted: Callable[[str, str, str], Converted],
) -> None:
    config = load_config(SAMPLES / "mnist" / "config.json")
    artifact = converted("mnist.keras", "tflite", "fp32").artifact
    source, _ = load_source(artifact.files[0].local, inputs=config.inputs, outputs=config.outputs)
    assert source.details["model_inputs"] == ["serving_default_image:0"]


def test_int8_beyond_an_absurd_tolerance_fails_parity(
    loaded: Callable[[str], Loaded], build_ctx: BuildContext
) -> None:
    sample = loaded("mnist.keras")
    target = Target(runtime="tflite", variant="int8", tolerance=Tolerance.absolute(1e-9))
    artifact = TFLITE.convert(sample.source, target, build_ctx.for_target(target))
    assert target.tolerance is not None
    measured = parity.measure(
        sample.reference, TFLITE.load(artifact), sample.inputs, tolerance=target.tolerance
    )
    assert not measured.passed
    with pytest.raises(ParityError, match=r"tflite-int8: output 0: max abs error .* exceeds"):
        parity.check(measured, target.name)


def test_int8_calibrates_on_the_npz_the_config_names(
    loaded: Callable[[str], Loaded], tmp_path: Path
) -> None:
    sample = loaded("mnist.keras")
    rng = np.random.default_rng(7)
    # Stacked along the batch axis: 16 samples of the declared [1, 28, 28, 1].
    np.savez(tmp_path / "calib.npz", digits=rng.uniform(0, 1, (16, 28, 28, 1)))
    ctx = BuildContext(tmp_path / "build", config_dir=tmp_path)
    target = Target(runtime="tflite", variant="int8", options={"calibration": "calib.npz"})
    target_ctx = ctx.for_target(target)
    calibration = target_ctx.calibration(sample.source)
    assert len(calibration) == 16
    assert calibration[0]["serving_default_image:0"].shape == (1, 28, 28, 1)
    assert calibration[0]["serving_default_image:0"].dtype == np.float32
    artifact = TFLITE.convert(sample.source, target, target_ctx)
    measured = parity.measure(
        sample.reference, TFLITE.load(artifact), sample.inputs, tolerance=Tolerance.absolute(1e-1)
    )
    assert measured.passed, measured


def test_int8_with_integer_io_is_quantised_by_the_runner(
    loaded: Callable[[str], Loaded], build_ctx: BuildContext
) -> None:
    sample = loaded("mnist.keras")
    target = Target(runtime="tflite", variant="int8", options={"io_dtype": "int8"})
    artifact = TFLITE.convert(sample.source, target, build_ctx.for_target(target))
    runner = TFLITE.load(artifact)
    assert isinstance(runner, LiteRTRunner)
    ((model_in, _),) = runner.input_details
    (model_out,) = runner.output_details
    assert (model_in["dtype"], model_out["dtype"]) == (np.int8, np.int8)
    measured = parity.measure(
        sample.reference, runner, sample.inputs, tolerance=TFLITE.default_tolerance("int8")
    )
    assert measured.passed, measured


def test_unknown_io_dtype_is_refused(
    loaded: Callable[[str], Loaded], build_ctx: BuildContext
) -> None:
    target = Target(runtime="tflite", variant="fp16", options={"io_dtype": "int8"})
    with pytest.raises(ConversionError, match="io_dtype 'int8' is not possible"):
        TFLITE.convert(loaded("mnist.keras").source, target, build_ctx.for_target(target))


def test_savedmodel_source_converts(mnist_savedmodel: Path, build_ctx: BuildContext) -> None:
    config = load_config(SAMPLES / "mnist" / "config.json")
    source, reference = load_source(mnist_savedmodel, inputs=config.inputs, outputs=config.outputs)
    target = Target(runtime="tflite", variant="fp32")
    artifact = TFLITE.convert(source, target, build_ctx.for_target(target))
    assert artifact.files[0].bundle_path == "tflite/fp32/mnist_savedmodel.tflite"
    measured = parity.measure(
        reference,
        TFLITE.load(artifact),
        parity.sample_inputs(source),
        tolerance=Tolerance.absolute(1e-5),
    )
    assert measured.passed, measured


def test_tflite_source_fp32_is_a_copy(
    loaded: Callable[[str], Loaded], build_ctx: BuildContext
) -> None:
    source = loaded("mnist.tflite").source
    target = Target(runtime="tflite", variant="fp32")
    artifact = TFLITE.convert(source, target, build_ctx.for_target(target))
    assert artifact.files[0].local.read_bytes() == source.path.read_bytes()


@pytest.mark.parametrize("variant", ["fp16", "int8-dynamic", "int8"])
def test_tflite_source_cannot_be_quantised(
    loaded: Callable[[str], Loaded], build_ctx: BuildContext, variant: str
) -> None:
    target = Target(runtime="tflite", variant=variant)
    with pytest.raises(ConversionError, match="quantising needs the float model") as caught:
        TFLITE.convert(loaded("mnist.tflite").source, target, build_ctx.for_target(target))
    assert "Keras, SavedModel or ONNX source" in (caught.value.hint or "")


@pytest.mark.parametrize("variant", ["fp32", "fp16"])
def test_onnx_source_reaches_tflite_channels_last(
    converted: Callable[[str, str, str], Converted], variant: str
) -> None:
    """onnx2tf lays the NCHW image out NHWC; the .io.json says so and the runner follows it."""
    made = converted("squeezenet.onnx", "tflite", variant)
    assert made.parity.passed, made.parity
    assert [f.bundle_path for f in made.artifact.files] == [
        f"tflite/{variant}/squeezenet.tflite",
        f"tflite/{variant}/squeezenet.io.json",
    ]
    layout = json.loads(made.artifact.files[1].local.read_text())
    (image,) = layout["inputs"]
    assert (image["name"], image["onnxShape"], image["shape"]) == (
        "image",
        [1, 3, 64, 64],
        [1, 64, 64, 3],
    )
    assert image["perm"] == [0, 2, 3, 1]
    assert layout["outputs"][0]["perm"] == [0, 1]
    assert made.artifact.tools["onnx2tf"] == "2.6.9"


# --- calibration data ------------------------------------------------------------------


def test_calibration_stacked_on_a_new_axis(loaded: Callable[[str], Loaded], tmp_path: Path) -> None:
    source = loaded("mnist.keras").source
    np.savez(tmp_path / "c.npz", **{"serving_default_image:0": np.zeros((3, 1, 28, 28, 1))})
    samples = load_calibration(tmp_path / "c.npz", source)
    assert [s["serving_default_image:0"].shape for s in samples] == [(1, 28, 28, 1)] * 3


def test_calibration_of_the_wrong_shape_is_refused(
    loaded: Callable[[str], Loaded], tmp_path: Path
) -> None:
    np.savez(tmp_path / "c.npz", x=np.zeros((4, 32, 32, 3)))
    with pytest.raises(ConversionError, match=r"shape \[4, 32, 32, 3\] does not hold samples"):
        load_calibration(tmp_path / "c.npz", loaded("mnist.keras").source)


def test_missing_calibration_file_is_named(loaded: Callable[[str], Loaded], tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match=r"calibration data .*nope\.npz does not exist"):
        load_calibration(tmp_path / "nope.npz", loaded("mnist.keras").source)


def test_calibration_defaults_to_seeded_samples(
    loaded: Callable[[str], Loaded], build_ctx: BuildContext
) -> None:
    source = loaded("mnist.keras").source
    ctx = build_ctx.for_target(Target(runtime="tflite", variant="int8"))
    first, again = ctx.calibration(source), ctx.calibration(source)
    assert len(first) == 32
    np.testing.assert_array_equal(
        first[5]["serving_default_image:0"], again[5]["serving_default_image:0"]
    )


def test_multi_input_output_keras_keeps_tensor_order(
    multi_io_keras: Path, build_ctx: BuildContext
) -> None:
    from aoe_pack.config.model import TensorSpec
    from aoe_pack.convert.onnx_target import OnnxConverter

    inputs = (
        TensorSpec(name="alpha", dtype="float32", shape=(1, 4)),
        TensorSpec(name="beta", dtype="float32", shape=(1, 3)),
    )
    outputs = (
        TensorSpec(name="zeta_probs", dtype="float32", shape=(1, 5)),
        TensorSpec(name="aaa_reg", dtype="float32", shape=(1, 2)),
    )
    source, reference = load_source(multi_io_keras, inputs=inputs, outputs=outputs)
    assert source.details["model_inputs"] == ["alpha", "beta"]
    samples = parity.sample_inputs(source)
    for conv, variant in [(TFLITE, "fp32"), (OnnxConverter(), "basic")]:
        target = Target(runtime=conv.runtime, variant=variant)
        runner = conv.load(conv.convert(source, target, build_ctx.for_target(target)))
        assert [o.shape for o in runner(samples[0])] == [(1, 5), (1, 2)]
        measured = parity.measure(reference, runner, samples, tolerance=Tolerance.absolute(1e-5))
        assert measured.passed, (target.name, measured)
