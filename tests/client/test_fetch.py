"""The reference downloader against a real HTTP server, honest and hostile."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from _server_http import HttpServer

from aoe_pack.errors import DownloadError, DownloadTooLargeError, StoreError, UsageError
from aoe_pack.storage.http import (
    HttpStore,
    TransferLimits,
    download,
    download_hashed,
    fetch_bytes,
)
from aoe_pack.storage.store import MANIFEST, HashingStore

CAP = 1024 * 1024


def _serve(server: HttpServer, name: str, data: bytes) -> str:
    (server.root / name).write_bytes(data)
    return server.url_for(name)


def _part(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def _sidecar(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part.json")


def test_endless_download_is_cut_at_its_cap(http_server: HttpServer, tmp_path: Path) -> None:
    http_server.endless("forever.bin")
    dest = tmp_path / "forever.bin"
    seen: list[int] = []
    started = time.monotonic()
    with pytest.raises(DownloadTooLargeError, match=rf"more than {CAP} bytes \(the cap\)"):
        download(
            http_server.url_for("forever.bin"),
            dest,
            max_bytes=CAP,
            progress=lambda done, _total: seen.append(done),
        )
    assert time.monotonic() - started < 2
    assert seen
    assert max(seen) <= CAP  # never more than the cap reached the disk...
    assert not _part(dest).exists()  # ...and those bytes are gone: they can never verify
    assert not _sidecar(dest).exists()
    assert not dest.exists()


def test_announced_length_over_cap_is_refused_before_reading(
    http_server: HttpServer, tmp_path: Path
) -> None:
    url = _serve(http_server, "big.bin", os.urandom(4000))
    dest = tmp_path / "big.bin"
    seen: list[int] = []
    with pytest.raises(DownloadTooLargeError, match=r"announces 4000 bytes, over the cap of 1000$"):
        download(url, dest, max_bytes=1000, progress=lambda done, _: seen.append(done))
    with pytest.raises(DownloadTooLargeError, match="over the cap of 8000 or the 3000 expected"):
        download(url, dest, max_bytes=8000, expected_size=3000)
    with pytest.raises(DownloadTooLargeError, match="3000 bytes, cap 1000"):
        download(url, dest, max_bytes=1000, expected_size=3000)  # refused without a request
    with pytest.raises(DownloadTooLargeError, match="announces 4000 bytes, over the cap of 1000"):
        HttpStore(http_server.url).read("big.bin", max_bytes=1000)
    assert seen == []
    assert not _part(dest).exists()
    assert not dest.exists()
    assert len(http_server.requests) == 3


@pytest.mark.parametrize("announced", [CAP, CAP // 4])
def test_lying_content_length_is_cut_at_cap(
    http_server: HttpServer, tmp_path: Path, announced: int
) -> None:
    url = _serve(http_server, "liar.bin", b"x" * 1000)
    http_server.lying_length("liar.bin", announced)
    dest = tmp_path / "liar.bin"
    seen: list[int] = []
    why = "the cap" if announced == CAP else "the announced size"
    with pytest.raises(DownloadTooLargeError, match=rf"more than {announced} bytes \({why}\)"):
        download(url, dest, max_bytes=CAP, progress=lambda done, _: seen.append(done))
    assert max(seen) <= announced
    assert not _part(dest).exists()
    with pytest.raises(DownloadTooLargeError, match=f"more than {announced} bytes"):
        fetch_bytes(url, max_bytes=CAP)


def test_interrupted_download_resumes_with_range(http_server: HttpServer, tmp_path: Path) -> None:
    data = os.urandom(CAP + 123)
    url = _serve(http_server, "model.aoe", data)
    http_server.cut_after("model.aoe", 300_000)
    dest = tmp_path / "out" / "model.aoe"
    with pytest.raises(DownloadError, match=f"closed after 300000 of {len(data)} bytes") as err:
        download(url, dest, max_bytes=2 * CAP, expected_size=len(data))
    assert err.type is DownloadError
    assert "kept" in str(err.value)
    assert _part(dest).read_bytes() == data[:300_000]
    assert _sidecar(dest).exists()
    assert not dest.exists()

    assert download(url, dest, max_bytes=2 * CAP, expected_size=len(data)) == len(data)
    assert dest.read_bytes() == data
    assert not _part(dest).exists()
    assert not _sidecar(dest).exists()
    assert http_server.requests == [
        ("GET", "model.aoe", None),
        ("GET", "model.aoe", "bytes=300000-"),
    ]


def test_resume_restarts_when_resource_changed(http_server: HttpServer, tmp_path: Path) -> None:
    old, new = os.urandom(500_000), os.urandom(500_000)
    url = _serve(http_server, "model.aoe", old)
    http_server.cut_after("model.aoe", 200_000)
    dest = tmp_path / "model.aoe"
    with pytest.raises(DownloadError, match="closed after 200000 of 500000 bytes"):
        download(url, dest, max_bytes=CAP, expected_size=len(old))
    path = http_server.root / "model.aoe"
    path.write_bytes(new)  # same size: only the mtime in the ETag tells them apart
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))

    seen: list[int] = []
    got = download(
        url, dest, max_bytes=CAP, expected_size=len(new), progress=lambda d, _: seen.append(d)
    )
    assert got == len(new)
    assert dest.read_bytes() == new  # not old[:200000] + new[200000:]
    assert http_server.requests[-1] == ("GET", "model.aoe", "bytes=200000-")
    assert seen[0] <= 256 * 1024  # counted from zero: the server answered 200, not 206


def test_complete_partial_file_is_finished_without_a_request(
    http_server: HttpServer, tmp_path: Path
) -> None:
    data = os.urandom(1000)
    url = _serve(http_server, "model.aoe", data)
    dest = tmp_path / "model.aoe"

    def crash(done: int, total: int | None) -> None:
        if done == total:
            raise KeyboardInterrupt  # the app dies between the last write and the rename

    with pytest.raises(KeyboardInterrupt):
        download(url, dest, max_bytes=CAP, expected_size=1000, progress=crash)
    assert _part(dest).stat().st_size == 1000
    assert download(url, dest, max_bytes=CAP, expected_size=1000) == 1000
    assert dest.read_bytes() == data
    assert len(http_server.requests) == 1

    # Without an expected size the client cannot know; the server's 416 sends it back to zero.
    other = tmp_path / "other.aoe"
    with pytest.raises(KeyboardInterrupt):
        download(url, other, max_bytes=CAP, progress=crash)
    assert download(url, other, max_bytes=CAP) == 1000
    assert other.read_bytes() == data
    assert http_server.requests[1:] == [
        ("GET", "model.aoe", None),
        ("GET", "model.aoe", "bytes=1000-"),  # answered 416
        ("GET", "model.aoe", None),
    ]


def test_download_shorter_than_expected_size_is_an_error(
    http_server: HttpServer, tmp_path: Path
) -> None:
    url = _serve(http_server, "short.aoe", os.urandom(1000))
    dest = tmp_path / "short.aoe"
    with pytest.raises(DownloadError, match="announces 1000 bytes but 2000 are expected") as err:
        download(url, dest, max_bytes=CAP, expected_size=2000)
    assert err.type is DownloadError
    assert not _part(dest).exists()  # refused before reading

    http_server.no_length("short.aoe")  # nothing announced: the short body shows at the end
    with pytest.raises(DownloadError, match="closed after 1000 of 2000 bytes") as err:
        download(url, dest, max_bytes=CAP, expected_size=2000)
    assert err.type is DownloadError
    assert _part(dest).stat().st_size == 1000
    assert not dest.exists()


def test_missing_document_reads_as_none(http_server: HttpServer, tmp_path: Path) -> None:
    store = HttpStore(http_server.url)
    assert store.read(MANIFEST, max_bytes=CAP) is None
    assert store.has_blob("bundles/nothing.aoe") is None
    assert fetch_bytes(http_server.url_for("nothing"), max_bytes=CAP) is None
    with pytest.raises(DownloadError, match=r"nothing\.aoe: not found \(404\)") as err:
        download(http_server.url_for("nothing.aoe"), tmp_path / "x", max_bytes=CAP)
    assert err.type is DownloadError
    with pytest.raises(DownloadError, match="not found") as err:
        store.fetch_blob("bundles/nothing.aoe", tmp_path / "y", max_bytes=CAP)
    assert err.type is DownloadError


def test_http_store_is_read_only(http_server: HttpServer, tmp_path: Path) -> None:
    store = HttpStore(http_server.url)
    blob = tmp_path / "b"
    blob.write_bytes(b"b")
    with pytest.raises(StoreError, match=r"^read-only: HTTP repositories are published") as err:
        store.replace(MANIFEST, b"{}", expected=None)
    assert err.type is StoreError
    with pytest.raises(StoreError, match=r"^read-only: HTTP repositories are published") as err:
        store.put_blob("bundles/b.aoe", blob, sha256="0" * 64, size=1)
    assert err.type is StoreError
    assert http_server.requests == []


def test_unsafe_names_and_schemes_are_refused(http_server: HttpServer) -> None:
    store = HttpStore(http_server.url)
    for name in ("../secret", "/etc/passwd", "bundles//x", "a/./b", "a\\b"):
        with pytest.raises(StoreError, match="unsafe document name"):
            store.read(name, max_bytes=CAP)
    with pytest.raises(UsageError, match="not an http://, https:// or file:// repository"):
        HttpStore("ftp://example.com/repo")
    with pytest.raises(UsageError, match="only http://, https:// and file:// URLs"):
        fetch_bytes("ftp://example.com/manifest.json", max_bytes=CAP)
    assert http_server.requests == []


def test_read_returns_document_and_its_etag(http_server: HttpServer, tmp_path: Path) -> None:
    doc = b'{"releases": []}'
    _serve(http_server, MANIFEST, doc)
    (http_server.root / "bundles").mkdir()
    blob = os.urandom(5000)
    (http_server.root / "bundles" / "a.aoe").write_bytes(blob)
    store = HttpStore(http_server.url + "/")
    assert store.url == http_server.url + "/"
    stored = store.read(MANIFEST, max_bytes=CAP)
    assert stored is not None
    assert stored.data == doc
    st = (http_server.root / MANIFEST).stat()
    assert stored.token == f'"{st.st_size:x}-{st.st_mtime_ns:x}"'  # the server's ETag
    assert store.has_blob("bundles/a.aoe") == 5000
    store.fetch_blob("bundles/a.aoe", tmp_path / "a.aoe", max_bytes=CAP)
    assert (tmp_path / "a.aoe").read_bytes() == blob
    store.close()

    local = HttpStore(str(http_server.root))  # a folder: no ETag, so the token is a digest
    stored = local.read(MANIFEST, max_bytes=CAP)
    assert stored is not None
    assert stored.token == hashlib.sha256(doc).hexdigest()
    assert local.read("roots/1.root.json", max_bytes=CAP) is None
    assert local.has_blob("bundles/a.aoe") == 5000
    with pytest.raises(DownloadTooLargeError, match="over the cap of 10"):
        local.read(MANIFEST, max_bytes=10)


def test_redirects_stay_on_http_and_are_few(http_server: HttpServer, tmp_path: Path) -> None:
    data = os.urandom(1000)
    _serve(http_server, "new.aoe", data)
    http_server.redirect("old.aoe", "/new.aoe")
    assert download(http_server.url_for("old.aoe"), tmp_path / "a", max_bytes=CAP) == 1000
    assert (tmp_path / "a").read_bytes() == data

    http_server.redirect("ftp.aoe", "ftp://127.0.0.1/new.aoe")
    with pytest.raises(DownloadError, match="refusing a redirect to ftp://"):
        download(http_server.url_for("ftp.aoe"), tmp_path / "b", max_bytes=CAP)
    http_server.redirect("file.aoe", "file:///etc/passwd")
    with pytest.raises(DownloadError, match=r"HTTP 302 .*Redirection to url 'file:.* not allowed"):
        fetch_bytes(http_server.url_for("file.aoe"), max_bytes=CAP)

    http_server.redirect("loop.aoe", "/loop.aoe")
    before = len(http_server.requests)
    with pytest.raises(DownloadError, match=r"HTTP 302 .*infinite loop"):
        download(http_server.url_for("loop.aoe"), tmp_path / "c", max_bytes=CAP)
    assert len(http_server.requests) - before <= 5


@pytest.fixture
def huge_redirect() -> Iterator[str]:
    """``/manifest.json`` answers 302 to ``/next`` with a 1 GiB body: 32 MiB sent, then a stall.

    ``/next`` answers ``{}``. Each connection has its own thread, so a client
    that hangs up on the redirect is answered at once on its next connection.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()
    block = b"x" * (1 << 20)

    def answer(conn: socket.socket) -> None:
        with conn:
            if b"GET /manifest.json " not in conn.recv(65536):
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                return
            conn.sendall(
                b"HTTP/1.1 302 Found\r\nLocation: /next\r\nContent-Length: %d\r\n\r\n" % (1 << 30)
            )
            try:
                for _ in range(32):
                    conn.sendall(block)
            except OSError:  # the client hung up, as it should
                return
            done.wait(10)

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/manifest.json"
    finally:
        done.set()
        listener.close()


