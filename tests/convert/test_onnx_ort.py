"""ONNX (optimised) and ORT (mobile) from mnist.keras and squeezenet.onnx, within tolerance."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from aoe_pack.config import load_config
from aoe_pack.convert import context, parity
from aoe_pack.convert.api import Converter, SourceModel, Target, Tolerance
from aoe_pack.convert.context import BuildContext
from aoe_pack.convert.frameworks import import_onnx
from aoe_pack.convert.onnx_target import OnnxConverter
from aoe_pack.convert.ort import OrtConverter
from aoe_pack.convert.sources import load_source
from aoe_pack.convert.tflite import TFLiteConverter
from aoe_pack.errors import ConversionError

ONNX, ORT = OnnxConverter(), OrtConverter()
TARGETS = [("onnx", v) for v in ONNX.variants] + [("ort", v) for v in ORT.variants]

if TYPE_CHECKING:  # conftest is pytest's to import; only its types are needed here
    from conftest import Converted, Loaded

SAMPLES = Path(__file__).resolve().parents[2] / "sample_models"


def _domains(path: Path) -> set[str]:
    model = import_onnx().load(str(path))
    return {node.domain for node in model.graph.node}


@pytest.mark.parametrize("sample", ["mnist.keras", "squeezenet.onnx"])
@pytest.mark.parametrize(("runtime", "variant"), TARGETS)
def test_target_is_within_its_default_tolerance(
    converted: Callable[[str, str, str], Converted], sample: str, runtime: str, variant: str
) -> None:
    made = converted(sample, runtime, variant)
    conv = {"onnx": ONNX, "ort": ORT}[runtime]
    assert made.parity.tolerance == conv.default_tolerance(variant)
    assert made.parity.passed, made.parity
    assert all(o.mean_abs <= o.max_abs for o in made.parity.outputs)
    assert made.parity.top1 == 1.0
    stem = Path(sample).stem
    model = made.artifact.files[0]
    assert model.role == "model"
    assert (
        model.bundle_path == f"{runtime}/{variant}/{stem}.{'ort' if runtime == 'ort' else 'onnx'}"
    )
    assert model.local.is_file()
    assert made.artifact.layout is None  # tf2onnx keeps Keras's NHWC; ONNX stays NCHW
    assert ("tf2onnx" in made.artifact.tools) == (sample == "mnist.keras")


@pytest.mark.parametrize("sample", ["mnist.keras", "squeezenet.onnx"])
def test_ort_ships_its_required_operators_config(
    converted: Callable[[str, str, str], Converted], sample: str
) -> None:
    artifact = converted(sample, "ort", "mobile").artifact
    stem = Path(sample).stem
    assert [(f.bundle_path, f.role) for f in artifact.files] == [
        (f"ort/mobile/{stem}.ort", "model"),
        (f"ort/mobile/{stem}.required_operators.config", "asset"),
    ]
    config = artifact.files[1].local.read_text()
    assert "ai.onnx;12;MaxPool" in config.splitlines()
    # Not the build machine's path of the .ort: the bundle must not vary with it.
    assert f"# - {stem}.ort" in config.splitlines()
    assert not [line for line in config.splitlines() if line.startswith("# - /")]


def test_extended_emits_microsoft_ops_and_basic_does_not(
    converted: Callable[[str, str, str], Converted],
) -> None:
    basic = converted("squeezenet.onnx", "onnx", "basic").artifact.files[0].local
    extended = converted("squeezenet.onnx", "onnx", "extended").artifact.files[0].local
    assert _domains(basic) == {""}
    assert "com.microsoft" in _domains(extended)


def test_slim_keeps_standard_ops(converted: Callable[[str, str, str], Converted]) -> None:
    slim = converted("squeezenet.onnx", "onnx", "slim").artifact.files[0].local
    assert _domains(slim) == {""}


@pytest.mark.parametrize(("runtime", "variant"), [("onnx", "basic"), ("ort", "mobile")])
def test_tflite_source_reaches_onnx_and_ort(
    converted: Callable[[str, str, str], Converted], runtime: str, variant: str
) -> None:
    made = converted("mnist.tflite", runtime, variant)
    assert made.parity.max_abs < 1e-5, made.parity


def test_savedmodel_source_reaches_onnx(mnist_savedmodel: Path, build_ctx: BuildContext) -> None:
    config = load_config(SAMPLES / "mnist" / "config.json")
    source, reference = load_source(mnist_savedmodel, inputs=config.inputs, outputs=config.outputs)
    target = Target(runtime="onnx", variant="basic")
    artifact = ONNX.convert(source, target, build_ctx.for_target(target))
    measured = parity.measure(
        reference,
        ONNX.load(artifact),
        parity.sample_inputs(source),
        tolerance=Tolerance.absolute(1e-5),
    )
    assert measured.passed, measured


# --- the build context's ONNX form ---------------------------------------------------


def test_onnx_source_is_its_own_onnx_form(
    loaded: Callable[[str], Loaded], build_ctx: BuildContext
) -> None:
    source = loaded("squeezenet.onnx").source
    assert build_ctx.onnx_of(source) == source.path


def test_onnx_form_is_made_once_for_concurrent_targets(
    loaded: Callable[[str], Loaded], build_ctx: BuildContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []

    def slow_convert(
        source: SourceModel, out: Path, opset: int, keras_model: object = None
    ) -> None:
        calls.append(out)
        time.sleep(0.2)  # long enough for every thread to ask while it runs
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(b"onnx")

    monkeypatch.setattr(context, "_to_onnx", slow_convert)
    source = loaded("mnist.keras").source
    targets = [Target(runtime="onnx", variant=f"v{i}") for i in range(4)]
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda t=t: results.append(build_ctx.for_target(t).onnx_of(source)))
        for t in targets
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert results == [calls[0]] * 4
    assert calls[0].is_relative_to(build_ctx.workdir)


def test_failed_onnx_conversion_is_a_conversion_error(
    build_ctx: BuildContext, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip: no Keras model inside
    source = SourceModel(path=broken, format="keras", inputs=(), outputs=())
    with pytest.raises(ConversionError, match=r"tf2onnx could not convert broken\.keras to ONNX"):
        build_ctx.onnx_of(source)
    # A second target gets the same answer without converting again.
    with pytest.raises(ConversionError, match=r"tf2onnx could not convert broken\.keras"):
        build_ctx.onnx_of(source)


# --- registration ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "cls"), [("tflite", TFLiteConverter), ("onnx", OnnxConverter), ("ort", OrtConverter)]
)
def test_registered_as_entry_points(name: str, cls: type) -> None:
    (ep,) = [ep for ep in entry_points(group="aoe_pack.converters") if ep.name == name]
    converter = ep.load()()
    assert isinstance(converter, cls)
    assert isinstance(converter, Converter)
    assert converter.runtime == name
    assert converter.default_tolerance(converter.variants[0]).rtol > 0


@pytest.mark.parametrize(("runtime", "variant"), TARGETS)
def test_artifact_loads_from_a_path_without_extension(
    converted: Callable[[str, str, str], Converted],
    loaded: Callable[[str], Loaded],
    tmp_path: Path,
    runtime: str,
    variant: str,
) -> None:
    # bench opens artifacts as /proc/self/fd/<n>: the format cannot come from the name.
    made = converted("squeezenet.onnx", runtime, variant)
    bare = tmp_path / "model"
    bare.write_bytes(made.artifact.files[0].local.read_bytes())
    artifact = replace(made.artifact, files=(replace(made.artifact.files[0], local=bare),))
    conv = {"onnx": ONNX, "ort": ORT}[runtime]
    sample = loaded("squeezenet.onnx")
    measured = parity.measure(
        made.runner, conv.load(artifact), sample.inputs[:1], tolerance=Tolerance.absolute(0.0)
    )
    assert measured.passed, measured
