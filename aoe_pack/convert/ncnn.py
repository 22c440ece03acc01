"""ncnn: ONNX -> ``.param`` + ``.bin`` through the pnnx program, run through ncnn's Python API.

pnnx is called as the program its wheel bundles (``site-packages/pnnx/pnnx``),
found without importing the ``pnnx`` package: its Python side needs torch,
which aoe-pack never installs (``pip install --no-deps pnnx``). The program
writes a dozen files next to its input (pnnx param/bin, a re-exported ONNX,
Python scripts), so it runs on a copy of the model in a private folder and
only the ncnn pair is kept.

Before pnnx runs, the model is *staged* (:mod:`aoe_pack.convert._ncnn_rules`):
optional ONNX attributes pnnx misreads are spelled out or dropped, and nodes
pnnx or ncnn cannot handle refuse the model with a named reason (the same
rules ``validate`` applies). After it, a layer pnnx left untranslated (a raw
ONNX op, or a ``torch``/``F.`` call) refuses it too.

ncnn tensors have no batch axis of their own: pnnx names the blobs ``in0``,
``in1``... and ``out0``..., and says for each one which axis of the ONNX
tensor is the batch (``batch_index`` 0 or 1), if any (233: none, every axis
is data). Those hints ship with the artifact as ``<stem>.io.json`` (role
``asset``), with each blob's name, dtype and shape, so that an app feeds the
model as the runner does: one sample at a time along the batch axis, integer
inputs (token ids) as int32. An NCHW image becomes an ncnn Mat of (c, h, w);
an NHWC one (a Keras model through tf2onnx) becomes (c, h, w) = (H, W, C).
pnnx always traces with batch 1.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from aoe_pack._child import describe_exit
from aoe_pack.convert import onnx_graph
from aoe_pack.convert._ncnn_rules import RULES
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
from aoe_pack.errors import ConversionError, MissingExtraError, UnsupportedModelError

RUNTIME = "ncnn"

_FP16_FLAG: Mapping[str, str] = {"fp32": "fp16=0", "fp16": "fp16=1"}

# Largest absolute error against the source, over the committed samples
# (mnist, squeezenet): fp32 3.0e-8, fp16 weights 1.0e-5. To see them: `aoe-pack
# build sample_models/mnist/config.json --target ncnn:fp32 --target ncnn:fp16
# --out m.aoe --sign-key K --no-encrypt`, then `aoe-pack inspect m.aoe`
# ("parity ... max"). A small CNN with random weights, converted with the
# versions of .ci/constraints.txt, gave 4e-8 and 2e-5 to 7e-4. Each variant
# takes its precision class's bound (atol + rtol x the output's peak,
# docs/converting.md "Parity"), well above those, while a real fault (layout,
# operator) is off by 1e-2 or more.
_TOLERANCES = {"fp32": Precision.FLOAT32, "fp16": Precision.FLOAT16}
_CONTROLS = {"fp16": "fp32"}

# pnnx's inputshape suffixes; pnnx assumes f32 without one.
_PNNX_DTYPES = {
    "float32": "f32",
    "float16": "f16",
    "float64": "f64",
    "int8": "i8",
    "uint8": "u8",
    "int32": "i32",
    "int64": "i64",
}

_TIMEOUT_SECONDS = 1800
_TAIL_LINES = 15
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_AXES = {1: "w", 2: "h,w", 3: "c,h,w", 4: "c,d,h,w"}


def _tail(text: str) -> str:
    lines = [ln for ln in _ANSI.sub("", text).splitlines() if ln.strip()]
    return "\n".join(lines[-_TAIL_LINES:]) or "(no output)"


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def _pnnx_package_dir() -> Path | None:
    # find_spec finds the package without running its __init__, which imports torch.
    spec = importlib.util.find_spec("pnnx")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def pnnx_program() -> Path:
    """The pnnx program bundled in the pnnx wheel; MissingExtraError if it is absent."""
    folder = _pnnx_package_dir()
    exe = folder / ("pnnx.exe" if os.name == "nt" else "pnnx") if folder else None
    if exe is None or not exe.is_file() or not os.access(exe, os.X_OK):
        where = f" (looked for {exe})" if exe else ""
        raise MissingExtraError(
            f"the pnnx program, which converts ONNX to ncnn, is not installed{where}",
            hint="pip install --no-deps pnnx (without --no-deps it pulls gigabytes of torch)",
        )
    return exe


def _inputshape(source: SourceModel) -> str:
    """pnnx's inputshape: every input at batch 1 (pnnx traces one sample)."""
    shapes = []
    for spec in source.inputs:
        dims = ",".join(str(1 if d < 0 else d) for d in spec.shape)
        shapes.append(f"[{dims}]{_PNNX_DTYPES.get(spec.dtype, '')}")
    return ",".join(shapes)


