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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from aoe_pack.config.model import TensorSpec
from aoe_pack.errors import ConversionError, ConverterNotFoundError

if TYPE_CHECKING:
    import numpy.typing as npt

    Array = npt.NDArray[Any]
else:
    Array = Any

SOURCE_FORMATS = ("keras", "savedmodel", "tflite", "onnx")
T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Target:
    """One artifact to produce: a runtime and a variant of it.

    ``name`` (``runtime-variant``) is unique in a build and names the
    artifact's folder in the bundle (``payload/<runtime>/<variant>/...``).
    """

    runtime: str
    variant: str
    options: Mapping[str, Any] = field(default_factory=dict)
    tolerance: Tolerance | None = None
    """How far the artifact may drift from the source; None = the variant's default."""

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
    requires: tuple[str, ...] = ()
    """What a device needs besides the runtime itself (``tensorflow-lite-select-tf-ops``)."""

    @property
    def model(self) -> Path:
        """The artifact's model file (role ``model``), for loading it."""
        for f in self.files:
            if f.role == "model":
                return f.local
        raise ConversionError(f"{self.target.name}: the artifact has no model file")


def require_variant(runtime: str, variants: Sequence[str], variant: str) -> None:
    """ConverterNotFoundError unless ``variant`` is one of ``variants``."""
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


def _sci(value: float, digits: int = 3) -> str:
    """A float as a decimal string for signed documents ("inf" and "nan" spelled out)."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}e}"


@dataclass(frozen=True, kw_only=True)
class Tolerance:
    """How far an artifact may drift from its source, on the scale of the source's outputs.

    An output passes when its largest absolute error is at most
    ``atol + rtol * peak``, ``peak`` being the largest magnitude the source
    produced for that output over all samples. ``atol`` is a floor for outputs
    that are (nearly) zero. For class-score outputs, the artifact must also
    pick the source's top-1 class on at least ``min_top1`` of the samples
    where the source's choice is decisive (see :mod:`aoe_pack.convert.parity`).
    """

    rtol: float
    atol: float
    min_top1: float = 0.9

    def allowed(self, peak: float) -> float:
        """The largest absolute error an output of this ``peak`` magnitude may have."""
        return self.atol + self.rtol * peak

    @classmethod
    def of(cls, rtol: float, atol: float, min_top1: float) -> Tolerance:
        """Positional shorthand for the converters' default tables."""
        return cls(rtol=rtol, atol=atol, min_top1=min_top1)

    @classmethod
    def absolute(cls, max_abs: float) -> Tolerance:
        """A plain max-absolute-error bound (aoe-pack 0.1's ``"tolerance"``, plugins' floats)."""
        return cls(rtol=0.0, atol=max_abs)

    def to_dict(self) -> dict[str, str]:
        return {
            "rtol": _sci(self.rtol, 1),
            "atol": _sci(self.atol, 1),
            "minTop1": f"{self.min_top1:.2f}",
        }


class Precision:
    """Default tolerances, by what a variant does to the numbers (see docs/converting.md).

    Converters map each variant onto one of these; a config's ``rtol``,
    ``atol`` and ``minTop1`` override them per target.
    """

    FLOAT32 = Tolerance(rtol=1e-4, atol=1e-6, min_top1=1.0)
    """Same arithmetic, other kernels or fused ops: only summation order differs."""
    FLOAT16 = Tolerance(rtol=1e-2, atol=1e-4, min_top1=0.85)
    """Half-precision weights (and, on some devices, arithmetic)."""
    INT8_WEIGHTS = Tolerance(rtol=5e-2, atol=1e-3, min_top1=0.85)
    """8-bit weights, float activations (dynamic-range quantisation)."""
    INT8 = Tolerance(rtol=1e-1, atol=1e-3, min_top1=0.85)
    """Integer weights and activations, calibrated."""


