"""The device transport against a real web server: nginx, as a repository is served.

Conditional reads (ETag and Last-Modified, 304 without a body), precompressed
``.gz`` siblings (``gzip_static``) inflated under the cap, and resumed bundle
downloads (Range + If-Range) are all nginx's own behaviour here, not a test
double's; the access log tells what each request cost on the wire.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest
from _server_nginx import NginxServer

from aoe_pack.errors import DownloadTooLargeError
from aoe_pack.storage.http import HttpStore, download
from aoe_pack.storage.local import LocalStore
from aoe_pack.storage.store import NotModified, Stored, Validators, read_if_changed

CAP = 4 << 20
HEADERS = 1024  # a status line and headers: far less than any document below


def _document(n: int) -> bytes:
    """A manifest-like JSON document of about ``n`` bytes (hex digests compress ~2x)."""
    releases = [{"version": f"1.{i}.0", "sha256": os.urandom(32).hex()} for i in range(n // 90)]
    return json.dumps({"releases": releases}).encode()


def _publish(server: NginxServer, name: str, data: bytes, *, gz: bool = False) -> Path:
    path = server.root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if gz:
        (server.root / f"{name}.gz").write_bytes(gzip.compress(data, mtime=0))
    return path


def _later(path: Path, seconds: int) -> None:
    """Move ``path``'s mtime forward: nginx's ETag is its mtime (in seconds) and size."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + seconds * 1_000_000_000))


def test_unchanged_document_costs_a_304_without_body(nginx_server: NginxServer) -> None:
    data = _document(200_000)
    _publish(nginx_server, "manifest.json", data)
    store = HttpStore(nginx_server.url)
    first = store.read("manifest.json", max_bytes=CAP)
    assert first is not None
    assert first.data == data
    assert first.validators is not None
    assert first.validators.etag is not None
    assert first.validators.last_modified is not None
    assert first.token == first.validators.etag

    again = store.read_if_changed("manifest.json", max_bytes=CAP, known=first.revalidation)
    assert again == NotModified(first.revalidation)
    sent = nginx_server.wire(at_least=2)
    assert [(r.path, r.status) for r in sent] == [("manifest.json", 200), ("manifest.json", 304)]
    assert sent[0].bytes_sent > len(data)
    assert sent[1].bytes_sent < HEADERS  # headers only: no body


@pytest.mark.parametrize("which", ["etag", "last_modified"])
def test_either_validator_alone_gives_a_304(nginx_server: NginxServer, which: str) -> None:
    _publish(nginx_server, "index.json", _document(10_000))
    store = HttpStore(nginx_server.url)
    first = store.read("index.json", max_bytes=CAP)
    assert first is not None
    known = Validators(**{which: getattr(first.revalidation, which)})
    assert read_if_changed(store, "index.json", max_bytes=CAP, known=known) == NotModified(known)
    assert nginx_server.wire(at_least=2)[1].status == 304


def test_changed_document_answers_200_with_new_validators(nginx_server: NginxServer) -> None:
    path = _publish(nginx_server, "manifest.json", b'{"version": 12}')
    store = HttpStore(nginx_server.url)
    first = store.read("manifest.json", max_bytes=CAP)
    assert first is not None
    path.write_bytes(b'{"version": 13}')  # same size: only the mtime tells them apart
    _later(path, 2)
    got = store.read_if_changed("manifest.json", max_bytes=CAP, known=first.revalidation)
    assert isinstance(got, Stored)
    assert got.data == b'{"version": 13}'
    assert got.revalidation.etag != first.revalidation.etag
    assert got.revalidation.last_modified != first.revalidation.last_modified
    assert [r.status for r in nginx_server.wire(at_least=2)] == [200, 200]


def test_missing_document_is_none_even_when_conditional(nginx_server: NginxServer) -> None:
    store = HttpStore(nginx_server.url)
    known = Validators(etag='"5f-6"', last_modified="Sun, 06 Dec 2026 12:00:00 GMT")
    assert store.read_if_changed("roots/2.root.json", max_bytes=CAP, known=known) is None


def test_gz_sibling_is_sent_compressed_and_read_as_the_plain_bytes(
    nginx_server: NginxServer,
) -> None:
    data = _document(300_000)
    _publish(nginx_server, "manifest.json", data, gz=True)
    store = HttpStore(nginx_server.url)
    got = store.read("manifest.json", max_bytes=CAP)
    assert got is not None
    assert got.data == data  # byte for byte: signatures are over these
    (sent,) = nginx_server.wire(at_least=1)
    compressed = (nginx_server.root / "manifest.json.gz").stat().st_size
    assert compressed < len(data) * 0.7
    assert compressed < sent.bytes_sent < compressed + HEADERS

    # The validators are the .gz file's, and revalidate it.
    again = store.read_if_changed("manifest.json", max_bytes=CAP, known=got.revalidation)
    assert isinstance(again, NotModified)
    assert nginx_server.wire(at_least=2)[1].status == 304


