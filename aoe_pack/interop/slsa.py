"""SLSA Provenance v1 of a bundle, restated from its signed manifest.

A bundle's manifest records how it was built (docs/format.md §5.2,
``config`` and ``provenance``): the config, the source model's digest, the
builder's and converters' versions, and each target's parity. This module
writes the same facts as an in-toto Statement v1 with a SLSA Provenance v1
predicate (https://slsa.dev/spec/v1.0/provenance), the layout supply-chain
tools read. docs/interop.md defines the build type and describes each field.

Nothing here is measured anew: a build records no timings (the same inputs
give the same bytes), so ``runDetails.metadata`` is left out rather than
given times nobody observed, and the statement of a bundle is the same
whenever it is exported, but for ``internalParameters.plaintextChecked``:
whether the exporter recomputed the model files' digests.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from aoe_pack.bundle import BundleManifest
from aoe_pack.interop.intoto import Subject, statement

PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://aoe-pack.dev/provenance/build/v1"
"""aoe-pack's build: configs (and targets) in, one signed bundle out (docs/interop.md)."""
BUILDER_ID = "https://aoe-pack.dev/provenance/builder/v1"
"""aoe-pack, run by whoever holds the signing key: no build platform vouches for more."""

_HEX64 = re.compile(r"[0-9a-f]{64}")


def provenance_statement(
    *, bundle_name: str, bundle_sha256: str, manifest: BundleManifest, plaintext_checked: bool
) -> dict[str, Any]:
    """The statement for a verified bundle: its file and each model file are the subjects.

    The bundle is the build's output as it is shipped and published; the model
    files are what ``aoe-pack unpack`` writes, named by their path in the
    model folder, so the statement also matches a folder that was unpacked.
    ``plaintext_checked`` says whether the exporter recomputed those files'
    digests, or (an encrypted bundle exported without its key) restates those
    the manifest records: ``internalParameters.plaintextChecked``.
    """
    subjects = [Subject(name=bundle_name, sha256=bundle_sha256)]
    subjects += [Subject(name=f.path, sha256=f.sha256) for f in manifest.files]
    prov = manifest.provenance
    targets: list[str] = []
    sources: list[dict[str, Any]] = []
    tools: dict[tuple[str, str], list[str]] = {}
    byproducts: list[dict[str, Any]] = []
    for key, model in _models(prov):
        prefix = f"{key}/" if key else ""
        source = _source(model.get("source"), key)
        if source is not None:
            sources.append(source)
        for record in _records(model):
            target = f"{prefix}{record['target']}"
            targets.append(target)
            byproducts.append({"name": f"conversion/{target}", "annotations": record})
            for tool, version in _strings(record.get("tools")).items():
                tools.setdefault((tool, version), []).append(target)
        inconclusive = model.get("parityInconclusive")
        if isinstance(inconclusive, list) and inconclusive:
            byproducts.append(
                {"name": f"{prefix}parity-inconclusive", "annotations": {"targets": inconclusive}}
            )
    dependencies = sources + [
        {"name": tool, "annotations": {"version": version, "targets": used_by}}
        for (tool, version), used_by in sorted(tools.items())
    ]
    builder: dict[str, Any] = {"id": BUILDER_ID}
    versions = _builder_versions(prov)
    if versions:
        builder["version"] = versions
    run_details: dict[str, Any] = {"builder": builder}
    if byproducts:
        run_details["byproducts"] = byproducts
    build_definition: dict[str, Any] = {
        "buildType": BUILD_TYPE,
        "externalParameters": {
            "config": dict(manifest.config),
            "targets": targets,
            "recipients": [r.keyid for r in manifest.encryption.recipients]
            if manifest.encryption
            else [],
            "sourceDateEpoch": manifest.source_date_epoch,
        },
        "internalParameters": {
            "bundleFormat": manifest.format.value,
            "plaintextChecked": plaintext_checked,
        },
    }
    if dependencies:
        build_definition["resolvedDependencies"] = dependencies
    return statement(
        subjects=subjects,
        predicate_type=PREDICATE_TYPE,
        predicate={"buildDefinition": build_definition, "runDetails": run_details},
    )


def _models(prov: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Each model's provenance: the whole record, or a feature bundle's ``models`` by name."""
    models = prov.get("models")
    if isinstance(models, Mapping):
        for key, model in sorted(models.items()):
            if isinstance(model, Mapping):
                yield str(key), model
    else:
        yield "", prov


def _records(model: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every target the build tried: those it shipped, then those it refused."""
    for block in ("conversions", "refused"):
        records = model.get(block)
        for record in records if isinstance(records, list) else ():
            if isinstance(record, Mapping) and isinstance(record.get("target"), str):
                yield dict(record)


def _source(source: Any, key: str) -> dict[str, Any] | None:
    """The source model as a resolved dependency: its path, SHA-256 and what else was recorded."""
    if not isinstance(source, Mapping):
        return None
    path, digest = source.get("path"), source.get("sha256")
    rest = {k: v for k, v in source.items() if k not in ("path", "sha256")}
    if key:
        rest["model"] = key
    found: dict[str, Any] = {}
    if isinstance(path, str) and path:
        found["name"] = path
    if isinstance(digest, str) and _HEX64.fullmatch(digest):
        found["digest"] = {"sha256": digest}
    if not found:  # a descriptor names its resource, or it describes nothing
        return None
    if rest:
        found["annotations"] = rest
    return found


def _builder_versions(prov: Mapping[str, Any]) -> dict[str, str]:
    """aoe-pack's version and the tools it ran on, as the build recorded them."""
    versions = {}
    builder = prov.get("builder")
    if isinstance(builder, Mapping) and isinstance(builder.get("version"), str):
        versions[str(builder.get("name") or "aoe-pack")] = builder["version"]
    return {**versions, **_strings(prov.get("tools"))}


def _strings(value: Any) -> dict[str, str]:
    """The string-valued members of an object (versions), nothing if it is none."""
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str)}
