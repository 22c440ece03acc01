"""The AoE bridge: answer AoE's Android SDK from our verified manifest.

Apps built on Didi's AoE SDK (github.com/didi/AoE, ``Android/aoe/service``)
never speak our protocol. ``ModelContract.fetchModel`` POSTs a JSON object
to the ``upgradeUrl`` of the app's ``server.config``. ``HttpManager`` builds
it with Gson from a map, so the types are Java's:

=================== ======== ===========================================
key                 JSON     meaning
=================== ======== ===========================================
``appId``           number   the app, from ``server.config`` (a long)
``modelId``         number   the model, from its ``model.config`` (a long)
``modelVersionCode`` string  the ``version`` of the config AoE runs
``deviceSN``        string   IMEI, ANDROID_ID or a hash of build fields
``deviceType``      string   ``Build.MODEL``
``kLat``, ``kLng``  number   a location, when the app provides one
``timeStamp``       number   milliseconds since 1970
``sign``            string   a signature by an algorithm AoE did not publish
=================== ======== ===========================================

The answer is ``{"code", "msg", "data": {"modelVersionCode", "modelUrl",
"modelMd5"}}`` (``AoeResponse``, ``UpgradeModelResult``). The SDK downloads
``modelUrl`` only when ``code`` is 0 and all three ``data`` fields are
non-empty strings; ``code`` 0 without them means "the current model is the
newest", which is how the bridge says "no update" (``"data": null``). Any
other ``code`` or HTTP status is a failure the SDK logs and ignores.

The decision is ours: :func:`aoe_pack.client.decide.decide`, with the device
built as ``aoe-pack client check`` builds it from ``--installed-version``
alone: ``deviceSN`` is the device id, ``modelVersionCode`` the version it
runs. AoE says nothing of the app's version or runtimes, so the device is
taken for the oldest app (``0.0.0``: a release that needs a newer app is
never offered) with every runtime, on the ``stable`` channel.

AoE cannot do everything our devices do, and the bridge offers only what an
AoE app will load:

- **No way back.** The SDK never deletes a downloaded model for an older one
  and always loads the higher version, so a yank, a pin to an older release
  or the kill switch (``pin: "local"``) stop further downloads but cannot
  take a downloaded model away. The bridge answers "no update" and says why.
- **Versions compared as text.** ``AoeModelOptionLoader.compareVersion``
  splits on a literal ``\\.``, so it compares whole version strings: one of
  another length is never newer. The bridge offers a release only if that
  comparison prefers it to the running version (:func:`aoe_prefers`);
  otherwise the app would download it at every start and keep its model.
- **No integrity.** The SDK checks an MD5 of the zip it was told by the same
  server: the bridge serves these apps with AoE's old guarantees, not ours.
  ``sign`` is accepted and ignored.

:class:`AoeBridge` is the server's entry point; :func:`aoe_decision` and the
``*_body`` functions are its pure parts, and :mod:`aoe_pack.serve.aoe_request`
reads the mapping and the request (its names are importable from here too).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aoe_pack._io.folder import Folder
from aoe_pack.client.check import bundle_signers
from aoe_pack.client.decide import Action, Decision, Device, decide
from aoe_pack.client.install import fetch_bundle
from aoe_pack.config.model import RUNTIMES
from aoe_pack.errors import AoePackError, UsageError
from aoe_pack.keys.load import DecryptionKey
from aoe_pack.repository.model import LOCAL, Manifest, Release
from aoe_pack.repository.root import Root
from aoe_pack.serve.aoe_request import (
    BAD_REQUEST,
    CANNOT_SERVE,
    DEFAULT_LIMITS,
    NOT_MAPPED,
    TOO_LARGE,
    AoeMapping,
    AoeModel,
    AoeRequest,
    BridgeLimits,
    Refusal,
    parse_aoe_model,
    parse_request,
)
from aoe_pack.serve.legacy_zip import ZIP_NAME, LegacyZip, build_legacy_zip
from aoe_pack.storage.store import Store

__all__ = [
    "AOE_APP_VERSION",
    "BAD_REQUEST",
    "CANNOT_SERVE",
    "DEFAULT_LIMITS",
    "NOT_MAPPED",
    "OK",
    "TOO_LARGE",
    "AoeBridge",
    "AoeDecision",
    "AoeMapping",
    "AoeModel",
    "AoeRequest",
    "BridgeLimits",
    "Refusal",
    "aoe_compare",
    "aoe_decision",
    "aoe_device",
    "aoe_prefers",
    "no_update_body",
    "parse_aoe_model",
    "parse_request",
    "refusal_body",
    "update_body",
]

log = logging.getLogger(__name__)

OK = 0
"""AoE's ``code`` for an answer, an update or none."""
AOE_APP_VERSION = "0.0.0"
"""The app version AoE devices are decided as: AoE never says which app runs."""
_DOWNLOADS = "aoe-bundle"


