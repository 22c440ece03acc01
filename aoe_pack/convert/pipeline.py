"""The conversion stage of ``build``: source -> one outcome per target, each measured.

For a config with ``targets`` (or ``--target``), the declared model is the
*source*: it is validated (its inputs and outputs read from it when the config
does not declare them), run once on the parity inputs, and converted for every
target through the registered converters. Each artifact then runs in a child
process of its own on the same inputs (:mod:`aoe_pack.convert.isolate`), and
its outputs are compared with the source's (:mod:`aoe_pack.convert.parity`).

Every target gets a :class:`~aoe_pack.convert.outcome.TargetOutcome`, made by
:mod:`aoe_pack.convert.measure` (which also retries a failing target with the
source's ONNX functions expanded), whatever happens to the others: a
converter's refusal, a runtime's crash and a parity failure are recorded with
their named error, and the stage goes on. The caller decides what a failure
means (``build`` writes no bundle unless told to ship the targets that passed).

A reduced-precision variant (``mnn:fp16``, ``tflite:int8``...) is only
accepted when its float32 counterpart passes as well: the counterpart is
measured as a *control* when it is not a target itself, and not shipped.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from aoe_pack.config.model import ModelConfig
from aoe_pack.convert.api import (
    Array,
    Runner,
    SourceModel,
    Target,
    control_of,
)
from aoe_pack.convert.measure import Measuring, attempt, measure, vouched
from aoe_pack.convert.outcome import Status, TargetOutcome
from aoe_pack.convert.parity import run_all, sample_inputs
from aoe_pack.convert.registry import converter_for, parse_target
from aoe_pack.errors import (
    AoePackError,
    ConversionError,
    ModelFileError,
    RuntimeCrashError,
    SourceRunError,
    UnsupportedModelError,
)

if TYPE_CHECKING:
    from aoe_pack.convert.isolate import Feeds

Report = Callable[[str], None]
"""Receives one line per finished step (for progress on a terminal)."""


@dataclass(frozen=True, kw_only=True)
class Conversion:
    """Everything the conversion stage found: the source and every target's outcome."""

    source: SourceModel
    outcomes: tuple[TargetOutcome, ...]
    """The requested targets, in the order asked."""
    controls: tuple[TargetOutcome, ...] = ()
    """Float32 counterparts measured only to vouch for reduced variants."""
    samples: int = 0

    @property
    def passed(self) -> tuple[TargetOutcome, ...]:
        return tuple(o for o in self.outcomes if o.ok)

    @property
    def failed(self) -> tuple[TargetOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.ok)

    @property
    def inconclusive(self) -> tuple[str, ...]:
        """Source outputs that do not vary over the samples (parity proves little for them)."""
        for o in (*self.outcomes, *self.controls):
            if o.parity is not None and o.parity.samples:
                return tuple(o.parity.inconclusive_outputs())
        return ()

    def provenance(self, config: ModelConfig) -> dict[str, Any]:
        """What the bundle records: the source, every shipped conversion, every refused one.

        No timings: two builds of the same inputs must sign the same bytes.
        """
        source_path = config.model_root / config.model_name
        prov: dict[str, Any] = {
            "source": {
                "path": config.model_name,
                "format": self.source.format,
                "sha256": source_digest(source_path),
                **{k: v for k, v in self.source.details.items() if isinstance(v, str | int | bool)},
            },
            "conversions": [o.to_dict(timings=False) for o in self.passed],
        }
        if self.failed:
            prov["refused"] = [o.to_dict(timings=False) for o in self.failed]
        if self.inconclusive:
            prov["parityInconclusive"] = list(self.inconclusive)
        return prov


def targets_of(config: ModelConfig, overrides: Sequence[str] = ()) -> list[Target]:
    """``--target`` values if any were given, else the config's ``targets``."""
    specs: Sequence[Any] = overrides or config.targets
    targets = [parse_target(s) for s in specs]
    names = [t.name for t in targets]
    if len(set(names)) != len(names):
        raise ConversionError(f"a target is listed twice: {sorted(names)}")
    return targets


