"""The validated model config as a frozen value.

A :class:`ModelConfig` exists only after the JSON has passed the schema in
``schemas/model-config.schema.json`` and the legacy spellings were mapped to the
canonical ones (see :mod:`aoe_pack.config.legacy`). Everything downstream
(build, manifests) reads this type, never the raw JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# AoE's runtime name "tensorflow" always meant TensorFlow Lite on the device.
RUNTIME_ALIASES: Mapping[str, str] = {"tensorflow": "tflite"}
RUNTIMES = ("tflite", "onnx", "ort", "mnn", "ncnn", "pytorch", "tengine")


@dataclass(frozen=True, kw_only=True)
class TensorSpec:
    """A declared model input or output. ``-1`` in ``shape`` means dynamic."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    value_range: tuple[float, float] | None = None
    kind: str | None = None
    """For outputs: ``scores`` (class scores: top-1 is checked), ``values``, or None (detect)."""

    def to_dict(self) -> dict[str, Any]:
        """The config's JSON form of this tensor."""
        out: dict[str, Any] = {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}
        if self.value_range is not None:
            out["range"] = list(self.value_range)
        if self.kind is not None:
            out["kind"] = self.kind
        return out


@dataclass(frozen=True, kw_only=True)
class ModelFile:
    """One file the bundle carries, relative to the config's ``modelDir``.

    ``role`` is ``model`` for the model itself (``modelName``), ``weights``
    for a second model file such as ncnn's ``.bin`` next to its ``.param``,
    and ``labels`` or ``asset`` for associated files.
    """

    path: str
    role: str


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """A validated, canonical AoE model config."""

    source_path: Path
    """Where the config was read from; ``model_dir`` is relative to its folder."""

    version: str
    tag: str
    runtime: str
    """Canonical runtime name (``tensorflow`` is normalised to ``tflite``)."""

    source: str
    """``installed`` (shipped inside the app) or ``remote`` (fetched by update)."""

    model_dir: str
    model_name: str
    update_url: str | None = None
    min_app_version: str | None = None
    inputs: tuple[TensorSpec, ...] | None = None
    outputs: tuple[TensorSpec, ...] | None = None
    """None when the config does not declare them: they are read from the model."""
    files: tuple[ModelFile, ...] = ()
    """Every file to pack, the model first; always contains ``model_name``."""

    targets: tuple[Mapping[str, Any], ...] = ()
    """Conversion targets, interpreted by the conversion stage (issue 3)."""

    encrypt: bool = True
    canonical: Mapping[str, Any] = field(default_factory=dict)
    """The canonical JSON form of the config, as ``migrate`` writes it."""

    @property
    def model_root(self) -> Path:
        """The folder the model files live in."""
        return (self.source_path.parent / self.model_dir).resolve()
