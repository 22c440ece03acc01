"""The conversion stage of ``build``: source -> one outcome per target, each measured.

For a config with ``targets`` (or ``--target``), the declared model is the
*source*: it is validated (its inputs and outputs read from it when the config
does not declare them), run once on the parity inputs, and converted for every
target through the registered converters. Each artifact then runs in a child
process of its own on the same inputs (:mod:`aoe_pack.convert.isolate`), and
its outputs are compared with the source's (:mod:`aoe_pack.convert.parity`).

Every target gets a :class:`TargetOutcome`, whatever happens to the others: a
converter's refusal, a runtime's crash and a parity failure are recorded with
their named error, and the stage goes on. The caller decides what a failure
means (``build`` writes no bundle unless told to ship the targets that passed).

A reduced-precision variant (``mnn:fp16``, ``tflite:int8``...) is only
accepted when its float32 counterpart passes as well: the counterpart is
measured as a *control* when it is not a target itself, and not shipped.
"""

from __future__ import annotations

import enum
import hashlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from itertools import zip_longest
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aoe_pack.bundle.build import PayloadSource
from aoe_pack.config.model import ModelConfig
from aoe_pack.convert.api import (
    Array,
    Artifact,
    Parity,
    Runner,
    SourceModel,
    Target,
    control_of,
    tolerance_of,
)
from aoe_pack.convert.parity import compare, run_all, sample_inputs
from aoe_pack.convert.registry import converter_for, parse_target
from aoe_pack.errors import (
    AoePackError,
    ConversionError,
    MissingExtraError,
    ParityError,
    RuntimeCrashError,
    SourceRunError,
    UnsupportedModelError,
)

if TYPE_CHECKING:
    from aoe_pack.convert.context import BuildContext
    from aoe_pack.convert.isolate import Feeds

Report = Callable[[str], None]
"""Receives one line per finished step (for progress on a terminal)."""

_REASON_CHARS = 2000
"""A refusal's reason as recorded in the signed provenance is cut at this length."""


class Status(enum.StrEnum):
    """What became of one target."""

    OK = "ok"
    PARITY_FAILED = "parity-failed"
    REFUSED = "refused"
    CRASHED = "crashed"


@dataclass(frozen=True, kw_only=True)
class TargetOutcome:
    """One target: its artifact and parity when it converted, else the named error."""

    target: Target
    status: Status
    artifact: Artifact | None = None
    parity: Parity | None = None
    error: AoePackError | None = None
    convert_seconds: float = 0.0
    parity_seconds: float = 0.0
    control: bool = False
    """Measured only to vouch for a reduced-precision variant; never shipped."""
    expanded: bool = False
    """Converted from the source's ONNX with its ONNX functions expanded."""

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    @property
    def reason(self) -> str | None:
        """The error's message (None when the target passed)."""
        return self.error.message if self.error else None

    def to_dict(self, *, timings: bool = True) -> dict[str, Any]:
        """The outcome as ``--json`` shows it; without ``timings`` as the bundle records it.

        The bundle records neither timings nor an error's hint, which depend on the
        machine and on aoe-pack's wording: the same inputs give the same bytes.
        """
        t = self.target
        out: dict[str, Any] = {
            "target": t.name,
            "runtime": t.runtime,
            "variant": t.variant,
            "status": self.status.value,
        }
        if self.artifact is not None and self.ok:
            out["files"] = [f.bundle_path for f in self.artifact.files]
            out["tools"] = dict(self.artifact.tools)
            if self.artifact.layout:
                out["layout"] = self.artifact.layout
        if self.artifact is not None and self.artifact.requires:
            out["requires"] = list(self.artifact.requires)
        if self.parity is not None:
            out["parity"] = self.parity.to_dict()
        if self.error is not None:
            out["code"] = self.error.code
            out["reason"] = self.error.message[:_REASON_CHARS]
            if timings and self.error.hint:  # advice for the one reading it now
                out["hint"] = self.error.hint
        if self.control:
            out["control"] = True
        if timings:
            out["seconds"] = {
                "convert": round(self.convert_seconds, 3),
                "parity": round(self.parity_seconds, 3),
            }
        return out


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

    def payload(self, config: ModelConfig) -> tuple[PayloadSource, ...]:
        """The passed targets' files, then the config's associated files (labels...)."""
        files = [
            PayloadSource(
                local=f.local,
                path=f.bundle_path,
                role=f.role,
                runtime=o.target.runtime,
                variant=o.target.variant,
            )
            for o in self.passed
            if o.artifact is not None
            for f in o.artifact.files
        ]
        files += [
            PayloadSource(local=config.model_root / f.path, path=f.path, role=f.role)
            for f in config.files
            if f.role != "model"
        ]
        return tuple(files)

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
    """Load the config's model and check its declared inputs and outputs.

    Returns None for formats aoe-pack does not read (``.mnn``, ncnn, ...: packed
    as they are). Raises the source's named error when it is broken, and
    MissingExtraError when the framework that reads it is not installed.
    """
    from aoe_pack.convert.sources import detect_format, load_source

    path = config.model_root / config.model_name
    try:
        detect_format(path)
    except UnsupportedModelError:
        return None
    source, _ = load_source(path, inputs=config.inputs, outputs=config.outputs)
    return source


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