# --- the decision --------------------------------------------------------------------


def aoe_compare(v1: str, v2: str) -> int:
    """AoE's ``AoeModelOptionLoader.compareVersion`` (Kotlin), faithfully: <0, 0 or >0.

    ``v1.split("\\\\.")`` in Kotlin splits on the literal text ``\\.``, which no
    version holds, so each side is one piece. In the loop
    ``(a.length - b.length.also { diff = it }) == 0``, ``also`` binds to
    ``b.length``: strings of different lengths leave ``diff`` at ``b``'s
    length, so ``v1`` compares above ``v2``. Equal lengths compare as text.
    """
    if len(v1) != len(v2):
        return len(v2)
    return (v1 > v2) - (v1 < v2)


def aoe_prefers(new: str, running: str) -> bool:
    """Whether AoE's loader picks the model of version ``new`` over that of ``running``."""
    return aoe_compare(running, new) < 0


@dataclass(frozen=True)
class AoeDecision:
    """Our decision for an AoE device, and what of it AoE can act on."""

    decision: Decision
    offer: Release | None
    """The release to send, or None: no update."""
    reason: str


def aoe_device(request: AoeRequest) -> Device:
    """The device ``aoe-pack client check`` would decide for, given only the running version."""
    return Device(
        device_id=request.device_sn,
        app_version=AOE_APP_VERSION,
        runtimes=frozenset(RUNTIMES),
        channels=("stable",),
        local_version=str(request.version),
        installed_version=None,
    )


def aoe_decision(manifest: Manifest, request: AoeRequest, tag: str) -> AoeDecision:
    """:func:`~aoe_pack.client.decide.decide` for the AoE device, then what AoE can do of it.

    Pure: no I/O. A download is offered only if AoE would load it
    (:func:`aoe_prefers`); everything else is "no update", with the reason.
    """
    decision = decide(manifest, tag, aoe_device(request))
    running = request.model_version_code
    release = decision.release
    if decision.action is Action.DOWNLOAD and release is not None:
        if aoe_prefers(release.version, running):
            return AoeDecision(decision, release, decision.reason)
        if release.semver < request.version:
            why = f"AoE apps cannot go back to an older model ({decision.reason})"
        else:
            why = (
                f"{decision.reason}, but AoE's loader would keep {running} over "
                f"{release.version}: it compares versions as text, and only those of equal "
                "length"
            )
        return AoeDecision(decision, None, why)
    reason = decision.reason
    entry = manifest.models.get(tag)
    current = entry.find(str(request.version)) if entry is not None else None
    if current is not None and current.yanked is not None:
        reason = (
            f"{running} was yanked ({current.yanked}), but AoE apps cannot go back to the "
            f"app's model; {reason}"
        )
    elif entry is not None and entry.pin == LOCAL:
        reason += "; AoE apps keep a model they downloaded: the kill switch stops downloads"
    return AoeDecision(decision, None, reason)


