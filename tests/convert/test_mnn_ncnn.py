"""MNN and ncnn: every variant converts and matches its source within its default tolerance.

Sources: the SqueezeNet-style ONNX sample (NCHW), the MNIST Keras sample
through tf2onnx (NHWC, and declared names that differ from the ONNX ones),
and a two-input, two-output model that pins the order of both.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _onnx_ctx import OnnxContext, OrtReference

from aoe_pack.config import TensorSpec, load_config
from aoe_pack.convert import mnn, ncnn, parity
from aoe_pack.convert.api import (
    Artifact,
    ArtifactFile,
    Converter,
    Parity,
    SourceModel,
    Target,
    Tolerance,
)
from aoe_pack.errors import ConversionError, MissingExtraError, ParityError

ROOT = Path(__file__).resolve().parents[2]
SQUEEZENET = ROOT / "sample_models" / "squeezenet"
MNIST = ROOT / "sample_models" / "mnist"

CONVERTERS: dict[str, Converter] = {"mnn": mnn.MnnConverter(), "ncnn": ncnn.NcnnConverter()}
TARGETS = [(rt, v) for rt, conv in CONVERTERS.items() for v in conv.variants]


def _source(config: Path, model: Path, fmt: str) -> SourceModel:
    cfg = load_config(config)
    return SourceModel(path=model, format=fmt, inputs=cfg.inputs, outputs=cfg.outputs)


def _convert(
    source: SourceModel, runtime: str, variant: str, ctx: OnnxContext
) -> tuple[Converter, Artifact]:
    conv = CONVERTERS[runtime]
    return conv, conv.convert(source, Target(runtime=runtime, variant=variant), ctx)


def _parity(conv: Converter, artifact: Artifact, source: SourceModel, onnx_path: Path) -> Parity:
    return parity.measure(
        OrtReference(onnx_path),
        conv.load(artifact),
        parity.sample_inputs(source),
        tolerance=conv.default_tolerance(artifact.target.variant),
    )


@pytest.fixture(scope="session")
def squeezenet() -> SourceModel:
    return _source(SQUEEZENET / "config.json", SQUEEZENET / "squeezenet.onnx", "onnx")


# tf2onnx in a child: TensorFlow costs 3-5 s and 500 MB to import, warns on
# import, and keras writes its settings under KERAS_HOME.
_KERAS_TO_ONNX = """\
import sys
import keras, tensorflow as tf, tf2onnx
model = keras.models.load_model(sys.argv[1])
spec = [tf.TensorSpec((1, 28, 28, 1), tf.float32, name="image")]
@tf.function(input_signature=spec)
def serve(image):
    return {"probabilities": model(image)}
