"""Benchmark every artifact of a bundle on this machine.

The bundle is checked before anything in it runs. With trusted keys it is
authenticated exactly as ``verify`` does (signatures, then the manifest, then
every stored byte against the signed chunk digests). Without them only its
integrity is checked: the same digests, but nobody vouches for the manifest
that lists them, so the report says ``signaturesChecked: false`` and the CLI
warns. Benchmarks run on developers' and test devices, and the issue's command
line has no key option; it is offered, and the figures say which it was.

Each artifact (the files sharing a runtime and variant in the manifest) is
then decrypted or copied into anonymous in-memory files (``memfd_create``),
its plaintext checked against the signed SHA-256, and handed to a fresh child
process (:mod:`aoe_pack.bench._child`) that loads it through its converter's
``load`` from ``/proc/self/fd/<n>`` and times it. Nothing decrypted ever
touches the disk, and each artifact's peak memory is its own process's.
Where there are no memory files (macOS, Windows) an unencrypted bundle's
artifacts are copied to private files instead, and an encrypted bundle is
refused: its plaintext would reach the disk (:mod:`aoe_pack.bench._isolate`).
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import aoe_pack
from aoe_pack._io.pread import pread
from aoe_pack._quote import quote_json
from aoe_pack.bench._isolate import (
    ArtifactFiles,
    Settings,
    memory_files,
    not_run,
    plaintext_files,
    run_isolated,
)
from aoe_pack.bench.device import describe_device
from aoe_pack.bench.results import ArtifactResult, BenchReport, BundleIdentity, Status
from aoe_pack.bundle import signatures, worker_count
from aoe_pack.bundle.container import ZipEntry
from aoe_pack.bundle.feature import models_of
from aoe_pack.bundle.format import DEFAULT_LIMITS, Limits
from aoe_pack.bundle.manifest import BundleManifest, PayloadFile
from aoe_pack.bundle.verify import (
    OpenedBundle,
    authenticate,
    check_container,
    data_key_for,
    open_bundle,
    stream_payload,
)
from aoe_pack.config.model import RUNTIME_ALIASES
from aoe_pack.convert.api import Target
from aoe_pack.errors import BenchError, ConvertError, ManifestError, MissingKeyError, UsageError
from aoe_pack.keys import DecryptionKey, PublicKey

DEFAULT_RUNS = 50
DEFAULT_WARMUP = 5
DEFAULT_SEED = 20261127
DEFAULT_TIMEOUT = 600.0
"""Seconds one artifact may take (two loads, warm-up and runs) before it is stopped."""

Report = Callable[[str], None]
"""Receives one line per measured artifact (progress for people)."""


def bench_bundle(
    path: Path,
    *,
    trusted_keys: Sequence[PublicKey] = (),
    threshold: int = 1,
    decryption_key: DecryptionKey | None = None,
    runs: int = DEFAULT_RUNS,
    warmup: int = DEFAULT_WARMUP,
    seed: int = DEFAULT_SEED,
    device_name: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    timeout: float = DEFAULT_TIMEOUT,
    report: Report | None = None,
) -> BenchReport:
    """Check the bundle at ``path``, then load and time each artifact in its runtime.

    Without ``trusted_keys`` the signatures are not checked (integrity only;
    the report records it). An encrypted bundle needs ``decryption_key``. An
    artifact whose runtime has no converter here is ``skipped``; one its
    runtime cannot load or run is ``failed`` with the runtime's message. If
    nothing at all could be measured, ConvertError.
    """
    _check_settings(trusted_keys, threshold, runs, warmup)
    from aoe_pack.convert.registry import converters

    available = converters()
    notes: list[str] = []
    with open_bundle(path, limits) as bundle:
        manifest, signers = _check_bundle(bundle, trusted_keys, threshold, limits, notes)
        groups = _artifacts(manifest, bundle.payload_entries())
        if not groups:
            raise BenchError(
                f"{path} holds no file with a runtime to benchmark",
                hint="build it with aoe-pack build (the model file names its runtime)",
            )
        data_key = _data_key(manifest, decryption_key, notes)
        inputs = _declared_inputs(manifest)
        settings = Settings(inputs=[], runs=runs, warmup=warmup, seed=seed, timeout=timeout)
        identity = BundleIdentity(
            path=str(path),
            tag=manifest.model.tag,
            name=manifest.model.name,
            version=manifest.model.version,
            sha256=_file_sha256(bundle.fd),
            size=bundle.layout.file_size,
            encrypted=manifest.encryption is not None,
            signatures_checked=bool(trusted_keys),
            signers=signers,
        )
        results: list[ArtifactResult] = []
        with ThreadPoolExecutor(worker_count(), thread_name_prefix="aoe-bench") as pool:
            # Every stored byte against the signed chunk digests before anything runs.
            for f, e in zip(manifest.files, bundle.payload_entries(), strict=True):
                stream_payload(bundle, f, e, data_key=None, pool=pool)
            for group in groups:
                runtime = RUNTIME_ALIASES.get(group.runtime, group.runtime)
                conv = available.get(runtime)
                if conv is None:
                    result = not_run(
                        group,
                        Status.SKIPPED,
                        f"no converter for runtime {runtime!r} is installed here "
                        f"(available: {', '.join(sorted(available)) or 'none'})",
                    )
                else:
                    target = Target(runtime=runtime, variant=group.variant or conv.variants[0])
                    feeds = replace(settings, inputs=inputs[group.model])
                    with plaintext_files(bundle, group, data_key, pool) as files:
                        result = run_isolated(group, target, files, feeds)
                results.append(result)
                if report:
                    report(_progress_line(result))
    if not any(r.status is Status.OK for r in results):
        first = results[0]
        raise ConvertError(
            f"no artifact of {path} could be measured here; {first.name}: {first.error}",
            hint="install the runtimes' packages (aoe-pack[convert]) or the converter plugins",
        )
    versions: dict[str, str] = {}
    for r in results:
        versions.update(r.runtime_versions)
    return BenchReport(
        created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        tool=aoe_pack.__version__,
        device=describe_device(device_name).with_runtimes(versions),
        bundle=identity,
        runs=runs,
        warmup=warmup,
        seed=seed,
        artifacts=tuple(results),
        notes=tuple(notes),
    )


def _check_settings(
    trusted_keys: Sequence[PublicKey], threshold: int, runs: int, warmup: int
) -> None:
    if threshold != 1 and not trusted_keys:
        raise UsageError("--threshold counts trusted signers; it needs --trusted-key")
    if runs < 1 or warmup < 0:
        raise UsageError(f"--runs must be at least 1 and --warmup at least 0 ({runs}, {warmup})")


def _check_bundle(
    bundle: OpenedBundle,
    trusted_keys: Sequence[PublicKey],
    threshold: int,
    limits: Limits,
    notes: list[str],
) -> tuple[BundleManifest, tuple[str, ...]]:
    """The manifest, authenticated when there are trusted keys; and who signed it."""
    if trusted_keys:
        manifest, checks = authenticate(bundle, trusted_keys, threshold, limits)
        return manifest, tuple(c.keyid for c in checks if c.valid)
    notes.append(
        "signatures were not checked (no trusted key given): the figures are for "
        "whatever this file holds; pass --trusted-key to bench only what your signer built"
    )
    signatures.parse_envelope(bundle.signatures_bytes, limits)  # its form, though no key checks it
    return check_container(bundle, limits), ()


def _data_key(
    manifest: BundleManifest, key: DecryptionKey | None, notes: list[str]
) -> bytes | None:
    if manifest.encryption is None:
        if key is not None:
            notes.append("the bundle is not encrypted; the decryption key was not needed")
        return None
    if key is None:
        raise MissingKeyError(
            "the bundle is encrypted; bench needs its models in plaintext (in memory only)",
            hint="pass --decryption-key with a recipient's private key or the app's key file",
        )
    if not memory_files():
        raise UsageError(
            "the bundle is encrypted, and bench keeps decrypted models in anonymous memory "
            "files only (memfd_create), which this OS does not offer",
            hint="run it on Linux or Android, or bench an unencrypted build of the model",
        )
    return data_key_for(manifest, key)


def _declared_inputs(manifest: BundleManifest) -> dict[str, list[dict[str, Any]]]:
    """Each model's declared inputs ("" alone, by folder in a feature): what feeds come from."""
    found: dict[str, list[dict[str, Any]]] = {}
    for key, config in models_of(manifest.config).items():
        raw = config.get("inputs")
        if not raw or not isinstance(raw, list):
            what = f"{manifest.model.tag} {manifest.model.version}" + (f" ({key})" if key else "")
            raise BenchError(
                f"bundle {what} declares no inputs; bench draws its inputs from the declared "
                "names, shapes, dtypes and ranges",
                hint="rebuild it with this aoe-pack, which records the inputs it read from the "
                "model",
            )
        inputs = []
        for t in raw:
            if not (isinstance(t, Mapping) and {"name", "dtype", "shape"} <= t.keys()):
                raise ManifestError(f"a declared input lacks name, dtype or shape: {quote_json(t)}")
            inputs.append({k: t[k] for k in ("name", "dtype", "shape", "range") if k in t})
        found[key] = inputs
    return found


