"""The repository scenarios of the attack corpus: what a device sees, step by step.

Part of ``make_attacks.py`` (README.md). Valid repositories are made with aoe-pack's
repository model (``Manifest``, ``Index``, tag documents, roots, signed envelopes) and
then broken; every document is signed by TEST-ONLY keys and, when valid, expires in 2099.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from _bundle_cases import SIGNERS, signer

from aoe_pack._jcs import canonical_json
from aoe_pack.client.decide import bucket
from aoe_pack.repository import envelope
from aoe_pack.repository.model import Manifest, ModelReleases, Release
from aoe_pack.repository.root import Root, new_root
from aoe_pack.repository.split import Index, sign_index, sign_tag_document, tag_document
from aoe_pack.versions import Version

TAG, OTHER_TAG = "corpus.model", "other.model"
REPOSITORY_ID, OTHER_REPOSITORY_ID = "c0c0" * 8, "d0d0" * 8
FAR = dt.datetime(2099, 1, 1, tzinfo=dt.UTC)
PAST = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
ALL_KEYS = (*SIGNERS, "outsider")


def rel(version: str, **kw: Any) -> Release:
    """A release of ``TAG`` with a stable fake bundle digest and salt (decisions only)."""
    sha = hashlib.sha256(f"corpus bundle {version}".encode()).hexdigest()
    runtimes = tuple(kw.pop("runtimes", ("tflite",)))
    return Release(
        version=version,
        version_code=Version.parse(version).version_code(),
        url=f"bundles/{sha}.aoe",
        size=4096 + len(version),
        sha256=sha,
        runtimes=runtimes,
        artifacts=tuple({"runtime": r} for r in runtimes),
        salt=hashlib.sha256(f"corpus salt {version}".encode()).hexdigest()[:32],
        **kw,
    )


RELEASES = (rel("1.1.0"), rel("1.2.0"))


def manifest(
    version: int,
    releases: Sequence[Release] = RELEASES,
    *,
    expires: dt.datetime = FAR,
    pin: str | None = None,
) -> Manifest:
    models = {
        TAG: ModelReleases(releases=tuple(releases), pin=pin),
        OTHER_TAG: ModelReleases(releases=(rel("0.1.0"),)),
    }
    return Manifest(version=version, expires=expires, models=models)


def sign_doc(payload_type: str, doc: Any, keys: Sequence[str]) -> bytes:
    return bytes(envelope.sign(payload_type, doc, [signer(k) for k in keys]).to_bytes())


def make_root(
    version: int,
    keys: Sequence[str] = SIGNERS,
    threshold: int = 2,
    repository_id: str = REPOSITORY_ID,
) -> Root:
    return new_root(version, [signer(k).public for k in keys], threshold, repository_id)


def root_doc(r: Root, signed_by: Sequence[str] = ALL_KEYS) -> bytes:
    return sign_doc(envelope.ROOT_TYPE, r.to_dict(), signed_by)


@dataclass(frozen=True)
class Repo:
    """The files of one repository folder, by name."""

    files: Mapping[str, bytes] = field(default_factory=dict)


def published(
    m: Manifest,
    *,
    keys: Sequence[str] = SIGNERS,
    indexed: bool = True,
    roots: Mapping[int, bytes] | None = None,
) -> Repo:
    """A repository holding ``m`` signed by ``keys``: manifest.json, and with ``indexed``
    its index and one tag document per tag at ``m``'s version; plus ``roots``."""
    sign_with = [signer(k) for k in keys]
    signed = envelope.sign(envelope.MANIFEST_TYPE, m.to_dict(), sign_with)
    files = {"manifest.json": bytes(signed.to_bytes())}
    if indexed:
        digest = hashlib.sha256(signed.payload).hexdigest()
        tags = dict.fromkeys(m.models, m.version)
        index = Index(version=m.version, expires=m.expires, manifest_sha256=digest, tags=tags)
        files["index.json"] = sign_index(index, sign_with)
        for t in m.models:
            doc = tag_document(m, t, m.version)
            files[f"tags/{t}/{m.version}.json"] = sign_tag_document(doc, sign_with)
    for n, data in (roots or {}).items():
        files[f"roots/{n}.root.json"] = data
    return Repo(files)


