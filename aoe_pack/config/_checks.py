"""Checks the schema cannot express: value relations and the files on disk.

Each check runs only on values that passed the schema, so one mistake is not
reported twice.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from aoe_pack.config._schema import Finding, close_match, url_finding
from aoe_pack.config._source import json_value
from aoe_pack.errors import VersionError
from aoe_pack.urls import url_problem
from aoe_pack.versions import Version

SAVED_MODEL_FILE = "saved_model.pb"


def _clean(ptr: str, failed: set[str]) -> bool:
    """True when no schema violation sits at ``ptr``, inside it or around it.

    A violation at the root (a missing key) does not taint the other keys.
    """
    return not any(
        f == ptr or f.startswith(ptr + "/") or (f and ptr.startswith(f + "/")) for f in failed
    )


def relation_findings(doc: Mapping[str, Any], failed: set[str]) -> Iterator[Finding]:
    """Ranges that run backwards, names and files listed twice."""
    for group in ("inputs", "outputs"):
        if not _clean(f"/{group}", failed):
            continue
        names: set[str] = set()
        for i, tensor in enumerate(doc.get(group, [])):
            if tensor["name"] in names:
                yield Finding(
                    f"/{group}/{i}/name",
                    f"{group} name {json_value(tensor['name'])} is declared twice",
                )
            names.add(tensor["name"])
            low, high = tensor.get("range", (0, 0))
            if low > high:
                yield Finding(
                    f"/{group}/{i}/range",
                    f"range minimum {low} is greater than its maximum {high}",
                    "write [min, max]",
                )
    if _clean("/targets", failed):
        for i, target in enumerate(doc.get("targets", [])):
            mixed = sorted(k for k in ("rtol", "atol") if k in target)
            if "tolerance" in target and mixed:
                yield Finding(
                    f"/targets/{i}/tolerance",
                    f'"tolerance" (a plain max absolute error) cannot be combined with '
                    f"{' and '.join(json_value(k) for k in mixed)}",
                    'keep "rtol" and "atol": the error allowed is atol + rtol x the output\'s peak',
                )
    if not (_clean("/files", failed) and _clean("/modelName", failed)):
        return
    seen = {doc.get("modelName")}
    for i, entry in enumerate(doc.get("files", [])):
        if entry["path"] == doc.get("modelName"):
            yield Finding(
                f"/files/{i}/path",
                f"{json_value(entry['path'])} is the model itself",
                "remove this entry: modelName is always packed first",
            )
        elif entry["path"] in seen:
            yield Finding(f"/files/{i}/path", f"{json_value(entry['path'])} is listed twice")
        seen.add(entry["path"])


def address_findings(doc: Mapping[str, Any], failed: set[str]) -> Iterator[Finding]:
    """The rules of a repository address the schema's pattern cannot say (docs/format.md §5.2).

    The pattern keeps out other schemes, spaces, user information, a query
    and a fragment; http:// to a host that is not loopback, a bad host or
    port and '..' segments are refused here, by the rule the bundle reader
    and ``manifest publish`` apply too.
    """
    url = doc.get("updateURL")
    if isinstance(url, str) and _clean("/updateURL", failed) and url_problem(url):
        yield url_finding("/updateURL", url)


def release_findings(doc: Mapping[str, Any], failed: set[str]) -> Iterator[Finding]:
    """What ``manifest publish`` would refuse later: a version with no ``versionCode``.

    The rule is the repository's own (:meth:`Version.version_code`), so a
    config that validates is one that can be released.
    """
    version = doc.get("version")
    if not isinstance(version, str) or not _clean("/version", failed):
        return
    try:
        Version.parse(version).version_code()
    except VersionError as e:
        refused = f"{e.message}; `aoe-pack manifest publish` would refuse it"
        yield Finding("/version", refused, e.hint)


def file_findings(doc: Mapping[str, Any], config_dir: Path, failed: set[str]) -> Iterator[Finding]:
    """Every model file must be a regular file inside ``modelDir``."""
    model_dir = doc.get("modelDir")
    if not isinstance(model_dir, str) or not _clean("/modelDir", failed):
        return
    folder = config_dir / model_dir
    try:
        found = folder.is_dir()
    except (OSError, ValueError):  # a name no file system takes (too long): no folder
        found = False
    if not found:
        yield Finding(
            "/modelDir",
            f"model folder {json_value(model_dir)} not found",
            "modelDir is relative to the config's folder; use \".\" for the config's own folder",
        )
        return
    wanted = [("/modelName", doc.get("modelName"))]
    files = doc.get("files")
    if isinstance(files, list):
        wanted += [
            (f"/files/{i}/path", f.get("path")) for i, f in enumerate(files) if isinstance(f, dict)
        ]
    for ptr, name in wanted:
        if isinstance(name, str) and _clean(ptr, failed):
            finding = _check_file(folder, name, ptr, converts=bool(doc.get("targets")))
            if finding is not None:
                yield finding


def _check_file(folder: Path, name: str, ptr: str, *, converts: bool) -> Finding | None:
    field = "modelName" if ptr == "/modelName" else "the path"
    if any("\ud800" <= c <= "\udfff" for c in name):
        # JSON's \ud800 escapes decode to lone surrogates: no file system path.
        return Finding(
            ptr, f"{json_value(name)} is not valid Unicode (a lone surrogate)", "fix the name"
        )
    try:
        real = (folder / name).resolve(strict=True)
    # A dangling link, a loop or a missing parent all mean: no file to pack.
    except (OSError, RuntimeError):
        return Finding(
            ptr, f"{json_value(name)} not found in modelDir", _missing_hint(folder, name, field)
        )
    if not real.is_relative_to(folder.resolve()):
        return Finding(
            ptr,
            f"{json_value(name)} resolves outside modelDir",
            "a symbolic link may not lead out of modelDir; copy the file in instead",
        )
    mode = real.stat().st_mode
    if stat.S_ISDIR(mode):
        return _folder_finding(real, name, ptr, converts=converts)
    if not stat.S_ISREG(mode):
        return Finding(ptr, f"{json_value(name)} is not a regular file", "name a regular file")
    return None


def _folder_finding(real: Path, name: str, ptr: str, *, converts: bool) -> Finding | None:
    """A folder is fine only as modelName, as a TensorFlow SavedModel that gets converted."""
    if ptr == "/modelName" and (real / SAVED_MODEL_FILE).is_file():
        if converts:
            return None
        return Finding(
            ptr,
            f"{json_value(name)} is a TensorFlow SavedModel folder, which no device runtime loads",
            'list "targets" (e.g. {"runtime": "tflite"}) to convert it, or name a model file',
        )
    hint = "name a file, or a TensorFlow SavedModel folder (one holding saved_model.pb)"
    return Finding(ptr, f"{json_value(name)} is a folder, not a file", hint)


def _missing_hint(folder: Path, name: str, field: str) -> str:
    parent = (folder / name).parent
    try:
        present = sorted(e.name for e in os.scandir(parent) if e.is_file())
    except OSError:
        present = []
    guess = close_match(Path(name).name, present)
    if guess is not None:
        return f"did you mean {guess!r}?"
    return f"put {json_value(name)} into modelDir, or fix {field}"
