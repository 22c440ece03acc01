"""A repository in an OCI registry: ``oci://HOST[:PORT]/PATH/TO/REPO``.

Each repository name is a tag of the OCI repository ``PATH/TO/REPO``:

- ``manifest.json`` -> tag ``manifest``, layer mediaType
  ``application/vnd.aoe.repository.manifest.v1+json``;
- ``root.json`` -> tag ``root``, and ``roots/N.root.json`` -> tag ``root-N``,
  layer mediaType ``application/vnd.aoe.repository.root.v1+json``;
- ``bundles/<hex>.aoe`` -> tag ``bundle-<hex>``, layer mediaType
  ``application/vnd.aoe.bundle.v1+zip``;
- ``deltas/<hex>.aoed`` -> tag ``delta-<hex>``, layer mediaType
  ``application/vnd.aoe.bundle.delta.v1+zip`` (docs/format.md §16).

Each tag points at an OCI image manifest (``schemaVersion`` 2, ``mediaType``
``application/vnd.oci.image.manifest.v1+json``) with ``artifactType``
``application/vnd.aoe.repository.v1``, a config descriptor of mediaType
``application/vnd.aoe.repository.config.v1+json`` whose blob is the two bytes
``{}``, and exactly one layer, annotated only with
``org.opencontainers.image.title``: the document's name (``manifest.json``,
``root.json``, ``roots/N.root.json``) or ``<hex>.aoe`` for a bundle.

The layer is the file's exact bytes, so a bundle's blob digest is
``sha256:<hex>``, its own SHA-256; the tag exists so that registry garbage
collection keeps the blob. A device reads ``manifest.json`` with
``GET /v2/REPO/manifests/manifest`` (``Accept`` the OCI manifest type), then
``GET /v2/REPO/blobs/<layer digest>``, and must check the blob's SHA-256.
A bundle counts as published (``has_blob``, and ``put_blob``'s no-op) only when
its blob and its exact tag manifest are both there: an interrupted upload can
leave an untagged blob behind.

OCI manifests are serialized as compact JSON with sorted keys and hold no
timestamps, so the same bytes always give the same manifest digest. That digest
is the :class:`~aoe_pack.storage.store.Stored` token.

Registries (CNCF distribution 2.8 among them) offer no conditional manifest
PUT, so :meth:`OciStore.replace` compares the tag's digest with the expected
one just before uploading and again just before the PUT. A small window between
the last check and the PUT remains; the publish workflow re-reads the document
after writing and repairs a lost update.

oras-py provides the HTTP session and authentication (credentials from the
Docker config, ``docker login``). Requests are sent here rather than through
its ``do_request``: that one has no timeout, retries with sleeps of up to 83 s,
and its monolithic upload reads the whole file into memory.
"""

from __future__ import annotations

import hashlib
import importlib
import ipaddress
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlencode, urljoin, urlsplit

from aoe_pack._io import atomic_output
from aoe_pack.errors import (
    DownloadError,
    DownloadTooLargeError,
    StoreConflictError,
    StoreError,
    UsageError,
)
from aoe_pack.storage.store import INDEX, MANIFEST, ROOT, Stored

if TYPE_CHECKING:
    import requests

_TRANSIENT = frozenset({429, 500, 502, 503, 504})
_TRANSIENT_BACKOFF = (0.05, 0.1, 0.2, 0.4, None)
"""Waits before each retry of a transient answer; None: give up and report it."""
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ARTIFACT_TYPE = "application/vnd.aoe.repository.v1"
CONFIG_TYPE = "application/vnd.aoe.repository.config.v1+json"
MANIFEST_LAYER = "application/vnd.aoe.repository.manifest.v1+json"
ROOT_LAYER = "application/vnd.aoe.repository.root.v1+json"
BUNDLE_LAYER = "application/vnd.aoe.bundle.v1+zip"
DELTA_LAYER = "application/vnd.aoe.bundle.delta.v1+zip"
PENDING_LAYER = "application/vnd.aoe.repository.pending.v1+json"
INDEX_LAYER = "application/vnd.aoe.repository.index.v1+json"
TAG_LAYER = "application/vnd.aoe.repository.tag.v1+json"
TAG_PATCH_LAYER = "application/vnd.aoe.repository.tag-patch.v1+zstd"
TITLE = "org.opencontainers.image.title"
TIMEOUT = 30.0  # seconds, for connecting and between received bytes