def device(
    *,
    device_id: str = "device-1",
    app: str = "3.0.0",
    local: str = "1.0.0",
    installed: str | None = None,
    channels: Sequence[str] = ("stable",),
    runtimes: Sequence[str] = ("tflite",),
) -> dict[str, Any]:
    return {
        "deviceId": device_id,
        "appVersion": app,
        "localVersion": local,
        "installedVersion": installed,
        "channels": list(channels),
        "runtimes": list(runtimes),
    }


@dataclass(frozen=True)
class Step:
    repo: Repo
    expect: Mapping[str, Any]
    device: Mapping[str, Any] = field(default_factory=device)
    trusted_root: bytes | None = None
    """Another shipped root for this step (an app update), else the scenario's."""


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    steps: tuple[Step, ...]
    trusted_root: bytes
    min_manifest_version: int | None = None


def decision(action: str, version: str | None = None, *, manifest: int, root: int = 1) -> dict:
    """An expected decision and state; the release fields come from ``rel(version)``. The
    generator adds the reference's reason, running and skipped fields."""
    r = rel(version) if version else None
    return {
        "decision": {
            "action": action,
            "version": version,
            "url": r.url if r else None,
            "sha256": r.sha256 if r else None,
            "size": r.size if r else None,
        },
        "state": {"rootVersion": root, "manifestVersion": manifest},
    }


def error(code: str) -> dict[str, str]:
    return {"error": code}


def device_in_rollout(r: Release, *, inside: bool) -> str:
    """The first ``device-N`` whose bucket is inside (or outside) ``r``'s rollout."""
    return next(
        d
        for d in (f"device-{i}" for i in range(10_000))
        if (bucket(r.salt, TAG, d) < r.rollout_bp) == inside
    )


def not_canonical(doc: bytes) -> bytes:
    return json.dumps(json.loads(doc), indent=1).encode()


def retyped(doc: bytes, payload_type: str) -> bytes:
    return canonical_json(json.loads(doc) | {"payloadType": payload_type})


def scenarios() -> list[Scenario]:
    out: list[Scenario] = []
    shipped = root_doc(make_root(1), SIGNERS)

    def add(name: str, description: str, *steps: Step, **kw: Any) -> None:
        root = kw.pop("trusted_root", shipped)
        out.append(Scenario(name, description, tuple(steps), root, **kw))

    decision_scenarios(add)
    rollback_scenarios(add)
    document_scenarios(add)
    root_scenarios(add)
    return out


M5 = manifest(5)
M4 = manifest(4, RELEASES[:1])


