"""An app on AoE's Android SDK, as far as model upgrades go: the bridge's tests' device.

Written from AoE's Android sources (github.com/didi/AoE, ``Android/aoe/service``
and ``Android/aoe/core``) and nothing of the bridge, so that the bridge is
checked against the protocol and not against itself:

- ``HttpManager.createRequest`` POSTs Gson's JSON of a map: ``appId`` and
  ``modelId`` (longs), ``modelVersionCode`` (the running config's
  ``version``), ``kLat``/``kLng`` (doubles), ``deviceSN``, ``deviceType``,
  ``timeStamp`` (a long, milliseconds) and ``sign``.
- ``ModelContract.fetchModel``: a non-2xx status or a non-zero ``code`` is a
  failure; ``data`` with three non-empty strings is a model to download
  (``UpgradeModelResult.isValid``); anything else means "already the newest".
- ``startDownloadAsync``/``syncModelFiles``: the zip is saved as
  ``<files>/<modelDir>/<modelDir>_<version>.zip`` and unpacked only if its
  lowercase hex MD5 is ``modelMd5`` (``MD5Util.md5sum``), by
  ``ZipUtil.unpackZipAndRename``: an entry name containing ``../`` fails the
  unpack, and the first folder of every entry is replaced, with Java's
  regex-based ``replaceFirst``, by ``<modelDir>/<version>``. Older version
  folders are then removed (``doModelDirCleanExclude``, Java's
  ``compareVersion`` that splits on dots), and the new one too unless its
  ``model.config`` names a file whose MD5 is its ``modelSign``
  (``validDownload``). The zip is deleted.
- ``AoeModelOptionLoader.load``: the app's own config against the download's,
  read from the highest-named folder starting with ``modelDir`` (oldest
  config file first); the download wins only if Kotlin's ``compareVersion``
  puts it above, which compares whole strings: one of another length loses.
  A ``cloud`` model is loaded from ``<files>/<modelDir>/<version>/<modelName>``.

The SDK keeps an answer in memory per process (``sModelCache``); each
:meth:`AoeApp.check` here is a fresh start of the app.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


class Transport(Protocol):
    """How the app reaches the upgrade server and the zip's URL."""

    def post(self, url: str, body: bytes) -> tuple[int, bytes]: ...

    def get(self, url: str) -> bytes: ...


class HttpTransport:
    """A real HTTP client (what OkHttp and AoE's DownloadRequest do, minus retries)."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout

    def post(self, url: str, body: bytes) -> tuple[int, bytes]:
        request = urllib.request.Request(  # noqa: S310 - the tests' own server
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return response.status, response.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def get(self, url: str) -> bytes:
        with urllib.request.urlopen(url, timeout=self.timeout) as response:  # noqa: S310
            data: bytes = response.read()
            return data


# --- AoE's version comparisons, as written -------------------------------------------


def kotlin_compare_version(v1: str, v2: str) -> int:
    """``AoeModelOptionLoader.compareVersion``, line by line.

    Kotlin's ``split("\\\\.")`` splits on the literal text ``\\.``; and in
    ``(a.length - b.length.also { diff = it }) == 0`` the ``also`` applies to
    ``b.length``, so ``diff`` takes that length when the lengths differ.
    """
    a1, a2 = v1.split("\\."), v2.split("\\.")
    idx, diff = 0, 0
    while idx < min(len(a1), len(a2)):
        diff = len(a2[idx])
        if len(a1[idx]) - len(a2[idx]) != 0:
            break
        diff = _java_compare_to(a1[idx], a2[idx])
        if diff != 0:
            break
        idx += 1
    return diff if diff != 0 else len(a1) - len(a2)


def java_compare_version(v1: str, v2: str) -> int:
    """``ModelContract.compareVersion``: Java's regex split on dots, length then text."""
    a1, a2 = v1.split("."), v2.split(".")
    idx, diff = 0, 0
    while idx < min(len(a1), len(a2)):
        diff = len(a1[idx]) - len(a2[idx])
        if diff != 0:
            break
        diff = _java_compare_to(a1[idx], a2[idx])
        if diff != 0:
            break
        idx += 1
    return diff if diff != 0 else len(a1) - len(a2)


def _java_compare_to(a: str, b: str) -> int:
    for x, y in zip(a, b, strict=False):
        if x != y:
            return ord(x) - ord(y)
    return len(a) - len(b)


