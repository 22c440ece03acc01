"""A :class:`~aoe_pack.storage.store.Store` for object storage, through fsspec.

fsspec gives one API over s3://, gs://, az://, memory:// and more, so reads work
everywhere. Publishing safely needs more than fsspec offers: ``manifest.json``
must change by compare-and-swap, or two publishers racing would silently lose a
release. Where the backend has a real conditional write we use it:

- s3:// -- ``PutObject`` with ``If-None-Match: *`` / ``If-Match: <ETag>``
  (AWS S3 since 2024; moto, MinIO, R2 too). The token is the ETag of the very
  ``GetObject`` response that carried the bytes, so data and token belong together;
- memory:// -- a process-wide lock, enough for the in-process store it is.

Reads are conditional on s3:// too (:meth:`FsspecStore.read_if_changed`):
``GetObject`` with ``IfNoneMatch: <ETag>`` answers ``304`` without a body
when the object is unchanged, so a publisher or device re-reading an
unchanged document pays for the request alone. Other schemes read and compare
the token.

Other schemes refuse to write (:meth:`FsspecStore.replace` and :meth:`put_blob`)
rather than pretend: a check-then-write on gs:// or az:// would be a race.

The endpoint and credentials of s3:// come from botocore's usual sources:
``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, profiles...
botocore honours the endpoint variables itself, so nothing is read here.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aoe_pack._io import atomic_output
from aoe_pack.errors import (
    DownloadError,
    DownloadTooLargeError,
    StoreConflictError,
    StoreError,
    UsageError,
)
from aoe_pack.storage.store import NotModified, Stored, Validators

_S3 = frozenset({"s3", "s3a"})
_MEMORY = frozenset({"memory"})
_CAS_SCHEMES = "s3:// (and memory:// for tests)"
_CONFLICT_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})
_NOT_MODIFIED_CODES = frozenset({"304", "NotModified"})  # botocore's code for a bodiless 304
_BLOCK = 8 << 20  # download chunk: bounded memory, few requests
_MIN_PART = 5 << 20  # S3's smallest multipart part
_MAX_PARTS = 10_000  # S3's largest number of parts
_MEMORY_LOCK = threading.Lock()  # memory:// lives in this process, so this lock is its CAS


def _s3_code(error: BaseException) -> str:
    """The S3 error code behind an exception (s3fs wraps ClientError in OSError)."""
    for exc in (error, error.__cause__):
        response = getattr(exc, "response", None)
        if isinstance(response, dict):
            return str(response.get("Error", {}).get("Code", ""))
    return ""


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FsspecStore:
    """A repository at ``scheme://bucket/prefix``: see the module docstring."""

    plain_files = True
    """Documents are files a web server can serve as they are (with gzip siblings)."""

    def __init__(self, url: str, fs: Any, root: str) -> None:
        protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
        self._url = url
        self._fs = fs
        self._root = root.rstrip("/")
        self._scheme = url.partition("://")[0]
        self._kind = "s3" if protocols & _S3 else "memory" if protocols & _MEMORY else None
        self._errors: tuple[type[BaseException], ...] = (OSError, ValueError)
        if self._kind == "s3":  # botocore's own (connection, credentials) are not OSErrors
            from botocore.exceptions import BotoCoreError

            self._errors = (*self._errors, BotoCoreError)

    @classmethod
    def from_url(cls, url: str, *, storage_options: dict[str, Any] | None = None) -> FsspecStore:
        """Open the repository at any fsspec URL; nothing is contacted yet."""
        scheme, sep, _ = url.partition("://")
        if not sep or not scheme:
            raise UsageError(f"not a storage URL: {url!r}", hint="write scheme://bucket/prefix")
        try:
            import fsspec.core
        except ImportError as e:
            raise StoreError(
                f"publishing to {scheme}:// needs the publish extra",
                hint="pip install 'aoe-pack[publish]'",
            ) from e
        # A private instance: fsspec's shared cache would hand every store the
        # same client, whose close() would break the others, and stale listings.
        options = {"skip_instance_cache": True, **(storage_options or {})}
        try:
            fs, root = fsspec.core.url_to_fs(url, **options)
        except ImportError as e:
            raise StoreError(
                f"publishing to {scheme}:// needs a package that is not installed: {e}",
                hint="pip install 'aoe-pack[publish]'" if scheme in _S3 else None,
            ) from e
        except ValueError as e:
            raise UsageError(f"cannot open {url}: {e}") from e
        store = cls(url, fs, root)
        if store._kind == "s3" and not store._root:
            raise UsageError(f"{url} names no bucket", hint="write s3://bucket/prefix")
        return store

    @property
    def url(self) -> str:
        return self._url

    def _path(self, name: str) -> str:
        """``name`` under the prefix; a name that could escape it is a bug, refused."""
        parts = name.split("/")
        if name.startswith("/") or "\\" in name or any(p in {"", ".", ".."} for p in parts):
            raise StoreError(f"refusing unsafe document name {name!r} in {self._url}")
        return f"{self._root}/{name}" if self._root else name

    @contextmanager
    def _wrapped(self, action: str) -> Iterator[None]:
        """Turn the backend's own exceptions into :class:`StoreError`."""
        try:
            yield
        except self._errors as e:
            raise StoreError(f"{action} failed: {e}") from e

    def _run(self, func: Any, *args: Any) -> Any:
        """Run an async s3fs helper on fsspec's I/O loop and wait for it."""
        from fsspec.asyn import sync

        return sync(self._fs.loop, func, *args)

    def _no_cas(self) -> StoreError:
        return StoreError(
            f"compare-and-swap publishing to {self._scheme}:// is not supported yet"
            f" (reading works); publishing supports {_CAS_SCHEMES}",
            hint="publish to s3:// or a local folder",
        )

    # --- documents --------------------------------------------------------------------

    def read(self, name: str, *, max_bytes: int) -> Stored | None:
        path = self._path(name)
        with self._wrapped(f"reading {self._url}/{name}"):
            if self._kind == "s3":
                result: Stored | None = self._run(self._s3_read, path, max_bytes, None)
                return result
            if self._kind == "memory":
                with _MEMORY_LOCK:
                    return self._read_generic(path, max_bytes)
            return self._read_generic(path, max_bytes)

    def read_if_changed(
        self, name: str, *, max_bytes: int, known: Validators | None
    ) -> Stored | NotModified | None:
        """:meth:`read`, or :class:`NotModified` while the token is still ``known.etag``.

        On s3:// the server compares (``IfNoneMatch``) and sends no body when
        it matches; elsewhere the document is read and its token compared.
        """
        etag = None if known is None else known.etag
        if self._kind == "s3" and etag:
            path = self._path(name)
            with self._wrapped(f"reading {self._url}/{name}"):
                got: Stored | NotModified | None = self._run(self._s3_read, path, max_bytes, known)
                return got
        doc = self.read(name, max_bytes=max_bytes)
        if doc is not None and known is not None and etag == doc.token:
            return NotModified(known)
        return doc

    async def _s3_read(
        self, path: str, max_bytes: int, known: Validators | None
    ) -> Stored | NotModified | None:
        """One GetObject: the length, bytes and ETag all come from the same response.

        With ``known``, conditional on its ETag: a 304 (no body) is
        :class:`NotModified`.
        """
        bucket, key, _ = self._fs.split_path(path)
        condition = {} if known is None or not known.etag else {"IfNoneMatch": known.etag}
        try:
            response = await self._fs._call_s3("get_object", Bucket=bucket, Key=key, **condition)
        except FileNotFoundError as e:
            if _s3_code(e) == "NoSuchKey":
                return None
            raise  # NoSuchBucket is an error, not an empty repository
        except OSError as e:
            if known is not None and condition and _s3_code(e) in _NOT_MODIFIED_CODES:
                return NotModified(known)
            raise
        body = response["Body"]
        try:
            if int(response.get("ContentLength", 0)) > max_bytes:
                raise self._too_large(path, max_bytes)
            chunks: list[bytes] = []
            remaining = max_bytes + 1  # never more, even if the length header lies
            while remaining > 0 and (chunk := await body.read(remaining)):
                chunks.append(chunk)
                remaining -= len(chunk)
        finally:
            body.close()
        if remaining <= 0:
            raise self._too_large(path, max_bytes)
        return Stored(b"".join(chunks), str(response["ETag"]))

    def _read_generic(self, path: str, max_bytes: int) -> Stored | None:
        """Size check, then a capped read; the token is the digest of what was read."""
        try:
            if int(self._fs.info(path)["size"]) > max_bytes:
                raise self._too_large(path, max_bytes)
            with self._fs.open(path, "rb") as f:
                data: bytes = f.read(max_bytes + 1)
        except FileNotFoundError:
            return None
        if len(data) > max_bytes:
            raise self._too_large(path, max_bytes)
        return Stored(data, _digest(data))

    def _too_large(self, path: str, max_bytes: int) -> DownloadTooLargeError:
        return DownloadTooLargeError(f"{self._scheme}://{path} is larger than {max_bytes} bytes")

    def replace(self, name: str, data: bytes, *, expected: str | None) -> str:
        path = self._path(name)
        if self._kind is None:
            raise self._no_cas()
        what = "was created by another writer" if expected is None else "changed since it was read"
        lost = StoreConflictError(f"{self._url}/{name} {what}")
        with self._wrapped(f"writing {self._url}/{name}"):
            if self._kind == "memory":
                with _MEMORY_LOCK:
                    current = self._fs.cat_file(path) if self._fs.exists(path) else None
                    if (None if current is None else _digest(current)) != expected:
                        raise lost
                    self._fs.pipe_file(path, data)
                return _digest(data)
            bucket, key, _ = self._fs.split_path(path)
            condition = {"IfNoneMatch": "*"} if expected is None else {"IfMatch": expected}
            try:
                response = self._fs.call_s3(
                    "put_object", Bucket=bucket, Key=key, Body=data, **condition
                )
            except OSError as e:
                code = _s3_code(e)
                # If-Match on a document deleted since the read: lost the race too.
                if code in _CONFLICT_CODES or (code == "NoSuchKey" and expected is not None):
                    raise lost from e
                raise
            return str(response["ETag"])

    # --- blobs ------------------------------------------------------------------------

    def put_blob(self, name: str, source: Path, *, sha256: str, size: int) -> None:
        """Upload unless present; refused early where :meth:`replace` would be."""
        path = self._path(name)
        if self._kind is None:
            raise self._no_cas()  # before uploading gigabytes that could not be published
        if self.has_blob(name) == size:
            return
        with self._wrapped(f"uploading {source} to {self._url}/{name}"):
            if self._kind == "s3":
                # put_file streams: one PUT below two parts, else a multipart upload
                # that becomes visible only when completed. Explicit part size keeps
                # memory to a few parts and stays within S3's 10,000-part limit.
                part = max(_MIN_PART, -(-size // _MAX_PARTS))
                self._fs.put_file(str(source), path, chunksize=part)
            else:
                self._fs.put_file(str(source), path)

    def has_blob(self, name: str) -> int | None:
        path = self._path(name)
        with self._wrapped(f"looking up {self._url}/{name}"):
            try:
                info = self._fs.info(path)
            except FileNotFoundError:
                return None
        return int(info["size"]) if info.get("type") == "file" else None

    def fetch_blob(self, name: str, dest: Path, *, max_bytes: int) -> None:
        path = self._path(name)
        size = self.has_blob(name)
        if size is None:
            raise DownloadError(f"{self._url}/{name} does not exist")
        if size > max_bytes:
            raise self._too_large(path, max_bytes)
        with (  # atomic: a failure leaves nothing under ``dest``, and a link there is not followed
            self._wrapped(f"downloading {self._url}/{name}"),
            self._fs.open(path, "rb", block_size=_BLOCK) as src,
            atomic_output(dest) as out,
        ):
            self._copy_capped(src, out, path, max_bytes)

    def _copy_capped(self, src: Any, out: Any, path: str, max_bytes: int) -> None:
        total = 0
        while chunk := src.read(_BLOCK):
            total += len(chunk)
            if total > max_bytes:
                raise self._too_large(path, max_bytes)
            out.write(chunk)

    def close(self) -> None:
        """Close the s3 client's HTTP session now rather than at interpreter exit."""
        creator = getattr(self._fs, "_s3creator", None) if self._kind == "s3" else None
        if creator is not None:
            self._fs.close_session(self._fs.loop, creator)
            self._fs._s3 = None
