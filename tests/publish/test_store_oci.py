"""OciStore against a real registry (CNCF distribution, see tests/_server_oci.py)."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

from aoe_pack.errors import (
    DownloadError,
    DownloadTooLargeError,
    StoreConflictError,
    StoreError,
    UsageError,
)
from aoe_pack.storage import oci
from aoe_pack.storage.oci import OciStore
from aoe_pack.storage.store import MANIFEST, ROOT, bundle_name, delta_name, root_name

if TYPE_CHECKING:
    from _server_oci import OciRegistry

DOC = b'{"signed":{"version":1},"signatures":[]}'
CAP = 1 << 20


@pytest.fixture
def store(oci_repo_url: str) -> Iterator[OciStore]:
    s = OciStore.from_url(oci_repo_url)
    yield s
    s.close()


def _manifest_url(store: OciStore, tag: str) -> str:
    host, _, repo = store.url.removeprefix("oci://").partition("/")
    return f"http://{host}/v2/{repo}/manifests/{tag}"


def _tag_manifest(store: OciStore, tag: str) -> dict[str, Any]:
    """The OCI manifest behind ``tag``, fetched without OciStore."""
    url = _manifest_url(store, tag)
    response = requests.get(url, headers={"Accept": oci.OCI_MANIFEST}, timeout=10)
    with response:
        assert response.status_code == 200
        doc: dict[str, Any] = response.json()
    return doc


def _bundle_file(tmp_path: Path, size: int) -> tuple[Path, str]:
    path = tmp_path / "b.aoe"
    path.write_bytes(os.urandom(size))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


# --- documents ------------------------------------------------------------------------


def test_read_of_missing_document_is_none(store: OciStore) -> None:
    assert store.read(MANIFEST, max_bytes=CAP) is None


def test_replace_with_expected_none_creates(store: OciStore) -> None:
    token = store.replace(MANIFEST, DOC, expected=None)
    stored = store.read(MANIFEST, max_bytes=CAP)
    assert stored is not None
    assert stored.data == DOC
    assert stored.token == token
    assert token.startswith("sha256:")


def test_replace_with_expected_none_conflicts_when_document_exists(store: OciStore) -> None:
    store.replace(MANIFEST, DOC, expected=None)
    with pytest.raises(StoreConflictError, match=r"manifest\.json"):
        store.replace(MANIFEST, b"{}", expected=None)
    stored = store.read(MANIFEST, max_bytes=CAP)
    assert stored is not None
    assert stored.data == DOC


def test_replace_with_stale_token_conflicts_and_leaves_document_unchanged(
    store: OciStore,
) -> None:
    stale = store.replace(MANIFEST, b'{"v":1}', expected=None)
    current = store.replace(MANIFEST, b'{"v":2}', expected=stale)
    with pytest.raises(StoreConflictError):
        store.replace(MANIFEST, b'{"v":3}', expected=stale)
    stored = store.read(MANIFEST, max_bytes=CAP)
    assert stored is not None
    assert (stored.data, stored.token) == (b'{"v":2}', current)


def test_replace_detects_a_write_that_lands_during_its_upload(
    oci_repo_url: str, store: OciStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = store.replace(MANIFEST, b'{"v":1}', expected=None)
    rival = OciStore.from_url(oci_repo_url)
    real = store._ensure_blob
    rival_token: list[str] = []

    def upload_while_a_rival_publishes(digest: str, data: bytes) -> None:
        real(digest, data)
        if not rival_token:
            rival_token.append(rival.replace(MANIFEST, b'{"v":"rival"}', expected=token))

    monkeypatch.setattr(store, "_ensure_blob", upload_while_a_rival_publishes)
    try:
        with pytest.raises(StoreConflictError):
            store.replace(MANIFEST, b'{"v":2}', expected=token)
    finally:
        rival.close()
    stored = store.read(MANIFEST, max_bytes=CAP)
    assert stored is not None
    assert (stored.data, stored.token) == (b'{"v":"rival"}', rival_token[0])


def test_replace_with_current_token_updates(store: OciStore) -> None:
    first = store.replace(ROOT, b'{"v":1}', expected=None)
    second = store.replace(ROOT, b'{"v":2}', expected=first)
    stored = store.read(ROOT, max_bytes=CAP)
    assert stored is not None
    assert (stored.data, stored.token) == (b'{"v":2}', second)
    assert second != first


def test_same_bytes_give_the_same_digest(oci_repo_url: str, store: OciStore) -> None:
    first = store.replace(MANIFEST, DOC, expected=None)
    assert store.replace(MANIFEST, DOC, expected=first) == first
    twin = OciStore.from_url(oci_repo_url + "-twin")
    try:
        assert twin.replace(MANIFEST, DOC, expected=None) == first
    finally:
        twin.close()


@pytest.mark.parametrize(
    ("name", "tag", "layer_type"),
    [
        (MANIFEST, "manifest", oci.MANIFEST_LAYER),
        (ROOT, "root", oci.ROOT_LAYER),
        (root_name(3), "root-3", oci.ROOT_LAYER),
    ],
)
def test_document_is_a_tagged_artifact_with_only_a_title(
    store: OciStore, name: str, tag: str, layer_type: str
) -> None:
    store.replace(name, DOC, expected=None)
    doc = _tag_manifest(store, tag)
    assert doc == {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.aoe.repository.v1",
        "config": {
            "mediaType": "application/vnd.aoe.repository.config.v1+json",
            "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest(),
            "size": 2,
        },
        "layers": [
            {
                "mediaType": layer_type,
                "digest": "sha256:" + hashlib.sha256(DOC).hexdigest(),
                "size": len(DOC),
                "annotations": {"org.opencontainers.image.title": name},
            }
        ],
    }


def test_read_past_max_bytes_is_refused(store: OciStore) -> None:
    store.replace(MANIFEST, DOC, expected=None)
    with pytest.raises(DownloadTooLargeError, match=r"manifest\.json"):
        store.read(MANIFEST, max_bytes=len(DOC) - 1)


def test_document_with_corrupted_bytes_is_refused(
    oci_registry: OciRegistry, store: OciStore
) -> None:
    data = json.dumps({"nonce": os.urandom(16).hex()}).encode()  # no other test shares the blob
    store.replace(MANIFEST, data, expected=None)
    blob = oci_registry.blob_path("sha256:" + hashlib.sha256(data).hexdigest())
    blob.write_bytes(b"X" * len(data))
    with pytest.raises(DownloadError, match="not sha256:"):
        store.read(MANIFEST, max_bytes=CAP)


def test_tag_written_by_another_tool_is_refused(store: OciStore) -> None:
    store.replace(MANIFEST, DOC, expected=None)
    doc = _tag_manifest(store, "manifest")
    doc["artifactType"] = "application/vnd.example.other"
    response = requests.put(
        _manifest_url(store, "manifest"),
        data=json.dumps(doc).encode(),
        headers={"Content-Type": oci.OCI_MANIFEST},
        timeout=10,
    )
    with response:
        assert response.status_code == 201
    with pytest.raises(StoreError, match=r"not an aoe-pack manifest\.json"):
        store.read(MANIFEST, max_bytes=CAP)


@pytest.mark.parametrize("name", ["manifest", "roots/0.root.json", "roots/x.root.json", "../x"])
def test_unknown_names_are_refused(store: OciStore, name: str) -> None:
    with pytest.raises(StoreError, match="has no place"):
        store.read(name, max_bytes=CAP)


def test_replace_of_a_bundle_is_refused(store: OciStore) -> None:
    with pytest.raises(StoreError, match="immutable"):
        store.replace(bundle_name("0" * 64), b"x", expected=None)


# --- bundles --------------------------------------------------------------------------


def test_bundle_round_trip_and_second_put_is_a_no_op(
    store: OciStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, sha = _bundle_file(tmp_path, 3 * 1024 * 1024 + 17)
    size = source.stat().st_size
    name = bundle_name(sha)
    assert store.has_blob(name) is None
    store.put_blob(name, source, sha256=sha, size=size)
    assert store.has_blob(name) == size
    dest = tmp_path / "fetched.aoe"
    store.fetch_blob(name, dest, max_bytes=size)
    assert dest.read_bytes() == source.read_bytes()

    methods: list[str] = []
    real = store._session.request

    def spy(method: str, url: str, **kwargs: Any) -> requests.Response:
        methods.append(method)
        return real(method, url, **kwargs)

    monkeypatch.setattr(store._session, "request", spy)
    store.put_blob(name, source, sha256=sha, size=size)
    assert set(methods) == {"HEAD"}


def test_bundle_is_a_tagged_artifact(store: OciStore, tmp_path: Path) -> None:
    source, sha = _bundle_file(tmp_path, 1000)
    store.put_blob(bundle_name(sha), source, sha256=sha, size=1000)
    doc = _tag_manifest(store, f"bundle-{sha}")
    assert doc["artifactType"] == oci.ARTIFACT_TYPE
    assert doc["config"]["mediaType"] == oci.CONFIG_TYPE
    assert doc["layers"] == [
        {
            "mediaType": "application/vnd.aoe.bundle.v1+zip",
            "digest": f"sha256:{sha}",
            "size": 1000,
            "annotations": {"org.opencontainers.image.title": f"{sha}.aoe"},
        }
    ]


def test_delta_is_a_tagged_artifact_of_its_own_type(store: OciStore, tmp_path: Path) -> None:
    source, sha = _bundle_file(tmp_path, 1000)
    store.put_blob(delta_name(sha), source, sha256=sha, size=1000)
    assert store.has_blob(delta_name(sha)) == 1000
    assert store.has_blob(bundle_name(sha)) is None  # a delta is never served as a bundle
    assert _tag_manifest(store, f"delta-{sha}")["layers"][0]["mediaType"] == (
        "application/vnd.aoe.bundle.delta.v1+zip"
    )
    store.fetch_blob(delta_name(sha), tmp_path / "d.aoed", max_bytes=1000)
    assert (tmp_path / "d.aoed").read_bytes() == source.read_bytes()


def test_untagged_blob_is_not_there_and_put_blob_tags_it(store: OciStore, tmp_path: Path) -> None:
    source, sha = _bundle_file(tmp_path, 1000)
    store._upload(f"sha256:{sha}", source.read_bytes())  # an interrupted put_blob
    assert store.has_blob(bundle_name(sha)) is None
    store.put_blob(bundle_name(sha), source, sha256=sha, size=1000)
    assert store.has_blob(bundle_name(sha)) == 1000


@pytest.mark.parametrize("unknown", ["config", "bundle"])
def test_put_blob_uploads_again_a_blob_the_registry_calls_unknown_on_tagging(
    store: OciStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unknown: str
) -> None:
    """Two publishers uploading one blob (the empty config every artifact shares):
    distribution can answer HEAD 200 and then BLOB_UNKNOWN to the manifest PUT."""
    source, sha = _bundle_file(tmp_path, 1000)
    named = oci._sha256(oci._CONFIG) if unknown == "config" else f"sha256:{sha}"
    put, uploads = store._put_manifest, list[str]()
    calls = iter([True])

    def flaky_put(target: Any, body: bytes) -> str:
        if next(calls, False):
            raise StoreError(
                f'tagging: {{"errors":[{{"code":"BLOB_UNKNOWN","detail":"{named}"}}]}}'
            )
        return put(target, body)

    upload = store._upload

    def recorded_upload(digest: str, data: Any) -> None:
        uploads.append(digest)
        upload(digest, data)

    monkeypatch.setattr(store, "_put_manifest", flaky_put)
    monkeypatch.setattr(store, "_upload", recorded_upload)

    store.put_blob(bundle_name(sha), source, sha256=sha, size=1000)

    assert store.has_blob(bundle_name(sha)) == 1000
    config = oci._sha256(oci._CONFIG)
    again = [config] if unknown == "config" else [config, f"sha256:{sha}"]
    assert uploads[-len(again) :] == again


def test_put_blob_gives_up_on_a_blob_unknown_three_times(
    store: OciStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, sha = _bundle_file(tmp_path, 1000)
    message = 'tagging: {"errors":[{"code":"BLOB_UNKNOWN","detail":"sha256:0"}]}'

    def unknown(target: Any, body: bytes) -> str:
        raise StoreError(message)

    monkeypatch.setattr(store, "_put_manifest", unknown)
    with pytest.raises(StoreError) as e:
        store.put_blob(bundle_name(sha), source, sha256=sha, size=1000)
    assert e.value.message == message


def test_fetch_of_missing_bundle_fails(store: OciStore, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="missing"):
        store.fetch_blob(bundle_name("1" * 64), tmp_path / "x", max_bytes=CAP)


def test_fetch_past_max_bytes_is_refused(store: OciStore, tmp_path: Path) -> None:
    source, sha = _bundle_file(tmp_path, 5000)
    store.put_blob(bundle_name(sha), source, sha256=sha, size=5000)
    with pytest.raises(DownloadTooLargeError):
        store.fetch_blob(bundle_name(sha), tmp_path / "x", max_bytes=4999)


def test_fetch_of_corrupted_bundle_fails(
    oci_registry: OciRegistry, store: OciStore, tmp_path: Path
) -> None:
    source, sha = _bundle_file(tmp_path, 5000)
    store.put_blob(bundle_name(sha), source, sha256=sha, size=5000)
    oci_registry.blob_path(f"sha256:{sha}").write_bytes(os.urandom(5000))
    with pytest.raises(DownloadError, match=f"not sha256:{sha}"):
        store.fetch_blob(bundle_name(sha), tmp_path / "x", max_bytes=CAP)


def test_put_blob_with_name_of_another_digest_is_refused(store: OciStore, tmp_path: Path) -> None:
    source, sha = _bundle_file(tmp_path, 10)
    with pytest.raises(StoreError, match="not the name of a bundle"):
        store.put_blob(bundle_name("2" * 64), source, sha256=sha, size=10)


# --- URLs and connections -------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "plain"),
    [
        ("oci://127.0.0.1:9/r", True),
        ("oci://127.8.9.10/r", True),
        ("oci://localhost:9/a/b", True),
        ("oci://[::1]:9/r", True),
        ("oci://ghcr.io/acme/models", False),
        ("oci://registry.example:8443/a.b/c_d/e-f", False),
        ("oci://10.0.0.1/r", False),
    ],
)
def test_loopback_hosts_default_to_plain_http(url: str, plain: bool) -> None:
    store = OciStore.from_url(url)
    try:
        assert (store.plain_http, store.url) == (plain, url)
    finally:
        store.close()


def test_localhost_url_reaches_the_registry_over_plain_http(oci_registry: OciRegistry) -> None:
    port = oci_registry.host.rpartition(":")[2]
    store = OciStore.from_url(f"oci://localhost:{port}/aoe-test/by-name")
    try:
        assert store.read(MANIFEST, max_bytes=CAP) is None
    finally:
        store.close()


def test_plain_http_can_be_forced_either_way() -> None:
    for url, plain in (("oci://ghcr.io/r", True), ("oci://localhost/r", False)):
        store = OciStore.from_url(url, plain_http=plain)
        assert store.plain_http is plain
        store.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://ghcr.io/acme/models",
        "ghcr.io/acme/models",
        "oci://",
        "oci://ghcr.io",
        "oci://ghcr.io/",
        "oci://ghcr.io/acme/models/",
        "oci://ghcr.io//models",
        "oci://ghcr.io/Acme/models",
        "oci://ghcr.io/acme/models:latest",
        "oci://ghcr.io/acme/models@sha256:" + "0" * 64,
        "oci://user:pw@ghcr.io/acme/models",
        "oci://ghcr.io:99999/acme/models",
        "oci://ghcr.io:port/acme/models",
        "oci://ghcr.io/acme/models?tag=x",
        "oci://ghcr.io/acme/models#x",
        "oci://bad_host/acme/models",
        "oci://[::1/acme/models",
    ],
)
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(UsageError, match=r"oci://HOST\[:PORT\]/PATH/TO/REPO"):
        OciStore.from_url(url)


def test_unreachable_registry_is_a_store_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    store = OciStore.from_url(f"oci://127.0.0.1:{port}/r")
    try:
        with pytest.raises(StoreError, match=f"127.0.0.1:{port}"):
            store.read(MANIFEST, max_bytes=CAP)
    finally:
        store.close()


def test_missing_publish_extra_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "oras.provider", None)
    with pytest.raises(StoreError, match="publish extra") as info:
        OciStore.from_url("oci://ghcr.io/acme/models")
    assert info.value.hint == "pip install 'aoe-pack[publish]'"
