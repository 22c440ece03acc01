"""Assemble a bundle from one model config, or from the configs of one feature.

This is ``aoe-pack build`` without its command line: each config's model is
either converted for its targets (:func:`aoe_pack.convert.pipeline.convert`,
every target measured) or checked and packed as it is; then the bundle is
written (:func:`aoe_pack.bundle.build_bundle`), one model's files at the top
of the payload, or several models' each under its own folder
(:mod:`aoe_pack.bundle.feature`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aoe_pack.bundle import EncryptionSpec, Progress, build_bundle
from aoe_pack.bundle.build import BuildResult, PayloadSource, as_is_payload
from aoe_pack.bundle.feature import (
    FeatureModel,
    feature_config,
    feature_identity,
    feature_payload,
    feature_provenance,
    model_key,
)
from aoe_pack.config import complete_io
from aoe_pack.config.model import ModelConfig
from aoe_pack.convert.outcome import TargetOutcome
from aoe_pack.convert.pipeline import (
    Conversion,
    convert,
    targets_of,
    validate_source,
)
from aoe_pack.errors import MissingExtraError, TargetsFailedError
from aoe_pack.keys import PrivateKey

Report = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class ModelBuild:
    """One config's model, ready to pack: converted, or checked as it is."""

    config: ModelConfig
    """The config, with the inputs and outputs it left undeclared read from the model."""
    payload: tuple[PayloadSource, ...]
    provenance: dict[str, Any]
    conversion: Conversion | None = None
    key: str = ""
    """The model's name inside a feature bundle ("" for a single-model bundle)."""
    unchecked: str | None = None
    """Why the model of an as-is build was not checked (a framework is missing)."""

    def outcomes(self) -> list[dict[str, Any]]:
        """Every target's outcome as ``--json`` shows it (with ``model`` in a feature)."""
        if self.conversion is None:
            return []
        rows = (*self.conversion.outcomes, *self.conversion.controls)
        return [{**o.to_dict(), **({"model": self.key} if self.key else {})} for o in rows]


def prepare(
    config: ModelConfig,
    *,
    targets: Sequence[str],
    workdir: Path,
    key: str = "",
    report: Report | None = None,
) -> ModelBuild:
    """Convert the model for its targets (``targets`` replaces the config's), or check it."""
    if targets or config.targets:
        conversion = convert(config, targets_of(config, targets), workdir, report=report)
        completed = complete_io(config, conversion.source.inputs, conversion.source.outputs)
        return ModelBuild(
            config=completed,
            payload=conversion.payload(completed),
            provenance=conversion.provenance(completed),
            conversion=conversion,
            key=key,
        )
    try:
        source = validate_source(config)
    except MissingExtraError as e:
        unchecked = f"{e.message} ({e.hint})" if e.hint else e.message
        return ModelBuild(
            config=config,
            payload=tuple(as_is_payload(config)),
            provenance={},
            key=key,
            unchecked=unchecked,
        )
    completed = config if source is None else complete_io(config, source.inputs, source.outputs)
    return ModelBuild(
        config=completed, payload=tuple(as_is_payload(completed)), provenance={}, key=key
    )


def feature_key(configs: Sequence[ModelConfig], config: ModelConfig) -> str:
    """The model's name in the bundle: "" alone, its folder's name in a feature."""
    return model_key(config) if len(configs) > 1 else ""


def failures(builds: Sequence[ModelBuild], *, skip_failed: bool) -> list[str]:
    """The failed targets (``model/target`` in a feature), after raising if they stop the build.

    Raises TargetsFailedError (no bundle) when a target failed, unless
    ``skip_failed`` and every model keeps at least one target that passed.
    """
    failed: list[tuple[ModelBuild, TargetOutcome]] = [
        (b, o) for b in builds if b.conversion for o in b.conversion.failed
    ]
    if not failed:
        return []
    names = [f"{b.key}/{o.target.name}" if b.key else o.target.name for b, o in failed]
    empty = [b for b in builds if b.conversion is not None and not b.conversion.passed]
    total = sum(len(b.conversion.outcomes) for b in builds if b.conversion)
    if skip_failed and not empty:
        return names
    if empty and len(builds) > 1:
        what = f"no target of {', '.join(b.key for b in empty)} passed"
    elif empty:
        what = "no target passed"
    else:
        what = f"{len(names)} of {total} failed"
    outcomes = [row for b in builds for row in b.outcomes()]
    raise TargetsFailedError(
        f"{what} ({', '.join(names)}); no bundle written",
        outcomes=outcomes,
        hint="each failed target's reason is shown above; drop a target with --target, or "
        "pass --skip-failed-targets to ship the ones that passed (the refused ones are "
        "recorded in the bundle)"
        if not empty
        else "each failed target's reason is shown above",
    )


def write(
    builds: Sequence[ModelBuild],
    out: Path,
    *,
    signing_keys: Sequence[PrivateKey],
    encryption: EncryptionSpec,
    progress: Progress | None = None,
    overwrite: bool = True,
) -> BuildResult:
    """The bundle: one model's files, or a feature's, each model under its folder.

    With ``overwrite`` false, an existing ``out`` is refused (:class:`OutputError`).
    """
    if len(builds) == 1:
        (only,) = builds
        return build_bundle(
            only.config,
            out,
            signing_keys=signing_keys,
            encryption=encryption,
            progress=progress,
            payload=only.payload,
            provenance=only.provenance or None,
            overwrite=overwrite,
        )
    models = [
        FeatureModel(config=b.config, payload=b.payload, provenance=b.provenance) for b in builds
    ]
    return build_bundle(
        builds[0].config,
        out,
        signing_keys=signing_keys,
        encryption=encryption,
        progress=progress,
        payload=feature_payload(models),
        provenance=feature_provenance(models),
        identity=feature_identity(models),
        config_document=feature_config(models),
        overwrite=overwrite,
    )


def payload_size(builds: Sequence[ModelBuild]) -> int:
    """Bytes to pack, for a progress bar (0 for what cannot be read: packing reports it)."""
    total = 0
    for b in builds:
        for p in b.payload:
            try:
                total += p.local.stat().st_size
            except OSError:
                continue
    return total