def md5sum(data: bytes) -> str:
    """``MD5Util.md5sum``: lowercase hex."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def gson_lenient(text: str) -> dict[str, Any]:
    """The config as Gson reads it: lenient, so a bare ``0.0.1`` is the string ``"0.0.1"``."""
    quoted = re.sub(r"(:\s*)([0-9]+(?:\.[0-9]+){2,})(?=\s*[,}])", r'\1"\2"', text)
    doc: dict[str, Any] = json.loads(quoted)
    return doc


def _long(value: Any) -> int:
    """Gson reading a JSON number or numeric string into a Java ``long`` (0 when absent)."""
    return int(value) if value not in (None, "") else 0


def option_is_valid(option: Mapping[str, Any] | None) -> bool:
    """``ModelOption.isValid`` (with ``LocalModelOption.isValid``)."""
    if option is None:
        return False
    return all(option.get(k) for k in ("modelDir", "modelName", "version", "modelSign")) and (
        _long(option.get("modelId")) != 0
    )


def model_source(option: Mapping[str, Any]) -> str:
    """``ModelOption.getModelSource``: "cloud" or "local"; anything else is local."""
    source = option.get("source")
    return source if source in ("cloud", "local") else "local"


# --- the app -------------------------------------------------------------------------


@dataclass(frozen=True)
class Asset:
    """The model the app ships: ``assets/<modelDir>/model.config`` and its files."""

    config_text: str
    files: Mapping[str, bytes]

    @property
    def config(self) -> dict[str, Any]:
        return gson_lenient(self.config_text)


@dataclass(frozen=True)
class Checked:
    """One upgrade check: what happened, and the server's answer."""

    outcome: str
    """``network-failed``, ``business-error``, ``newest``, ``md5-mismatch``,
    ``unpack-failed``, ``invalid-download`` or ``installed``."""
    status: int
    response: Any
    request: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Loaded:
    """What ``AoeModelOptionLoader.load`` picked and the bytes the interpreter would read."""

    version: str
    source: str
    option: dict[str, Any]
    model: bytes | None
    """None: a cloud model whose file is missing (AoE's "download waiting")."""


