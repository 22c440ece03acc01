"""ncnn: ONNX -> ``.param`` + ``.bin`` through the pnnx program, run through ncnn's Python API.

pnnx is called as the program its wheel bundles (``site-packages/pnnx/pnnx``),
found without importing the ``pnnx`` package: its Python side needs torch,
which aoe-pack never installs (``pip install --no-deps pnnx``). The program
writes a dozen files next to its input (pnnx param/bin, a re-exported ONNX,
Python scripts), so it runs on a copy of the model in a private folder and
only the ncnn pair is kept.

ncnn has no batch dimension: pnnx drops the leading one, names the blobs
``in0``, ``in1``... and ``out0``..., and the rest of each tensor keeps the
ONNX order. An NCHW image becomes an ncnn Mat of (c, h, w); an NHWC one (a
Keras model through tf2onnx) becomes (c, h, w) = (H, W, C), with pnnx's own
reshape or permute inside the graph. Runners take batch-1 inputs in the
source's layout, drop the batch to feed ncnn and put it back on the outputs.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

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
from aoe_pack.errors import ConversionError, MissingExtraError

RUNTIME = "ncnn"

_FP16_FLAG: Mapping[str, str] = {"fp32": "fp16=0", "fp16": "fp16=1"}

# Max absolute error against the source. FIELD-NOTES §3 measured ncnn fp32 at
# 4e-8 and fp16 weights at 2e-5 to 7e-4; the samples here give at most 3e-8
# and 1.1e-5. float32 gets 1e-5, as the other float32 targets do: 200x the
# worst figure, while a real fault (layout, operator) is off by 1e-2 or more.
# fp16 gets about 7x the worst figure seen.
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
    shapes = []
    for spec in source.inputs:
        dims = ",".join(str(1 if d < 0 else d) for d in spec.shape)
        shapes.append(f"[{dims}]{_PNNX_DTYPES.get(spec.dtype, '')}")
    return ",".join(shapes)


def _layout(source: SourceModel) -> str:
    """What a device feeds ncnn: each input without its batch, on ncnn's axes."""
    parts = []
    for i, spec in enumerate(source.inputs):
        dims = [1 if d < 0 else d for d in spec.shape[1:]] or [1]
        axes = _AXES.get(len(dims), "?")
        parts.append(f"{spec.name}->in{i} ({axes})=({','.join(map(str, dims))})")
    return "ncnn Mat without batch: " + "; ".join(parts)


def _foreign_layers(param: Path) -> list[str]:
    """Layer types pnnx could not turn into ncnn ones (``pnnx.Expression``, ``F.pad``...)."""
    lines = param.read_text(encoding="utf-8", errors="replace").splitlines()[2:]
    return sorted({ln.split()[0] for ln in lines if ln.split() and "." in ln.split()[0]})


def _stage_for_pnnx(onnx_path: Path, dst: Path) -> None:
    """Copy the model for pnnx, spelling out each Pad's default mode.

    pnnx leaves a Pad without a ``mode`` attribute (optional in ONNX, default
    "constant"; tf2onnx omits it, e.g. for Keras's ZeroPadding2D) as an
    untranslated ``Pad`` layer that ncnn refuses to load.
    """
    from aoe_pack.convert.sources import import_onnx

    onnx = import_onnx()
    try:
        model = onnx.load(str(onnx_path))
    except Exception:  # noqa: BLE001 - pnnx then reports the unreadable model itself
        shutil.copyfile(onnx_path, dst)
        return
    for node in model.graph.node:
        if node.op_type == "Pad" and not any(a.name == "mode" for a in node.attribute):
            node.attribute.append(onnx.helper.make_attribute("mode", "constant"))
    onnx.save(model, str(dst))


def convert_onnx(
    onnx_path: Path, out_dir: Path, stem: str, source: SourceModel, variant: str
) -> tuple[Path, Path, float]:
    """Run pnnx on a copy of ``onnx_path``; return the ``.param``, the ``.bin`` and the seconds."""
    exe = pnnx_program()
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".pnnx-", dir=out_dir) as tmp:
        work = Path(tmp)
        # A fixed name: pnnx parses key=value arguments, and names its outputs after the input.
        _stage_for_pnnx(onnx_path, work / "model.onnx")
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
            how = f"exited with {proc.returncode}" if proc.returncode else "wrote no ncnn model"
            raise ConversionError(
                f"pnnx {how} for {onnx_path.name} -> ncnn {variant}:\n{_tail(proc.stdout)}"
            )
        foreign = _foreign_layers(param)
        if foreign:
            raise ConversionError(
                f"pnnx could not express {', '.join(foreign)} in ncnn layers "
                f"for {onnx_path.name}; ncnn would refuse the model",
                hint="simplify the model (e.g. onnxslim) or drop the ncnn target",
            )
        dst_param, dst_bin = out_dir / f"{stem}.param", out_dir / f"{stem}.bin"
        param.replace(dst_param)
        weights.replace(dst_bin)
    return dst_param, dst_bin, seconds


