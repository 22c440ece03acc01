"""MNN: ONNX -> ``.mnn`` (float32, fp16 weights, 8-bit weights), run through MNN's Python API.

The converter is the one compiled into MNN's extension module ``_tools``. It
is called directly, never through the ``mnnconvert``/``mnnquant`` commands or
``MNN.tools``: their logging module (``MNN/tools/utils/log.py`` in MNN's
wheel) runs ``pip install -U aliyun-log-python-sdk`` through ``os.system``
when that SDK is missing, then sends the machine id (``/etc/machine-id``, the
macOS platform UUID or the Windows MachineGuid) and the conversion's arguments
to an Alibaba Cloud log service.

It runs in a child Python process, for three reasons:

- it prints everything, failures included, to C stdout and returns True even
  when it wrote nothing, so its output must be captured at the file-descriptor
  level to explain a failure, which in-process would swallow other threads'
  output during concurrent builds;
- a crash inside the converter ends the child, not the build;
- loading the engine prints a CPU-feature line to stdout, which would corrupt
  ``--json`` output.

Before conversion the model is staged (:mod:`aoe_pack.convert._mnn_rules`):
optional ONNX attributes MNN misreads are spelled out (pooling strides, the
batch-norm epsilon, automatic padding), and nodes that crash MNN's runtime or
come out wrong refuse the model with a named reason.

The child costs about 50 ms. It refuses to import ``MNN.tools`` and the
logging SDK at all, so that no later MNN release can bring the telemetry back
through the converter.

ONNX-sourced MNN models take the ONNX model's own layout (a Keras model that
tf2onnx converted keeps its NHWC input), so runners feed inputs as they are.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from aoe_pack.convert import onnx_graph
from aoe_pack.convert._mnn_rules import PASSES, RULES
from aoe_pack.convert.api import (
    Array,
    Artifact,
    ArtifactFile,
    ConvertContext,
    Precision,
    Runner,
    SourceModel,
    Target,
    TolerancesTable,
    require_variant,
)
from aoe_pack.convert.sources import MAX_OPSET
from aoe_pack.errors import ConversionError, MissingExtraError

RUNTIME = "mnn"

_FLAGS: Mapping[str, tuple[str, ...]] = {
    "fp32": (),
    "fp16": ("--fp16",),
    "int8-weights": ("--weightQuantBits", "8"),
}

# Largest absolute error against the source, over the committed samples
# (mnist, squeezenet): fp32 4.5e-8, fp16 weights 5.4e-5, 8-bit weights 3.8e-4.
# To see them: `aoe-pack build sample_models/mnist/config.json --target mnn:fp32
# --target mnn:fp16 --target mnn:int8-weights --out m.aoe --sign-key K
# --no-encrypt`, then `aoe-pack inspect m.aoe` ("parity ... max"). A small CNN
# with random weights, converted with the versions of .ci/constraints.txt,
# gave 5e-8, 2e-3 and 1.5e-2. Each variant takes its precision class's bound
# (atol + rtol x the output's peak, docs/converting.md "Parity"), well above
# those; a real fault is larger still (MNN's missing batch-norm epsilon was
# off by 3.8e-3 in fp32).
_TOLERANCES = {
    "fp32": Precision.FLOAT32,
    "fp16": Precision.FLOAT16,
    "int8-weights": Precision.INT8_WEIGHTS,
}
_CONTROLS = {"fp16": "fp32", "int8-weights": "fp32"}

# The child: refuse MNN's Python tool wrappers and the logging SDK they pull
# in, then run the converter compiled into _tools with the argv it is given.
_DRIVER = """\
import sys

class _Refuse:
    def find_spec(self, name, path=None, target=None):
        if name == "MNN.tools" or name.startswith(("MNN.tools.", "aliyun")):
            raise ImportError("aoe-pack refuses to import " + name)
        return None

sys.meta_path.insert(0, _Refuse())
import _tools