class AoeApp:
    """One install of an app on AoE's SDK, with its files folder and one model."""

    def __init__(
        self,
        *,
        files_dir: Path,
        upgrade_url: str,
        app_id: int,
        device_sn: str,
        asset: Asset,
        transport: Transport,
        device_type: str = "Pixel 8",
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.files_dir = files_dir
        self.upgrade_url = upgrade_url
        self.app_id = app_id
        self.device_sn = device_sn
        self.asset = asset
        self.transport = transport
        self.device_type = device_type
        self._ticks = 0
        self._clock = clock or self._tick
        files_dir.mkdir(parents=True, exist_ok=True)

    @property
    def model_dir(self) -> str:
        model_dir: str = self.asset.config["modelDir"]
        return model_dir

    def _tick(self) -> int:
        # File times as the unpack writes them, one step apart: "oldest first" is
        # well defined even where the file system's clock is coarse.
        self._ticks += 1
        return 1_700_000_000_000_000_000 + self._ticks * 1_000_000_000

    # ModelContract.buildBodyMap + HttpManager.generalSignedParamsMap
    def request_body(self, option: Mapping[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "appId": self.app_id,
            "modelId": _long(option.get("modelId")),
            "modelVersionCode": option.get("version"),
            "kLat": 30.28,
            "kLng": 120.15,
            "deviceSN": self.device_sn,
            "deviceType": self.device_type,
            "timeStamp": 1_767_225_600_000,
        }
        # Signer.generalSign is not public: any string stands for it.
        body["sign"] = md5sum(json.dumps(body, sort_keys=True).encode())
        return body

    def check(self) -> Checked:
        """``ModelContract.fetchModel`` for the model the loader runs now, then the download."""
        option = self.load().option
        body = self.request_body(option)
        status, raw = self.transport.post(self.upgrade_url, json.dumps(body).encode())
        if not 200 <= status < 300:
            return Checked("network-failed", status, _json_or_text(raw), body)
        response = json.loads(raw)
        if int(response.get("code", 0)) != 0:
            return Checked("business-error", status, response, body)
        data = response.get("data")
        fields = ("modelVersionCode", "modelUrl", "modelMd5")
        if not isinstance(data, dict) or not all(_gson_string(data.get(k)) for k in fields):
            return Checked("newest", status, response, body)
        version = _gson_string(data["modelVersionCode"])
        outcome = self._download(option, version, data["modelUrl"], data["modelMd5"])
        return Checked(outcome, status, response, body)

    def _download(self, option: Mapping[str, Any], version: str, url: str, md5: str) -> str:
        model_dir = option["modelDir"]
        root = self.files_dir / model_dir
        root.mkdir(parents=True, exist_ok=True)
        zip_path = root / f"{model_dir}_{version}.zip"
        zip_path.write_bytes(self.transport.get(url))
        try:
            target = f"{model_dir}/{version}"
            if md5sum(zip_path.read_bytes()) != md5:
                return "md5-mismatch"
            if not self._unpack_and_rename(zip_path, target):
                return "unpack-failed"
            self._clean_older(model_dir, version)
            if not self._valid_download(target):
                self._clean_same(model_dir, version)
                return "invalid-download"
            return "installed"
        finally:
            zip_path.unlink()

    # ZipUtil.unpackZipAndChangeName
    def _unpack_and_rename(self, zip_path: Path, change_name: str) -> bool:
        if "$" in change_name or "\\" in change_name:
            raise AssertionError(f"Java's replaceFirst would read {change_name!r} as a pattern")
        try:
            with zipfile.ZipFile(zip_path) as zf:
                for info in zf.infolist():  # the local headers' order, for this writer
                    name = info.filename
                    if "../" in name:
                        return False  # AoeException("unsecurity file")
                    idx = name.find("/")
                    if idx != -1:
                        name = re.sub(name[:idx], change_name, name, count=1)
                    out = self.files_dir / name
                    if info.is_dir():
                        out.mkdir(parents=True, exist_ok=True)
                        continue
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(zf.read(info))
                    now = self._clock()
                    os.utime(out, ns=(now, now))
        except (OSError, zipfile.BadZipFile, re.error):
            return False
        return True

    def _subdirs(self, model_dir: str) -> list[Path]:
        root = self.files_dir / model_dir
        return [p for p in root.iterdir() if p.is_dir()] if root.is_dir() else []

    # ModelContract.doModelDirCleanExclude: the files of each older folder, then the folder
    def _clean_older(self, model_dir: str, keep: str) -> None:
        for folder in self._subdirs(model_dir):
            if java_compare_version(folder.name, keep) < 0:
                _delete_folder(folder)

    # ModelContract.doModelDirClean
    def _clean_same(self, model_dir: str, version: str) -> None:
        for folder in self._subdirs(model_dir):
            if java_compare_version(folder.name, version) == 0:
                _delete_folder(folder)

    # ModelContract.validDownload / hasValidDownloadModel
    def _valid_download(self, target: str) -> bool:
        folder = self.files_dir / target
        config = folder / "model.config"
        if not config.is_file():
            return False
        option = json.loads(config.read_text(encoding="utf-8"))
        name, sign = option.get("modelName") or "", option.get("modelSign")
        return any(
            f.is_file() and f.name.startswith(name) and md5sum(f.read_bytes()) == sign
            for f in folder.iterdir()
        )

    # AoeModelOptionLoader.load
    def load(self) -> Loaded:
        internal = self.asset.config
        download = self._read_download_config(self._top_version_dir())
        option = internal
        if download is not None and option_is_valid(download):
            internal_first = option_is_valid(internal) and (
                kotlin_compare_version(internal["version"], download["version"]) >= 0
            )
            option = internal if internal_first else download
        source = model_source(option)
        if source == "cloud":
            path = self.files_dir / option["modelDir"] / option["version"] / option["modelName"]
            model = path.read_bytes() if path.is_file() else None
        else:
            model = self.asset.files.get(option["modelName"])
        return Loaded(option["version"], source, dict(option), model)

    def _top_version_dir(self) -> str | None:
        found = [
            p.name
            for p in self.files_dir.iterdir()
            if p.is_dir() and p.name.startswith(self.model_dir)
        ]
        if not found:
            return None
        top = found[0]
        for name in found[1:]:  # Collections.max: the first of the largest
            if kotlin_compare_version(name, top) > 0:
                top = name
        return top

    def _read_download_config(self, top: str | None) -> dict[str, Any] | None:
        if top is None:
            return None
        root = self.files_dir / top
        configs = [
            p
            for depth in ("*", "*/*")
            for p in root.glob(depth)
            if p.is_file() and p.suffix == ".config"
        ]
        if not configs:
            return None
        oldest = min(configs, key=lambda p: p.stat().st_mtime_ns)
        doc: dict[str, Any] = json.loads(oldest.read_text(encoding="utf-8"))
        return doc


def _delete_folder(folder: Path) -> None:
    for f in folder.iterdir():
        if f.is_file():
            f.unlink()
    with contextlib.suppress(OSError):  # File.delete() of a folder that still holds folders
        folder.rmdir()


def _gson_string(value: Any) -> str:
    """A ``String`` field as Gson fills it: numbers become their text, null stays empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, int | float | str) else ""


def _json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def zip_entries(data: bytes) -> list[str]:
    """The entry names of a zip, in order."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return zf.namelist()