@dataclass(frozen=True)
class _Measuring:
    """What every target of one build is converted from and measured against."""

    ctx: BuildContext
    source: SourceModel
    feeds: Feeds
    expected: Sequence[Sequence[Array]]
    names: list[str]
    kinds: list[str | None]


def _attempt(
    job: _Measuring, target: Target, control: bool, expand: bool, *, again: bool = False
) -> tuple[TargetOutcome, bool]:
    """The target's outcome, and whether its converter read the source's ONNX form.

    ``again``: a second measurement, in a folder of its own (see ``_vouched``).
    """
    from aoe_pack.convert.isolate import run_artifact

    ctx, source = job.ctx, job.source
    conv = converter_for(target)
    start = time.perf_counter()
    base = TargetOutcome(target=target, status=Status.REFUSED, control=control)
    target_ctx = ctx.for_target(target, expand_functions=expand, again=again)
    try:
        artifact = conv.convert(source, target, target_ctx)
    except AoePackError as e:
        outcome = replace(base, error=e, convert_seconds=time.perf_counter() - start)
        return outcome, target_ctx.used_onnx
    except Exception as e:  # noqa: BLE001 - a converter's (a plugin's?) bug fails its target only
        error = ConversionError(
            f"{target.name}: the {target.runtime} converter failed: {type(e).__name__}: {e}"
        )
        outcome = replace(base, error=error, convert_seconds=time.perf_counter() - start)
        return outcome, target_ctx.used_onnx
    if expand:
        expansion = ctx.expanded_onnx(source)
        tools = expansion[1] if expansion else {}
        artifact = replace(artifact, tools={**artifact.tools, **tools})
    converted = time.perf_counter()
    base = replace(base, artifact=artifact, convert_seconds=converted - start, expanded=expand)
    try:
        got = run_artifact(artifact, job.feeds, label=target.name)
        parity = compare(
            job.expected,
            got,
            tolerance=tolerance_of(conv, target),
            names=job.names,
            kinds=job.kinds,
        )
    except RuntimeCrashError as e:
        status = Status.CRASHED
        outcome = replace(base, status=status, error=e, parity_seconds=_since(converted))
        return outcome, target_ctx.used_onnx
    except ParityError as e:
        status = Status.PARITY_FAILED
        outcome = replace(base, status=status, error=e, parity_seconds=_since(converted))
        return outcome, target_ctx.used_onnx
    except AoePackError as e:
        return replace(base, error=e, parity_seconds=_since(converted)), target_ctx.used_onnx
    failure = parity.failure()
    outcome = replace(
        base,
        status=Status.OK if failure is None else Status.PARITY_FAILED,
        parity=parity,
        error=None if failure is None else ParityError(f"{target.name}: {failure}"),
        parity_seconds=_since(converted),
    )
    return outcome, target_ctx.used_onnx


def _one(job: _Measuring, target: Target, control: bool) -> TargetOutcome:
    """The target as the source is; failing that, with the source's ONNX functions expanded.

    A runtime may lack an op that the ONNX spec defines as a function of
    simpler ones (MNN has no Attention, ncnn no Swish), or run it wrongly;
    the spec's own body then often converts, and parity judges it against
    the source as it is. The artifact names ``onnx-inliner`` among its
    tools. When the second try fails too, the first outcome stands.
    """
    first, used_onnx = _attempt(job, target, control, expand=False)
    retry = isinstance(first.error, _RETRIED) and not isinstance(first.error, MissingExtraError)
    if first.ok or not retry or not used_onnx or not _has_expansion(job.ctx, job.source):
        return first
    second, _ = _attempt(job, target, control, expand=True)
    if not second.ok:
        return _with_second_reason(first, second)
    return replace(second, convert_seconds=second.convert_seconds + first.convert_seconds)