_CONFIG = b"{}"
_MAX_OCI_MANIFEST = 64 * 1024  # ours are ~600 bytes; a registry cannot feed us endless JSON
_CHUNK = 1 << 20
_SHAPE = "expected oci://HOST[:PORT]/PATH/TO/REPO, e.g. oci://ghcr.io/acme/models"
_ROOT_N = re.compile(r"roots/([1-9][0-9]*)\.root\.json")
_BUNDLE = re.compile(r"bundles/([0-9a-f]{64})\.aoe")
_DELTA = re.compile(r"deltas/([0-9a-f]{64})\.aoed")
_PENDING = re.compile(r"pending/([0-9a-f]{64})\.json")
_TAG_DOCUMENT = re.compile(r"tags/([A-Za-z0-9][A-Za-z0-9._-]{0,127})/([1-9][0-9]*)\.json")
_TAG_PATCH = re.compile(
    r"tags/([A-Za-z0-9][A-Za-z0-9._-]{0,127})/([1-9][0-9]*)\.from-([1-9][0-9]*)\.zst"
)
_TAG_PAGE = 10_000
_MAX_TAG_PAGES = 100  # a registry cannot page us forever
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"  # the distribution spec's path grammar
_REPO = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_HOSTNAME = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*")


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class _Target:
    """Where a repository name lives in the registry."""

    tag: str
    layer_type: str
    title: str

    @property
    def is_bundle(self) -> bool:
        """An immutable, content-addressed blob: a bundle or a delta."""
        return self.layer_type in (BUNDLE_LAYER, DELTA_LAYER)

    def manifest(self, digest: str, size: int) -> bytes:
        """The OCI manifest for a layer: deterministic bytes, hence a stable digest."""
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": ARTIFACT_TYPE,
            "config": {"mediaType": CONFIG_TYPE, "digest": _sha256(_CONFIG), "size": len(_CONFIG)},
            "layers": [
                {
                    "mediaType": self.layer_type,
                    "digest": digest,
                    "size": size,
                    "annotations": {TITLE: self.title},
                }
            ],
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    def layer(self, body: bytes) -> tuple[str, int]:
        """The layer's digest and size, once ``body`` is checked to be exactly our shape."""
        try:
            doc = json.loads(body)
            digest, size = doc["layers"][0]["digest"], doc["layers"][0]["size"]
            ok = bool(_DIGEST.fullmatch(digest)) and type(size) is int and size >= 0
            ok = ok and doc == json.loads(self.manifest(digest, size))
        except (ValueError, TypeError, KeyError, IndexError, RecursionError):
            ok = False
        if not ok:
            raise StoreError(
                f"tag {self.tag!r} is not an aoe-pack {self.title} (unexpected OCI manifest)",
                hint="the tag was written by another tool; publish to a dedicated repository",
            )
        return digest, size


def _target(name: str) -> _Target:  # noqa: PLR0911 - one return per kind of document
    if name == MANIFEST:
        return _Target("manifest", MANIFEST_LAYER, name)
    if name == ROOT:
        return _Target("root", ROOT_LAYER, name)
    if m := _ROOT_N.fullmatch(name):
        return _Target(f"root-{m[1]}", ROOT_LAYER, name)
    if m := _BUNDLE.fullmatch(name):
        return _Target(f"bundle-{m[1]}", BUNDLE_LAYER, f"{m[1]}.aoe")
    if m := _DELTA.fullmatch(name):
        return _Target(f"delta-{m[1]}", DELTA_LAYER, f"{m[1]}.aoed")
    if m := _PENDING.fullmatch(name):
        return _Target(f"pending-{m[1]}", PENDING_LAYER, name)
    if name == INDEX:
        return _Target("index", INDEX_LAYER, name)
    if m := _TAG_DOCUMENT.fullmatch(name):
        # An OCI tag holds 128 characters and a model tag may too: name it by a
        # digest of the model tag; the title annotation, checked on every read,
        # holds the full name, so a collision cannot serve one tag for another.
        digest = hashlib.sha256(m[1].encode()).hexdigest()[:32]
        return _Target(f"tag-{digest}-{m[2]}", TAG_LAYER, name)
    if m := _TAG_PATCH.fullmatch(name):  # 75 characters at most: an OCI tag holds 128
        digest = hashlib.sha256(m[1].encode()).hexdigest()[:32]
        return _Target(f"tag-{digest}-{m[2]}-from-{m[3]}", TAG_PATCH_LAYER, name)
    raise StoreError(
        f"{name!r} has no place in an OCI repository: expected manifest.json, root.json, "
        "roots/N.root.json, index.json, tags/<tag>/N.json, tags/<tag>/N.from-M.zst, "
        "bundles/<sha256>.aoe or deltas/<sha256>.aoed"
    )