_tools.mnnconvert(sys.argv[1:])
"""

_TIMEOUT_SECONDS = 1800
_TAIL_LINES = 15
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

# MNN dtype name -> the numpy dtype of the values it holds.
_NUMPY_OF = {
    "float": "float32",
    "double": "float64",
    "int": "int32",
    "int64": "int64",
    "int8": "int8",
    "uint8": "uint8",
}


def _tail(text: str) -> str:
    lines = [ln for ln in _ANSI.sub("", text).splitlines() if ln.strip()]
    return "\n".join(lines[-_TAIL_LINES:]) or "(no output)"


def _require_mnn() -> None:
    if importlib.util.find_spec("_tools") is None or importlib.util.find_spec("MNN") is None:
        raise MissingExtraError(
            "MNN is not installed (its converter module _tools was not found)",
            hint="install aoe-pack[convert]",
        )


def _mnn_version() -> str:
    try:
        return version("MNN")
    except PackageNotFoundError:
        return "unknown"


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send what native code prints to stdout to stderr instead, for the block."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        with contextlib.suppress(OSError, AttributeError, TypeError):
            import ctypes

            ctypes.CDLL(None).fflush(None)  # C stdio may hold the text until exit
        os.dup2(saved, 1)
        os.close(saved)


def _import_mnn() -> Any:
    _require_mnn()
    if "_mnncengine" in sys.modules:
        import MNN

        return MNN
    # Loading the engine prints its CPU features to C stdout.
    with _stdout_to_stderr():
        import MNN
        import MNN.expr
        import MNN.nn
    return MNN


def _model_uuid(onnx_path: Path, variant: str) -> uuid.UUID:
    """A UUID that names this conversion: the input's digest, the variant, MNN's version."""
    digest = hashlib.sha256()
    with onnx_path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    name = f"aoe-pack:mnn:{_mnn_version()}:{variant}:{digest.hexdigest()}"
    return uuid.uuid5(uuid.NAMESPACE_URL, name)


@functools.cache
def supported_onnx_ops() -> frozenset[str]:
    """The ONNX ops MNN's converter converts, as it lists them itself (``--OP``).

    Empty when the list cannot be had (then nothing is refused for it).
    """
    _require_mnn()
    try:
        proc = subprocess.run(
            [sys.executable, "-P", "-c", _DRIVER, "mnnconvert", "-f", "ONNX", "--OP"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    lines = proc.stdout.splitlines()
    start = next((i for i, ln in enumerate(lines) if "support Ops" in ln), None)
    if start is None:
        return frozenset()
    return frozenset(ln.strip() for ln in lines[start + 1 :] if re.fullmatch(r"\w+", ln.strip()))


def _rules() -> tuple[onnx_graph.Rule, ...]:
    """The staging rules, and a refusal for any op MNN's converter does not list."""
    ops = supported_onnx_ops()

    def listed(g: onnx_graph.Graph, node: Any) -> str | None:
        if ops and node.domain in ("", "ai.onnx") and node.op_type not in ops:
            return f"MNN's converter has no ONNX {node.op_type} (it lists the ops it converts)"
        return None

    return (listed, *RULES)


def convert_onnx(onnx_path: Path, dst: Path, variant: str) -> float:
    """Convert ``onnx_path`` to ``dst`` with MNN's converter; return the seconds taken.

    Raises ConversionError with the converter's output tail when it wrote no
    model, crashed or timed out.
    """
    _require_mnn()
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.unlink(missing_ok=True)  # the converter says "success" either way: judge by the file
    # MNN stamps every model with a random UUID (std::random_device) unless a
    # compression-parameters file supplies one: derive it from what was
    # converted, so that the same input gives the same bytes.
    staged = dst.parent / f".{dst.stem}.staged.onnx"
    onnx_graph.stage(onnx_path, staged, _rules(), tool="MNN", passes=PASSES)
    params = dst.parent / f".{dst.name}.params.json"
    params.write_text(
        json.dumps({"version": "0.0.0", "mnn_uuid": str(_model_uuid(onnx_path, variant))}),
        encoding="utf-8",
    )
    argv = [
        "mnnconvert",
        "-f",
        "ONNX",
        "--modelFile",
        str(staged),
        "--MNNModel",
        str(dst),
        "--bizCode",
        "aoe",
        "--compressionParamsFile",
        str(params),
        *_FLAGS[variant],
    ]
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            # -P: the output folder (the child's cwd) is not put on sys.path.
            [sys.executable, "-P", "-c", _DRIVER, *argv],
            cwd=dst.parent,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            timeout=_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise ConversionError(
            f"MNN's converter did not finish {onnx_path.name} within {_TIMEOUT_SECONDS} s"
        ) from e
    seconds = time.perf_counter() - started
    params.unlink(missing_ok=True)
    staged.unlink(missing_ok=True)
    if proc.returncode != 0 or not dst.is_file() or dst.stat().st_size == 0:
        how = f"exited with {proc.returncode}" if proc.returncode else "wrote no model"
        raise ConversionError(
            f"MNN's converter {how} for {onnx_path.name} -> {variant}:\n{_tail(proc.stdout)}"
        )
    return seconds


