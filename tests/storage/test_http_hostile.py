"""Attacks on conditional reads and compressed documents, one test each.

nginx only ever answers honestly, so these answers come from the Python test
server's canned responses (``HttpServer.answer``): what a hostile server, a
broken CDN or a network attacker on plain HTTP could send a device.
"""

from __future__ import annotations

import gzip
import hashlib
import tracemalloc
import zlib
from typing import Any, ClassVar

import pytest
from _server_http import HttpServer

from aoe_pack.errors import DownloadError, DownloadTooLargeError
from aoe_pack.storage import http
from aoe_pack.storage.http import HttpStore, download, fetch_document
from aoe_pack.storage.store import NotModified, Stored, Validators

CAP = 1 << 20
DOC = "manifest.json"
BUNDLE = "bundles/" + "ab" * 32 + ".aoe"
ETAG = '"6a-5f1c"'
DATE = "Sun, 06 Dec 2026 12:00:00 GMT"
KNOWN = Validators(etag=ETAG, last_modified=DATE)


def _store(server: HttpServer) -> HttpStore:
    return HttpStore(server.url)


def _gzip_answer(server: HttpServer, body: bytes, *, length: bool = True, **extra: str) -> None:
    headers = {"Content-Encoding": "gzip", **extra}
    if length:
        headers["Content-Length"] = str(len(body))
    server.answer(DOC, 200, headers, body)


class _CountingInflater:
    """zlib's decompressobj, counting every inflated byte it hands out."""

    made: ClassVar[list[_CountingInflater]] = []

    def __init__(self, **kwargs: Any) -> None:
        self._inflater = _REAL_DECOMPRESSOBJ(**kwargs)
        self.inflated = 0
        _CountingInflater.made.append(self)

    def decompress(self, data: bytes, max_length: int = 0) -> bytes:
        out = self._inflater.decompress(data, max_length)
        self.inflated += len(out)
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inflater, name)


_REAL_DECOMPRESSOBJ = zlib.decompressobj


# --- compression -------------------------------------------------------------------