def decision_scenarios(add: Any) -> None:
    idx5, plain5 = published(M5), published(M5, indexed=False)
    got_120 = decision("download", "1.2.0", manifest=5)
    add("download-newest", "manifest.json only: the newest eligible release", Step(plain5, got_120))
    add("download-through-index", "index.json and the tag document", Step(idx5, got_120))
    add(
        "keep-up-to-date",
        "the newest release already runs",
        Step(idx5, decision("keep", manifest=5), device(installed="1.2.0")),
    )
    add(
        "keep-local-newer",
        "the app's own model is newer than every release",
        Step(idx5, decision("keep", manifest=5), device(local="2.0.0")),
    )
    add(
        "revert-to-local-pin",
        "pin local (kill switch) while a download runs",
        Step(
            published(manifest(5, pin="local")),
            decision("revert-to-local", manifest=5),
            device(installed="1.1.0"),
        ),
    )
    add(
        "pin-to-older-version",
        "a pin to 1.1.0 takes a device back from 1.2.0",
        Step(
            published(manifest(5, pin="1.1.0")),
            decision("download", "1.1.0", manifest=5),
            device(installed="1.2.0"),
        ),
    )
    yanked = published(manifest(5, (*RELEASES, rel("1.3.0", yanked="bad accuracy"))))
    add("yanked-skipped", "the newest release is yanked: the one before it", Step(yanked, got_120))
    yanked_running = published(manifest(5, (rel("1.1.0"), rel("1.2.0", yanked="crash"))))
    add(
        "yanked-running-replaced",
        "the running release is yanked: the best one above the local model replaces it",
        Step(yanked_running, decision("download", "1.1.0", manifest=5), device(installed="1.2.0")),
    )
    add(
        "yanked-running-reverts",
        "the running release is yanked and nothing replaces it",
        Step(
            yanked_running,
            decision("revert-to-local", manifest=5),
            device(local="1.1.0", installed="1.2.0"),
        ),
    )
    partial = rel("1.3.0", rollout_bp=1000)
    rolled = published(manifest(5, (*RELEASES, partial)))
    add(
        "rollout-out-of-bucket",
        "1.3.0 at 10%: a device outside gets 1.2.0",
        Step(rolled, got_120, device(device_id=device_in_rollout(partial, inside=False))),
    )
    add(
        "rollout-in-bucket",
        "1.3.0 at 10%: a device inside gets it",
        Step(
            rolled,
            decision("download", "1.3.0", manifest=5),
            device(device_id=device_in_rollout(partial, inside=True)),
        ),
    )
    critical = rel("1.3.0", rollout_bp=0, critical=True)
    add(
        "critical-ignores-rollout",
        "a critical release at 0% reaches every device",
        Step(
            published(manifest(5, (*RELEASES, critical))), decision("download", "1.3.0", manifest=5)
        ),
    )
    beta = published(manifest(5, (*RELEASES, rel("1.3.0-beta.1", channel="beta"))))
    add(
        "channel-beta",
        "a beta device gets the beta release",
        Step(
            beta,
            decision("download", "1.3.0-beta.1", manifest=5),
            device(channels=("stable", "beta")),
        ),
    )
    add("channel-stable-skips-beta", "a stable device skips it", Step(beta, got_120))
    app_range = published(manifest(5, (*RELEASES, rel("1.3.0", min_app_version="4.0.0"))))
    add("app-version-too-old", "1.3.0 needs app 4.0.0", Step(app_range, got_120))
    add(
        "app-version-in-range",
        "an app at 4.1.0 gets 1.3.0",
        Step(app_range, decision("download", "1.3.0", manifest=5), device(app="4.1.0")),
    )
    onnx = published(manifest(5, (*RELEASES, rel("1.3.0", runtimes=("onnx",)))))
    add("runtime-missing", "1.3.0 is onnx only; the device runs tflite", Step(onnx, got_120))
    add(
        "equal-version-same-manifest",
        "the same manifest again is accepted",
        Step(plain5, got_120),
        Step(plain5, decision("keep", manifest=5), device(installed="1.2.0")),
    )
    add(
        "newer-manifest-accepted",
        "version 5, then 6 with a new release",
        Step(idx5, got_120),
        Step(
            published(manifest(6, (*RELEASES, rel("1.3.0")))),
            decision("download", "1.3.0", manifest=6),
            device(installed="1.2.0"),
        ),
    )
    add(
        "index-then-manifest-path",
        "index 5, then a repository without an index at 5",
        Step(idx5, got_120),
        Step(plain5, got_120),
    )
    add("min-manifest-version-met", "the app shipped with manifest version 5",
        Step(idx5, got_120), min_manifest_version=5)  # fmt: skip


def rollback_scenarios(add: Any) -> None:
    idx5, plain5 = published(M5), published(M5, indexed=False)
    got_120 = decision("download", "1.2.0", manifest=5)
    rollback = error("rollback")
    other5 = manifest(5, (*RELEASES, rel("1.2.1")))
    add(
        "rollback",
        "manifest.json 5, then 4",
        Step(plain5, got_120),
        Step(published(M4, indexed=False), rollback),
    )
    add(
        "rollback-index", "index.json 5, then 4", Step(idx5, got_120), Step(published(M4), rollback)
    )
    add(
        "rollback-index-to-manifest",
        "index.json 5, then a mirror without index at 4",
        Step(idx5, got_120),
        Step(published(M4, indexed=False), rollback),
    )
    add(
        "mirror-behind-same-identity",
        "a mirror of the same repository frozen at version 3: "
        "the state is the repository's, whatever folder serves it",
        Step(idx5, got_120),
        Step(published(manifest(3)), rollback),
    )
    add(
        "equal-version-replay",
        "another manifest at version 5 (it could undo a yank)",
        Step(plain5, got_120),
        Step(published(other5, indexed=False), rollback),
    )
    add(
        "equal-version-replay-index",
        "another index at version 5",
        Step(idx5, got_120),
        Step(published(other5), rollback),
    )
    add(
        "first-contact-floor",
        "the app shipped with manifest version 5; the repository serves 4",
        Step(published(M4), rollback),
        min_manifest_version=5,
    )
    add(
        "first-contact-floor-manifest",
        "as first-contact-floor, through manifest.json",
        Step(published(M4, indexed=False), rollback),
        min_manifest_version=5,
    )
    add(
        "expired",
        "manifest.json expired in 2020",
        Step(published(manifest(5, expires=PAST), indexed=False), error("expired")),
    )
    add(
        "expired-index",
        "index.json expired in 2020",
        Step(published(manifest(5, expires=PAST)), error("expired")),
    )
    add(
        "failed-step-remembers-nothing",
        "an expired version 9, then version 5 is accepted",
        Step(published(manifest(9, expires=PAST)), error("expired")),
        Step(idx5, got_120),
    )