tf2onnx.convert.from_function(serve, input_signature=spec, opset=17, output_path=sys.argv[2])
"""


@pytest.fixture(scope="session")
def mnist_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``mnist.keras`` through tf2onnx: NHWC input ``image``, output ``probabilities``."""
    folder = tmp_path_factory.mktemp("mnist-onnx")
    out = folder / "mnist.onnx"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_HOME": str(folder / "keras")}
    proc = subprocess.run(
        [sys.executable, "-c", _KERAS_TO_ONNX, str(MNIST / "mnist.keras"), str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.is_file()
    return out


@pytest.fixture(scope="session")
def mnist(mnist_onnx: Path) -> SourceModel:
    # Declared as the config has it: the TFLite name serving_default_image:0,
    # not tf2onnx's "image", so runners must match inputs by position.
    return _source(MNIST / "config.json", MNIST / "mnist.keras", "keras")


@pytest.fixture(scope="session")
def two_inputs(tmp_path_factory: pytest.TempPathFactory) -> SourceModel:
    """diff = a - b, prod = a * b: swapped inputs or outputs show as errors of ~1."""
    import onnx
    from onnx import TensorProto, helper

    def tensor(name: str) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 8])

    graph = helper.make_graph(
        [
            helper.make_node("Sub", ["a", "b"], ["diff"]),
            helper.make_node("Mul", ["a", "b"], ["prod"]),
        ],
        "two_inputs",
        [tensor("a"), tensor("b")],
        [tensor("diff"), tensor("prod")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model, full_check=True)
    path = tmp_path_factory.mktemp("two-inputs") / "two_inputs.onnx"
    onnx.save(model, path)
    specs = tuple(TensorSpec(name=n, dtype="float32", shape=(1, 8)) for n in ("a", "b"))
    outputs = tuple(TensorSpec(name=n, dtype="float32", shape=(1, 8)) for n in ("diff", "prod"))
    return SourceModel(path=path, format="onnx", inputs=specs, outputs=outputs)


# --- every variant, within its default tolerance ---------------------------------


@pytest.mark.parametrize(("runtime", "variant"), TARGETS)
def test_squeezenet_converts_within_default_tolerance(
    runtime: str, variant: str, squeezenet: SourceModel, tmp_path: Path
) -> None:
    conv, artifact = _convert(squeezenet, runtime, variant, OnnxContext(workdir=tmp_path))

    for f in artifact.files:
        assert f.local.stat().st_size > 0
        assert f.local.is_relative_to(tmp_path)
    result = _parity(conv, artifact, squeezenet, squeezenet.path)

    parity.check(result, artifact.target.name)
    assert result.top1 == 1.0
    assert result.samples == parity.DEFAULT_SAMPLES


def test_mnn_artifact_layout_and_provenance(squeezenet: SourceModel, tmp_path: Path) -> None:
    _, artifact = _convert(squeezenet, "mnn", "fp16", OnnxContext(workdir=tmp_path))

    assert [(f.bundle_path, f.role) for f in artifact.files] == [
        ("mnn/fp16/squeezenet.mnn", "model")
    ]
    assert artifact.tools == {"mnn": "3.6.1"}
    assert artifact.layout is None  # the ONNX model's own layout
    assert artifact.seconds > 0


def test_ncnn_artifact_layout_and_provenance(squeezenet: SourceModel, tmp_path: Path) -> None:
    _, artifact = _convert(squeezenet, "ncnn", "fp32", OnnxContext(workdir=tmp_path))

    assert [(f.bundle_path, f.role) for f in artifact.files] == [
        ("ncnn/fp32/squeezenet.param", "model"),
        ("ncnn/fp32/squeezenet.bin", "weights"),
        ("ncnn/fp32/squeezenet.io.json", "asset"),
    ]
    assert set(artifact.tools) == {"pnnx", "ncnn"}
    assert artifact.layout == (
        "ncnn: image->in0 float32 (c,h,w)=(3,64,64), one sample at a time along axis 0 "
        "(see the .io.json beside the model)"
    )
    io = json.loads(artifact.files[2].local.read_text())
    assert io["inputs"] == [
        {
            "batchAxis": 0,
            "blob": "in0",
            "dtype": "float32",
            "name": "image",
            "shape": [1, 3, 64, 64],
            "matAxes": "c,h,w",
            "matShape": [3, 64, 64],
        }
    ]
    assert io["outputs"][0]["blob"] == "out0"
    # pnnx's other outputs (pnnx param/bin, ONNX re-exports, scripts) are gone.
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [
        "squeezenet.bin",
        "squeezenet.io.json",
        "squeezenet.param",
    ]


@pytest.mark.parametrize(("runtime", "variant"), TARGETS)
def test_mnist_nhwc_converts_within_default_tolerance(
    runtime: str, variant: str, mnist: SourceModel, mnist_onnx: Path, tmp_path: Path
) -> None:
    ctx = OnnxContext(workdir=tmp_path, onnx=mnist_onnx)
    conv, artifact = _convert(mnist, runtime, variant, ctx)

    assert artifact.files[0].bundle_path.endswith("/mnist.mnn" if runtime == "mnn" else ".param")
    result = _parity(conv, artifact, mnist, mnist_onnx)

    parity.check(result, artifact.target.name)
    assert result.top1 == 1.0


def test_ncnn_takes_nhwc_input_as_its_channels(
    mnist: SourceModel, mnist_onnx: Path, tmp_path: Path
) -> None:
    ctx = OnnxContext(workdir=tmp_path, onnx=mnist_onnx)
    _, artifact = _convert(mnist, "ncnn", "fp32", ctx)

    # H becomes ncnn's c and C its w; pnnx reshapes inside the graph.
    assert artifact.layout == (
        "ncnn: serving_default_image:0->in0 float32 (c,h,w)=(28,28,1), one sample at a time "
        "along axis 0 (see the .io.json beside the model)"
    )


@pytest.mark.parametrize(("runtime", "variant"), TARGETS)
def test_inputs_and_outputs_keep_their_order(
    runtime: str, variant: str, two_inputs: SourceModel, tmp_path: Path
) -> None:
    conv, artifact = _convert(two_inputs, runtime, variant, OnnxContext(workdir=tmp_path))

    result = _parity(conv, artifact, two_inputs, two_inputs.path)

    parity.check(result, artifact.target.name)


# --- no network, no telemetry -------------------------------------------------

_OFFLINE_DRIVER = """\
import json, sys, tempfile
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from _onnx_ctx import OnnxContext
from aoe_pack.config import load_config
from aoe_pack.convert import mnn, ncnn, parity
from aoe_pack.convert.api import SourceModel, Target

interfaces = [ln.split(":")[0].strip() for ln in Path("/proc/net/dev").read_text().splitlines()[2:]]
cfg = load_config(Path(sys.argv[2]) / "config.json")
source = SourceModel(path=Path(sys.argv[2]) / "squeezenet.onnx", format="onnx",
                     inputs=cfg.inputs, outputs=cfg.outputs)
done = []
for conv in (mnn.MnnConverter(), ncnn.NcnnConverter()):
    for variant in conv.variants:
        with tempfile.TemporaryDirectory() as tmp:
            artifact = conv.convert(source, Target(runtime=conv.runtime, variant=variant),
                                    OnnxContext(workdir=Path(tmp)))
            outputs = conv.load(artifact)(parity.sample_inputs(source, samples=1)[0])
            done.append([artifact.target.name, list(outputs[0].shape)])
print(json.dumps({"interfaces": interfaces, "done": done}))
"""


def test_conversions_work_without_network() -> None:
    unshare = shutil.which("unshare")  # util-linux; CI runs as root, as unshare -n needs
    assert unshare is not None
    proc = subprocess.run(
        [
            unshare,
            "-n",
            sys.executable,
            "-c",
            _OFFLINE_DRIVER,
            str(Path(__file__).parent),
            str(SQUEEZENET),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.splitlines()[-1])
    assert report["interfaces"] == ["lo"]  # a namespace with no way out
    assert report["done"] == [
        ["mnn-fp32", [1, 100]],
        ["mnn-fp16", [1, 100]],
        ["mnn-int8-weights", [1, 100]],
        ["ncnn-fp32", [1, 100]],
        ["ncnn-fp16", [1, 100]],
    ]


def test_mnn_converter_child_refuses_mnn_tools(squeezenet: SourceModel, tmp_path: Path) -> None:
    # The child converts, has imported nothing of MNN.tools (whose logging
    # runs pip and sends telemetry), and cannot import it.
    probe = (
        "assert not [m for m in sys.modules if m.startswith(('MNN', 'aliyun'))], sys.modules\n"
        "import MNN.tools\n"
    )
    dst = tmp_path / "probe.mnn"
    argv = ["mnnconvert", "-f", "ONNX", "--modelFile", str(squeezenet.path)]
    argv += ["--MNNModel", str(dst), "--bizCode", "aoe"]

    proc = subprocess.run(
        [sys.executable, "-c", mnn._DRIVER + probe, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert dst.is_file()
    assert "ImportError: aoe-pack refuses to import MNN.tools" in proc.stderr


def test_mnn_runner_keeps_stdout_clean(squeezenet: SourceModel, tmp_path: Path) -> None:
    # MNN prints its CPU features to C stdout when it loads; --json output
    # on stdout must not carry it.
    _, artifact = _convert(squeezenet, "mnn", "fp32", OnnxContext(workdir=tmp_path))
    script = (
        "import sys\nfrom pathlib import Path\n"
        "from aoe_pack.convert.api import Artifact, ArtifactFile, Target\n"
        "from aoe_pack.convert.mnn import MnnConverter\n"
        "f = ArtifactFile(local=Path(sys.argv[1]), bundle_path='m.mnn')\n"
        "MnnConverter().load(Artifact(target=Target(runtime='mnn', variant='fp32'), files=(f,)))\n"
        "print('ok')\n"
    )

    proc = subprocess.run(
        [sys.executable, "-c", script, str(artifact.files[0].local)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "ok\n"
    assert "The device supports" in proc.stderr


# --- named failures -------------------------------------------------------------


@pytest.mark.parametrize("folder", [None, "empty"])
def test_missing_pnnx_program_is_missing_extra_error(
    folder: str | None, squeezenet: SourceModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ncnn, "_pnnx_package_dir", lambda: tmp_path / folder if folder else None)

    with pytest.raises(MissingExtraError, match="pnnx program") as e:
        _convert(squeezenet, "ncnn", "fp32", OnnxContext(workdir=tmp_path))
    assert "pip install --no-deps pnnx" in (e.value.hint or "")


@pytest.mark.parametrize(
    ("runtime", "tool_says"),
    [
        ("mnn", r"squeezenet\.onnx is not a readable ONNX model"),
        ("ncnn", r"squeezenet\.onnx is not a readable ONNX model"),
    ],
)
def test_corrupt_onnx_is_conversion_error(
    runtime: str, tool_says: str, squeezenet: SourceModel, tmp_path: Path
) -> None:
    truncated = tmp_path / "squeezenet.onnx"
    truncated.write_bytes(squeezenet.path.read_bytes()[:5000])
    source = SourceModel(
        path=truncated, format="onnx", inputs=squeezenet.inputs, outputs=squeezenet.outputs
    )

    with pytest.raises(ConversionError, match=tool_says):
        _convert(source, runtime, CONVERTERS[runtime].variants[0], OnnxContext(workdir=tmp_path))


def test_corrupt_mnn_file_is_conversion_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.mnn"
    bogus.write_bytes(b"not an MNN model")
    artifact = Artifact(
        target=Target(runtime="mnn", variant="fp32"),
        files=(ArtifactFile(local=bogus, bundle_path="mnn/fp32/bogus.mnn"),),
    )

    with pytest.raises(ConversionError, match=r"MNN cannot load bogus\.mnn"):
        CONVERTERS["mnn"].load(artifact)


def test_absurd_tolerance_is_parity_error(squeezenet: SourceModel, tmp_path: Path) -> None:
    conv, artifact = _convert(squeezenet, "mnn", "int8-weights", OnnxContext(workdir=tmp_path))
    result = parity.measure(
        OrtReference(squeezenet.path),
        conv.load(artifact),
        parity.sample_inputs(squeezenet, samples=2),
        tolerance=Tolerance.absolute(1e-12),
    )

    with pytest.raises(ParityError, match=r"mnn-int8-weights: output 0: max abs error \S+ exceeds"):
        parity.check(result, artifact.target.name)
