"""The reference device-side downloader: bounded, resumable, standard library only.

Android and iOS implementers follow this module, so every step says what it
defends against. Nothing here checks signatures or digests: the caller verifies
the signed root and manifest, and each bundle's SHA-256 and size from the
manifest, after the bytes are on disk. This module only guarantees that a
hostile or broken server cannot make the device store more bytes than allowed,
hold it longer than its time limits (:mod:`aoe_pack.storage._transfer`), mix
two versions of a file in one resumed download, or follow it somewhere other
than HTTP(S).

:class:`HttpStore` reads ``http://``, ``https://`` and ``file://`` repositories
and plain local folders (turned into ``file://`` URLs and read through the same
urllib code path; they cannot resume, so an interrupted copy restarts).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
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
from aoe_pack.storage.store import Stored

__all__ = ["HttpStore", "TransferLimits", "download", "fetch_bytes"]

CHUNK = 256 * 1024  # bounded memory whatever the file size
MAX_REDIRECTS = 4
_SCHEMES = ("http", "https", "file")
_READ_ONLY = (
    "read-only: HTTP repositories are published with a folder, s3:// or oci:// destination "
    "and served as static files"
)
_MAX_SIDECAR = 64 * 1024  # a URL, a validator and a size; more is not ours
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")

Progress = Callable[[int, int | None], None]
_HASH_BLOCK = 1 << 20


class _Response(Protocol):
    status: int | None
    headers: Message

    def read1(self, amt: int, /) -> bytes: ...
    def close(self) -> None: ...


class _RestartError(DownloadError):
    """The server's answer to a range request cannot extend our partial file."""


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
    with limited(url, limits):
        return _fetch_bytes(url, max_bytes, limits.idle)


def _fetch_bytes(url: str, max_bytes: int, timeout: float) -> tuple[bytes, str | None] | None:
    response = _open(url, {}, timeout)
    if response is None:
        return None
    with contextlib.closing(response):
        total = _number(response.headers.get("Content-Length"), url)
        _check_total(url, total, max_bytes, None)
        bound, why = (max_bytes, "the cap") if total is None else (total, "the announced size")
        return b"".join(_chunks(response, bound, 0, url, why)), response.headers.get("ETag")


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
    size, _ = _download(url, dest, max_bytes, expected_size, limits, progress, hashed=False)
    return size


def download_hashed(
    url: str,
    dest: Path,
    *,
    max_bytes: int,
    expected_size: int | None = None,
    limits: TransferLimits = DEFAULT_LIMITS,
    progress: Progress | None = None,
) -> tuple[int, str]:
    """:func:`download`, with the SHA-256 of what ``dest`` holds: (size, hex digest).

    The bytes are hashed as they arrive, so a device need not read the file
    again to match it with its release; a resumed download hashes the bytes
    already on disk first, read through the very descriptor it appends to.
    """
    size, digest = _download(url, dest, max_bytes, expected_size, limits, progress, hashed=True)
    assert digest is not None  # hashed=True always hashes
    return size, digest


def _download(
    url: str,
    dest: Path,
    max_bytes: int,
    expected_size: int | None,
    limits: TransferLimits,
    progress: Progress | None,
    *,
    hashed: bool,
) -> tuple[int, str | None]:
    if expected_size is not None and expected_size > max_bytes:
        raise DownloadTooLargeError(f"{url}: expects {expected_size} bytes, cap {max_bytes}")
    try:
        with Folder(dest.parent) as folder, limited(url, limits):
            job = _Download(url, folder, dest.name, max_bytes, expected_size, limits.idle, progress)
            try:
                return job.run(hashed=hashed)
            except _RestartError:
                job.discard()  # no partial file, so no range request: no loop
                return job.run(hashed=hashed)
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

    def discard(self) -> None:
        self.folder.remove(self.part)
        self.folder.remove(self.meta)

    def run(self, *, hashed: bool = False) -> tuple[int, str | None]:
        """(size, SHA-256 hex digest if ``hashed``); a fresh hash on every try."""
        self.hasher = hashlib.sha256() if hashed else None
        have, validator = self._resume_point()
        if have and have == self.expected:  # complete when the last try stopped:
            fd = self._open_part(have)  # don't over-read
            os.close(fd)
            return self._done(have)
        headers = {"Range": f"bytes={have}-", "If-Range": validator} if have else {}
        response = _open(self.url, headers, self.timeout)
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
        return self._done(have)

    def _done(self, size: int) -> tuple[int, str | None]:
        self.folder.replace(self.part, self.name)  # atomic: never a partial file under name
        self.folder.remove(self.meta)
        return size, self.hasher.hexdigest() if self.hasher is not None else None

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
            return self.folder.create(self.part)
        flags = os.O_APPEND | (os.O_RDWR if self.hasher is not None else os.O_WRONLY)
        fd = self.folder.open_file(self.part, flags)
        if fd is not None and os.fstat(fd).st_size == have:
            try:
                self._hash_kept(fd, have)
            except BaseException:
                os.close(fd)
                raise
            return fd
        if fd is not None:
            os.close(fd)
        raise _RestartError(f"{self.url}: the partial file changed while resuming")

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
    climb out of the repository (``..``) or turn into another URL.
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
        """The document and its ETag (SHA-256 of the bytes when the server sends none)."""
        got = fetch_bytes(self._join(name), max_bytes=max_bytes, limits=self._limits)
        if got is None:
            return None
        data, etag = got
        return Stored(data, etag or hashlib.sha256(data).hexdigest())

    def fetch_blob(self, name: str, dest: Path, *, max_bytes: int) -> None:
        download(self._join(name), dest, max_bytes=max_bytes, limits=self._limits)

    def fetch_blob_hashed(self, name: str, dest: Path, *, max_bytes: int) -> tuple[int, str]:
        """:meth:`fetch_blob`, hashing while receiving: (size, SHA-256 hex digest)."""
        return download_hashed(self._join(name), dest, max_bytes=max_bytes, limits=self._limits)

    def has_blob(self, name: str) -> int | None:
        url = self._join(name)
        with limited(url, self._limits):
            response = _open(url, {}, self._limits.idle, method="HEAD")
        if response is None:
            return None
        response.close()
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