def test_redirect_body_is_not_read_into_memory(huge_redirect: str) -> None:
    """urllib read a redirect's whole body into memory before following it, uncapped."""
    tracemalloc.start()
    try:
        started = time.monotonic()
        got = fetch_bytes(
            huge_redirect, max_bytes=CAP, limits=TransferLimits(idle=2.0, deadline=2.0)
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got == (b"{}", None)
    assert peak < 4 * CAP
    assert time.monotonic() - started < 1


# --- hashing while receiving ------------------------------------------------------------


def test_hashed_download_digests_what_it_wrote(http_server: HttpServer, tmp_path: Path) -> None:
    data = os.urandom(CAP + 77)
    url = _serve(http_server, "model.aoe", data)
    dest = tmp_path / "model.aoe"
    got = download_hashed(url, dest, max_bytes=2 * CAP, expected_size=len(data))
    assert (got.size, got.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert dest.read_bytes() == data
    with dest.open("rb") as f:
        assert got.is_file(os.fstat(f.fileno()))  # the very file written, renamed


def test_resumed_hashed_download_hashes_the_kept_bytes_first(
    http_server: HttpServer, tmp_path: Path
) -> None:
    data = os.urandom(CAP + 123)
    url = _serve(http_server, "model.aoe", data)
    http_server.cut_after("model.aoe", 300_000)
    dest = tmp_path / "model.aoe"
    with pytest.raises(DownloadError, match="closed after 300000"):
        download_hashed(url, dest, max_bytes=2 * CAP, expected_size=len(data))
    got = download_hashed(url, dest, max_bytes=2 * CAP, expected_size=len(data))
    assert (got.size, got.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert http_server.requests[-1] == ("GET", "model.aoe", "bytes=300000-")


def test_resumed_hashed_download_hashes_what_is_on_disk_not_what_was_sent(
    http_server: HttpServer, tmp_path: Path
) -> None:
    # The kept bytes changed on disk (same size) while the app was away: the
    # digest must be of the file as it is, so the release match catches it.
    data = os.urandom(500_000)
    url = _serve(http_server, "model.aoe", data)
    http_server.cut_after("model.aoe", 200_000)
    dest = tmp_path / "model.aoe"
    with pytest.raises(DownloadError, match="closed after 200000"):
        download_hashed(url, dest, max_bytes=CAP, expected_size=len(data))
    with _part(dest).open("r+b") as f:
        f.write(b"X")
    got = download_hashed(url, dest, max_bytes=CAP, expected_size=len(data))
    assert got.size == len(data)
    assert got.sha256 == hashlib.sha256(dest.read_bytes()).hexdigest()
    assert got.sha256 != hashlib.sha256(data).hexdigest()


def test_complete_partial_file_is_hashed_without_a_request(
    http_server: HttpServer, tmp_path: Path
) -> None:
    data = os.urandom(1000)
    url = _serve(http_server, "model.aoe", data)
    dest = tmp_path / "model.aoe"

    def crash(done: int, total: int | None) -> None:
        if done == total:
            raise KeyboardInterrupt  # the app dies between the last write and the rename

    with pytest.raises(KeyboardInterrupt):
        download_hashed(url, dest, max_bytes=CAP, expected_size=1000, progress=crash)
    got = download_hashed(url, dest, max_bytes=CAP, expected_size=1000)
    assert (got.size, got.sha256) == (1000, hashlib.sha256(data).hexdigest())
    with dest.open("rb") as f:
        assert got.is_file(os.fstat(f.fileno()))
    assert len(http_server.requests) == 1


def test_restarted_hashed_download_hashes_only_the_new_file(
    http_server: HttpServer, tmp_path: Path
) -> None:
    old, new = os.urandom(500_000), os.urandom(500_000)
    url = _serve(http_server, "model.aoe", old)
    http_server.cut_after("model.aoe", 200_000)
    dest = tmp_path / "model.aoe"
    with pytest.raises(DownloadError, match="closed after 200000"):
        download_hashed(url, dest, max_bytes=CAP, expected_size=len(old))
    path = http_server.root / "model.aoe"
    path.write_bytes(new)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    got = download_hashed(url, dest, max_bytes=CAP, expected_size=len(new))
    assert (got.size, got.sha256) == (len(new), hashlib.sha256(new).hexdigest())


def test_http_store_hashes_blobs_while_fetching(http_server: HttpServer, tmp_path: Path) -> None:
    data = os.urandom(4096)
    (http_server.root / "bundles").mkdir(exist_ok=True)
    (http_server.root / "bundles" / "b.aoe").write_bytes(data)
    store = HttpStore(http_server.url_for(""))
    assert isinstance(store, HashingStore)
    got = store.fetch_blob_hashed("bundles/b.aoe", tmp_path / "b.aoe", max_bytes=CAP)
    assert (got.size, got.sha256) == (len(data), hashlib.sha256(data).hexdigest())