_RETRIED = (UnsupportedModelError, ConversionError, ParityError, RuntimeCrashError)
"""The failures a model's expanded ONNX functions may cure (not a missing tool, say)."""


def _with_second_reason(first: TargetOutcome, second: TargetOutcome) -> TargetOutcome:
    """The first outcome, its reason followed by why the expanded model failed as well."""
    if first.error is None or not second.reason:
        return first
    reason = (second.reason.splitlines() or [""])[0]
    message = f"{first.error.message}\n(with its ONNX functions expanded: {reason})"
    try:
        error = type(first.error)(message, hint=first.error.hint)
    except TypeError:  # an error class that takes more than a message
        return first
    return replace(first, error=error)


def _has_expansion(ctx: BuildContext, source: SourceModel) -> bool:
    """Whether the source's ONNX form calls ONNX functions that can be expanded."""
    try:
        return ctx.expanded_onnx(source) is not None
    except Exception:  # noqa: BLE001 - no ONNX form at all: the first outcome already says why
        return False


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
    from aoe_pack.convert.sources import KerasRunner, load_source

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
    job = _Measuring(
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
        futures = {j[0].name: pool.submit(_one, job, *j) for j in order}
        done: dict[str, TargetOutcome] = {}
        for name, future in futures.items():
            done[name] = outcome = future.result()
            if report:
                report(progress_line(outcome))

    def remeasure(target: Target, control: bool, expand: bool) -> TargetOutcome:
        return _attempt(job, target, control, expand, again=True)[0]

    outcomes = [_vouched(done[t.name], done, remeasure) for t in targets]
    return Conversion(
        source=source,
        outcomes=tuple(outcomes),
        controls=tuple(done[t.name] for t in controls),
        samples=len(inputs),
    )


def _since(start: float) -> float:
    return time.perf_counter() - start


Remeasure = Callable[[Target, bool, bool], TargetOutcome]
"""Convert and measure (target, control, expand) once more."""


def _vouched(
    outcome: TargetOutcome,
    done: Mapping[str, TargetOutcome],
    remeasure: Remeasure | None = None,
) -> TargetOutcome:
    """A passed reduced variant fails when its float32 counterpart did not pass.

    The counterpart vouches only for a conversion of the same graph: when one
    of the two passed with the source's ONNX functions expanded and the other
    without, the variant is measured again (``remeasure``) on the
    counterpart's graph; failing that, the counterpart on the variant's graph
    (as a control: its own outcome stands). The variant fails if neither passes.
    """
    if not outcome.ok:
        return outcome
    t = outcome.target
    control_variant = control_of(converter_for(t), t.variant)
    if control_variant is None:
        return outcome
    control = done[Target(runtime=t.runtime, variant=control_variant).name]
    if control.ok and control.expanded != outcome.expanded:
        if remeasure is None:
            raise ValueError("a variant and its control differ in graph: remeasure is needed")
        return _on_one_graph(outcome, control, remeasure)
    if control.ok:
        return outcome
    what = (
        "fails parity" if control.status is Status.PARITY_FAILED else f"was {control.status.value}"
    )
    error = ParityError(
        f"{t.name}: not accepted because its float32 counterpart {control.target.name} "
        f"{what} ({control.reason}); a looser tolerance must not hide a conversion error",
        hint=f"fix what {control.target.name} reports first",
    )
    return replace(outcome, status=Status.PARITY_FAILED, error=error)


def _on_one_graph(
    outcome: TargetOutcome, control: TargetOutcome, remeasure: Remeasure
) -> TargetOutcome:
    """A passed variant and its passed counterpart measured on one graph, else a failure."""
    t = outcome.target
    again = remeasure(t, outcome.control, control.expanded)
    if again.ok:  # the variant passes on its counterpart's graph too
        return again
    as_control = True  # else the counterpart, measured on the variant's graph, may vouch
    if remeasure(control.target, as_control, outcome.expanded).ok:
        return outcome
    graph = "with its ONNX functions expanded" if control.expanded else "as it is"
    error = ParityError(
        f"{t.name}: not accepted because its float32 counterpart {control.target.name} "
        f"passed only on the model {graph}, where this variant fails ({again.reason})",
        hint=f"drop {t.name}, or ship {control.target.name}",
    )
    return replace(outcome, status=Status.PARITY_FAILED, error=error, artifact=None)


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
