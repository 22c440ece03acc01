"""The contract between aoe-pack and its converters (built-in or plugins).

A converter turns a validated :class:`SourceModel` into an :class:`Artifact`
for one :class:`Target` (runtime + variant), and can load an artifact back as
a :class:`Runner` so that parity and benchmarks run every artifact through its
own runtime's Python API. Converters are found through the entry-point group
``aoe_pack.converters`` (:mod:`aoe_pack.convert.registry`); the built-ins
register the same way, so adding a runtime never means changing aoe-pack.

Nothing here imports an ML framework: converters import theirs lazily, inside
``convert`` and ``load``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from aoe_pack.config.model import TensorSpec
from aoe_pack.errors import ConversionError, ConverterNotFoundError

if TYPE_CHECKING:
    import numpy.typing as npt

    Array = npt.NDArray[Any]
else:
    Array = Any

SOURCE_FORMATS = ("keras", "savedmodel", "tflite", "onnx")


@dataclass(frozen=True, kw_only=True)
class Target:
    """One artifact to produce: a runtime and a variant of it.

    ``name`` (``runtime-variant``) is unique in a build and names the
    artifact's folder in the bundle (``payload/<runtime>/<variant>/...``).
    """

    runtime: str
    variant: str
    options: Mapping[str, Any] = field(default_factory=dict)
    tolerance: float | None = None
    """Max absolute error allowed against the source; None = the variant's default."""

    @property
    def name(self) -> str:
        return f"{self.runtime}-{self.variant}"


@dataclass(frozen=True, kw_only=True)
class SourceModel:
    """A source model that loaded and matched its declared inputs and outputs."""

    path: Path
    format: str  # one of SOURCE_FORMATS
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    details: Mapping[str, Any] = field(default_factory=dict)
    """What validation found, for reports: opset, IR version, signature names..."""


@dataclass(frozen=True, kw_only=True)
class ArtifactFile:
    """One file of an artifact: where it is now, and its path inside the bundle."""

    local: Path
    bundle_path: str
    role: str = "model"  # "model", "weights" (ncnn .bin), "asset" (ORT operator config)


@dataclass(frozen=True, kw_only=True)
class Artifact:
    """What a converter produced for one target."""

    target: Target
    files: tuple[ArtifactFile, ...]
    tools: Mapping[str, str] = field(default_factory=dict)
    """Tool name -> version, recorded in the bundle's provenance."""
    seconds: float = 0.0
    layout: str | None = None
    """Input layout the runtime expects when it differs from the source's (e.g. "NCHW")."""

    @property
    def model(self) -> Path:
        """The artifact's model file (role ``model``), for loading it."""
        for f in self.files:
            if f.role == "model":
                return f.local
        raise ConversionError(f"{self.target.name}: the artifact has no model file")


def require_variant(runtime: str, variants: Sequence[str], variant: str) -> None:
    """ConverterNotFoundError unless ``variant`` is one of ``variants`` (a usage error)."""
    if variant not in variants:
        raise ConverterNotFoundError(
            f"runtime {runtime!r} has no variant {variant!r}; choose one of {', '.join(variants)}"
        )


def single_file_artifact(
    target: Target, local: Path, *, tools: Mapping[str, str], seconds: float
) -> Artifact:
    """An artifact of one model file, stored as ``<runtime>/<variant>/<file name>``."""
    path = f"{target.runtime}/{target.variant}/{local.name}"
    return Artifact(
        target=target,
        files=(ArtifactFile(local=local, bundle_path=path, role="model"),),
        tools=tools,
        seconds=seconds,
    )


@dataclass(frozen=True, kw_only=True)
class Parity:
    """How closely an artifact reproduces its source on the same inputs."""

    max_abs: float
    mean_abs: float
    top1: float | None
    """Share of samples whose arg-max class agrees, for classifier outputs."""
    samples: int
    tolerance: float

    @property
    def passed(self) -> bool:
        # NaN never passes (it compares false), nor does an infinite error.
        return math.isfinite(self.max_abs) and self.max_abs <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        # Decimal strings: canonical JSON (RFC 8785) would accept floats, but a
        # device reading the manifest should not depend on float printing.
        return {
            "maxAbs": f"{self.max_abs:.3e}",
            "meanAbs": f"{self.mean_abs:.3e}",
            "top1": None if self.top1 is None else f"{self.top1:.4f}",
            "samples": self.samples,
            "tolerance": f"{self.tolerance:.1e}",
        }


@runtime_checkable
class Runner(Protocol):
    """Runs a loaded model: named inputs in the source's layout -> outputs in order."""

    def __call__(self, inputs: Mapping[str, Array]) -> Sequence[Array]: ...


class ConvertContext(Protocol):
    """What the build gives a converter besides the source and target."""

    workdir: Path
    """A private, empty folder for this target's outputs and temporaries."""

    def onnx_of(self, source: SourceModel) -> Path:
        """The source as ONNX (itself if it is ONNX; else converted once with tf2onnx)."""
        ...

    def saved_model_of(self, source: SourceModel) -> Path:
        """The source as a TensorFlow SavedModel (a Keras source is exported once per build)."""
        ...

    def calibration(self, source: SourceModel) -> Sequence[Mapping[str, Array]]:
        """Representative inputs for full-integer quantisation."""
        ...


class TolerancesTable:
    """Base for converters whose variants are the keys of a default-tolerance table.

    A subclass sets ``runtime`` and ``tolerances`` (variant -> max absolute
    error, the default variant first); ``variants`` follows from the table.
    """

    runtime: str
    tolerances: Mapping[str, float]
    variants: tuple[str, ...]

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        cls.variants = tuple(cls.tolerances)

    def default_tolerance(self, variant: str) -> float:
        """Max absolute error allowed for ``variant`` unless the config overrides it."""
        require_variant(self.runtime, self.variants, variant)
        return self.tolerances[variant]


@runtime_checkable
class Converter(Protocol):
    """A runtime's converter. Register it under the ``aoe_pack.converters`` entry points."""

    runtime: str
    variants: tuple[str, ...]
    """Variants it can produce; the first is the default."""

    def default_tolerance(self, variant: str) -> float:
        """Max absolute error allowed for ``variant`` unless the config overrides it."""
        ...

    def convert(self, source: SourceModel, target: Target, ctx: ConvertContext) -> Artifact:
        """Produce the artifact under ``ctx.workdir``; raise ConversionError on failure."""
        ...

    def load(self, artifact: Artifact) -> Runner:
        """Load the artifact in its runtime, for parity checks and benchmarks."""
        ...
