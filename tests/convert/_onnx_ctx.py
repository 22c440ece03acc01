"""A ConvertContext and a reference runner for converter tests.

The build gives converters the source as ONNX (converting Keras, SavedModel or
TFLite once with tf2onnx). Tests that start from an ONNX file need none of
that: ``OnnxContext.onnx_of`` hands back the ONNX path as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aoe_pack.convert.api import SourceModel

T = TypeVar("T")


@dataclass
class OnnxContext:
    """``onnx`` when given (a Keras source already converted), else the source itself."""

    workdir: Path
    onnx: Path | None = None

    def onnx_of(self, source: SourceModel, *, max_opset: int | None = None) -> Path:
        return self.onnx or source.path

    def calibration(self, source: SourceModel) -> Sequence[Mapping[str, Any]]:
        return []

    def shared(self, key: str, source: SourceModel, make: Callable[[Path], T]) -> T:
        folder = self.workdir / "shared" / key
        folder.mkdir(parents=True, exist_ok=True)
        return make(folder)


class OrtReference:
    """The source model through onnxruntime; declared inputs are matched by position."""

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3  # "Unknown CPU vendor" on this VM
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._names = [i.name for i in self._session.get_inputs()]

    def __call__(self, inputs: Mapping[str, Any]) -> Sequence[Any]:
        feed = dict(zip(self._names, inputs.values(), strict=True))
        return list(self._session.run(None, feed))