_NO_BATCH = 233
"""pnnx's batch_index for a blob with no batch axis."""


def _batch_hints(script: Path) -> dict[str, int | None]:
    """Each blob's batch axis, from the test script pnnx writes (``model_ncnn.py``)."""
    try:
        text = script.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    hints: dict[str, int | None] = {}
    for line in text.splitlines():
        match = re.search(r'"((?:in|out)\d+)"', line)
        axis = re.search(r"batch_index=(\d+)", line)
        if match and axis:
            value = int(axis.group(1))
            hints[match.group(1)] = None if value == _NO_BATCH else value
        elif axis and hints:  # out0.numpy(batch_index=...) on the line after extract("out0")
            last = next(reversed(hints))
            if last.startswith("out") and hints[last] is None and "numpy(" in line:
                value = int(axis.group(1))
                hints[last] = None if value == _NO_BATCH else value
    return hints


def _io_document(source: SourceModel, hints: Mapping[str, int | None]) -> dict[str, Any]:
    """What an app needs to feed the ncnn model and read it: ``<stem>.io.json``."""

    def blob(prefix: str, i: int, spec: Any) -> dict[str, Any]:
        name = f"{prefix}{i}"
        integer = spec.dtype.startswith(("int", "uint")) or spec.dtype == "bool"
        axis = hints.get(name, 0 if spec.shape else None)
        mat = [1 if d < 0 else d for k, d in enumerate(spec.shape) if k != axis] or [1]
        return {
            "blob": name,
            "name": spec.name,
            "dtype": "int32" if integer else "float32",
            "shape": list(spec.shape),
            "batchAxis": axis,
            "matAxes": _AXES.get(len(mat), "?"),
            "matShape": mat,
        }

    return {
        "format": "aoe-ncnn-io/v1",
        "inputs": [blob("in", i, s) for i, s in enumerate(source.inputs)],
        "outputs": [blob("out", i, s) for i, s in enumerate(source.outputs)],
    }


def _layout(document: Mapping[str, Any]) -> str:
    """What a device feeds ncnn, in words, for the provenance."""
    parts = []
    for blob in document["inputs"]:
        axis = blob["batchAxis"]
        batch = "no batch axis" if axis is None else f"one sample at a time along axis {axis}"
        mat = ",".join(str(d) for d in blob["matShape"])
        parts.append(
            f"{blob['name']}->{blob['blob']} {blob['dtype']} ({blob['matAxes']})=({mat}), {batch}"
        )
    return "ncnn: " + "; ".join(parts) + " (see the .io.json beside the model)"


def _untranslated(work: Path) -> list[str]:
    """Layer types pnnx left as they were: raw ONNX ops in its graph, foreign calls in ncnn's."""
    found: set[str] = set()
    pnnx_param = work / "model.pnnx.param"
    if pnnx_param.is_file():
        for line in pnnx_param.read_text(encoding="utf-8", errors="replace").splitlines()[2:]:
            kind = line.split(maxsplit=1)[0] if line.strip() else ""
            if kind and "." not in kind:  # pnnx names what it translated pnnx.*, nn.*, F.*...
                found.add(kind)
    ncnn_param = work / "model.ncnn.param"
    for line in ncnn_param.read_text(encoding="utf-8", errors="replace").splitlines()[2:]:
        kind = line.split(maxsplit=1)[0] if line.strip() else ""
        if kind and ("." in kind or not _ncnn_knows(kind)):
            found.add(kind)
    return sorted(found)


def _ncnn_knows(layer: str) -> bool:
    try:
        import ncnn
    except ImportError:  # checked again when the artifact is loaded
        return True
    return bool(ncnn.layer_to_index(layer) >= 0)


def _stage(onnx_path: Path, dst: Path) -> None:
    """Copy the model for pnnx through the ncnn rules (UnsupportedModelError on a refusal)."""
    onnx_graph.stage(onnx_path, dst, RULES, tool="ncnn")