def test_gzip_bomb_stops_one_byte_past_the_cap(
    http_server: HttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    bomb = gzip.compress(b"\0" * (64 * CAP), mtime=0)  # 64 MiB from about 64 KiB
    assert len(bomb) < CAP // 8
    _gzip_answer(http_server, bomb)
    _CountingInflater.made.clear()
    monkeypatch.setattr(http.zlib, "decompressobj", _CountingInflater)
    tracemalloc.start()
    try:
        with pytest.raises(DownloadTooLargeError, match=rf"inflates to more than {CAP} bytes"):
            _store(http_server).read(DOC, max_bytes=CAP)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    (inflater,) = _CountingInflater.made
    assert inflater.inflated == CAP + 1  # read at most cap + 1 inflated bytes
    assert peak < 4 * CAP


def test_gzip_header_that_never_ends_is_cut_at_the_compressed_bound(
    http_server: HttpServer,
) -> None:
    # FNAME: a zero-terminated name that inflates to nothing; this one has no zero.
    header = b"\x1f\x8b\x08\x08\0\0\0\0\0\xff"
    _gzip_answer(http_server, header + b"n" * (2 * CAP), length=False)
    with pytest.raises(DownloadTooLargeError, match=r"bytes \(the compressed bound\)"):
        _store(http_server).read(DOC, max_bytes=CAP)


def test_compressed_length_past_the_bound_is_refused_before_reading(
    http_server: HttpServer,
) -> None:
    http_server.answer(DOC, 200, {"Content-Encoding": "gzip", "Content-Length": str(2 * CAP)})
    with pytest.raises(DownloadTooLargeError, match=f"announces {2 * CAP} compressed bytes"):
        _store(http_server).read(DOC, max_bytes=CAP)


@pytest.mark.parametrize("length", [True, False], ids=["with-length", "until-close"])
def test_truncated_gzip_is_refused(http_server: HttpServer, length: bool) -> None:
    whole = gzip.compress(b'{"version": 7}' * 100, mtime=0)
    _gzip_answer(http_server, whole[:-6], length=length)  # the trailer cut short
    with pytest.raises(DownloadError, match=r"gzip body ends before its end \(truncated\)"):
        _store(http_server).read(DOC, max_bytes=CAP)


@pytest.mark.parametrize(
    "after",
    [b"garbage", gzip.compress(b"{}", mtime=0)],
    ids=["trailing-garbage", "second-member"],
)
def test_gzip_with_bytes_after_its_end_is_refused(http_server: HttpServer, after: bytes) -> None:
    _gzip_answer(http_server, gzip.compress(b'{"version": 7}', mtime=0) + after)
    with pytest.raises(DownloadError, match="bytes after the end of the gzip stream"):
        _store(http_server).read(DOC, max_bytes=CAP)


def test_gzip_failing_its_crc_is_refused(http_server: HttpServer) -> None:
    body = bytearray(gzip.compress(b'{"version": 7}' * 100, mtime=0))
    body[-8] ^= 0xFF  # the CRC-32 of the inflated bytes, in the trailer
    _gzip_answer(http_server, bytes(body))
    with pytest.raises(DownloadError, match="the gzip body is corrupt"):
        _store(http_server).read(DOC, max_bytes=CAP)


@pytest.mark.parametrize("coding", ["br", "zstd", "deflate", "x-gzip", "gzip, gzip", "gzip, br"])
def test_content_encoding_not_asked_for_is_refused(http_server: HttpServer, coding: str) -> None:
    body = gzip.compress(b"{}", mtime=0)
    http_server.answer(
        DOC, 200, {"Content-Encoding": coding, "Content-Length": str(len(body))}, body
    )
    with pytest.raises(DownloadError, match=r"but only gzip was asked for; refusing the body"):
        _store(http_server).read(DOC, max_bytes=CAP)
    assert http_server.headers[-1]["Accept-Encoding"] == "gzip"


def test_compressed_bundle_is_refused(http_server: HttpServer, tmp_path: Any) -> None:
    """A bundle is asked for as identity: a gzip body's bytes are not the file's."""
    body = gzip.compress(b"\0" * 1000, mtime=0)
    headers = {"Content-Encoding": "gzip", "Content-Length": str(len(body))}
    http_server.answer(BUNDLE, 200, headers, body)
    dest = tmp_path / "m.aoe"
    with pytest.raises(DownloadError, match=r"but only identity was asked for"):
        download(http_server.url_for(BUNDLE), dest, max_bytes=CAP, expected_size=1000)
    assert http_server.headers[-1]["Accept-Encoding"] == "identity"
    assert not dest.exists()
    with pytest.raises(DownloadError, match=r"but only identity was asked for"):
        _store(http_server).has_blob(BUNDLE)  # HEAD: the size would be the compressed one


def test_identity_content_encoding_is_the_plain_body(http_server: HttpServer) -> None:
    http_server.answer(DOC, 200, {"Content-Encoding": "identity", "Content-Length": "2"}, b"{}")
    got = _store(http_server).read(DOC, max_bytes=CAP)
    assert got is not None
    assert got.data == b"{}"


# --- conditional requests ----------------------------------------------------------


@pytest.mark.parametrize(
    "known",
    [None, Validators(), Validators(etag="unquoted", last_modified="yesterday")],
    ids=["no-validators", "empty-validators", "only-malformed-validators"],
)
def test_304_when_no_validator_was_sent_is_refused(
    http_server: HttpServer, known: Validators | None
) -> None:
    """A 304 stands for a copy the device holds; to a request naming none it means nothing."""
    http_server.answer(DOC, 304, {"ETag": ETAG})
    with pytest.raises(DownloadError, match="HTTP 304 Not Modified to a request that named no"):
        _store(http_server).read_if_changed(DOC, max_bytes=CAP, known=known)
    sent = http_server.headers[-1]
    assert "If-None-Match" not in sent
    assert "If-Modified-Since" not in sent


def test_304_to_an_unconditional_read_is_refused(http_server: HttpServer) -> None:
    http_server.answer(DOC, 304, {})
    with pytest.raises(DownloadError, match="HTTP 304 Not Modified"):
        _store(http_server).read(DOC, max_bytes=CAP)


def test_304_to_a_conditional_read_is_not_modified(http_server: HttpServer) -> None:
    http_server.answer(DOC, 304, {"ETag": ETAG})
    got = _store(http_server).read_if_changed(DOC, max_bytes=CAP, known=KNOWN)
    assert got == NotModified(KNOWN)
    sent = http_server.headers[-1]
    assert (sent["If-None-Match"], sent["If-Modified-Since"]) == (ETAG, DATE)
    assert sent["Accept-Encoding"] == "gzip"


def test_304_to_a_bundle_download_is_refused(http_server: HttpServer, tmp_path: Any) -> None:
    http_server.answer(BUNDLE, 304, {})
    with pytest.raises(DownloadError, match="HTTP 304 Not Modified"):
        download(http_server.url_for(BUNDLE), tmp_path / "m.aoe", max_bytes=CAP)


def test_200_with_unchanged_body_after_conditional_read_is_accepted(
    http_server: HttpServer,
) -> None:
    """A server may ignore the condition: the document is then simply read again."""
    headers = {"ETag": ETAG, "Content-Length": "14"}
    http_server.answer(DOC, 200, headers, b'{"version": 7}')  # whatever the request says
    store = _store(http_server)
    first = store.read(DOC, max_bytes=CAP)
    assert first is not None
    again = store.read_if_changed(DOC, max_bytes=CAP, known=first.revalidation)
    assert again == first
    assert http_server.headers[-1]["If-None-Match"] == first.revalidation.etag


@pytest.mark.parametrize(
    "etag",
    [
        "unquoted",
        '"no-end',
        '"in"side"',
        '"a", "b"',
        "W/unquoted",
        '"' + "a" * 300 + '"',
        '"caf\u00e9"',
    ],
    ids=["unquoted", "unterminated", "inner-quote", "a-list", "weak-unquoted", "huge", "non-ascii"],
)
def test_forged_etag_is_neither_kept_nor_sent_back(http_server: HttpServer, etag: str) -> None:
    """A validator goes back into a request header: only an RFC 9110 entity-tag may."""
    headers = {"ETag": etag, "Last-Modified": "not a date", "Content-Length": "2"}
    http_server.answer(DOC, 200, headers, b"{}")
    got = _store(http_server).read(DOC, max_bytes=CAP)
    assert got == Stored(b"{}", hashlib.sha256(b"{}").hexdigest(), Validators())
    assert got.revalidation == Validators()  # the next read is unconditional

    forged = Validators(etag=etag, last_modified="not a date")
    _store(http_server).read_if_changed(DOC, max_bytes=CAP, known=forged)
    assert "If-None-Match" not in http_server.headers[-1]
    assert "If-Modified-Since" not in http_server.headers[-1]


def test_two_etags_are_not_a_validator(http_server: HttpServer) -> None:
    http_server.answer(DOC, 200, {"Content-Length": "2", "ETag": ETAG, "etag": '"other"'}, b"{}")
    got = _store(http_server).read(DOC, max_bytes=CAP)
    assert got is not None
    assert got.revalidation.etag is None


def test_weak_etag_is_kept_for_if_none_match(http_server: HttpServer) -> None:
    """Weak comparison is what If-None-Match uses (RFC 9110 §13.1.2); If-Range never gets it."""
    http_server.answer(DOC, 200, {"Content-Length": "2", "ETag": 'W/"7"'}, b"{}")
    store = _store(http_server)
    got = store.read(DOC, max_bytes=CAP)
    assert got is not None
    assert got.revalidation.etag == 'W/"7"'
    store.read_if_changed(DOC, max_bytes=CAP, known=got.revalidation)
    assert http_server.headers[-1]["If-None-Match"] == 'W/"7"'


# --- plain documents ---------------------------------------------------------------


def test_document_shorter_than_announced_is_refused(http_server: HttpServer) -> None:
    headers = {"Content-Length": "100", "Connection": "close"}
    http_server.answer(DOC, 200, headers, b'{"version": 7}')
    with pytest.raises(DownloadError, match="closed after 14 of 100 bytes"):
        _store(http_server).read(DOC, max_bytes=CAP)


@pytest.mark.parametrize("status", [203, 204, 206])
def test_document_with_another_success_status_is_refused(
    http_server: HttpServer, status: int
) -> None:
    http_server.answer(DOC, status, {"Content-Length": "2"}, b"{}")
    with pytest.raises(DownloadError, match=f"unexpected HTTP {status} for a document"):
        fetch_document(http_server.url_for(DOC), max_bytes=CAP, known=None)


def test_conditions_and_accepted_coding_follow_a_redirect(http_server: HttpServer) -> None:
    """A CDN that redirects to a mirror still gets a conditional, gzip-accepting request."""
    http_server.redirect(DOC, http_server.url_for("mirror/manifest.json"))
    http_server.answer("mirror/manifest.json", 304, {"ETag": ETAG})
    got = _store(http_server).read_if_changed(DOC, max_bytes=CAP, known=KNOWN)
    assert got == NotModified(KNOWN)
    assert [path for _, path, _ in http_server.requests] == [DOC, "mirror/manifest.json"]
    sent = http_server.headers[-1]
    assert (sent["If-None-Match"], sent["Accept-Encoding"]) == (ETAG, "gzip")