def test_cap_applies_to_inflated_bytes(nginx_server: NginxServer) -> None:
    data = b" " * (CAP + 1)  # inflates past the cap from a gzip of a few KiB
    _publish(nginx_server, "manifest.json", data, gz=True)
    assert (nginx_server.root / "manifest.json.gz").stat().st_size < 10_000
    with pytest.raises(DownloadTooLargeError, match=rf"inflates to more than {CAP} bytes"):
        HttpStore(nginx_server.url).read("manifest.json", max_bytes=CAP)


def test_plain_document_without_gz_sibling_is_read_as_is(nginx_server: NginxServer) -> None:
    data = _document(50_000)
    _publish(nginx_server, "roots/1.root.json", data)
    got = HttpStore(nginx_server.url).read("roots/1.root.json", max_bytes=CAP)
    assert got is not None
    assert got.data == data
    assert nginx_server.wire(at_least=1)[0].bytes_sent > len(data)


class _InterruptedError(Exception):
    """The device stops a download (the app is killed, the network drops)."""


def _interrupted_download(url: str, dest: Path, size: int) -> int:
    """Start downloading and stop after about half; returns the bytes kept in ``.part``."""

    def stop_halfway(done: int, _: int | None) -> None:
        if done >= size // 2:
            raise _InterruptedError

    with pytest.raises(_InterruptedError):
        download(url, dest, max_bytes=CAP, expected_size=size, progress=stop_halfway)
    part = dest.with_name(dest.name + ".part")
    return part.stat().st_size


def test_bundle_download_resumes_with_range_and_if_range(
    nginx_server: NginxServer, tmp_path: Path
) -> None:
    data = os.urandom(3 << 20)
    name = "bundles/" + "ab" * 32 + ".aoe"
    # A .gz sibling must not be served: a bundle is fetched as the file it is.
    _publish(nginx_server, name, data, gz=True)
    url = nginx_server.url_for(name)
    dest = tmp_path / "models" / "m.aoe"
    kept = _interrupted_download(url, dest, len(data))
    assert 0 < kept < len(data)

    assert download(url, dest, max_bytes=CAP, expected_size=len(data)) == len(data)
    assert dest.read_bytes() == data
    first, resumed = nginx_server.wire(at_least=2)
    assert (first.status, resumed.status) == (200, 206)
    assert len(data) - kept < resumed.bytes_sent < len(data) - kept + HEADERS


def test_resume_restarts_when_the_file_changed_in_between(
    nginx_server: NginxServer, tmp_path: Path
) -> None:
    old, new = os.urandom(2 << 20), os.urandom(2 << 20)
    name = "bundles/" + "cd" * 32 + ".aoe"
    path = _publish(nginx_server, name, old)
    url = nginx_server.url_for(name)
    dest = tmp_path / "m.aoe"
    _interrupted_download(url, dest, len(old))
    path.write_bytes(new)  # same size, later mtime: nginx's ETag changes, If-Range fails
    _later(path, 2)

    assert download(url, dest, max_bytes=CAP, expected_size=len(new)) == len(new)
    assert dest.read_bytes() == new  # never half of each
    assert [r.status for r in nginx_server.wire(at_least=2)] == [200, 200]


def test_blob_size_is_the_file_size_not_a_compressed_one(nginx_server: NginxServer) -> None:
    data = b"\0" * 100_000
    name = "bundles/" + "ef" * 32 + ".aoe"
    _publish(nginx_server, name, data, gz=True)
    assert HttpStore(nginx_server.url).has_blob(name) == len(data)


def test_a_document_replaced_within_a_second_gets_new_validators(
    nginx_server: NginxServer,
) -> None:
    """nginx's ETag is mtime (seconds) and size: the publisher must move the mtime on."""
    store = LocalStore(nginx_server.root)
    token = store.replace("manifest.json", b'{"version": 12}', expected=None)
    device = HttpStore(nginx_server.url)
    first = device.read("manifest.json", max_bytes=CAP)
    assert first is not None
    store.replace("manifest.json", b'{"version": 13}', expected=token)  # same size, same second
    got = device.read_if_changed("manifest.json", max_bytes=CAP, known=first.revalidation)
    assert isinstance(got, Stored)
    assert got.data == b'{"version": 13}'