def update_body(zipped: LegacyZip, url: str, reason: str) -> dict[str, Any]:
    """AoE's answer with a model to download."""
    return {
        "code": OK,
        "msg": reason,
        "data": {"modelVersionCode": zipped.version, "modelUrl": url, "modelMd5": zipped.md5},
    }


def no_update_body(reason: str) -> dict[str, Any]:
    """AoE's answer when there is nothing to download: code 0 and no data."""
    return {"code": OK, "msg": f"no update: {reason}", "data": None}


def refusal_body(refusal: Refusal) -> dict[str, Any]:
    """AoE's answer to a request the bridge refuses (a non-zero code)."""
    return {"code": refusal.code, "msg": refusal.message, "data": None}


# --- the bridge ----------------------------------------------------------------------


class AoeBridge:
    """Answers ``POST /upgradeModel`` and names the zips that ``modelUrl`` points to.

    Holds no state a second instance lacks: the zips are deterministic, so
    instances with their own ``zip_dir`` give the same ``modelMd5`` and URL.
    Thread-safe; a zip is built once (concurrent requests for it wait), kept
    in ``zip_dir`` and remembered, and a release that cannot be served is
    refused from memory for ``limits.retry_after`` seconds.
    """

    def __init__(
        self,
        mapping: AoeMapping,
        *,
        zip_dir: Path,
        public_base_url: str,
        decryption_key: DecryptionKey | None = None,
        limits: BridgeLimits = DEFAULT_LIMITS,
    ) -> None:
        """``public_base_url``: where the server serves ``zip_dir``'s zips, by name
        (``https://models.example.com/aoe/zips``: ``modelUrl`` is it, ``/`` and
        the name). ``decryption_key``: opens encrypted bundles; without it they
        are refused."""
        if not re.fullmatch(r"https?://[^\s?#]+", public_base_url):
            raise UsageError(
                f"the AoE zips' public URL {public_base_url!r} must be an http(s) URL "
                "without a query or fragment"
            )
        self.mapping = mapping
        self.zip_dir = Path(zip_dir)
        self.public_base_url = public_base_url.rstrip("/") + "/"
        self.decryption_key = decryption_key
        self.limits = limits
        self._lock = threading.Lock()
        self._zips: dict[str, LegacyZip] = {}
        self._failed: dict[str, tuple[float, AoePackError]] = {}
        self._building: dict[str, threading.Lock] = {}

    def answer(
        self, manifest: Manifest, store: Store, body: bytes, *, root: Root
    ) -> tuple[int, dict[str, Any]]:
        """The HTTP status and JSON body for an AoE request ``body``.

        ``manifest`` must be verified (and ``root`` be the root that verified
        it): the bridge trusts it as a device does. ``store`` serves its
        bundles. 200 with code 0 for an update or none; 400, 404 or 413 with
        that code for a refused request; 502 when the chosen release cannot
        be served (its bundle does not verify, or is encrypted and the bridge
        has no key).
        """
        return self.answer_with(lambda _tag: manifest, store, body, root=root)

    def answer_with(
        self,
        manifest_of: Callable[[str], Manifest],
        store: Store,
        body: bytes,
        *,
        root: Root,
    ) -> tuple[int, dict[str, Any]]:
        """:meth:`answer`, reading the verified manifest of the mapped tag: ``manifest_of(tag)``.

        In a split repository each tag's document is its own manifest (what a
        device of that tag reads, :attr:`~aoe_pack.serve.reading.Snapshot.manifests`),
        so the manifest is known only once the request names its model.
        """
        request = parse_request(body, self.limits)
        if isinstance(request, Refusal):
            return request.code, refusal_body(request)
        model = self.mapping.get(request.app_id, request.model_id)
        if model is None:
            refusal = Refusal(
                NOT_MAPPED,
                f"no model is mapped for appId {request.app_id} modelId {request.model_id}",
            )
            return NOT_MAPPED, refusal_body(refusal)
        manifest = manifest_of(model.tag)
        verdict = aoe_decision(manifest, request, model.tag)
        if verdict.offer is None:
            return 200, no_update_body(verdict.reason)
        try:
            zipped = self.legacy_zip(manifest, store, model=model, release=verdict.offer, root=root)
        except AoePackError as e:
            refusal = Refusal(
                CANNOT_SERVE, f"cannot serve {model.tag} {verdict.offer.version}: {e.message}"
            )
            return CANNOT_SERVE, refusal_body(refusal)
        return 200, update_body(zipped, self.public_base_url + zipped.name, verdict.reason)

    def zip_path(self, name: str) -> Path | None:
        """The file to serve for ``GET <public_base_url>/<name>``, or None (404).

        Only names of the form ``<sha256>.zip`` are looked up, so nothing else
        in (or outside) ``zip_dir`` is ever served.
        """
        if not ZIP_NAME.fullmatch(name):
            return None
        path = self.zip_dir / name
        return path if path.is_file() else None

    def legacy_zip(
        self, manifest: Manifest, store: Store, *, model: AoeModel, release: Release, root: Root
    ) -> LegacyZip:
        """The zip of ``release`` for ``model``: remembered, else built (once at a time)."""
        key = _zip_key(model, release)
        with self._lock:
            held = self._remembered(key)
            building = self._building.setdefault(key, threading.Lock())
        if isinstance(held, LegacyZip):
            return held
        with building:
            with self._lock:
                held = self._remembered(key)
            if isinstance(held, LegacyZip):
                return held
            if held is not None:
                raise copy.copy(held)
            try:
                zipped = self._build(manifest, store, model, release, root)
            except AoePackError as e:
                log.warning("AoE bridge: %s %s: %s", model.tag, release.version, e.message)
                self._remember(key, (time.monotonic(), e))
                raise
            self._remember(key, zipped)
            log.info(
                "AoE bridge: built %s for %s %s (%s:%s)",
                zipped.name,
                model.tag,
                release.version,
                model.app_id,
                model.model_id,
            )
            return zipped

    def _remembered(self, key: str) -> LegacyZip | AoePackError | None:
        """A zip still on disk, a failure still fresh, or None; under the lock."""
        zipped = self._zips.get(key)
        if zipped is not None and zipped.path.is_file():
            return zipped
        failed = self._failed.get(key)
        if failed is not None and time.monotonic() - failed[0] < self.limits.retry_after:
            return failed[1]
        return None

    def _remember(self, key: str, value: LegacyZip | tuple[float, AoePackError]) -> None:
        with self._lock:
            for cache in (self._zips, self._failed):
                if len(cache) >= self.limits.max_remembered:
                    cache.clear()
            self._building.pop(key, None)
            if isinstance(value, LegacyZip):
                self._zips[key] = value
                self._failed.pop(key, None)
            else:
                self._failed[key] = value

    def _build(
        self, manifest: Manifest, store: Store, model: AoeModel, release: Release, root: Root
    ) -> LegacyZip:
        """Download the bundle as a device does (size and SHA-256 as the manifest says),
        then verify it with the keys the manifest records and zip it."""
        with Folder(self.zip_dir) as top:
            top.sweep(_DOWNLOADS)  # what a server killed while downloading left behind
            fd, work = top.temp_folder(_DOWNLOADS)
            try:
                with (
                    Folder(top.path / work) as folder,
                    fetch_bundle(store, folder, release, "bundle.aoe") as bundle,
                ):
                    return build_legacy_zip(
                        bundle,
                        self.zip_dir,
                        target=model.target,
                        trusted_keys=bundle_signers(manifest, release, root),
                        decryption_key=self.decryption_key,
                        expect=(model.tag, release.version),
                    )
            finally:
                try:
                    top.remove_tree(work)
                finally:
                    top.release(fd, work)


def _zip_key(model: AoeModel, release: Release) -> str:
    """What a zip's bytes depend on: the bundle, and the ids its config carries."""
    parts = [
        "aoe-zip/v1",
        release.sha256,
        model.tag,
        release.version,
        str(model.model_id),
        model.model_dir,
    ]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()
