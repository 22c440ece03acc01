"""A verified bundle's model files as the zip AoE's Android SDK downloads.

What the zip must look like follows from AoE's Android sources
(github.com/didi/AoE, ``Android/aoe/service``):

- ``ModelContract.unpackDownloadZip`` accepts the download only if the
  lowercase hex MD5 of the whole zip equals the server's ``modelMd5``.
- ``ZipUtil.unpackZipAndRename`` refuses any entry whose name contains
  ``../`` and replaces the first folder of every entry name with
  ``<modelDir>/<version>``: the zip needs one top folder (here ``model/``),
  and an entry outside it would land at the top of the app's files folder.
- ``ModelContract.validDownload`` then reads ``model.config`` at the top of
  that folder and keeps the download only if a file there whose name starts
  with the config's ``modelName`` has the MD5 ``modelSign``; otherwise it
  deletes the folder. So the model file sits at the top, not in a subfolder.
- ``AoeModelOptionLoader`` compares the downloaded config's ``version`` with
  the app's own, and the interpreters load
  ``<files>/<modelDir>/<version>/<modelName>`` when ``source`` is
  ``"cloud"``; ``ModelOption.isValid`` wants a non-zero ``modelId``, a
  ``version``, a ``modelDir``, a ``modelName`` and a ``modelSign``.

The zip is deterministic: entries sorted by name, stored (deflate output
differs between zlib builds, and model weights barely compress), fixed
timestamps and modes. The same bundle and target give the same bytes, so
several servers give the same ``modelMd5``, and the file is named by its
SHA-256. It is written through a held temporary and renamed into place
(:class:`~aoe_pack._io.folder.Folder`), streaming 1 MiB at a time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from aoe_pack._io import facilities
from aoe_pack._io.folder import Folder
from aoe_pack.bundle.format import DEFAULT_LIMITS
from aoe_pack.bundle.manifest import BundleManifest
from aoe_pack.bundle.signatures import check_threshold
from aoe_pack.bundle.unpack import unpack_bundle
from aoe_pack.bundle.verify import authenticate, open_bundle
from aoe_pack.errors import (
    BundleFormatError,
    BundleMismatchError,
    DecryptionError,
    OutputError,
    UnsafeEntryError,
    UsageError,
)
from aoe_pack.keys import PublicKey
from aoe_pack.keys.load import DecryptionKey

ROOT = "model"
"""The zip's one top folder; AoE renames it to ``<modelDir>/<version>``."""
CONFIG = "model.config"
ZIP_NAME = re.compile(r"[0-9a-f]{64}\.zip")
"""How the zips are named: the SHA-256 of their bytes."""

AOE_RUNTIMES = {"tflite": "tensorflow"}
"""Our runtime names that AoE spelt otherwise: its ``tensorflow`` meant TensorFlow Lite."""

_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold
_MODE = (stat.S_IFREG | 0o644) << 16
_UNIX = 3  # "made by" Unix, wherever the zip is made
_COPY = 1 << 20
_WORK = "aoe-unpack"
_PARTIAL = "aoe-zip"
_MAX_LONG = 2**63 - 1
# A folder under the app's files folder, in the characters AoE's regex-based rename
# (String.replaceFirst) takes literally: no "$" or "\" in the replacement.
_MODEL_DIR = re.compile(
    r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}(/[A-Za-z0-9_][A-Za-z0-9._-]{0,127}){0,7}"
)


@dataclass(frozen=True, kw_only=True)
class AoeTarget:
    """What the app's ``model.config`` must say besides the model: AoE's ids for it."""

    model_id: int
    """AoE's ``modelId``, a positive number (the app's own ``model.config`` has it)."""
    model_dir: str
    """AoE's ``modelDir``: the app's assets folder of the model, and the folder under the
    app's files folder that downloads go to."""

    def __post_init__(self) -> None:
        if type(self.model_id) is not int or not 0 < self.model_id <= _MAX_LONG:
            raise UsageError(
                f"modelId {self.model_id!r}: AoE needs a positive number (a Java long)"
            )
        if not _MODEL_DIR.fullmatch(self.model_dir):
            raise UsageError(
                f"modelDir {self.model_dir!r}: name the app's assets folder of the model "
                "(letters, digits, '.', '_', '-', folders joined by '/')",
                hint='it is the "modelDir" of the model.config the app ships, e.g. mnist',
            )


