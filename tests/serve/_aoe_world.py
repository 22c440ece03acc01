"""The AoE bridge's tests' world: a repository published with the library, and an AoE model.

:class:`World` is a folder repository initialised and published by the
project's publisher (root, manifests and bundles signed by its key);
``files_of(version)`` are the model files of a release, so a test can compare
what an AoE app unpacked with what went into the bundle, and ``app_config``
the ``model.config`` an AoE app ships; ``aoe_body`` is an app's /upgradeModel
request, :class:`Devices` the apps that reach a bridge over HTTP and
``assert_installed`` what one of them must then run. Shared by the
library-level tests (test_aoe_bridge.py), the HTTP ones
(test_aoe_bridge_http.py) and those on every backend
(test_aoe_bridge_backends.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _aoe_client import AoeApp, Asset, HttpTransport, md5sum

from aoe_pack._crypto.asymmetric import PrivateKey, PublicKey
from aoe_pack.bundle import EncryptionSpec, build_bundle
from aoe_pack.client.check import fetch_trusted
from aoe_pack.config.model import ModelConfig
from aoe_pack.publish import releases
from aoe_pack.publish.workflow import init_repository
from aoe_pack.repository.model import Manifest
from aoe_pack.repository.root import Root, verify_self_signed
from aoe_pack.storage.local import LocalStore
from aoe_pack.storage.store import ROOT

TAG = "tag_mnist"
MODEL = "mnist.tflite"
APP_ID, MODEL_ID = 72, 12134
MODEL_DIR = "mnist"
BASE = "https://models.example.com/aoe"
UPGRADE_URL = "https://models.example.com/upgradeModel"


def files_of(version: str) -> dict[str, bytes]:
    """The model files of ``version``: distinct bytes per version."""
    weights = hashlib.sha256(f"weights {version}".encode()).digest() * 200
    return {MODEL: weights, "labels.txt": f"labels of {version}\n".encode() + b"digit\n" * 10}


def app_config(version: str, files: Mapping[str, bytes]) -> str:
    """The model.config an AoE app ships, as AoE's demo wrote them (modelId a string)."""
    return (
        "{\n"
        f'  "version": "{version}",\n'
        '  "runtime": "tensorflow",\n'
        '  "source": "local",\n'
        f'  "modelId": "{MODEL_ID}",\n'
        f'  "modelDir": "{MODEL_DIR}",\n'
        f'  "modelName": "{MODEL}",\n'
        f'  "modelSign": "{md5sum(files[MODEL])}"\n'
        "}\n"
    )


@dataclass
class World:
    """A repository on a folder, what was published into it and how to change it."""

    store: LocalStore
    key: PrivateKey
    work: Path
    config_writer: Callable[..., ModelConfig]
    bundles: dict[str, Path] = field(default_factory=dict)

    def bundle(
        self,
        version: str,
        *,
        files: Mapping[str, bytes] | None = None,
        recipients: tuple[PublicKey, ...] = (),
        model_name: str = MODEL,
        tag: str = TAG,
    ) -> Path:
        src = self.work / f"src-{tag}-{version}-{len(self.bundles)}"
        src.mkdir(parents=True)
        config = self.config_writer(
            src, files or files_of(version), version=version, tag=tag, model_name=model_name
        )
        out = self.work / f"{tag}-{version}-{len(self.bundles)}.aoe"
        build_bundle(
            config,
            out,
            signing_keys=[self.key],
            encryption=EncryptionSpec(recipients=list(recipients)),
        )
        self.bundles[version] = out
        return out

    def publish(
        self,
        version: str,
        *,
        recipients: tuple[PublicKey, ...] = (),
        tag: str = TAG,
        **options: Any,
    ) -> None:
        bundle = self.bundle(version, recipients=recipients, tag=tag)
        releases.publish(
            self.store,
            [bundle],
            sign_keys=[self.key],
            options=releases.ReleaseOptions(**options),
        )

    def yank(self, version: str, reason: str) -> None:
        releases.yank(self.store, TAG, version, reason=reason, sign_keys=[self.key])

    def pin(self, pin: str | None) -> None:
        releases.set_pin(self.store, TAG, pin, sign_keys=[self.key])

    def verified(self) -> tuple[Manifest, Root]:
        """The manifest and root as a device trusts them now."""
        doc = self.store.read(ROOT, max_bytes=1 << 20)
        assert doc is not None
        start = verify_self_signed(doc.data, what="root")
        root, _, verified = fetch_trusted(self.store, start, now=dt.datetime.now(dt.UTC))
        return verified.manifest, root

    @classmethod
    def create(
        cls, folder: Path, key: PrivateKey, config_writer: Callable[..., ModelConfig]
    ) -> World:
        """An empty repository in ``folder``/repo, signed by ``key``."""
        store = LocalStore(folder / "repo")
        init_repository(store, root_keys=[key.public], threshold=1, sign_keys=[key])
        return cls(store, key, folder / "work", config_writer)

    def trusted_root(self) -> bytes:
        """The ``root.json`` an app ships (version 1)."""
        doc = self.store.read(ROOT, max_bytes=1 << 20)
        assert doc is not None
        return doc.data


MAPPING = f"{APP_ID}:{MODEL_ID}={TAG}@{MODEL_DIR}"
"""The ``--aoe-model`` of the AoE model above."""


class Devices:
    """AoE apps, each with its own files folder, that reach a bridge over HTTP."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port = folder, port
        self._count = itertools.count()

    def __call__(self, version: str = "1.0.0", device_sn: str = "phone-1") -> AoeApp:
        files = files_of(version)
        return AoeApp(
            files_dir=self.folder / f"device-{next(self._count)}" / "files",
            upgrade_url=f"http://127.0.0.1:{self.port}/upgradeModel",
            app_id=APP_ID,
            device_sn=device_sn,
            asset=Asset(app_config(version, files), files),
            transport=HttpTransport(timeout=30),
        )


def aoe_body(version: str = "1.0.0", device_sn: str = "phone-1", **changes: Any) -> bytes:
    doc = {
        "appId": APP_ID,
        "modelId": MODEL_ID,
        "modelVersionCode": version,
        "deviceSN": device_sn,
        "deviceType": "Pixel 8",
        "timeStamp": 1_767_225_600_000,
        "sign": "0" * 32,
        **changes,
    }
    return json.dumps(doc).encode()


def assert_installed(device: AoeApp, version: str) -> None:
    """The app runs the downloaded model of ``version``, its files those of the bundle."""
    loaded = device.load()
    assert (loaded.version, loaded.source) == (version, "cloud")
    assert loaded.model == files_of(version)[MODEL]
    folder = device.files_dir / MODEL_DIR / version
    assert sorted(p.name for p in folder.iterdir()) == ["labels.txt", MODEL, "model.config"]
    for name, content in files_of(version).items():
        assert (folder / name).read_bytes() == content