def convert_onnx(
    onnx_path: Path, out_dir: Path, stem: str, source: SourceModel, variant: str
) -> tuple[Path, Path, Path, float]:
    """Run pnnx on a staged copy of ``onnx_path``.

    Returns the ``.param``, the ``.bin``, the ``.io.json`` and the seconds.
    """
    exe = pnnx_program()
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".pnnx-", dir=out_dir) as tmp:
        work = Path(tmp)
        # A fixed name: pnnx parses key=value arguments, and names its outputs after the input.
        _stage(onnx_path, work / "model.onnx")
        argv = [str(exe), "model.onnx", f"inputshape={_inputshape(source)}", _FP16_FLAG[variant]]
        started = time.perf_counter()
        try:
            proc = subprocess.run(
                argv,
                cwd=work,
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
                f"pnnx did not finish {onnx_path.name} within {_TIMEOUT_SECONDS} s"
            ) from e
        except OSError as e:
            raise ConversionError(f"cannot run pnnx ({exe}): {e}") from e
        seconds = time.perf_counter() - started
        param, weights = work / "model.ncnn.param", work / "model.ncnn.bin"
        if proc.returncode != 0 or not param.is_file() or not weights.is_file():
            raise _pnnx_failed(proc, onnx_path, variant)
        untranslated = _untranslated(work)
        if untranslated:
            raise UnsupportedModelError(
                f"pnnx could not express {', '.join(untranslated)} in ncnn layers "
                f"for {onnx_path.name}; ncnn would refuse the model",
                hint="simplify the model (e.g. onnxslim) or drop the ncnn target",
            )
        document = _io_document(source, _batch_hints(work / "model_ncnn.py"))
        dst_param, dst_bin = out_dir / f"{stem}.param", out_dir / f"{stem}.bin"
        dst_io = out_dir / f"{stem}.io.json"
        param.replace(dst_param)
        weights.replace(dst_bin)
    dst_io.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return dst_param, dst_bin, dst_io, seconds


def _pnnx_failed(
    proc: subprocess.CompletedProcess[str], onnx_path: Path, variant: str
) -> ConversionError:
    if proc.returncode < 0 and "ort Run failed" in proc.stdout:
        return ConversionError(
            f"pnnx crashed ({describe_exit(proc.returncode)}) tracing {onnx_path.name}: its shape "
            "pass runs the model on uninitialised inputs, which this model rejects (an integer "
            f"input used as an index or a shape):\n{_tail(proc.stdout)}",
            hint="pnnx cannot take real inputs for this; drop the ncnn target",
        )
    how = (
        f"crashed ({describe_exit(proc.returncode)})"
        if proc.returncode < 0
        else f"exited with {proc.returncode}"
        if proc.returncode
        else "wrote no ncnn model"
    )
    return ConversionError(
        f"pnnx {how} for {onnx_path.name} -> ncnn {variant}:\n{_tail(proc.stdout)}"
    )


class NcnnConverter(TolerancesTable):
    """ONNX -> ncnn via pnnx. Variants: ``fp32``, ``fp16`` (fp16 weights)."""

    runtime = RUNTIME
    tolerances = _TOLERANCES
    controls = _CONTROLS

    def check(self, source: SourceModel, target: Target) -> None:
        """Refuse, naming the node, an ONNX source ncnn cannot take (``validate`` calls this)."""
        if source.format == "onnx":
            onnx_graph.check(source.path, RULES, tool="ncnn")

    def convert(self, source: SourceModel, target: Target, ctx: ConvertContext) -> Artifact:
        """Write ``ncnn/<variant>/<stem>.param``, ``.bin`` and ``.io.json`` in ``ctx.workdir``."""
        require_variant(self.runtime, self.variants, target.variant)
        folder = f"{RUNTIME}/{target.variant}"
        stem = source.path.stem
        param, weights, io_doc, seconds = convert_onnx(
            ctx.onnx_of(source, max_opset=MAX_OPSET),
            ctx.workdir / folder,
            stem,
            source,
            target.variant,
        )
        return Artifact(
            target=target,
            files=(
                ArtifactFile(local=param, bundle_path=f"{folder}/{stem}.param", role="model"),
                ArtifactFile(local=weights, bundle_path=f"{folder}/{stem}.bin", role="weights"),
                ArtifactFile(local=io_doc, bundle_path=f"{folder}/{stem}.io.json", role="asset"),
            ),
            tools={"pnnx": _version("pnnx"), "ncnn": _version("ncnn")},
            seconds=seconds,
            layout=_layout(json.loads(io_doc.read_text(encoding="utf-8"))),
        )

    def load(self, artifact: Artifact) -> Runner:
        """Load the ``.param`` and ``.bin`` into an ``ncnn.Net``, fed as ``.io.json`` says."""
        roles = {f.role: f.local for f in artifact.files}
        if "model" not in roles or "weights" not in roles:
            raise ConversionError(
                f"{artifact.target.name}: an ncnn artifact needs a .param (model) "
                "and a .bin (weights)"
            )
        io_doc = next((f.local for f in artifact.files if f.bundle_path.endswith(".io.json")), None)
        return NcnnRunner(
            roles["model"],
            roles["weights"],
            io=json.loads(io_doc.read_text(encoding="utf-8")) if io_doc else None,
            precise=artifact.target.variant == "fp32",
        )