@dataclass(frozen=True, kw_only=True)
class OutputParity:
    """How closely one output of an artifact reproduces the source's, over all samples."""

    name: str
    max_abs: float
    mean_abs: float
    peak: float
    """Largest magnitude of the source's output over every sample."""
    allowed: float
    """The tolerance's bound for this output (atol + rtol * peak)."""
    snr_db: float
    """Signal-to-noise ratio: 10 log10(sum source^2 / sum error^2); inf when exact."""
    varies: bool | None
    """Whether the source's output changes over the samples (None with one sample)."""
    scores: bool
    """Treated as class scores (top-1 checked)."""
    top1: float | None = None
    """Share of decisive samples whose top-1 class agrees; None when none was decisive."""
    decisive: int = 0
    """Rows (samples x batch) where the source's top-1 margin is not a numerical tie."""

    @property
    def within(self) -> bool:
        """The value check alone. NaN never passes (it compares false), nor does inf."""
        return math.isfinite(self.max_abs) and self.max_abs <= self.allowed

    @property
    def relative(self) -> float:
        """max_abs / peak (inf when the source output is all zero and the artifact's is not)."""
        if self.peak > 0:
            return self.max_abs / self.peak
        return 0.0 if self.max_abs == 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "maxAbs": _sci(self.max_abs),
            "meanAbs": _sci(self.mean_abs),
            "peak": _sci(self.peak),
            "relative": _sci(self.relative),
            "snrDb": "inf" if math.isinf(self.snr_db) else f"{self.snr_db:.1f}",
            "varies": self.varies,
            "scores": self.scores,
            "top1": None if self.top1 is None else f"{self.top1:.4f}",
            "decisive": self.decisive,
        }


@dataclass(frozen=True, kw_only=True)
class Parity:
    """How closely an artifact reproduces its source on the same inputs."""

    samples: int
    tolerance: Tolerance
    outputs: tuple[OutputParity, ...]

    @property
    def max_abs(self) -> float:
        return max((o.max_abs for o in self.outputs), default=0.0)

    @property
    def worst(self) -> OutputParity | None:
        """The output furthest from passing (largest error / allowed)."""

        def ratio(o: OutputParity) -> float:
            if not math.isfinite(o.max_abs):
                return math.inf
            return o.max_abs / o.allowed if o.allowed > 0 else (0.0 if o.max_abs == 0 else math.inf)

        return max(self.outputs, key=ratio, default=None)

    @property
    def top1(self) -> float | None:
        """The lowest top-1 agreement over the class-score outputs."""
        values = [o.top1 for o in self.outputs if o.top1 is not None]
        return min(values) if values else None

    @property
    def passed(self) -> bool:
        return all(
            o.within and (o.top1 is None or o.top1 >= self.tolerance.min_top1) for o in self.outputs
        )

    @property
    def conclusive(self) -> bool | None:
        """False when a source output does not vary over the samples: agreement proves little."""
        flags = [o.varies for o in self.outputs]
        if any(f is False for f in flags):
            return False
        return None if any(f is None for f in flags) else True

    def failure(self) -> str | None:
        """Why parity failed, in one line naming the output; None when it passed."""
        for i, o in enumerate(self.outputs):
            where = f"output {i} ({o.name})" if o.name else f"output {i}"
            if not o.within:
                return (
                    f"{where}: max abs error {_sci(o.max_abs, 2)} exceeds {_sci(o.allowed, 2)} "
                    f"(= {_sci(self.tolerance.atol, 1)} + {_sci(self.tolerance.rtol, 1)} x "
                    f"peak {_sci(o.peak, 2)}; relative {_sci(o.relative, 2)})"
                )
            if o.top1 is not None and o.top1 < self.tolerance.min_top1:
                return (
                    f"{where}: top-1 class agrees on {o.top1:.0%} of {o.decisive} decisive "
                    f"sample(s), below {self.tolerance.min_top1:.0%}"
                )
        return None

    def inconclusive_outputs(self) -> list[str]:
        """Names (or indices) of the outputs that do not vary over the samples."""
        return [o.name or str(i) for i, o in enumerate(self.outputs) if o.varies is False]

    def to_dict(self) -> dict[str, Any]:
        # Decimal strings: canonical JSON (RFC 8785) would accept floats, but a
        # device reading the manifest should not depend on float printing.
        return {
            "samples": self.samples,
            "tolerance": self.tolerance.to_dict(),
            "passed": self.passed,
            "conclusive": self.conclusive,
            "maxAbs": _sci(self.max_abs),
            "top1": None if self.top1 is None else f"{self.top1:.4f}",
            "outputs": [o.to_dict() for o in self.outputs],
        }