def document_scenarios(add: Any) -> None:
    idx5, plain5 = published(M5), published(M5, indexed=False)
    untrusted = error("untrusted-metadata")
    bad = error("repository-format")
    signed_manifest = plain5.files["manifest.json"]
    pretty = json.dumps(M5.to_dict(), indent=1).encode()
    pretty_payload = envelope.sign_canonical(
        envelope.MANIFEST_TYPE, pretty, [signer(k) for k in SIGNERS]
    )
    no_expiry = {k: v for k, v in M5.to_dict().items() if k != "expires"}
    by_outsider = published(M5, keys=("outsider",))
    doc5, other5 = f"tags/{TAG}/5.json", f"tags/{OTHER_TAG}/5.json"
    add(
        "manifest-missing",
        "neither index.json nor manifest.json",
        Step(Repo(), error("repository")),
    )
    add(
        "manifest-untrusted-signer",
        "manifest.json signed by a key the root lacks",
        Step(published(M5, keys=("outsider",), indexed=False), untrusted),
    )
    add(
        "manifest-below-threshold",
        "manifest.json signed by one of two required keys",
        Step(published(M5, keys=("ed25519",), indexed=False), untrusted),
    )
    add(
        "manifest-wrong-payload-type",
        "manifest.json with the index's payloadType",
        Step(Repo({"manifest.json": retyped(signed_manifest, envelope.INDEX_TYPE)}), bad),
    )
    add(
        "manifest-envelope-not-canonical",
        "manifest.json pretty-printed",
        Step(Repo({"manifest.json": not_canonical(signed_manifest)}), bad),
    )
    add(
        "manifest-payload-not-canonical",
        "a signed, pretty-printed payload",
        Step(Repo({"manifest.json": bytes(pretty_payload.to_bytes())}), bad),
    )
    add(
        "manifest-without-expires",
        "a signed manifest without expires",
        Step(Repo({"manifest.json": sign_doc(envelope.MANIFEST_TYPE, no_expiry, SIGNERS)}), bad),
    )
    add(
        "index-untrusted-signer",
        "index.json signed by a key the root lacks",
        Step(Repo({**idx5.files, "index.json": by_outsider.files["index.json"]}), untrusted),
    )
    add(
        "tag-document-untrusted-signer",
        "the tag document signed by a key the root lacks",
        Step(Repo({**idx5.files, doc5: by_outsider.files[doc5]}), untrusted),
    )
    add(
        "mix-and-match-other-tag",
        "the index's tag document name serves another tag's",
        Step(Repo({**idx5.files, doc5: idx5.files[other5]}), error("mix-and-match")),
    )
    add(
        "mix-and-match-other-version",
        "tags/corpus.model/5.json holds that tag at version 4",
        Step(
            Repo({**idx5.files, doc5: published(manifest(4)).files[f"tags/{TAG}/4.json"]}),
            error("mix-and-match"),
        ),
    )
    add(
        "index-names-missing-document",
        "index.json names a tag document that is not there",
        Step(Repo({k: v for k, v in idx5.files.items() if k != doc5}), error("repository")),
    )