@dataclass(frozen=True, kw_only=True)
class LegacyZip:
    """A zip written by :func:`build_legacy_zip`."""

    path: Path
    name: str
    """``<sha256>.zip``: the file's name in the output folder, and in its URL."""
    md5: str
    """Lowercase hex MD5 of the zip, as AoE compares it with ``modelMd5``."""
    sha256: str
    size: int
    tag: str
    version: str


@dataclass(frozen=True)
class _Layout:
    model_name: str
    param_name: str | None
    label_name: str | None


def _layout(manifest: BundleManifest) -> _Layout:
    """Which of the bundle's files AoE's Android config names, or why none fits.

    An ncnn model is a graph (``.param``, our ``modelName``) and weights (a
    ``weights`` file). AoE's Android demo named the weights ``modelName`` and
    the graph ``modelParamName``; that form is written back.
    """
    paths = [f.path for f in manifest.files]
    if CONFIG in paths:
        raise BundleFormatError(
            f"{manifest.model.tag} {manifest.model.version} carries a file named {CONFIG}, "
            "the name AoE reads its config from: it cannot be served as an AoE zip",
            hint="rename the file in the model's config and rebuild the bundle",
        )
    name, param = manifest.model.name, None
    weights = [f.path for f in manifest.files if f.role == "weights"]
    if manifest.model.runtime == "ncnn" and weights:
        name, param = weights[0], manifest.model.name
    if "/" in name:
        raise BundleFormatError(
            f"{manifest.model.tag} {manifest.model.version}: AoE loads {name!r} only from "
            "the top of the model's folder, not from a subfolder",
            hint="put the model file next to its config (modelDir) and rebuild the bundle",
        )
    labels = [f.path for f in manifest.files if f.role == "labels"]
    return _Layout(name, param, labels[0] if labels else None)


def android_config(
    manifest: BundleManifest, target: AoeTarget, *, model_md5: str
) -> dict[str, Any]:
    """The ``model.config`` of the zip, in AoE's Android dialect (module docstring).

    ``model_md5`` is the lowercase hex MD5 of the file the config names as
    ``modelName`` (AoE's ``modelSign``).
    """
    layout = _layout(manifest)
    runtime = manifest.model.runtime
    config: dict[str, Any] = {
        "version": manifest.model.version,
        "runtime": AOE_RUNTIMES.get(runtime, runtime),
        "source": "cloud",
        "modelId": target.model_id,
        "modelDir": target.model_dir,
        "modelName": layout.model_name,
        "modelSign": model_md5,
    }
    if layout.param_name is not None:
        config["modelParamName"] = layout.param_name
    if layout.label_name is not None:
        config["modelLabelName"] = layout.label_name
    return config