def _artifacts(manifest: BundleManifest, entries: Sequence[ZipEntry]) -> list[ArtifactFiles]:
    """The manifest's files grouped by (model, runtime, variant); files without a runtime are data.

    ``model`` is "" in a single-model bundle, the folder of a feature's model otherwise.
    """
    feature = set(models_of(manifest.config)) != {""}
    by_key: dict[tuple[str, str, str | None], list[tuple[PayloadFile, ZipEntry]]] = {}
    for f, e in zip(manifest.files, entries, strict=True):
        if f.runtime:
            model = f.path.split("/", 1)[0] if feature else ""
            by_key.setdefault((model, f.runtime, f.variant), []).append((f, e))
    groups = [
        # The model first: converters find their files by role, but a runtime
        # given only paths (and the child's names) should see the model first.
        ArtifactFiles(
            model=model,
            runtime=rt,
            variant=var,
            files=tuple(sorted(files, key=lambda fe: fe[0].role != "model")),
        )
        for (model, rt, var), files in by_key.items()
    ]
    return sorted(groups, key=lambda g: g.name)


def _file_sha256(fd: int) -> str:
    h = hashlib.sha256()
    offset = 0
    while block := pread(fd, 1 << 20, offset):
        h.update(block)
        offset += len(block)
    return h.hexdigest()


def _progress_line(r: ArtifactResult) -> str:
    if r.status is not Status.OK or r.latency is None:
        return f"{r.name}: {r.status.value}: {r.error}"
    return (
        f"{r.name}: load {r.load_ms:.1f} ms, p50 {r.latency.p50:.2f} ms, "
        f"p99 {r.latency.p99:.2f} ms, peak "
        + ("unknown" if r.peak_mib is None else f"{r.peak_mib:.0f} MiB")
    )
