"""The reference device-side downloader: bounded, resumable, standard library only.

Android and iOS implementers follow this module, so every step says what it
defends against. Nothing here checks signatures or digests: the caller verifies
the signed root and manifest, and each bundle's SHA-256 and size from the
manifest, after the bytes are on disk. This module only guarantees that a
hostile or broken server cannot make the device store more bytes than allowed,
hold it longer than its time limits (:mod:`aoe_pack.storage._transfer`), mix
two versions of a file in one resumed download, or follow it somewhere other
than HTTP(S).

Documents (roots, manifests) are read with conditional requests and may come
compressed: :meth:`HttpStore.read_if_changed` sends the validators of the copy
the device holds (``If-None-Match``, ``If-Modified-Since``), so an unchanged
document costs a ``304`` and no body, and every document request says
``Accept-Encoding: gzip``. A gzip body is inflated as it arrives, the cap
counting the inflated bytes, so a small "gzip bomb" cannot make the device
hold more than the cap. Bundles are asked for with ``Accept-Encoding:
identity``: their ranges, their resume and their SHA-256 are those of the file.

:class:`HttpStore` reads ``http://``, ``https://`` and ``file://`` repositories
and plain local folders (turned into ``file://`` URLs and read through the same
urllib code path; they cannot resume, so an interrupted copy restarts).
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import http.client
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import IO, Protocol

from aoe_pack._io import Folder
from aoe_pack.errors import DownloadError, DownloadTooLargeError, StoreError, UsageError
from aoe_pack.storage._transfer import (
    DEFAULT_LIMITS,
    HTTPHandler,
    HTTPSHandler,
    TransferLimits,
    limited,
)
from aoe_pack.storage.store import HashedBlob, NotModified, Stored, Validators

__all__ = ["HttpStore", "TransferLimits", "download", "fetch_bytes", "fetch_document"]

CHUNK = 256 * 1024  # bounded memory whatever the file size
MAX_REDIRECTS = 4
_SCHEMES = ("http", "https", "file")
_READ_ONLY = (
    "read-only: HTTP repositories are published with a folder, s3:// or oci:// destination "
    "and served as static files"
)
_MAX_SIDECAR = 64 * 1024  # a URL, a validator and a size; more is not ours
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
# RFC 9110 §8.8.3 entity-tag, printable ASCII only: a validator is sent back in a
# header, so anything else (a forged value, a control character) is never kept.
_ETAG = re.compile(r'(?:W/)?"[\x21\x23-\x7e]*"')
_MAX_VALIDATOR = 256  # an ETag or an HTTP-date is tens of bytes; more is not a validator
# What a document request accepts on the wire; bundles take the file as it is.
_DOCUMENT_CODINGS = ("gzip",)
_ACCEPT_DOCUMENT = {"Accept-Encoding": ", ".join(_DOCUMENT_CODINGS)}
_ACCEPT_FILE = {"Accept-Encoding": "identity"}

Progress = Callable[[int, int | None], None]
_HASH_BLOCK = 1 << 20


class _Response(Protocol):
    status: int | None
    headers: Message

    def read1(self, amt: int, /) -> bytes: ...
    def close(self) -> None: ...


class _RestartError(DownloadError):
    """The server's answer to a range request cannot extend our partial file."""


class _UnchangedError(DownloadError):
    """HTTP 304: an error unless the request named a version the client holds."""