def config_bytes(config: dict[str, Any]) -> bytes:
    """The config as the zip holds it: sorted keys, two-space indent, UTF-8, a final newline."""
    return (json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def entry_name(relpath: str) -> str:
    """The zip entry of a bundle file: under :data:`ROOT`, never outside it."""
    parts = relpath.split("/")
    if any(p in ("", ".", "..") or "\\" in p for p in parts):
        raise UnsafeEntryError(f"refusing to put the unsafe path {relpath!r} in an AoE zip")
    return f"{ROOT}/{relpath}"


def build_legacy_zip(
    bundle: Path | BinaryIO,
    out_dir: Path,
    *,
    target: AoeTarget,
    trusted_keys: Sequence[PublicKey],
    threshold: int = 1,
    decryption_key: DecryptionKey | None = None,
    expect: tuple[str, str] | None = None,
) -> LegacyZip:
    """Verify ``bundle``, unpack it and write its files with a ``model.config`` as a zip.

    The bundle's signatures are checked against ``trusted_keys`` and
    ``threshold``, and every file against its signed digests, by the
    bundle's own unpacker. An encrypted bundle is decrypted with
    ``decryption_key``, and refused without one (:class:`DecryptionError`);
    an unencrypted bundle is served as it is, key or not. ``expect``, a
    (tag, version), must be what the bundle says it is
    (:class:`BundleMismatchError`).

    The zip is written into ``out_dir`` as ``<sha256>.zip``, atomically:
    a crash leaves either the whole zip or none, and the unpacked files
    are removed.
    """
    with Folder(Path(out_dir)) as folder:
        for stem in (_WORK, _PARTIAL):  # what a writer killed before us left behind
            folder.sweep(stem)
        manifest = _authenticated(bundle, trusted_keys, threshold, decryption_key, expect)
        layout = _layout(manifest)  # before spending an unpack on it
        fd, work = folder.temp_folder(_WORK)
        try:
            files = folder.path / work / "files"
            unpacked = unpack_bundle(
                bundle,
                files,
                trusted_keys=trusted_keys,
                threshold=threshold,
                decryption_key=decryption_key if manifest.encryption is not None else None,
            )
            if unpacked.manifest.canonical_bytes() != manifest.canonical_bytes():
                raise BundleMismatchError(
                    "the bundle changed while it was being read; refusing to serve it"
                )
            config = android_config(manifest, target, model_md5=_md5_of(files / layout.model_name))
            return _write(folder, manifest, files, config_bytes(config))
        finally:
            try:
                folder.remove_tree(work)
            finally:
                folder.release(fd, work)


def _authenticated(
    bundle: Path | BinaryIO,
    trusted_keys: Sequence[PublicKey],
    threshold: int,
    decryption_key: DecryptionKey | None,
    expect: tuple[str, str] | None,
) -> BundleManifest:
    """The bundle's signed manifest once its signatures hold; refusals before any unpack."""
    check_threshold(trusted_keys, threshold)
    with open_bundle(bundle, DEFAULT_LIMITS) as opened:
        manifest, _ = authenticate(opened, trusted_keys, threshold, DEFAULT_LIMITS)
    model = manifest.model
    if expect is not None and (model.tag, model.version) != expect:
        raise BundleMismatchError(
            f"the bundle says it is {model.tag} {model.version}, the manifest "
            f"{expect[0]} {expect[1]}"
        )
    if manifest.encryption is not None and decryption_key is None:
        raise DecryptionError(
            f"{model.tag} {model.version} is encrypted: the AoE bridge serves an encrypted "
            "bundle only with a decryption key its operator gives it",
            hint="give the bridge the private key of one of the bundle's recipients, or "
            "publish an unencrypted build for AoE apps (AoE's zips travel in the clear)",
        )
    return manifest


def _md5_of(path: Path) -> str:
    with path.open("rb") as fp:
        return hashlib.file_digest(fp, lambda: hashlib.md5(usedforsecurity=False)).hexdigest()


def _write(folder: Folder, manifest: BundleManifest, files: Path, config: bytes) -> LegacyZip:
    """The zip, through a held temporary renamed to its SHA-256 once complete."""
    entries: list[tuple[str, Path | bytes]] = [
        (entry_name(f.path), files / f.path) for f in manifest.files
    ]
    entries.append((entry_name(CONFIG), config))
    entries.sort(key=lambda e: e[0])
    try:
        fd, tmp = folder.temp_file(_PARTIAL)
    except OSError as e:
        raise OutputError(f"cannot write into {folder.path}: {e.strerror}") from e
    try:
        with os.fdopen(fd, "w+b") as fp:
            with zipfile.ZipFile(fp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
                for name, source in entries:
                    _add(zf, name, source)
            fp.flush()
            os.fsync(fp.fileno())
            md5, sha256, size = _digests(folder, tmp)
            name = f"{sha256}.zip"
            if not facilities.WINDOWS:  # while held, so that no sweep takes it
                folder.replace(tmp, name)
        if facilities.WINDOWS:  # which renames no open file
            folder.replace(tmp, name)
        folder.fsync()
    except BaseException:
        with contextlib.suppress(OSError):
            folder.remove(tmp)
        raise
    model = manifest.model
    return LegacyZip(
        path=folder.path / name,
        name=name,
        md5=md5,
        sha256=sha256,
        size=size,
        tag=model.tag,
        version=model.version,
    )


def _add(zf: zipfile.ZipFile, name: str, source: Path | bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = _UNIX
    info.external_attr = _MODE
    if isinstance(source, bytes):
        info.file_size = len(source)
        with zf.open(info, "w") as out:
            out.write(source)
        return
    info.file_size = source.stat().st_size  # so that zipfile picks ZIP64 when it must
    with source.open("rb") as src, zf.open(info, "w") as out:
        while chunk := src.read(_COPY):
            out.write(chunk)


def _digests(folder: Folder, name: str) -> tuple[str, str, int]:
    """MD5, SHA-256 and size of the file ``name`` as written (read back: ``zipfile``
    seeks back to complete each entry's header, so the writes are not the bytes)."""
    fd = folder.open_file(name)
    if fd is None:
        raise OutputError(f"{folder.path / name} was replaced while it was being written")
    md5, sha256, size = hashlib.md5(usedforsecurity=False), hashlib.sha256(), 0
    with os.fdopen(fd, "rb") as fp:
        while chunk := fp.read(_COPY):
            md5.update(chunk)
            sha256.update(chunk)
            size += len(chunk)
    return md5.hexdigest(), sha256.hexdigest(), size