class MnnConverter(TolerancesTable):
    """ONNX -> MNN. Variants: ``fp32``, ``fp16`` (fp16 weights), ``int8-weights``."""

    runtime = RUNTIME
    tolerances = _TOLERANCES
    controls = _CONTROLS

    def check(self, source: SourceModel, target: Target) -> None:
        """Refuse, naming the node, an ONNX source MNN cannot take (``validate`` calls this)."""
        if source.format == "onnx":
            onnx_graph.check(source.path, _rules(), tool="MNN")

    def convert(self, source: SourceModel, target: Target, ctx: ConvertContext) -> Artifact:
        """Write ``mnn/<variant>/<stem>.mnn`` under ``ctx.workdir``."""
        require_variant(self.runtime, self.variants, target.variant)
        bundle_path = f"{RUNTIME}/{target.variant}/{source.path.stem}.mnn"
        dst = ctx.workdir / bundle_path
        seconds = convert_onnx(ctx.onnx_of(source, max_opset=MAX_OPSET), dst, target.variant)
        return Artifact(
            target=target,
            files=(ArtifactFile(local=dst, bundle_path=bundle_path, role="model"),),
            tools={"mnn": _mnn_version()},
            seconds=seconds,
        )

    def load(self, artifact: Artifact) -> Runner:
        """Load the ``.mnn`` with ``MNN.nn.load_module_from_file``."""
        return MnnRunner(artifact.model, precise=artifact.target.variant == "fp32")


class MnnRunner:
    """Runs an ONNX-sourced ``.mnn`` on inputs in the source's layout.

    Inputs are matched to the model's by name, else by position in the order
    given (declared names can differ from the ONNX ones when the source was
    Keras or TFLite). ``precise`` asks MNN for float32 arithmetic, so a float32
    artifact is judged on its conversion alone; the other variants run at
    MNN's normal precision, as on a device.
    """

    def __init__(self, path: Path, *, precise: bool) -> None:
        mnn = _import_mnn()
        self._expr = mnn.expr
        mode = mnn.expr.PrecisionMode.High if precise else mnn.expr.PrecisionMode.Normal
        try:
            # MNN reports a bad file on stdout. Empty name lists select the
            # model's own inputs and outputs, in its order.
            with _stdout_to_stderr():
                self._module = mnn.nn.load_module_from_file(str(path), [], [], precision_mode=mode)
            info = self._module.get_info()
        except Exception as e:  # the binding raises a bare SystemError
            raise ConversionError(f"MNN cannot load {path.name}: {e}") from e
        if not info.get("inputNames"):
            raise ConversionError(f"MNN cannot load {path.name}: it declares no inputs")
        self.input_names: tuple[str, ...] = tuple(info["inputNames"])
        self.output_names: tuple[str, ...] = tuple(info["outputNames"])
        # What each input holds once converted: MNN's converter turns int64 (and
        # bool) tensors into int32 and float64 into float32, so a value must be
        # cast to the model's own type, or its bytes are misread.
        self._dtypes = [str(v.dtype).rpartition(".")[2] for v in info.get("inputs", [])]

    def _ordered(self, inputs: Mapping[str, Array]) -> list[Array]:
        if set(inputs) == set(self.input_names):
            return [inputs[n] for n in self.input_names]
        if len(inputs) == len(self.input_names):
            return list(inputs.values())
        raise ConversionError(
            f"the MNN model takes inputs {list(self.input_names)}, was given {list(inputs)}"
        )

    def __call__(self, inputs: Mapping[str, Array]) -> Sequence[Array]:
        import numpy as np

        expr = self._expr
        feed = []
        for i, value in enumerate(self._ordered(inputs)):
            want = self._dtypes[i] if i < len(self._dtypes) else ""
            if want not in _NUMPY_OF:
                raise ConversionError(f"MNN runner: the model's input {i} holds {want or '?'}")
            array = np.ascontiguousarray(value, dtype=_NUMPY_OF[want])
            # NCHW here means "as laid out in memory": ONNX-sourced models keep
            # the ONNX tensor order, whatever the source called its axes.
            feed.append(expr.const(array, list(array.shape), expr.NCHW, getattr(expr, want)))
        outputs = self._module.forward(feed)
        if not outputs:
            # MNN reports what it cannot compute on stdout (the log) and returns nothing.
            raise ConversionError(
                "MNN computed no outputs (its log above says why, e.g. an unsupported Interp)"
            )
        result: list[Array] = []
        for out in outputs:
            plain = expr.convert(out, expr.NCHW) if out.data_format == expr.NC4HW4 else out
            result.append(np.array(plain.read(), copy=True))
        return result