class NcnnConverter(TolerancesTable):
    """ONNX -> ncnn via pnnx. Variants: ``fp32``, ``fp16`` (fp16 weights)."""

    runtime = RUNTIME
    tolerances = _TOLERANCES
    controls = _CONTROLS

    def convert(self, source: SourceModel, target: Target, ctx: ConvertContext) -> Artifact:
        """Write ``ncnn/<variant>/<stem>.param`` and ``.bin`` under ``ctx.workdir``."""
        require_variant(self.runtime, self.variants, target.variant)
        folder = f"{RUNTIME}/{target.variant}"
        stem = source.path.stem
        param, weights, seconds = convert_onnx(
            ctx.onnx_of(source), ctx.workdir / folder, stem, source, target.variant
        )
        return Artifact(
            target=target,
            files=(
                ArtifactFile(local=param, bundle_path=f"{folder}/{stem}.param", role="model"),
                ArtifactFile(local=weights, bundle_path=f"{folder}/{stem}.bin", role="weights"),
            ),
            tools={"pnnx": _version("pnnx"), "ncnn": _version("ncnn")},
            seconds=seconds,
            layout=_layout(source),
        )

    def load(self, artifact: Artifact) -> Runner:
        """Load the ``.param`` and ``.bin`` into an ``ncnn.Net``."""
        roles = {f.role: f.local for f in artifact.files}
        if "model" not in roles or "weights" not in roles:
            raise ConversionError(
                f"{artifact.target.name}: an ncnn artifact needs a .param (model) "
                "and a .bin (weights)"
            )
        return NcnnRunner(
            roles["model"], roles["weights"], precise=artifact.target.variant == "fp32"
        )


def _blob_order(names: Sequence[str], prefix: str) -> tuple[str, ...]:
    """pnnx's blob names in index order (``in2`` before ``in10``)."""
    pattern = re.compile(rf"{prefix}(\d+)")
    matches = [pattern.fullmatch(n) for n in names]
    if all(matches):
        return tuple(sorted(names, key=lambda n: int(n[len(prefix) :])))
    return tuple(names)


class NcnnRunner:
    """Runs an ncnn model on batch-1 inputs in the source's layout.

    Inputs are matched to pnnx's ``in0``, ``in1``... by position, in the order
    given, unless they already carry the blob names. ``precise`` turns off
    ncnn's fp16/bf16 storage and arithmetic, which it otherwise picks on
    CPUs that have them, so a float32 artifact is judged on its conversion
    alone (on this machine an fp16 Dense layer alone costs 8e-6); fp16
    artifacts run with ncnn's defaults, as on a device.
    """

    def __init__(self, param: Path, weights: Path, *, precise: bool) -> None:
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

    def _ordered(self, inputs: Mapping[str, Array]) -> list[Array]:
        if set(inputs) == set(self.input_names):
            return [inputs[n] for n in self.input_names]
        if len(inputs) == len(self.input_names):
            return list(inputs.values())
        raise ConversionError(
            f"the ncnn model takes inputs {list(self.input_names)}, was given {list(inputs)}"
        )

    def __call__(self, inputs: Mapping[str, Array]) -> Sequence[Array]:
        import numpy as np

        ncnn = self._ncnn
        with self._net.create_extractor() as ex:
            for name, value in zip(self.input_names, self._ordered(inputs), strict=True):
                array = np.asarray(value)
                if array.ndim == 0 or array.shape[0] != 1:
                    raise ConversionError(
                        f"ncnn runs one sample at a time: input {name} needs batch 1, "
                        f"got shape {array.shape}"
                    )
                # ncnn blobs are float32; the batch axis does not exist there.
                sample = np.ascontiguousarray(array[0], dtype=np.float32)
                ex.input(name, ncnn.Mat(sample.reshape(sample.shape or (1,))).clone())
            outputs: list[Array] = []
            for name in self.output_names:
                ret, mat = ex.extract(name)
                if ret != 0:
                    raise ConversionError(f"ncnn failed to compute {name} (error {ret})")
                outputs.append(np.array(mat, copy=True)[np.newaxis, ...])
        return outputs
