"""The conversion stage of ``build``: source -> artifacts, each with measured parity.

For a config with ``targets`` (or ``--target``), the declared model is the
*source*: it is validated against the declared inputs and outputs, converted
for every target through the registered converters, and each artifact is run
through its own runtime on the same seeded inputs as the source. An artifact
over its tolerance fails the build. The artifacts (plus the config's
associated files, such as labels) become the bundle's payload; the source's
digest and every conversion with its parity go into the signed provenance.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from itertools import zip_longest
from pathlib import Path
from typing import Any

from aoe_pack.bundle.build import PayloadSource
from aoe_pack.config.model import ModelConfig
from aoe_pack.convert.api import Array, Artifact, Parity, SourceModel, Target
from aoe_pack.convert.parity import check, measure, sample_inputs
from aoe_pack.convert.registry import converter_for, parse_target
from aoe_pack.errors import ConversionError, UnsupportedModelError

Report = Callable[[str], None]
"""Receives one line per finished step (for progress on a terminal)."""


@dataclass(frozen=True, kw_only=True)
class TargetResult:
    """One converted artifact and how well it matches the source."""

    artifact: Artifact
    parity: Parity

    def to_dict(self) -> dict[str, Any]:
        t = self.artifact.target
        return {
            "target": t.name,
            "runtime": t.runtime,
            "variant": t.variant,
            "files": [f.bundle_path for f in self.artifact.files],
            "seconds": f"{self.artifact.seconds:.2f}",
            "tools": dict(self.artifact.tools),
            "parity": self.parity.to_dict(),
        }


@dataclass(frozen=True, kw_only=True)
class Converted:
    """What the conversion stage hands to the bundle builder."""

    payload: tuple[PayloadSource, ...]
    provenance: dict[str, Any]
    results: tuple[TargetResult, ...]


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


def _parity_inputs(config: ModelConfig, source: SourceModel) -> list[dict[str, Array]]:
    """The config's sampleInputs (.npz) if it names some, else seeded ones in range."""
    from aoe_pack.convert.context import load_calibration

    named = config.canonical.get("sampleInputs")
    if named:
        return load_calibration(config.source_path.parent / str(named), source)
    return sample_inputs(source)


def convert(
    config: ModelConfig, targets: Sequence[Target], workdir: Path, *, report: Report | None = None
) -> Converted:
    """Validate the source, convert it for every target, measure and enforce parity."""
    from aoe_pack.convert.context import BuildContext
    from aoe_pack.convert.sources import KerasRunner, load_source

    source_path = config.model_root / config.model_name
    source, reference = load_source(source_path, inputs=config.inputs, outputs=config.outputs)
    ctx = BuildContext(workdir=workdir, config_dir=config.source_path.parent)
    if isinstance(reference, KerasRunner):  # validation loaded it: nothing loads it again
        ctx.share_keras_model(source, reference.model)
    inputs = _parity_inputs(config, source)
    # The source runs once per sample, up front: targets then compare against
    # these outputs without contending for the source model.
    expected = {id(feed): reference(feed) for feed in inputs}

    def cached(inputs: Mapping[str, Array]) -> Sequence[Array]:  # a Runner
        return expected[id(inputs)]

    def one(target: Target) -> TargetResult:
        conv = converter_for(target)
        start = time.perf_counter()
        artifact = conv.convert(source, target, ctx.for_target(target))
        seconds = time.perf_counter() - start
        tolerance = (
            target.tolerance
            if target.tolerance is not None
            else conv.default_tolerance(target.variant)
        )
        parity = measure(cached, conv.load(artifact), inputs, tolerance=tolerance)
        check(parity, target.name)
        if report:
            report(
                f"{target.name}: {seconds:.1f} s, max abs error {parity.max_abs:.1e} "
                f"(tolerance {parity.tolerance:.0e})"
            )
        return TargetResult(artifact=replace(artifact, seconds=seconds), parity=parity)

    for target in targets:  # unknown runtimes and variants fail before any work starts
        converter_for(target)
    # Targets convert concurrently: MNN, pnnx and the ORT tool run as child
    # processes and TensorFlow work is serialised by its own lock, so a pool the
    # size of the machine overlaps them. Results keep the targets' order.
    # Alternate TensorFlow-bound targets (tflite) with the rest, whose converters
    # mostly run child processes, so both kinds overlap from the start.
    tf_bound = [t for t in targets if t.runtime == "tflite"]
    others = [t for t in targets if t.runtime != "tflite"]
    order = [t for pair in zip_longest(others, tf_bound) for t in pair if t is not None]
    with ThreadPoolExecutor(max(1, min(len(targets), os.cpu_count() or 1))) as pool:
        futures = {t.name: pool.submit(one, t) for t in order}
        try:
            results = [futures[t.name].result() for t in targets]
        except BaseException:  # one target failed: do not start the queued ones
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    payload = [
        PayloadSource(
            local=f.local,
            path=f.bundle_path,
            role=f.role,
            runtime=r.artifact.target.runtime,
            variant=r.artifact.target.variant,
        )
        for r in results
        for f in r.artifact.files
    ]
    payload += [
        PayloadSource(local=config.model_root / f.path, path=f.path, role=f.role)
        for f in config.files
        if f.role != "model"
    ]
    provenance = {
        "source": {
            "path": config.model_name,
            "format": source.format,
            "sha256": source_digest(source_path),
            **{k: v for k, v in source.details.items() if isinstance(v, str | int | bool)},
        },
        "conversions": [r.to_dict() for r in results],
    }
    return Converted(payload=tuple(payload), provenance=provenance, results=tuple(results))