@runtime_checkable
class Runner(Protocol):
    """Runs a loaded model: named inputs in the source's layout -> outputs in order."""

    def __call__(self, inputs: Mapping[str, Array]) -> Sequence[Array]: ...


class ConvertContext(Protocol):
    """What the build gives a converter besides the source and target."""

    workdir: Path
    """A private, empty folder for this target's outputs and temporaries."""

    def onnx_of(self, source: SourceModel, *, max_opset: int | None = None) -> Path:
        """The source as ONNX (itself if it is ONNX; else converted once with tf2onnx).

        ``max_opset``: the newest default-domain opset the caller handles; a newer
        ONNX source is down-converted for it.
        """
        ...

    def saved_model_of(self, source: SourceModel, *, unrolled: bool = False) -> Path:
        """The source as a TensorFlow SavedModel (a Keras source is exported once per build).

        ``unrolled``: with a Keras source's recurrent layers unrolled, for int8 calibration.
        """
        ...

    def calibration(self, source: SourceModel) -> Sequence[Mapping[str, Array]]:
        """Representative inputs for full-integer quantisation."""
        ...

    def shared(self, key: str, source: SourceModel, make: Callable[[Path], T]) -> T:
        """``make(folder)`` once per build for (key, source); concurrent callers wait for it."""
        ...


class TolerancesTable:
    """Base for converters whose variants are the keys of a default-tolerance table.

    A subclass sets ``runtime`` and ``tolerances`` (variant -> :class:`Tolerance`,
    the default variant first); ``variants`` follows from the table. Reduced-
    precision variants name their float32 counterpart in ``controls``
    (variant -> control variant): the build then measures that counterpart too,
    and refuses the reduced variant when the counterpart fails, because a looser
    tolerance must not hide a conversion error that float32 exposes.
    """

    runtime: str
    tolerances: Mapping[str, Tolerance]
    controls: Mapping[str, str] = {}
    variants: tuple[str, ...]

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        cls.variants = tuple(cls.tolerances)

    def default_tolerance(self, variant: str) -> Tolerance:
        """The tolerance for ``variant`` unless the config overrides it."""
        require_variant(self.runtime, self.variants, variant)
        return self.tolerances[variant]


def tolerance_of(converter: Converter, target: Target) -> Tolerance:
    """The target's own tolerance, else its converter's default for the variant.

    A plugin's plain float default is a max absolute error, as in aoe-pack 0.1.
    """
    if target.tolerance is not None:
        return target.tolerance
    default = converter.default_tolerance(target.variant)
    return default if isinstance(default, Tolerance) else Tolerance.absolute(float(default))


def control_of(converter: Converter, variant: str) -> str | None:
    """The float32 variant that vouches for ``variant``'s conversion, if it has one."""
    controls: Mapping[str, str] = getattr(converter, "controls", {}) or {}
    control = controls.get(variant)
    return control if control and control != variant else None


@runtime_checkable
class Converter(Protocol):
    """A runtime's converter. Register it under the ``aoe_pack.converters`` entry points.

    Optionally, a converter may also define ``controls`` (see
    :class:`TolerancesTable`), and ``check(source, target)``, which raises the
    named error a conversion would end in, without converting, where it can
    tell from the source alone (``validate`` reports these per target).
    """

    runtime: str
    variants: tuple[str, ...]
    """Variants it can produce; the first is the default."""

    def default_tolerance(self, variant: str) -> Tolerance | float:
        """The tolerance for ``variant``; a float is a max absolute error."""
        ...

    def convert(self, source: SourceModel, target: Target, ctx: ConvertContext) -> Artifact:
        """Produce the artifact under ``ctx.workdir``; raise ConversionError on failure."""
        ...

    def load(self, artifact: Artifact) -> Runner:
        """Load the artifact in its runtime, for parity checks and benchmarks.

        aoe-pack calls this in a child process of its own (a crash there fails
        only this target), with the runtime's stdout sent to a log.
        """
        ...