def source_digest(path: Path) -> str:
    """SHA-256 of a model file; for a SavedModel folder, of its files' names and digests."""
    if path.is_file():
        h = hashlib.sha256()
        with path.open("rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
        return h.hexdigest()
    h = hashlib.sha256()
    for child in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(child.relative_to(path).as_posix().encode() + b"\0")
        h.update(source_digest(child).encode() + b"\n")
    return h.hexdigest()


def validate_source(config: ModelConfig) -> SourceModel | None:
    """Check the config's model against its declared inputs and outputs.

    A config with targets has its model loaded as the conversion will load it
    (:func:`~aoe_pack.convert.sources.load_source`); one packed as it is has
    it read without its weights (:func:`~aoe_pack.convert.sources.inspect_source`).
    Returns None for formats aoe-pack does not read (``.mnn``, ncnn, ...: packed
    as they are). Raises the source's named error when it is broken, and
    MissingExtraError when the framework that reads it is not installed.
    """
    from aoe_pack.convert.sources import detect_format, inspect_source, load_source

    path = config.model_root / config.model_name
    try:
        detect_format(path)
    except UnsupportedModelError:
        return None
    if not config.targets:
        source = inspect_source(path, inputs=config.inputs, outputs=config.outputs)
        _check_packed(config, source)
        return source
    source, _ = load_source(path, inputs=config.inputs, outputs=config.outputs)
    return source


def _check_packed(config: ModelConfig, source: SourceModel) -> None:
    """An as-is ONNX model's external data files must be packed beside it."""
    packed = {f.path for f in config.files}
    folder = PurePosixPath(config.model_name).parent
    for location in source.details.get("external_data", ()):
        path = (folder / location).as_posix()
        if path not in packed:
            raise ModelFileError(
                f"{config.model_name} keeps weights in {location!r}, which the config does not "
                "pack: the bundle's model would not load",
                hint=f'add {{"path": "{path}", "role": "weights"}} to "files"',
            )


def precheck(source: SourceModel, targets: Sequence[Target]) -> list[TargetOutcome]:
    """The targets whose converter can tell, from the source alone, that it will refuse it.

    Converters may offer ``check(source, target)`` (the ONNX rules of MNN and
    ncnn do); ``validate`` shows what it finds, and ``build`` would end the same.
    """
    found = []
    for target in targets:
        check = getattr(converter_for(target), "check", None)
        if check is None:
            continue
        try:
            check(source, target)
        except AoePackError as e:
            found.append(TargetOutcome(target=target, status=Status.REFUSED, error=e))
    return found


def _parity_inputs(config: ModelConfig, source: SourceModel) -> list[dict[str, Array]]:
    """The config's sampleInputs (.npz) if it names some, else seeded ones in range."""
    from aoe_pack.convert.context import load_calibration

    named = config.canonical.get("sampleInputs")
    if named:
        return load_calibration(config.source_path.parent / str(named), source)
    return sample_inputs(source)


def _expected(
    source: SourceModel, reference: Runner, inputs: list[dict[str, Array]], feeds: Feeds
) -> list[list[Array]]:
    """The source's outputs on every sample: ONNX and TFLite in a child, Keras here."""
    from aoe_pack.convert.isolate import run_source

    hint = (
        'declare each input\'s "range" so that samples are valid for the model, or give '
        '"sampleInputs" (an .npz of real inputs)'
    )
    try:
        if source.format in ("onnx", "tflite"):
            return run_source(source, feeds)
        return run_all(reference, inputs)
    except RuntimeCrashError as e:
        raise SourceRunError(e.message, hint=hint) from e
    except AoePackError as e:
        raise SourceRunError(
            f"the source model fails on the parity inputs: {e.message}", hint=hint
        ) from e
    except Exception as e:  # the framework's own exception, on inputs it rejects
        raise SourceRunError(
            f"the source model fails on the parity inputs: {type(e).__name__}: {e}", hint=hint
        ) from e


def _with_controls(targets: Sequence[Target]) -> list[Target]:
    """The float32 counterparts the reduced variants need, that are not targets already."""
    present = {(t.runtime, t.variant) for t in targets}
    extra: list[Target] = []
    for t in targets:
        control = control_of(converter_for(t), t.variant)
        if control and (t.runtime, control) not in present:
            present.add((t.runtime, control))
            extra.append(Target(runtime=t.runtime, variant=control))
    return extra


def convert(
    config: ModelConfig,
    targets: Sequence[Target],
    workdir: Path,
    *,
    report: Report | None = None,
) -> Conversion:
    """Validate the source, convert it for every target and measure each artifact's parity.

    Raises only for the source (invalid, or failing on the parity inputs) and
    for targets no converter offers; each target's own failure is an outcome.
    """
    from aoe_pack.convert.context import BuildContext
    from aoe_pack.convert.isolate import Feeds
    from aoe_pack.convert.runners import KerasRunner
    from aoe_pack.convert.sources import load_source

    for target in targets:  # unknown runtimes and variants fail before any work starts
        converter_for(target)
    source_path = config.model_root / config.model_name
    source, reference = load_source(source_path, inputs=config.inputs, outputs=config.outputs)
    ctx = BuildContext(workdir=workdir, config_dir=config.source_path.parent)
    if isinstance(reference, KerasRunner):  # validation loaded it: nothing loads it again
        ctx.share_keras_model(source, reference.model)
    inputs = _parity_inputs(config, source)
    feeds = Feeds.write(inputs, workdir / "parity")
    expected = _expected(source, reference, inputs, feeds)
    job = Measuring(
        ctx=ctx,
        source=source,
        feeds=feeds,
        expected=expected,
        names=[o.name for o in source.outputs],
        kinds=[o.kind for o in source.outputs],
    )
    controls = _with_controls(targets)

    # TensorFlow work is serialised by its own lock while MNN, pnnx, the ORT
    # tool and every parity run are child processes: alternate TensorFlow-bound
    # targets (tflite) with the rest, so both kinds overlap from the start.
    jobs = [(t, False) for t in targets] + [(t, True) for t in controls]
    tf_bound = [j for j in jobs if j[0].runtime == "tflite"]
    others = [j for j in jobs if j[0].runtime != "tflite"]
    order = [j for pair in zip_longest(others, tf_bound) for j in pair if j is not None]
    workers = max(1, min(len(jobs), max(2, os.cpu_count() or 1)))
    with ThreadPoolExecutor(workers, thread_name_prefix="aoe-convert") as pool:
        futures = {j[0].name: pool.submit(measure, job, *j) for j in order}
        done: dict[str, TargetOutcome] = {}
        for name, future in futures.items():
            done[name] = outcome = future.result()
            if report:
                report(progress_line(outcome))

    def remeasure(target: Target, control: bool, expand: bool) -> TargetOutcome:
        return attempt(job, target, control, expand, again=True)[0]

    outcomes = [vouched(done[t.name], done, remeasure) for t in targets]
    return Conversion(
        source=source,
        outcomes=tuple(outcomes),
        controls=tuple(done[t.name] for t in controls),
        samples=len(inputs),
    )


def progress_line(outcome: TargetOutcome) -> str:
    """One line for a finished target, as a terminal shows it while the build runs."""
    name = outcome.target.name + (" (control)" if outcome.control else "")
    seconds = outcome.convert_seconds + outcome.parity_seconds
    if outcome.ok and outcome.parity is not None:
        worst = outcome.parity.worst
        rel = f", relative error {worst.relative:.1e}" if worst else ""
        return f"{name}: ok in {seconds:.1f} s{rel}"
    reason = (outcome.reason or "").splitlines()[0] if outcome.reason else ""
    return f"{name}: {outcome.status.value} after {seconds:.1f} s: {reason}"