def root_scenarios(add: Any) -> None:
    idx5 = published(M5)
    got_120 = decision("download", "1.2.0", manifest=5)
    rotation = error("root-rotation")
    new_keys = ("ed25519", "outsider")
    r2 = make_root(2, new_keys, 2)  # p256 replaced by the outsider key
    rotated = root_doc(r2)
    r3 = make_root(3, ("outsider",), 1)
    kept = root_doc(make_root(2, ALL_KEYS, 2))  # a key added: the floor holds
    revoked = root_doc(make_root(2, ("outsider",), 1))  # both old keys gone: floors drop
    by_new = lambda roots: published(M5, keys=new_keys, roots=roots)  # noqa: E731
    add(
        "rotation-valid",
        "root 2 (p256 replaced) signed by both key sets; manifest by the new",
        Step(by_new({2: rotated}), decision("download", "1.2.0", root=2, manifest=5)),
    )
    add(
        "rotation-chain-of-two",
        "roots 2 and 3; the manifest by root 3's one key",
        Step(
            published(M5, keys=("outsider",), roots={2: rotated, 3: root_doc(r3, new_keys)}),
            decision("download", "1.2.0", root=3, manifest=5),
        ),
    )
    add(
        "rotation-gap",
        "roots/2.root.json holds root version 3",
        Step(published(M5, roots={2: root_doc(r3)}), rotation),
    )
    add(
        "rotation-missing-link",
        "only roots/3.root.json: the manifest signed by its key is untrusted under root 1",
        Step(
            published(M5, keys=("outsider",), roots={3: root_doc(r3)}), error("untrusted-metadata")
        ),
    )
    add(
        "rotation-below-old-threshold",
        "root 2 signed by one of root 1's two keys",
        Step(by_new({2: root_doc(r2, new_keys)}), rotation),
    )
    add(
        "rotation-below-own-threshold",
        "root 2 not signed by its own new key",
        Step(by_new({2: root_doc(r2, SIGNERS)}), rotation),
    )
    add(
        "rotation-untrusted-signer",
        "root 2 signed only by keys root 1 does not list",
        Step(
            published(
                M5,
                keys=("outsider",),
                roots={2: root_doc(make_root(2, ("outsider",), 1), ("outsider",))},
            ),
            rotation,
        ),
    )
    add(
        "rotation-wrong-payload-type",
        "root 2's envelope says it is a manifest",
        Step(by_new({2: retyped(rotated, envelope.MANIFEST_TYPE)}), error("repository-format")),
    )
    add(
        "rotation-envelope-not-canonical",
        "root 2 pretty-printed",
        Step(by_new({2: not_canonical(rotated)}), error("repository-format")),
    )
    add(
        "rotation-other-repository-id",
        "root 2, validly signed, names another repositoryId",
        Step(by_new({2: root_doc(replace(r2, repository_id=OTHER_REPOSITORY_ID))}), rotation),
    )
    add(
        "rotation-keeps-floor",
        "a rotation that keeps a threshold of the old keys keeps the "
        "floor: version 4 is still a rollback",
        Step(idx5, got_120),
        Step(published(M4, roots={2: kept}), error("rollback")),
    )
    add(
        "fast-forward-recovery",
        "a stolen-key manifest at version 900 is accepted, then the "
        "owners rotate both keys away and restart at version 6",
        Step(published(manifest(900)), decision("download", "1.2.0", manifest=900)),
        Step(
            published(manifest(6), keys=("outsider",), roots={2: revoked}),
            decision("download", "1.2.0", root=2, manifest=6),
        ),
    )
    add(
        "first-contact-floor-dropped-by-rotation",
        "the shipped minimum 50 holds under the "
        "shipped root's keys only: after a revoking rotation version 6 is accepted",
        Step(
            published(manifest(6), keys=("outsider",), roots={2: revoked}),
            decision("download", "1.2.0", root=2, manifest=6),
        ),
        min_manifest_version=50,
    )
    other_root = root_doc(make_root(1, repository_id=OTHER_REPOSITORY_ID), SIGNERS)
    add(
        "app-ships-another-root",
        "the app is updated with another root at the remembered "
        "version (another repositoryId): the state is not for it",
        Step(idx5, got_120),
        Step(idx5, error("untrusted-metadata"), trusted_root=other_root),
    )
    add(
        "shipped-root-not-self-signed",
        "the shipped root lacks a threshold of its own keys",
        Step(idx5, error("untrusted-metadata")),
        trusted_root=root_doc(make_root(1), ("ed25519",)),
    )
    add("app-update-ships-newer-root", "an app update ships root 2: the floor stays",
        Step(idx5, got_120), Step(published(M4), error("rollback"), trusted_root=kept))  # fmt: skip
