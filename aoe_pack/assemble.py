"""Assemble a bundle from one model config, or from the configs of one feature.

This is ``aoe-pack build`` without its command line (:func:`aoe_pack.api.build`
is its front): the configs are validated (:func:`load_configs`), who may
decrypt is settled (:func:`encryption_spec`), and :func:`assemble` converts
each config's model for its targets (:func:`aoe_pack.convert.pipeline.convert`,
every target measured) or checks it and packs it as it is, in a private
folder of its own; then the bundle is written
(:func:`aoe_pack.bundle.build_bundle`), one model's files at the top of the
payload, or several models' each under its own folder
(:mod:`aoe_pack.bundle.feature`). What happens on the way is told to a
:class:`BuildEvents`.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from aoe_pack._io import refuse_existing
from aoe_pack.bundle import EncryptionSpec, Progress, build_bundle
from aoe_pack.bundle.build import BuildResult, PayloadSource, as_is_payload
from aoe_pack.bundle.feature import (
    FeatureModel,
    check_feature,
    feature_config,
    feature_identity,
    feature_payload,
    feature_provenance,
    model_key,
)
from aoe_pack.config import complete_io, validate_config
from aoe_pack.config.model import ModelConfig
from aoe_pack.convert.outcome import TargetOutcome
from aoe_pack.convert.pipeline import (
    Conversion,
    convert,
    targets_of,
    validate_source,
)
from aoe_pack.errors import (
    ConfigValidationError,
    MissingExtraError,
    MissingKeyError,
    TargetsFailedError,
    UsageError,
)
from aoe_pack.keys import PublicKey, SigningKey
from aoe_pack.keys import resolve as _resolve

Report = Callable[[str], None]


def converted_payload(conversion: Conversion, config: ModelConfig) -> tuple[PayloadSource, ...]:
    """The passed targets' files, then the config's associated files (labels...)."""
    files = [
        PayloadSource(
            local=f.local,
            path=f.bundle_path,
            role=f.role,
            runtime=o.target.runtime,
            variant=o.target.variant,
        )
        for o in conversion.passed
        if o.artifact is not None
        for f in o.artifact.files
    ]
    files += [
        PayloadSource(local=config.model_root / f.path, path=f.path, role=f.role)
        for f in config.files
        if f.role != "model"
    ]
    return tuple(files)


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
            payload=converted_payload(conversion, completed),
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
    signing_keys: Sequence[SigningKey],
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


class BuildEvents(Protocol):
    """What a build tells as it goes.

    Subclass it to hear some of it: every method here does nothing. (Any
    object with these six methods will do as well: the command line's prints
    the lines, draws the targets tables and a progress bar, and keeps the
    frameworks' chatter off the terminal while they run.)
    """

    # Each bare ``return`` makes a default of a method mypy would take as abstract.

    def warning(self, message: str) -> None:
        """Something the user should know, though the build goes on."""
        return

    def note(self, message: str) -> None:
        """A progress note from the conversion (a target started, a step done)."""
        return

    def model_started(self, key: str, config: ModelConfig) -> None:
        """A model is about to be converted or checked (``key`` "" unless a feature)."""
        return

    def model_prepared(self, build: ModelBuild) -> None:
        """A model is converted (every target measured) or checked, ready to pack."""
        return

    def converting(self) -> contextlib.AbstractContextManager[object]:
        """Held while ML frameworks run (loading, converting, measuring a model)."""
        return contextlib.nullcontext()

    def writing(self, out: Path, total: int) -> contextlib.AbstractContextManager[Progress | None]:
        """Held while the bundle is written: may yield a callback told of bytes packed."""
        return contextlib.nullcontext()


class _Silent(BuildEvents):
    """Nothing shown: the events of a build nobody watches."""


@dataclass(frozen=True, kw_only=True)
class BuiltBundle:
    """A bundle written by [aoe_pack.api.build][], and how each of its models got there."""

    result: BuildResult
    """The bundle: its path, size, signed manifest and signers."""
    models: tuple[ModelBuild, ...]
    """Each config's model as packed, with its conversion (targets and their outcomes)."""
    skipped_targets: tuple[str, ...] = ()
    """Targets that failed and were left out (``model/target`` in a feature)."""

    @property
    def path(self) -> Path:
        """Where the bundle is."""
        return self.result.path

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` result of ``aoe-pack build``."""
        document = self.result.to_dict()
        if any(b.conversion is not None for b in self.models):
            document["targets"] = [row for b in self.models for row in b.outcomes()]
        return document


def load_configs(paths: Sequence[Path], *, events: BuildEvents | None = None) -> list[ModelConfig]:
    """Each config file validated, in order; several must make one feature.

    Raises ConfigValidationError naming a file's first problem (and holding
    them all); a legacy spelling that was accepted is told as a warning.
    """
    events = events or _Silent()
    configs = []
    for path in paths:
        report = validate_config(path)
        for notice in report.notices:
            events.warning(f"{path}: {notice.message}")
        if report.config is None:
            first = report.violations[0]
            raise ConfigValidationError(
                f"{path} has {len(report.violations)} problem(s); first: {first.message}",
                violations=list(report.violations),
                hint=f"run `aoe-pack validate {path}` to see all of them",
            )
        configs.append(report.config)
    if len(configs) > 1:
        check_feature(configs)
    return configs


def encryption_spec(
    configs: Sequence[ModelConfig],
    *,
    encrypt: bool | None = None,
    recipients: Sequence[PublicKey | _resolve.KeyRef] = (),
    keks: Sequence[bytes | _resolve.KeyRef] = (),
    events: BuildEvents | None = None,
) -> EncryptionSpec:
    """Who may decrypt: the configs' "encrypt" and the keys given, reconciled.

    ``encrypt`` None follows the configs: a feature is encrypted when any of
    its models asks for it. False stores the model unencrypted (and refuses
    keys); True requires keys. Keys given for a config that says
    ``"encrypt": false`` encrypt all the same, with a warning. Key references
    are loaded only once the decision is made.
    """
    events = events or _Silent()
    wanted = any(cfg.encrypt for cfg in configs) if encrypt is None else encrypt
    keys_given = bool(recipients or keks)
    if encrypt is False and keys_given:
        raise UsageError("--no-encrypt contradicts --recipient/--encryption-key-file")
    if wanted and not keys_given:  # the config asks for it: a refusal, not a usage error
        raise MissingKeyError(
            "encryption is on but no --recipient or --encryption-key-file was given",
            hint="add a recipient key (aoe-pack keygen --type x25519), or pass --no-encrypt",
        )
    if not wanted and keys_given:
        events.warning('the config says "encrypt": false, but keys were given: encrypting')
    if not keys_given:
        return EncryptionSpec()
    return EncryptionSpec(
        recipients=[_resolve.public_key(r) for r in recipients],
        keks=[_resolve.kek(k) for k in keks],
    )


def assemble(
    configs: Sequence[ModelConfig],
    out: Path,
    *,
    signing_keys: Sequence[SigningKey],
    encryption: EncryptionSpec,
    targets: Sequence[str] = (),
    skip_failed_targets: bool = False,
    events: BuildEvents | None = None,
    overwrite: bool = False,
) -> BuiltBundle:
    """Prepare every model, each in a private folder kept until the bundle exists; write it.

    ``targets`` replaces the configs' own. Raises TargetsFailedError (no
    bundle) when a target failed, unless ``skip_failed_targets`` and every
    model keeps a target that passed (:func:`failures`). Without
    ``overwrite``, an existing ``out`` is refused before any conversion
    (:class:`OutputError`), which can take minutes.
    """
    events = events or _Silent()
    if not overwrite:
        refuse_existing(out)
    builds = []
    with contextlib.ExitStack() as stack:
        for cfg in configs:
            key = feature_key(configs, cfg)
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="aoe-convert-")))
            events.model_started(key, cfg)
            with events.converting():
                build = prepare(cfg, targets=targets, workdir=workdir, key=key, report=events.note)
            events.model_prepared(build)
            if build.unchecked:
                events.warning(f"the model {cfg.model_name} was not checked: {build.unchecked}")
            builds.append(build)
        skipped = failures(builds, skip_failed=skip_failed_targets)
        if skipped:
            events.warning(f"shipping without {', '.join(skipped)} (--skip-failed-targets)")
        with events.writing(out, payload_size(builds)) as progress:
            result = write(
                builds,
                out,
                signing_keys=signing_keys,
                encryption=encryption,
                progress=progress,
                overwrite=overwrite,
            )
    return BuiltBundle(result=result, models=tuple(builds), skipped_targets=tuple(skipped))