def _bundle(name: str) -> tuple[_Target, str]:
    """A bundle's target and blob digest."""
    target = _target(name)
    if not target.is_bundle:
        raise StoreError(f"{name!r} is a document, not a bundle (bundles/<sha256>.aoe)")
    return target, "sha256:" + target.tag.split("-", 1)[1]


def _mount_timeouts(session: requests.Session) -> None:
    """Give every request of ``session`` a timeout, oras's token requests included."""
    from requests.adapters import HTTPAdapter

    class _TimeoutAdapter(HTTPAdapter):
        def send(self, request: Any, *args: Any, **kwargs: Any) -> requests.Response:
            if kwargs.get("timeout") is None:
                kwargs["timeout"] = TIMEOUT
            return super().send(request, *args, **kwargs)

    for prefix in ("http://", "https://"):
        session.mount(prefix, _TimeoutAdapter())


class OciStore:
    """A repository kept as tagged OCI artifacts (see the module docstring for the mapping)."""

    def __init__(self, *, host: str, repository: str, plain_http: bool, url: str) -> None:
        try:
            # importlib: oras ships no type information; its objects are Any here.
            provider = importlib.import_module("oras.provider")
            container = importlib.import_module("oras.container")
        except ImportError as e:
            raise StoreError(
                "publishing to oci:// needs the publish extra",
                hint="pip install 'aoe-pack[publish]'",
            ) from e
        self._url = url
        self._host = host
        self._plain_http = plain_http
        self._base = f"{'http' if plain_http else 'https'}://{host}/v2/{repository}"
        self._oras: Any = provider.Registry(hostname=host, insecure=plain_http)
        # Only its registry matters (credential lookup); a dotted path would parse as a host.
        self._container: Any = container.Container("aoe", registry=host)
        self._session: requests.Session = self._oras.session
        _mount_timeouts(self._session)
        self._authorization: str | None = None
        self._configs_loaded = False

    @classmethod
    def from_url(cls, url: str, *, plain_http: bool | None = None) -> OciStore:
        """Parse ``oci://HOST[:PORT]/PATH/TO/REPO``; loopback hosts default to plain HTTP."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as e:  # a bad port or an unclosed [IPv6 bracket
            raise UsageError(f"bad host or port in {url!r}: {_SHAPE}") from e
        hostname = parts.hostname or ""
        repository = parts.path.removeprefix("/")
        if parts.scheme != "oci" or parts.username or parts.password or parts.query:
            raise UsageError(f"not an OCI repository URL: {url!r}: {_SHAPE}")
        if parts.fragment or ":" in repository or "@" in repository:
            raise UsageError(
                f"{url!r} names a tag or digest: {_SHAPE}",
                hint="aoe-pack chooses the tags itself (manifest, root, root-N, bundle-<sha256>)",
            )
        try:
            loopback = ipaddress.ip_address(hostname).is_loopback
        except ValueError:
            if not _HOSTNAME.fullmatch(hostname):
                raise UsageError(f"bad registry host in {url!r}: {_SHAPE}") from None
            loopback = hostname == "localhost"
        if not _REPO.fullmatch(repository):
            raise UsageError(
                f"bad repository path in {url!r}: {_SHAPE}",
                hint="path components are lowercase letters and digits, joined by . _ __ or -",
            )
        host = f"[{hostname}]" if ":" in hostname else hostname
        if port is not None:
            host = f"{host}:{port}"
        return cls(
            host=host,
            repository=repository,
            plain_http=loopback if plain_http is None else plain_http,
            url=url,
        )

    @property
    def url(self) -> str:
        return self._url

    @property
    def plain_http(self) -> bool:
        """True when the registry is spoken to over HTTP rather than HTTPS."""
        return self._plain_http

    def close(self) -> None:
        self._session.close()

    atomic_cas = False
    """The distribution API has no conditional manifest PUT (see ``replace``)."""

    def list_pending(self) -> list[str]:
        """Names of the ``pending/<sha256>.json`` release records (tags ``pending-*``)."""
        names: list[str] = []
        url: str | None = f"{self._base}/tags/list?{urlencode({'n': _TAG_PAGE})}"
        origin = urlsplit(self._base)[:2]
        for _ in range(_MAX_TAG_PAGES):
            if url is None:
                return names
            with self._send("GET", url) as response:
                if response.status_code == 404:  # no tag at all yet
                    return names
                self._check(response, "listing tags")
                chunks: list[bytes] = []
                self._stream(response, 16 << 20, f"tag list of {self._url}", chunks.append)
                link = response.headers.get("Link", "")
            try:
                tags = json.loads(b"".join(chunks)).get("tags") or []
            except (ValueError, AttributeError, RecursionError) as e:
                raise StoreError(f"{self._host} sent an unreadable tag list") from e
            if not isinstance(tags, list):
                raise StoreError(f"{self._host} sent a tag list without a list of tags")
            names += [
                f"pending/{t[8:]}.json"
                for t in tags
                if isinstance(t, str)
                and t.startswith("pending-")
                and _PENDING.fullmatch(f"pending/{t[8:]}.json")
            ]
            url = urljoin(url, link.split(";")[0].strip("<> ")) if link.startswith("<") else None
            if url is not None and urlsplit(url)[:2] != origin:
                raise StoreError(f"{self._host} points the tag list to another host: {url[:80]}")
        raise StoreError(f"{self._host} sent more than {_MAX_TAG_PAGES} pages of tags")

    # --- the Store interface -------------------------------------------------------

    def read(self, name: str, *, max_bytes: int) -> Stored | None:
        target = _target(name)
        found = self._get_manifest(target.tag)
        if found is None:
            return None
        body, token = found
        digest, size = target.layer(body)
        if size > max_bytes:
            raise DownloadTooLargeError(
                f"{name} at {self._url} is {size} bytes, more than the {max_bytes} allowed"
            )
        chunks: list[bytes] = []
        self._download(digest, max_bytes, f"{name} at {self._url}", chunks.append)
        return Stored(b"".join(chunks), token=token)

    def replace(self, name: str, data: bytes, *, expected: str | None) -> str:
        target = _target(name)
        if target.is_bundle:
            raise StoreError(f"{name!r} is a bundle: bundles are immutable, use put_blob")
        self._expect(target, expected)
        digest = _sha256(data)
        for last in (False, False, True):
            self._ensure_blob(_sha256(_CONFIG), _CONFIG)
            self._ensure_blob(digest, data)
            self._expect(target, expected)
            try:
                return self._put_manifest(target, target.manifest(digest, len(data)))
            except StoreError as e:
                # Under concurrent uploads of the same blob, distribution can report
                # it present on HEAD and then unknown on the manifest PUT: upload again.
                if last or "BLOB_UNKNOWN" not in e.message:
                    raise
                self._upload(_sha256(_CONFIG), _CONFIG)
                self._upload(digest, data)
        raise AssertionError("unreachable")

    def put_blob(self, name: str, source: Path, *, sha256: str, size: int) -> None:
        target, digest = _bundle(name)
        if digest != f"sha256:{sha256}":
            raise StoreError(f"{name!r} is not the name of a bundle with SHA-256 {sha256}")
        manifest = target.manifest(digest, size)
        have = self._blob_size(digest)
        if have is not None and have != size:
            raise StoreError(f"{self._url} holds {digest} with {have} bytes, not {size}")
        if have is not None and self._head_manifest(target.tag) == _sha256(manifest):
            return
        if have is None:
            self._upload_file(digest, source)
        for last in (False, False, True):
            self._ensure_blob(_sha256(_CONFIG), _CONFIG)
            try:
                self._put_manifest(target, manifest)
            except StoreError as e:
                # As in replace: a blob another publisher is uploading too can be present
                # on HEAD and unknown on the manifest PUT. The one named is uploaded again
                # (the shared empty config, as a rule; the bundle only if it is the one).
                if last or "BLOB_UNKNOWN" not in e.message:
                    raise
                self._upload(_sha256(_CONFIG), _CONFIG)
                if digest in e.message:
                    self._upload_file(digest, source)
            else:
                return

    def _upload_file(self, digest: str, source: Path) -> None:
        try:
            with source.open("rb") as stream:
                self._upload(digest, stream)
        except OSError as e:
            raise StoreError(f"cannot read {source} to upload it: {e}") from e

    def has_blob(self, name: str) -> int | None:
        """The bundle's size, if both its blob and the tag that keeps it are there."""
        target, digest = _bundle(name)
        size = self._blob_size(digest)
        if size is None or self._head_manifest(target.tag) != _sha256(
            target.manifest(digest, size)
        ):
            return None
        return size

    def fetch_blob(self, name: str, dest: Path, *, max_bytes: int) -> None:
        _, digest = _bundle(name)
        try:
            with atomic_output(dest) as out:  # never a partial file or a link's target
                self._download(digest, max_bytes, f"{name} at {self._url}", out.write)
        except OSError as e:
            raise StoreError(f"cannot write {dest}: {e}") from e

    # --- registry API --------------------------------------------------------------

    def _expect(self, target: _Target, expected: str | None) -> None:
        current = self._head_manifest(target.tag)
        if current != expected:
            raise StoreConflictError(
                f"{target.title} at {self._url} (tag {target.tag!r}) changed: "
                f"expected {expected or 'no document'}, found {current or 'none'}"
            )

    def _head_manifest(self, tag: str) -> str | None:
        with self._send("HEAD", f"{self._base}/manifests/{tag}", accept=True) as response:
            if response.status_code == 404:
                return None
            self._check(response, f"looking up tag {tag!r}")
            digest = response.headers.get("Docker-Content-Digest", "")
        if _DIGEST.fullmatch(digest):
            return digest
        found = self._get_manifest(tag)  # the header is optional in the spec
        return found[1] if found else None

    def _get_manifest(self, tag: str) -> tuple[bytes, str] | None:
        chunks: list[bytes] = []
        with self._send("GET", f"{self._base}/manifests/{tag}", accept=True) as response:
            if response.status_code == 404:
                return None
            self._check(response, f"reading tag {tag!r}")
            what = f"tag {tag!r} of {self._url}"
            self._stream(response, _MAX_OCI_MANIFEST, what, chunks.append)
        body = b"".join(chunks)
        return body, _sha256(body)

    def _put_manifest(self, target: _Target, body: bytes) -> str:
        headers = {"Content-Type": OCI_MANIFEST}
        url = f"{self._base}/manifests/{target.tag}"
        with self._send("PUT", url, headers=headers, data=body) as response:
            self._check(response, f"tagging {target.title} as {target.tag!r}")
        return _sha256(body)

    def _blob_size(self, digest: str) -> int | None:
        with self._send("HEAD", f"{self._base}/blobs/{digest}") as response:
            if response.status_code == 404:
                return None
            self._check(response, f"looking up blob {digest}")
            length = response.headers.get("Content-Length", "")
        if not length.isdigit():
            raise StoreError(f"{self._host} gave no size for blob {digest} of {self._url}")
        return int(length)

    def _ensure_blob(self, digest: str, data: bytes) -> None:
        if self._blob_size(digest) is None:
            self._upload(digest, data)

    def _upload(self, digest: str, data: bytes | IO[bytes]) -> None:
        """POST an upload session, then one PUT that streams ``data`` (file or bytes)."""
        with self._send("POST", f"{self._base}/blobs/uploads/") as response:
            self._check(response, f"starting the upload of {digest}")
            location = urljoin(response.url, response.headers.get("Location", ""))
        separator = "&" if "?" in location else "?"
        url = f"{location}{separator}{urlencode({'digest': digest})}"
        headers = {"Content-Type": "application/octet-stream"}
        with self._send("PUT", url, headers=headers, data=data) as response:
            self._check(response, f"uploading blob {digest}")

    def _download(
        self, digest: str, max_bytes: int, what: str, sink: Callable[[bytes], object]
    ) -> None:
        """Stream blob ``digest`` into ``sink``, capped, and check its SHA-256."""
        with self._send("GET", f"{self._base}/blobs/{digest}") as response:
            if response.status_code == 404:
                raise DownloadError(f"{what}: blob {digest} is missing from the registry")
            self._check(response, f"downloading {what}")
            actual = self._stream(response, max_bytes, what, sink)
        if actual != digest:
            raise DownloadError(f"{what}: the registry sent bytes with {actual}, not {digest}")

    def _stream(
        self, response: requests.Response, cap: int, what: str, sink: Callable[[bytes], object]
    ) -> str:
        import requests

        declared = response.headers.get("Content-Length", "")
        received, sha = 0, hashlib.sha256()
        try:
            if declared.isdigit() and int(declared) > cap:
                raise DownloadTooLargeError(f"{what} is {declared} bytes, more than {cap}")
            for chunk in response.iter_content(_CHUNK):
                received += len(chunk)
                if received > cap:
                    raise DownloadTooLargeError(f"{what} is more than {cap} bytes")
                sha.update(chunk)
                sink(chunk)
        except requests.RequestException as e:
            raise DownloadError(f"downloading {what} from {self._host} failed: {e}") from e
        return "sha256:" + sha.hexdigest()

    def _send(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        data: bytes | IO[bytes] | None = None,
        accept: bool = False,
    ) -> requests.Response:
        """One streamed request (close it), answering an auth challenge through oras-py."""
        import requests

        sent = dict(headers or {})
        if accept:
            sent["Accept"] = OCI_MANIFEST

        def attempt() -> requests.Response:
            if self._authorization:
                sent["Authorization"] = self._authorization
            if not isinstance(data, bytes | None):
                data.seek(0)  # a retried upload starts over
            return self._session.request(method, url, headers=sent, data=data, stream=True)

        try:
            for delay in _TRANSIENT_BACKOFF:
                response = attempt()
                for refresh in (False, True):  # the second time, for a token of wider scope
                    if response.status_code != 401 or not self._login(response, refresh):
                        break
                    response.close()
                    response = attempt()
                # distribution's filesystem driver answers 500 while another request
                # rewrites the same tag; every request here is idempotent, so retry.
                if response.status_code not in _TRANSIENT or delay is None:
                    break
                response.close()
                time.sleep(delay)
        except (requests.RequestException, ValueError, OSError) as e:
            raise StoreError(f"{method} {url} failed: {e}") from e
        return response

    def _login(self, challenge: requests.Response, refresh: bool) -> bool:
        """Turn a 401 into credentials: Docker config logins, then a (scoped) token."""
        auth = self._oras.auth
        if not self._configs_loaded:
            auth.load_configs(self._container)
            self._configs_loaded = True
        if challenge.headers.get("Www-Authenticate", "").lower().startswith("basic"):
            basic = getattr(auth, "_basic_auth", None)  # where oras keeps a docker login
            self._authorization = f"Basic {basic}" if basic else None
            return basic is not None and not refresh
        headers, changed = auth.authenticate_request(challenge, {}, refresh=refresh)
        self._authorization = headers.get("Authorization") if changed else None
        return bool(changed and self._authorization)

    def _check(self, response: requests.Response, action: str) -> None:
        import requests

        if response.status_code < 300:
            return
        if response.status_code in (401, 403):
            raise StoreError(
                f"{action} in {self._url}: access denied by {self._host} "
                f"(HTTP {response.status_code})",
                hint=f"log in with `docker login {self._host}` (or `oras login`)",
            )
        try:
            detail = next(response.iter_content(512), b"").decode("utf-8", "replace").strip()
        except requests.RequestException:
            detail = ""
        raise StoreError(
            f"{action} in {self._url}: HTTP {response.status_code} from {self._host}"
            + (f": {detail}" if detail else "")
        )