class _SafeRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a few HTTP(S) redirects, never to another scheme, never https -> http.

    urllib would follow a redirect to ``ftp://``, and a downgrade to plain HTTP
    would reveal which model a device fetches; a loop is cut after 4 hops.
    """

    max_redirections = MAX_REDIRECTS

    def http_error_302(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
    ) -> IO[bytes] | None:
        # urllib reads a redirect's whole body into memory before following it,
        # with no cap: a hostile server could send gigabytes with its 302. The
        # body is never used, and urllib never reuses a connection, so the
        # response is closed unread; urllib's own read then returns nothing.
        fp.close()
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        old, new = urllib.parse.urlsplit(req.full_url).scheme, urllib.parse.urlsplit(newurl).scheme
        if new not in ("http", "https") or (old, new) == ("https", "http"):
            fp.close()
            raise DownloadError(f"{req.full_url}: refusing a redirect to {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


# HTTP(S) over sockets that honour the download's deadline and minimum rate (_transfer).
_OPENER = urllib.request.build_opener(_SafeRedirects(), HTTPHandler(), HTTPSHandler())


def _open(
    url: str, headers: dict[str, str], timeout: float, method: str = "GET"
) -> _Response | None:
    """Send one request; None on 404/410, DownloadError for everything else that fails.

    ``timeout`` applies to the connection and to every read, so a server that
    stops sending cannot hang the device; the deadline and minimum rate of the
    download under way (:func:`~aoe_pack.storage._transfer.limited`) bound one
    that drips.
    """
    if urllib.parse.urlsplit(url).scheme not in _SCHEMES:
        raise UsageError(f"{url}: only http://, https:// and file:// URLs can be downloaded")
    request = urllib.request.Request(url, headers=headers, method=method)  # noqa: S310 (checked)
    try:
        response: _Response = _OPENER.open(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        e.close()
        if e.code in (404, 410):
            return None
        if e.code == 416:
            raise _RestartError(f"{url}: HTTP 416 {e.reason}") from e
        if e.code == 304:
            raise _UnchangedError(
                f"{url}: HTTP 304 Not Modified to a request that named no version "
                "(no If-None-Match or If-Modified-Since was sent)"
            ) from e
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from e
    except urllib.error.URLError as e:
        if isinstance(e.reason, FileNotFoundError):
            return None
        raise DownloadError(f"{url}: {e.reason}") from e
    except (OSError, http.client.HTTPException, ValueError) as e:
        raise DownloadError(f"{url}: {e}") from e
    return response


def _number(value: str | None, url: str) -> int | None:
    if value is None:
        return None
    if not (value.isascii() and value.strip().isdigit()):
        raise DownloadError(f"{url}: malformed Content-Length {value!r}")
    return int(value)


def _chunks(response: _Response, limit: int, have: int, url: str, why: str) -> Iterator[bytes]:
    """Yield the body, raising as soon as the running total would pass ``limit``.

    Counting what arrives, not trusting headers, is what stops an endless
    stream (no Content-Length) or a lying one (Content-Length plus chunked
    encoding). At most one byte past the limit is ever read, none is yielded.
    ``read1`` returns what has arrived, so a download stopped by a time limit
    keeps it.
    """
    try:
        while chunk := response.read1(max(1, min(CHUNK, limit - have + 1))):
            have += len(chunk)
            if have > limit:
                raise DownloadTooLargeError(
                    f"{url}: more than {limit} bytes ({why}); stopped reading"
                )
            yield chunk
    except (OSError, http.client.HTTPException) as e:
        raise DownloadError(f"{url}: connection failed after {have} bytes: {e}") from e


def _check_total(url: str, total: int | None, max_bytes: int, expected: int | None) -> None:
    """Refuse before reading a body whose announced size is already wrong."""
    if total is not None and total > min(max_bytes, max_bytes if expected is None else expected):
        raise DownloadTooLargeError(
            f"{url}: announces {total} bytes, over the cap of {max_bytes}"
            + ("" if expected is None else f" or the {expected} expected")
        )
    if total is not None and expected is not None and total < expected:
        raise DownloadError(f"{url}: announces {total} bytes but {expected} are expected")


def fetch_bytes(
    url: str, *, max_bytes: int, limits: TransferLimits = DEFAULT_LIMITS
) -> tuple[bytes, str | None] | None:
    """A small document (root, manifest) in memory with its ETag; None when missing."""
    got = fetch_document(url, max_bytes=max_bytes, limits=limits, known=None)
    assert not isinstance(got, NotModified)  # known=None: a 304 raises
    return None if got is None else (got.data, got.revalidation.etag)


def fetch_document(
    url: str,
    *,
    max_bytes: int,
    known: Validators | None,
    limits: TransferLimits = DEFAULT_LIMITS,
) -> Stored | NotModified | None:
    """A document, or :class:`NotModified` when ``known`` still names it; None when missing.

    ``known`` are the validators of the copy the caller holds: sent as
    ``If-None-Match`` and ``If-Modified-Since`` (each only if well-formed), so
    that a server whose document is unchanged answers ``304`` without a body.
    A ``304`` to a request that sent neither is a protocol error
    (DownloadError): the caller holds nothing it could stand for. The answer's
    ``ETag`` and ``Last-Modified`` become the :class:`Stored` validators, and
    its ETag the token (the SHA-256 of the bytes when it has none). A gzip body
    is inflated; ``max_bytes`` caps the inflated bytes.
    """
    with limited(url, limits):
        return _fetch(url, max_bytes, limits.idle, known)


def _fetch(
    url: str, max_bytes: int, timeout: float, known: Validators | None
) -> Stored | NotModified | None:
    conditions = _conditions(known)
    try:
        response = _open(url, {**_ACCEPT_DOCUMENT, **conditions}, timeout)
    except _UnchangedError:
        if known is None or not conditions:
            raise
        return NotModified(known)
    if response is None:
        return None
    with contextlib.closing(response):
        if response.status not in (200, None):  # None: file:// URLs
            raise DownloadError(f"{url}: unexpected HTTP {response.status} for a document")
        data = _body(response, url, max_bytes)
        validators = _validators(response.headers)
    token = validators.etag or hashlib.sha256(data).hexdigest()
    return Stored(data, token, validators)


def _body(response: _Response, url: str, max_bytes: int) -> bytes:
    """A document's body, as sent or inflated, never more than ``max_bytes``.

    Compressed, ``Content-Length`` counts the bytes on the wire: they are
    held to it, or else to :func:`_compressed_bound`, and the inflated ones
    to the cap. Either way a body that ends before its announced length fails.
    """
    coding = _coding(response.headers, url, _DOCUMENT_CODINGS)
    total = _number(response.headers.get("Content-Length"), url)
    if coding is None:
        _check_total(url, total, max_bytes, None)
        bound, why = (max_bytes, "the cap") if total is None else (total, "the announced size")
        data = b"".join(_chunks(response, bound, 0, url, why))
        received = len(data)
    else:
        wire = _compressed_bound(max_bytes)
        if total is not None and total > wire:
            raise DownloadTooLargeError(
                f"{url}: announces {total} compressed bytes, more than a document of "
                f"{max_bytes} bytes (the cap) can take"
            )
        bound, why = (
            (wire, "the compressed bound") if total is None else (total, "the announced size")
        )
        sizes: list[int] = []
        raw = _counted(_chunks(response, bound, 0, url, why), sizes)
        data = b"".join(_gunzip(raw, max_bytes, url))
        received = sum(sizes)
    if total is not None and received != total:
        raise DownloadError(f"{url}: the server closed after {received} of {total} bytes")
    return data


def _conditions(known: Validators | None) -> dict[str, str]:
    """The conditional headers for the copy ``known`` names (RFC 9110 §13.1)."""
    if known is None:
        return {}
    conditions = {}
    if _is_etag(known.etag):
        conditions["If-None-Match"] = str(known.etag)
    if _is_date(known.last_modified):
        conditions["If-Modified-Since"] = str(known.last_modified)
    return conditions


def _validators(headers: Message) -> Validators:
    """The answer's ETag and Last-Modified, each kept only if well-formed (weak ETags too).

    A weak ETag is fine in If-None-Match (weak comparison, RFC 9110 §13.1.2);
    only If-Range needs a strong one, and :func:`download` keeps to that.
    """
    etags, dates = headers.get_all("ETag") or [], headers.get_all("Last-Modified") or []
    etag = etags[0].strip() if len(etags) == 1 else None
    date = dates[0].strip() if len(dates) == 1 else None
    return Validators(
        etag=etag if _is_etag(etag) else None,
        last_modified=date if _is_date(date) else None,
    )


def _is_etag(value: str | None) -> bool:
    return value is not None and len(value) <= _MAX_VALIDATOR and bool(_ETAG.fullmatch(value))


def _is_date(value: str | None) -> bool:
    if value is None or len(value) > _MAX_VALIDATOR or not value.isascii():
        return False
    if not value.isprintable():
        return False
    try:
        return email.utils.parsedate_to_datetime(value).tzinfo is not None
    except (TypeError, ValueError, IndexError, OverflowError):
        return False


def _coding(headers: Message, url: str, accepted: tuple[str, ...]) -> str | None:
    """The body's content coding: None for the bytes as they are, else one we asked for.

    Anything else (another coding, a coding not asked for, codings stacked)
    is refused rather than guessed: the bytes would be neither the document
    nor a bundle, and inflating a coding we did not plan for has no cap.
    """
    values = headers.get_all("Content-Encoding") or []
    codings = [c.strip().lower() for v in values for c in v.split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings:
        return None
    if len(codings) == 1 and codings[0] in accepted:
        return codings[0]
    asked = ", ".join(accepted) if accepted else "identity"
    raise DownloadError(
        f"{url}: the server sent Content-Encoding: {', '.join(codings)}, "
        f"but only {asked} was asked for; refusing the body",
        hint="a server or CDN that compresses files must honour Accept-Encoding",
    )


def _compressed_bound(max_bytes: int) -> int:
    """The most gzip bytes a document of ``max_bytes`` can take honestly.

    Deflate adds at most 5 bytes per stored block of 64 KiB to data it cannot
    compress (zlib's deflateBound), plus a header and trailer: 0.1 % and 1 KiB
    leave room to spare. It bounds the bytes on the wire, which the inflated
    cap cannot: a gzip header's name and comment fields inflate to nothing.
    """
    return max_bytes + (max_bytes >> 10) + 1024


def _counted(chunks: Iterator[bytes], sizes: list[int]) -> Iterator[bytes]:
    for chunk in chunks:
        sizes.append(len(chunk))
        yield chunk


def _gunzip(chunks: Iterator[bytes], limit: int, url: str) -> Iterator[bytes]:
    """Inflate one gzip member as it arrives, never holding more than ``limit`` + 1 bytes.

    ``max_length`` stops zlib at ``limit - inflated + 1`` bytes, so a bomb (a
    few KiB inflating to gigabytes) is refused after at most one byte past
    the cap. A stream that ends before its trailer (truncated) or goes on
    after it (trailing bytes, a second member) is refused: the bytes that
    were signed are exactly one complete member's content.
    """
    inflater = zlib.decompressobj(wbits=31)  # 31: a gzip header and trailer, no zlib/raw
    have = 0
    try:
        for chunk in chunks:
            pending = chunk
            while pending or not inflater.eof:
                if inflater.eof:
                    raise DownloadError(f"{url}: bytes after the end of the gzip stream")
                room = min(CHUNK, limit - have + 1)
                out = inflater.decompress(pending, room)
                have += len(out)
                if have > limit:
                    raise DownloadTooLargeError(
                        f"{url}: inflates to more than {limit} bytes (the cap); stopped"
                    )
                if out:
                    yield out
                pending = inflater.unconsumed_tail
                if not pending and len(out) < room:
                    break  # all input used and nothing held back: wait for more
            if inflater.unused_data:
                raise DownloadError(f"{url}: bytes after the end of the gzip stream")
    except zlib.error as e:
        raise DownloadError(f"{url}: the gzip body is corrupt: {e}") from e
    if not inflater.eof:
        raise DownloadError(f"{url}: the gzip body ends before its end (truncated)")


def download(
    url: str,
    dest: Path,
    *,
    max_bytes: int,
    expected_size: int | None = None,
    limits: TransferLimits = DEFAULT_LIMITS,
    progress: Progress | None = None,
) -> int:
    """Download ``url`` to ``dest`` and return its size, resuming an interrupted try.

    :func:`download_hashed` does the same and also hashes the bytes.

    Bytes go to ``<dest>.part``; ``<dest>.part.json`` remembers the URL, the
    server's validator (strong ETag, else Last-Modified) and the expected size.
    A resume sends ``Range`` with ``If-Range: <validator>``, so a server whose
    file changed in between answers 200 with the whole new file instead of a
    tail that would splice two versions together. ``dest`` appears (os.replace)
    only when complete: a crash never leaves a truncated file under its name.
    A body that ends early raises DownloadError and keeps the ``.part``; one
    that runs past the cap, the expected or the announced size raises
    DownloadTooLargeError and deletes it (those bytes can never verify); one
    too slow for ``limits`` (a deadline, a minimum average rate) raises
    DownloadTooSlowError and keeps it. ``progress(done, total)`` is called
    after every chunk.
    """
    return _download(url, dest, max_bytes, expected_size, limits, progress, hashed=False).size


def download_hashed(
    url: str,
    dest: Path,
    *,
    max_bytes: int,
    expected_size: int | None = None,
    limits: TransferLimits = DEFAULT_LIMITS,
    progress: Progress | None = None,
) -> HashedBlob:
    """:func:`download`, with the SHA-256 of what ``dest`` holds and which file that is.

    The bytes are hashed as they arrive, so a device need not read the file
    again to match it with its release; a resumed download hashes the bytes
    already on disk first, read through the very descriptor it appends to.
    The digest is of the file written (its ``st_dev`` and ``st_ino``): one
    opened later under ``dest`` is that file only if :meth:`HashedBlob.is_file`.
    """
    job = _download(url, dest, max_bytes, expected_size, limits, progress, hashed=True)
    assert job.hasher is not None  # hashed=True
    assert job.file is not None  # set by _open_part, which every finished try went through
    return HashedBlob(job.size, job.hasher.hexdigest(), job.file)


def _download(
    url: str,
    dest: Path,
    max_bytes: int,
    expected_size: int | None,
    limits: TransferLimits,
    progress: Progress | None,
    *,
    hashed: bool,
) -> _Download:
    if expected_size is not None and expected_size > max_bytes:
        raise DownloadTooLargeError(f"{url}: expects {expected_size} bytes, cap {max_bytes}")
    try:
        with Folder(dest.parent) as folder, limited(url, limits):
            job = _Download(url, folder, dest.name, max_bytes, expected_size, limits.idle, progress)
            try:
                job.run(hashed=hashed)
            except _RestartError:
                job.discard()  # no partial file, so no range request: no loop
                job.run(hashed=hashed)
            return job
    except OSError as e:  # network errors are DownloadErrors already: this is the disk
        raise DownloadError(f"cannot write {dest}: {e.strerror or e}") from e


@dataclass
class _Download:
    """One download into ``folder``: ``name``, ``name.part`` and ``name.part.json``.

    The folder may hold links planted under those names (by another app or
    user): every one is reached through :class:`~aoe_pack._io.folder.Folder`, so the
    partial file is created exclusively or reopened only if it is a regular
    file of ours with no other hard link, the sidecar is replaced by a rename,
    and the final rename replaces whatever is at ``name``: no write ever
    follows a link out of the folder.
    """

    url: str
    folder: Folder
    name: str
    max_bytes: int
    expected: int | None
    timeout: float
    progress: Progress | None

    def __post_init__(self) -> None:
        self.part = self.name + ".part"
        self.meta = self.name + ".part.json"
        self.hasher: hashlib._Hash | None = None
        self.size = 0
        self.file: tuple[int, int] | None = None
        """``(st_dev, st_ino)`` of the partial file written (and hashed), set on its open."""

    def discard(self) -> None:
        self.folder.remove(self.part)
        self.folder.remove(self.meta)

    def run(self, *, hashed: bool = False) -> None:
        """Download into ``part``, then rename it to ``name``: sets ``size`` (and, if
        ``hashed``, ``hasher``, afresh on every try, and ``file``)."""
        self.hasher = hashlib.sha256() if hashed else None
        have, validator = self._resume_point()
        if have and have == self.expected:  # complete when the last try stopped:
            fd = self._open_part(have)  # don't over-read
            os.close(fd)
            self._done(have)
            return
        headers = {"Range": f"bytes={have}-", "If-Range": validator} if have else {}
        response = _open(self.url, {**_ACCEPT_FILE, **headers}, self.timeout)
        if response is None:
            raise DownloadError(f"{self.url}: not found (404)")
        with contextlib.closing(response):
            have, total, validator = self._continue_from(response, have, validator)
            _check_total(self.url, total, self.max_bytes, self.expected)
            if not have:  # a fresh start: remember what a later resume must ask for
                self.folder.remove(self.part)  # (a sidecar torn by a crash won't parse: a restart)
                doc = {"url": self.url, "validator": validator, "expected_size": self.expected}
                with self.folder.output(self.meta) as f:
                    f.write(json.dumps(doc).encode())
            have = self._receive(response, have, total)
        want = self.expected if self.expected is not None else total
        if want is not None and have != want:
            raise DownloadError(
                f"{self.url}: the server closed after {have} of {want} bytes; "
                f"the partial download is kept in {self.folder.path / self.part} to resume"
            )
        self._done(have)

    def _done(self, size: int) -> None:
        self.folder.replace(self.part, self.name)  # atomic: never a partial file under name
        self.folder.remove(self.meta)
        self.size = size

    def _resume_point(self) -> tuple[int, str]:
        """How many bytes of ``part`` can be kept, and the validator they came with.

        Without a validator saved for this very URL and size, a partial file
        could be anything (another file, another version): never append to it.
        Nor to a ``part`` (or trust a sidecar) that is not a regular file of
        ours under that one name: a link, or a hard link's other name, would
        take our writes elsewhere or let someone change it behind our back.
        Such a file, or a sidecar that does not parse, is discarded: the
        download starts again.
        """
        raw = self.folder.read(self.meta, limit=_MAX_SIDECAR)
        part = self.folder.own_file(self.part)
        if raw is None or part is None:
            return 0, ""
        try:
            state = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: nested too deep
            return 0, ""
        have = part.st_size
        mine = {"url": self.url, "expected_size": self.expected}
        if not isinstance(state, dict) or any(state.get(k) != v for k, v in mine.items()):
            return 0, ""
        validator = state.get("validator")
        cap = self.max_bytes if self.expected is None else self.expected
        if not isinstance(validator, str) or not validator or have > cap:
            return 0, ""
        return have, validator

    def _continue_from(
        self, response: _Response, have: int, validator: str
    ) -> tuple[int, int | None, str]:
        """(bytes kept, full size if announced, validator) for this response.

        206 must continue exactly where the partial file ends; 200 (the file
        changed, or the server ignores ranges) means starting again from zero.
        """
        headers = response.headers
        _coding(headers, self.url, ())  # the file's own bytes, or its SHA-256 and ranges fail
        if have and response.status == 206:
            match = _CONTENT_RANGE.fullmatch(headers.get("Content-Range", "").strip())
            start, end, size = match.groups() if match else ("", "-1", "")
            total = int(size) if size.isdigit() else None
            if start != str(have) or int(end) < have or total not in (None, int(end) + 1):
                raise _RestartError(f"{self.url}: answered a range we did not ask for")
            return have, total, validator
        if response.status not in (200, None):  # None: file:// URLs
            raise DownloadError(f"{self.url}: unexpected HTTP {response.status}")
        etag = headers.get("ETag") or ""
        strong = "" if etag.startswith("W/") else etag  # If-Range takes only a strong ETag
        total = _number(headers.get("Content-Length"), self.url)
        return 0, total, strong or headers.get("Last-Modified", "")

    def _receive(self, response: _Response, have: int, total: int | None) -> int:
        """Append the body to ``part``, fsynced so that a resume after a crash is sound."""
        bound, why = self.max_bytes, "the cap"
        for size, name in ((self.expected, "the expected size"), (total, "the announced size")):
            if size is not None and size < bound:
                bound, why = size, name
        full = self.expected if total is None else total
        fd = self._open_part(have)
        try:
            with os.fdopen(fd, "ab") as out:
                for chunk in _chunks(response, bound, have, self.url, why):
                    out.write(chunk)
                    if self.hasher is not None:
                        self.hasher.update(chunk)
                    have += len(chunk)
                    if self.progress is not None:
                        self.progress(have, full)
                out.flush()
                os.fsync(out.fileno())
        except DownloadTooLargeError:
            self.discard()  # past a size we trust: can never verify
            raise
        return have

    def _open_part(self, have: int) -> int:
        """The partial file: created anew (exclusively), or the very file measured to resume.

        When hashing, the ``have`` bytes kept are hashed first, through the
        descriptor that appends the rest (read back, not trusted from the sidecar).
        """
        if not have:
            return self._remember(self.folder.create(self.part))
        flags = os.O_APPEND | (os.O_RDWR if self.hasher is not None else os.O_WRONLY)
        kept = self.folder.open_file(self.part, flags)
        if kept is not None and os.fstat(kept).st_size == have:
            try:
                self._hash_kept(kept, have)
            except BaseException:
                os.close(kept)
                raise
            return self._remember(kept)
        if kept is not None:
            os.close(kept)
        raise _RestartError(f"{self.url}: the partial file changed while resuming")

    def _remember(self, fd: int) -> int:
        """``fd``, the file written from now on: its identity is what was hashed."""
        st = os.fstat(fd)
        self.file = (st.st_dev, st.st_ino)
        return fd

    def _hash_kept(self, fd: int, have: int) -> None:
        if self.hasher is None:
            return
        done = 0
        while done < have:
            block = os.pread(fd, min(_HASH_BLOCK, have - done), done)
            if not block:
                raise _RestartError(f"{self.url}: the partial file shrank while resuming")
            self.hasher.update(block)
            done += len(block)


class HttpStore:
    """A read-only :class:`~aoe_pack.storage.store.Store` over a served repository.

    ``url`` is an ``http(s)://`` or ``file://`` base URL, or a local folder.
    Document names are checked so that a name from a hostile manifest cannot
    climb out of the repository (``..``) or turn into another URL. It is a
    :class:`~aoe_pack.storage.store.ConditionalStore`: documents are read with
    the validators the caller holds, and may arrive gzip-compressed.
    """

    def __init__(self, url: str, *, limits: TransferLimits = DEFAULT_LIMITS) -> None:
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme in _SCHEMES:
            base = url
        elif len(scheme) <= 1:  # a path (a Windows drive letter parses as a scheme)
            base = Path(url).resolve().as_uri()
        else:
            raise UsageError(f"{url}: not an http://, https:// or file:// repository")
        self._url, self._base, self._limits = url, base.rstrip("/") + "/", limits

    @property
    def url(self) -> str:
        return self._url

    def _join(self, name: str) -> str:
        parts = name.split("/")
        if "\\" in name or any(p in ("", ".", "..") for p in parts):
            raise StoreError(f"unsafe document name {name!r}")
        return self._base + urllib.parse.quote(name, safe="/")

    def read(self, name: str, *, max_bytes: int) -> Stored | None:
        """The document, its token (ETag, or SHA-256 of the bytes) and its validators."""
        got = self.read_if_changed(name, max_bytes=max_bytes, known=None)
        assert not isinstance(got, NotModified)  # known=None: a 304 raises
        return got

    def read_if_changed(
        self, name: str, *, max_bytes: int, known: Validators | None
    ) -> Stored | NotModified | None:
        """A conditional GET of the document (:func:`fetch_document`)."""
        return fetch_document(
            self._join(name), max_bytes=max_bytes, known=known, limits=self._limits
        )

    def fetch_blob(self, name: str, dest: Path, *, max_bytes: int) -> None:
        download(self._join(name), dest, max_bytes=max_bytes, limits=self._limits)

    def fetch_blob_hashed(self, name: str, dest: Path, *, max_bytes: int) -> HashedBlob:
        """:meth:`fetch_blob`, hashing while receiving (:func:`download_hashed`)."""
        return download_hashed(self._join(name), dest, max_bytes=max_bytes, limits=self._limits)

    def has_blob(self, name: str) -> int | None:
        url = self._join(name)
        with limited(url, self._limits):
            response = _open(url, _ACCEPT_FILE, self._limits.idle, method="HEAD")
        if response is None:
            return None
        response.close()
        _coding(response.headers, url, ())
        size = _number(response.headers.get("Content-Length"), url)
        if size is None:
            raise DownloadError(f"{url}: HEAD answered without a Content-Length")
        return size

    def replace(self, name: str, data: bytes, *, expected: str | None) -> str:
        raise StoreError(_READ_ONLY)

    def put_blob(self, name: str, source: Path, *, sha256: str, size: int) -> None:
        raise StoreError(_READ_ONLY)

    def close(self) -> None:
        """Nothing to release: every request opens and closes its own connection."""