def _blob_order(names: Sequence[str], prefix: str) -> tuple[str, ...]:
    """pnnx's blob names in index order (``in2`` before ``in10``)."""
    pattern = re.compile(rf"{prefix}(\d+)")
    matches = [pattern.fullmatch(n) for n in names]
    if all(matches):
        return tuple(sorted(names, key=lambda n: int(n[len(prefix) :])))
    return tuple(names)


class NcnnRunner:
    """Runs an ncnn model on inputs in the source's layout, as its ``.io.json`` says.

    Inputs are matched to pnnx's ``in0``, ``in1``... by position, in the order
    given, unless they already carry the blob names. A blob with a batch axis
    is fed one sample at a time along it, and the outputs are put back
    together along theirs; a blob without one is fed whole. Integer inputs go
    in as int32 (ncnn's Embed reads ids so). Without an ``.io.json`` (bundles
    of aoe-pack 0.1) every blob's batch axis is 0.

    ``precise`` turns off ncnn's fp16/bf16 storage and arithmetic, which it
    otherwise picks on CPUs that have them, so a float32 artifact is judged
    on its conversion alone; fp16 artifacts run with ncnn's defaults.
    """

    def __init__(
        self, param: Path, weights: Path, *, io: Mapping[str, Any] | None, precise: bool
    ) -> None:
        try:
            import ncnn
        except ImportError as e:
            raise MissingExtraError(
                "ncnn's Python module is not installed", hint="install aoe-pack[convert]"
            ) from e
        self._ncnn: Any = ncnn
        net = ncnn.Net()
        if precise:
            net.opt.use_fp16_storage = False
            net.opt.use_fp16_packed = False
            net.opt.use_fp16_arithmetic = False
            net.opt.use_bf16_storage = False
        if net.load_param(str(param)) != 0:
            raise ConversionError(f"ncnn cannot load {param.name}: not a valid ncnn .param")
        if net.load_model(str(weights)) != 0:
            raise ConversionError(f"ncnn cannot load {weights.name} with {param.name}")
        self._net = net
        self.input_names = _blob_order(net.input_names(), "in")
        self.output_names = _blob_order(net.output_names(), "out")
        blobs = {
            b["blob"]: b for b in (*(io or {}).get("inputs", ()), *(io or {}).get("outputs", ()))
        }
        self._axis = {
            n: blobs[n]["batchAxis"] if n in blobs else 0
            for n in (*self.input_names, *self.output_names)
        }
        self._int = {n for n, b in blobs.items() if b.get("dtype") == "int32"}

    def _ordered(self, inputs: Mapping[str, Array]) -> list[Array]:
        if set(inputs) == set(self.input_names):
            return [inputs[n] for n in self.input_names]
        if len(inputs) == len(self.input_names):
            return list(inputs.values())
        raise ConversionError(
            f"the ncnn model takes inputs {list(self.input_names)}, was given {list(inputs)}"
        )

    def _samples(self, values: Sequence[Array]) -> int:
        counts = {
            v.shape[self._axis[n]]
            for n, v in zip(self.input_names, values, strict=True)
            if self._axis[n] is not None and v.ndim > (self._axis[n] or 0)
        }
        if len(counts) > 1:
            raise ConversionError(f"ncnn inputs disagree on their batch size: {sorted(counts)}")
        return counts.pop() if counts else 1

    def __call__(self, inputs: Mapping[str, Array]) -> Sequence[Array]:
        import numpy as np

        ncnn = self._ncnn
        values = [np.asarray(v) for v in self._ordered(inputs)]
        per_sample: list[list[Array]] = []
        for k in range(self._samples(values)):
            with self._net.create_extractor() as ex:
                for name, value in zip(self.input_names, values, strict=True):
                    axis = self._axis[name]
                    part = value if axis is None else np.take(value, [k], axis=axis)
                    dtype = np.int32 if name in self._int else np.float32
                    mat = ncnn.Mat(
                        np.ascontiguousarray(part, dtype=dtype),
                        batch_index=_NO_BATCH if axis is None else axis,
                    )
                    ex.input(name, mat.clone())
                outputs: list[Array] = []
                for name in self.output_names:
                    ret, mat = ex.extract(name)
                    if ret != 0:
                        raise ConversionError(f"ncnn failed to compute {name} (error {ret})")
                    axis = self._axis[name]
                    outputs.append(
                        np.array(mat.numpy(batch_index=_NO_BATCH if axis is None else axis))
                    )
            per_sample.append(outputs)
        if len(per_sample) == 1:
            return per_sample[0]
        return [
            np.concatenate(parts, axis=self._axis[name] or 0)
            for name, parts in zip(self.output_names, zip(*per_sample, strict=True), strict=True)
        ]
