"""Read the config dialects of Didi's AoE SDK and rewrite them canonically.

AoE had no schema; each platform read its own keys, as its sources show
(github.com/didi/AoE: the Android SDK reads ``model.config`` with Gson into
model-option classes such as ``LocalModelOption``, the iOS SDK into
``AoEModelOption``):

* Android ``model.config``: ``source`` ``local``/``cloud``, ``modelId``,
  ``modelSign`` (MD5), and in the demos ``modelParamName`` (ncnn) and
  ``modelLabelName``. Android has no ``tag``.
* iOS: ``updateUrl``, ``sign``, ``encrypted``, ``encryptType``, ``modelPath``,
  and a ``modelName`` without extension (iOS appended ``.bin``). iOS has no
  ``runtime``.
* One shipped config has an unquoted ``"version": 0.0.1``, which is not JSON.

Every rewrite produces a :class:`~aoe_pack.config.LegacyNotice`, so
``aoe-pack migrate`` can tell the user exactly what changed. Keys that mean
nothing any more (MD5 "signatures", the encryption type) are dropped;
information we cannot invent (an iOS runtime for a ``.bin`` file) is left for
validation to ask for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from aoe_pack.config._report import LegacyNotice, Violation
from aoe_pack.config._source import json_value

_ANDROID_KEYS = frozenset({"modelSign", "modelId", "modelParamName", "modelLabelName"})
_IOS_KEYS = frozenset({"updateUrl", "sign", "encrypted", "encryptType", "modelPath"})
_ANDROID_SOURCES = {"local": "installed", "cloud": "remote"}

# Only extensions that name one runtime; ".bin" (iOS's default) names none.
_RUNTIME_BY_EXTENSION = {
    ".tflite": "tflite",
    ".onnx": "onnx",
    ".ort": "ort",
    ".mnn": "mnn",
    ".param": "ncnn",
    ".tmfile": "tengine",
    ".pt": "pytorch",
    ".ptl": "pytorch",
}

_SIGNATURE_NOTE = (
    "an MD5 checksum is not a signature; aoe-pack bundles carry a SHA-256 manifest "
    "signed with your key (aoe-pack build --sign-key)"
)
_DROPPED = {
    "modelSign": _SIGNATURE_NOTE,
    "sign": _SIGNATURE_NOTE,
    "encryptType": 'the bundle format fixes its encryption algorithm; set only "encrypt"',
}
_RENAMED = {"updateUrl": "updateURL", "encrypted": "encrypt"}
_LABELS_NOTE = 'modelLabelName is now an entry in files with role "labels"'

# A bare dotted version such as 0.0.1 after a key: invalid JSON that AoE shipped.
_BARE_VERSION = re.compile(
    r'("[^"\\]*"\s*:\s*)([0-9]+(?:\.[0-9]+){2,}(?:[-+][0-9A-Za-z.+-]*)?)(?=\s*[,}\]])'
)


@dataclass(frozen=True)
class TextRepair:
    """Config text after quoting bare versions.

    ``inserted`` holds the positions, in the repaired text, of every inserted
    quote; ``values`` pairs the position of each repaired value (its opening
    quote) with the bare text it had.
    """

    text: str
    inserted: tuple[int, ...] = ()
    values: tuple[tuple[int, str], ...] = ()


def repair_text(text: str) -> TextRepair:
    """Quote bare dotted versions (``"version": 0.0.1``) so the text can parse."""
    parts: list[str] = []
    inserted: list[int] = []
    values: list[tuple[int, str]] = []
    last = 0
    length = 0
    for match in _BARE_VERSION.finditer(text):
        head = text[last : match.start(2)]
        parts.append(head)
        length += len(head)
        bare = match.group(2)
        values.append((length, bare))
        inserted += [length, length + len(bare) + 1]
        parts.append(f'"{bare}"')
        length += len(bare) + 2
        last = match.end(2)
    parts.append(text[last:])
    return TextRepair("".join(parts), tuple(inserted), tuple(values))


@dataclass(frozen=True)
class LegacyMapping:
    """The outcome of :func:`map_legacy`.

    ``origins`` maps a pointer in ``data`` to the pointer in the original
    document it came from, wherever the two differ, so that a violation found
    in the canonical form is reported where the user wrote it. Notices and
    conflicts carry no line yet; validation fills them in.
    """

    data: dict[str, Any]
    notices: tuple[LegacyNotice, ...]
    conflicts: tuple[Violation, ...]
    origins: Mapping[str, str]


def map_legacy(data: Mapping[str, Any], *, config_dir: Path | None = None) -> LegacyMapping:
    """Rewrite legacy AoE keys and values in a parsed config to canonical ones.

    ``config_dir`` (the config's folder) lets the Android ``modelDir``
    convention be checked against the files on disk; without it that one
    rewrite is skipped. Canonical configs come back unchanged.
    """
    return _Mapper(data, config_dir).run()


class _Mapper:
    def __init__(self, data: Mapping[str, Any], config_dir: Path | None) -> None:
        self.out: dict[str, Any] = dict(data)
        self.config_dir = config_dir
        self.notices: list[LegacyNotice] = []
        self.conflicts: list[Violation] = []
        self.origins: dict[str, str] = {}
        source = data.get("source")
        self.android = bool(_ANDROID_KEYS & data.keys()) or (
            isinstance(source, str) and source.lower() in _ANDROID_SOURCES
        )
        self.ios = bool(_IOS_KEYS & data.keys())

    def note(self, key: str, legacy: str, canonical: str, message: str) -> None:
        self.notices.append(LegacyNotice(f"/{key}", None, legacy, canonical, message))

    def run(self) -> LegacyMapping:
        self._tag()  # first: it reads modelId and modelDir as written
        for key, why in _DROPPED.items():
            if key in self.out:
                self.out.pop(key)
                self.note(key, key, "", f"{key} dropped: {why}")
        if "modelId" in self.out:
            model_id = json_value(self.out.pop("modelId"))
            why = "it numbered the model for AoE's upgrade server; aoe-pack names models by tag"
            self.note("modelId", "modelId", "", f"modelId {model_id} dropped: {why}")
        for old, new in _RENAMED.items():
            self._rename(old, new)
        self._model_path()
        self._source()
        self._ncnn()
        if "modelLabelName" in self.out and self._files_ok():
            self._add_file(self.out.pop("modelLabelName"), "labels", "/modelLabelName")
            self.note("modelLabelName", "modelLabelName", "files", _LABELS_NOTE)
        self._ios_model_name()
        self._runtime()
        self._model_location()
        return LegacyMapping(self.out, tuple(self.notices), tuple(self.conflicts), self.origins)

    def _rename(self, old: str, new: str) -> None:
        if old not in self.out:
            return
        value = self.out.pop(old)
        if new not in self.out:
            # iOS read "encrypted" as an NSNumber, so 0 and 1 were common.
            if new == "encrypt" and type(value) is int and value in (0, 1):
                value = bool(value)
            self.out[new] = value
            self.origins[f"/{new}"] = f"/{old}"
            self.note(old, old, new, f"{old} is now {new}")
        elif self.out[new] == value:
            self.note(old, old, "", f"{old} dropped: it repeats {new}")
        else:
            message = f"{old} and {new} disagree"
            self.conflicts.append(Violation(f"/{old}", None, None, message, f"keep only {new}"))

    def _tag(self) -> None:
        if "tag" in self.out or not (self.android or self.ios):
            return
        model_dir, model_id = self.out.get("modelDir"), self.out.get("modelId")
        name = PurePosixPath(model_dir).name if isinstance(model_dir, str) else ""
        tag, origin = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip("._-")[:128], "modelDir"
        if not tag and isinstance(model_id, int | str) and str(model_id).isdigit():
            tag, origin = f"model-{model_id}", "modelId"
        if tag:
            self.out["tag"] = tag
            self.origins["/tag"] = f"/{origin}"
            self.note(
                origin, "", f"tag: {tag}", f"AoE configs had no tag; {json_value(tag)} comes "
                f"from {origin} (a tag names the model in every manifest: keep it stable)",
            )  # fmt: skip

    def _model_path(self) -> None:
        # iOS overwrote modelPath at run time with the folder of model.config,
        # so it only helps when no modelDir says the same thing.
        value = self.out.get("modelPath")
        if "modelDir" not in self.out and isinstance(value, str) and not value.startswith("/"):
            self._rename("modelPath", "modelDir")
        elif "modelPath" in self.out:
            del self.out["modelPath"]
            why = "iOS set it at run time to the download folder; modelDir names the folder"
            self.note("modelPath", "modelPath", "", f"modelPath dropped: {why}")

    def _source(self) -> None:
        value = self.out.get("source")
        if not isinstance(value, str) or value in ("installed", "remote"):
            return
        canonical = _ANDROID_SOURCES.get(value.lower())
        if canonical is None and not self.android:
            return  # a canonical config with a typo: validation says so
        message = f"source {json_value(value)} is now {json_value(canonical)}"
        if canonical is None:
            canonical = "installed"
            message = f'source {json_value(value)} meant "local" to AoE Android: now "installed"'
        self.out["source"] = canonical
        self.note("source", f"source: {value}", f"source: {canonical}", message)

    def _ncnn(self) -> None:
        # An ncnn model is a .param (the graph) plus a .bin (the weights). The
        # graph is what identifies the network and what ncnn loads first, so
        # it becomes modelName; the .bin follows as a "weights" file.
        if "modelParamName" not in self.out or not self._files_ok():
            return
        weights = self.out.pop("modelName", None)
        self.out["modelName"] = self.out.pop("modelParamName")
        self.origins["/modelName"] = "/modelParamName"
        message = "modelParamName (the ncnn graph) is now modelName"
        if weights is not None and weights != self.out["modelName"]:
            self._add_file(weights, "weights", "/modelName")
            message += f'; {json_value(weights)} is now in files with role "weights"'
        self.note("modelParamName", "modelParamName", "modelName", message)

    def _files_ok(self) -> bool:
        # Otherwise the legacy key stays, and validation reports it as unknown.
        return isinstance(self.out.get("files", []), list)

    def _add_file(self, path: Any, role: str, origin: str) -> None:
        files = [*self.out.get("files", []), {"path": path, "role": role}]
        self.origins[f"/files/{len(files) - 1}"] = origin
        self.out["files"] = files

    def _ios_model_name(self) -> None:
        name = self.out.get("modelName")
        if self.ios and isinstance(name, str) and name and not PurePosixPath(name).suffix:
            self.out["modelName"] = f"{name}.bin"
            message = f'AoE iOS appended ".bin" to modelName: now {json_value(name + ".bin")}'
            self.note("modelName", name, f"{name}.bin", message)

    def _runtime(self) -> None:
        name = self.out.get("modelName")
        if "runtime" in self.out or not self.ios or not isinstance(name, str):
            return
        runtime = _RUNTIME_BY_EXTENSION.get(PurePosixPath(name).suffix.lower())
        if runtime is not None:
            self.out["runtime"] = runtime
            self.origins["/runtime"] = "/modelName"
            message = f"AoE iOS configs had no runtime; {runtime} follows from {json_value(name)}"
            self.note("modelName", "", f"runtime: {runtime}", message)

    def _model_location(self) -> None:
        """AoE's two path conventions, where the files on disk confirm them.

        AoE resolved ``modelDir`` against the app's assets root, so
        ``assets/mnist/model.config`` says ``"modelDir": "mnist"`` about its
        own folder: relative to the config that is ``"."``. And the runtime
        added the model file's extension itself, so ``"modelName":
        "mnist_cnn_keras"`` names ``mnist_cnn_keras.tflite`` for TensorFlow
        Lite (``.bin`` on iOS). Both are rewritten only when the file exists.
        """
        model_dir, name, here = self.out.get("modelDir"), self.out.get("modelName"), self.config_dir
        if not (here and isinstance(model_dir, str) and isinstance(name, str) and name):
            return
        runtime = self.out.get("runtime")
        folder = here / model_dir
        if (
            model_dir not in ("", ".")
            and PurePosixPath(model_dir).name == here.name
            and _model_file(folder, name, runtime) is None
            and _model_file(here, name, runtime) is not None
        ):
            self.out["modelDir"] = "."
            folder = here
            message = (
                f"modelDir {json_value(model_dir)} is this config's own folder (AoE read it from "
                'the assets root); relative to the config it is "."'
            )
            self.note("modelDir", model_dir, ".", message)
        found = _model_file(folder, name, runtime)
        if found is not None and found != name:
            self.out["modelName"] = found
            message = f"AoE's runtime added the model's extension; the file is {json_value(found)}"
            self.note("modelName", name, found, message)


_EXTENSIONS = {
    "tensorflow": (".tflite",),
    "tflite": (".tflite",),
    "onnx": (".onnx",),
    "ort": (".ort",),
    "mnn": (".mnn",),
    "ncnn": (".param",),
    "pytorch": (".pt", ".ptl"),
    "tengine": (".tmfile",),
}


def _model_file(folder: Path, name: str, runtime: Any) -> str | None:
    """``name`` if it exists in ``folder``; for a bare name, the one file its runtime would load."""
    if _exists(folder / name):
        return name
    if PurePosixPath(name).suffix:
        return None
    suffixes = _EXTENSIONS.get(runtime, ()) if isinstance(runtime, str) else ()
    found = [name + s for s in (*suffixes, ".bin") if _exists(folder / (name + s), file=True)]
    return found[0] if len(found) == 1 else None


def _exists(path: Path, *, file: bool = False) -> bool:
    """Whether ``path`` is there; a name the OS cannot even look up (too long, a NUL) is not."""
    try:
        return path.is_file() if file else path.exists()
    except (OSError, ValueError):
        return False
