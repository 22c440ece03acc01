"""Source validation: formats, declared I/O against the model, broken files, reference runners."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from aoe_pack.config import load_config
from aoe_pack.config.model import TensorSpec
from aoe_pack.convert import parity
from aoe_pack.convert.api import Tolerance
from aoe_pack.convert.sources import detect_format, load_source
from aoe_pack.errors import (
    ModelFileError,
    ModelInvalidError,
    ModelSignatureError,
    UnsupportedModelError,
)

if TYPE_CHECKING:  # conftest is pytest's to import; only its types are needed here
    from conftest import Loaded

SAMPLES = Path(__file__).resolve().parents[2] / "sample_models"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "models"

SQUEEZE_IN = TensorSpec(name="image", dtype="float32", shape=(1, 3, 64, 64))
SQUEEZE_OUT = TensorSpec(name="probabilities", dtype="float32", shape=(1, 100))
SQUEEZENET = SAMPLES / "squeezenet" / "squeezenet.onnx"
MNIST_KERAS = SAMPLES / "mnist" / "mnist.keras"


def tiny_onnx(path: Path, *, opset: int = 17, dims: tuple[int | str, ...] = (1, 4)) -> Path:
    from onnx import TensorProto, helper, save

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(dims))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(dims))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    save(model, str(path))
    return path


# --- formats ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("m.keras", "keras"), ("m.h5", "keras"), ("m.TFLITE", "tflite"), ("m.onnx", "onnx")],
)
def test_detect_format_by_suffix(tmp_path: Path, name: str, fmt: str) -> None:
    assert detect_format(tmp_path / name) == fmt


def test_detect_format_savedmodel_folder(tmp_path: Path) -> None:
    (tmp_path / "saved_model.pb").write_bytes(b"")
    assert detect_format(tmp_path) == "savedmodel"


def test_folder_without_saved_model_pb_is_unsupported(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedModelError, match=r"without saved_model\.pb"):
        detect_format(tmp_path)


def test_unknown_suffix_is_unsupported(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedModelError, match=r"model\.pt: aoe-pack cannot convert \.pt"):
        detect_format(tmp_path / "model.pt")


def test_missing_model_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match=r"gone\.onnx does not exist"):
        load_source(tmp_path / "gone.onnx", inputs=(SQUEEZE_IN,), outputs=(SQUEEZE_OUT,))


# --- each format loads, with what validation found ----------------------------------


def test_onnx_reports_opset_and_ir_version(loaded: Callable[[str], Loaded]) -> None:
    source = loaded("squeezenet.onnx").source
    assert source.format == "onnx"
    assert source.details["opset"] == 17
    assert source.details["ir_version"] == 8
    assert source.details["model_inputs"] == ["image"]
    assert source.details["model_outputs"] == ["probabilities"]


def test_tflite_reports_its_signature(loaded: Callable[[str], Loaded]) -> None:
    source = loaded("mnist.tflite").source
    assert source.details["signatures"] == {
        "serving_default": {"inputs": ["image"], "outputs": ["output_0"]}
    }
    assert source.details["model_inputs"] == ["serving_default_image:0"]


def test_keras_declared_with_tflite_names_matches_by_position(
    loaded: Callable[[str], Loaded],
) -> None:
    # The sample config declares the .tflite's tensor names; the Keras model
    # calls its input "image" and its output keras_tensor_<n>.
    source = loaded("mnist.keras").source
    assert source.inputs[0].name == "serving_default_image:0"
    assert source.details["model_inputs"] == ["image"]
    assert source.details["model_outputs"] == ["output_0"]


@pytest.mark.parametrize("output_name", ["probabilities", "output_0"])
def test_keras_declared_with_its_own_names(output_name: str) -> None:
    source, _ = load_source(
        MNIST_KERAS,
        inputs=(TensorSpec(name="image", dtype="float32", shape=(1, 28, 28, 1)),),
        outputs=(TensorSpec(name=output_name, dtype="float32", shape=(1, 10)),),
    )
    assert source.format == "keras"


def test_keras_input_with_a_foreign_name_is_rejected() -> None:
    with pytest.raises(ModelSignatureError) as caught:
        load_source(
            MNIST_KERAS,
            inputs=(TensorSpec(name="pixels", dtype="float32", shape=(1, 28, 28, 1)),),
            outputs=(TensorSpec(name="probabilities", dtype="float32", shape=(1, 10)),),
        )
    assert "declared pixels float32 [1, 28, 28, 1] | model image float32 [1, 28, 28, 1]" in str(
        caught.value
    )


def test_savedmodel_reads_serving_signature(mnist_savedmodel: Path) -> None:
    config = load_config(SAMPLES / "mnist" / "config.json")
    source, runner = load_source(mnist_savedmodel, inputs=config.inputs, outputs=config.outputs)
    assert source.format == "savedmodel"
    assert source.details["signature"] == "serving_default"
    assert source.details["model_inputs"] == ["image"]
    (out,) = runner(parity.sample_inputs(source, samples=1)[0])
    assert out.shape == (1, 10)


def test_reference_runners_of_keras_and_its_tflite_agree(
    loaded: Callable[[str], Loaded],
) -> None:
    keras, tflite = loaded("mnist.keras"), loaded("mnist.tflite")
    measured = parity.measure(
        keras.reference, tflite.reference, keras.inputs, tolerance=Tolerance.absolute(1e-5)
    )
    assert measured.passed, measured
    assert measured.top1 == 1.0


# --- declared I/O that disagrees with the model -------------------------------------


def test_io_disagrees_fixture_shows_both_sides() -> None:
    config = load_config(FIXTURES / "io-disagrees" / "config.json")
    with pytest.raises(ModelSignatureError) as caught:
        load_source(
            config.model_root / config.model_name, inputs=config.inputs, outputs=config.outputs
        )
    message = str(caught.value)
    assert "model.onnx: the model's inputs/outputs disagree with the config" in message
    assert (
        "input 0: declared input float16 [1, 4] | model x float32 [1, 4]   <- differs: name, dtype"
        in message
    )
    assert "output 0: declared y float32 [1, 8] | model y float32 [1, 4]   <- differs: shape" in (
        message
    )
    assert caught.value.hint is not None


@pytest.mark.parametrize(
    ("inputs", "outputs", "expected"),
    [
        pytest.param(
            (TensorSpec(name="img", dtype="float32", shape=(1, 3, 64, 64)),),
            (SQUEEZE_OUT,),
            "input 0: declared img float32 [1, 3, 64, 64] | model image float32 [1, 3, 64, 64]"
            "   <- differs: name",
            id="name",
        ),
        pytest.param(
            (TensorSpec(name="image", dtype="uint8", shape=(1, 3, 64, 64)),),
            (SQUEEZE_OUT,),
            "declared image uint8 [1, 3, 64, 64] | model image float32 [1, 3, 64, 64]"
            "   <- differs: dtype",
            id="dtype",
        ),
        pytest.param(
            (TensorSpec(name="image", dtype="float32", shape=(1, 64, 64, 3)),),
            (SQUEEZE_OUT,),
            "declared image float32 [1, 64, 64, 3] | model image float32 [1, 3, 64, 64]"
            "   <- differs: shape",
            id="layout",
        ),
        pytest.param(
            (TensorSpec(name="image", dtype="float32", shape=(3, 64, 64)),),
            (SQUEEZE_OUT,),
            "<- differs: rank",
            id="rank",
        ),
        pytest.param(
            (SQUEEZE_IN,),
            (SQUEEZE_OUT, TensorSpec(name="logits", dtype="float32", shape=(1, 100))),
            "output 1: declared logits float32 [1, 100] | model (none)   <- not in the model",
            id="extra-output",
        ),
        pytest.param(
            (),
            (SQUEEZE_OUT,),
            "input 0: declared (none) | model image float32 [1, 3, 64, 64]   <- not declared",
            id="missing-input",
        ),
    ],
)
def test_declared_io_mismatch_is_named(
    inputs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...], expected: str
) -> None:
    with pytest.raises(ModelSignatureError) as caught:
        load_source(SQUEEZENET, inputs=inputs, outputs=outputs)
    assert expected in str(caught.value)


def test_declared_dynamic_dimension_matches_any_size() -> None:
    dynamic = TensorSpec(name="image", dtype="float32", shape=(-1, 3, 64, 64))
    source, _ = load_source(SQUEEZENET, inputs=(dynamic,), outputs=(SQUEEZE_OUT,))
    assert source.inputs == (dynamic,)


def test_model_dynamic_dimension_matches_any_declared_size(tmp_path: Path) -> None:
    model = tiny_onnx(tmp_path / "dyn.onnx", dims=("batch", 4))
    spec = TensorSpec(name="x", dtype="float32", shape=(8, 4))
    out = TensorSpec(name="y", dtype="float32", shape=(8, 4))
    _, runner = load_source(model, inputs=(spec,), outputs=(out,))
    (y,) = runner({"x": np.full((8, 4), -1.0, dtype=np.float32)})
    assert y.shape == (8, 4)
    assert float(y.max()) == 0.0


# --- broken model files ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["truncated.onnx", "truncated.tflite", "truncated.keras"])
def test_truncated_model_is_invalid_and_named(name: str) -> None:
    with pytest.raises(ModelInvalidError) as caught:
        load_source(FIXTURES / name, inputs=(SQUEEZE_IN,), outputs=(SQUEEZE_OUT,))
    assert type(caught.value) is ModelInvalidError
    assert str(caught.value).startswith(name)
    assert "truncated" in caught.value.diagnostics()


def test_an_opset_onnxruntime_does_not_know_is_invalid() -> None:
    with pytest.raises(
        ModelInvalidError,
        match=r"onnxruntime cannot load opset-99\.onnx \(IR version 8, opset 99\)",
    ):
        load_source(FIXTURES / "opset-99.onnx", inputs=(), outputs=())


def test_opsets_before_onnxruntimes_are_unsupported(tmp_path: Path) -> None:
    model = tiny_onnx(tmp_path / "opset-6.onnx", opset=6)
    with pytest.raises(
        UnsupportedModelError,
        match=r"opset-6\.onnx uses ONNX opset 6; onnxruntime, which aoe-pack checks every "
        r"conversion against, runs opsets 7 and later",
    ):
        load_source(model, inputs=(), outputs=())


@pytest.mark.parametrize("opset", [19, 21])
def test_opsets_beyond_the_mobile_converters_are_sources_all_the_same(
    tmp_path: Path, opset: int
) -> None:
    """Converters that stop at 18 get the model down-converted (BuildContext.onnx_of)."""
    model = tiny_onnx(tmp_path / f"opset-{opset}.onnx", opset=opset)
    source, _ = load_source(model, inputs=None, outputs=None)
    assert source.details["opset"] == opset


def test_the_build_down_converts_for_converters_that_stop_at_18(tmp_path: Path) -> None:
    import onnx

    from aoe_pack.convert.context import BuildContext

    model = tiny_onnx(tmp_path / "opset-21.onnx", opset=21)
    source, _ = load_source(model, inputs=None, outputs=None)
    ctx = BuildContext(tmp_path / "build")
    assert ctx.onnx_of(source) == model  # onnx and ort take it as it is
    lowered = ctx.onnx_of(source, max_opset=18)
    assert lowered != model
    assert onnx.load(str(lowered)).opset_import[0].version == 18
    assert ctx.onnx_of(source, max_opset=18) == lowered  # once per build


def test_ops_newer_than_the_converters_pass_through_as_they_are(tmp_path: Path) -> None:
    """Gelu exists from opset 20 only: no down-conversion, the converter reads it by name."""
    from onnx import TensorProto, helper, save

    from aoe_pack.convert.context import BuildContext

    graph = helper.make_graph(
        [helper.make_node("Gelu", ["x"], ["y"])],
        "gelu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    save(model, str(tmp_path / "gelu.onnx"))
    source, _ = load_source(tmp_path / "gelu.onnx", inputs=None, outputs=None)
    assert BuildContext(tmp_path / "b").onnx_of(source, max_opset=18) == source.path


def test_model_failing_the_checker_is_invalid(tmp_path: Path) -> None:
    from onnx import TensorProto, helper, save

    graph = helper.make_graph(
        [helper.make_node("Relu", ["nowhere"], ["y"])],
        "dangling",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    save(model, str(tmp_path / "dangling.onnx"))
    with pytest.raises(ModelInvalidError, match=r"dangling\.onnx fails the ONNX checker"):
        load_source(tmp_path / "dangling.onnx", inputs=(), outputs=())


def test_text_file_named_tflite_is_invalid(tmp_path: Path) -> None:
    fake = tmp_path / "notes.tflite"
    fake.write_text("not a model\n")
    with pytest.raises(ModelInvalidError, match=r"notes\.tflite is not a TFLite model"):
        load_source(fake, inputs=(), outputs=())


# --- inspect_source: the as-is check, without the reference runner ---------------------


def test_tflite_inspected_as_it_is_reports_what_loading_it_does() -> None:
    from aoe_pack.config import load_config
    from aoe_pack.convert.sources import inspect_source

    config = load_config(SAMPLES / "mnist" / "config.json")
    model = SAMPLES / "mnist" / "mnist.tflite"
    for declared in ((config.inputs, config.outputs), (None, None)):
        light = inspect_source(model, inputs=declared[0], outputs=declared[1])
        full, _ = load_source(model, inputs=declared[0], outputs=declared[1])
        assert light == full


@pytest.mark.parametrize("name", ["truncated.tflite", "truncated.onnx"])
def test_inspect_refuses_a_truncated_model(name: str) -> None:
    from aoe_pack.convert.sources import inspect_source

    with pytest.raises(ModelInvalidError, match=rf"{re.escape(name)} is not a"):
        inspect_source(FIXTURES / name, inputs=None, outputs=None)


def test_text_file_named_tflite_is_invalid_when_inspected(tmp_path: Path) -> None:
    from aoe_pack.convert.sources import inspect_source

    fake = tmp_path / "notes.tflite"
    fake.write_text("not a model\n")
    with pytest.raises(ModelInvalidError, match=r"notes\.tflite is not a TFLite model"):
        inspect_source(fake, inputs=(), outputs=())


# --- imports: no TensorFlow for TFLite/ONNX, nothing written into the home folder -------


def test_tflite_and_onnx_sources_load_without_tensorflow_and_keep_home_clean(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    script = textwrap.dedent(
        f"""
        import json, sys
        from pathlib import Path
        from aoe_pack.config import load_config
        from aoe_pack.convert.sources import load_source
        samples = Path({str(SAMPLES)!r})
        for model, config in [("mnist/mnist.tflite", "mnist/config.json"),
                              ("squeezenet/squeezenet.onnx", "squeezenet/config.json")]:
            c = load_config(samples / config)
            load_source(samples / model, inputs=c.inputs, outputs=c.outputs)
        tf_before_keras = "tensorflow" in sys.modules
        c = load_config(samples / "mnist/config.json")
        load_source(samples / "mnist/mnist.keras", inputs=c.inputs, outputs=c.outputs)
        print(json.dumps({{"tf_before_keras": tf_before_keras}}))
        """
    )
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"tf_before_keras": False}
    assert sorted(p.relative_to(home).as_posix() for p in home.rglob("*")) == []
