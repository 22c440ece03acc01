"""Conditional and compressed document reads against the Python test server.

The same behaviours as tests/storage/test_http_nginx.py, from the server the
macOS and Windows jobs also have (they have no nginx): a 304 for the copy
held, a 200 with new validators once the file changed, a ``.gz`` sibling
read back as the plain bytes.
"""

from __future__ import annotations

import gzip
import os

from _server_http import HttpServer

from aoe_pack.storage.http import HttpStore
from aoe_pack.storage.store import NotModified, Stored, read_if_changed

CAP = 1 << 20
DOC = "index.json"


def test_unchanged_document_is_not_modified_then_changed_is_read(
    http_server: HttpServer,
) -> None:
    path = http_server.root / DOC
    path.write_bytes(b'{"version": 1}')
    store = HttpStore(http_server.url)
    first = store.read(DOC, max_bytes=CAP)
    assert first is not None
    known = first.revalidation
    assert read_if_changed(store, DOC, max_bytes=CAP, known=known) == NotModified(known)
    assert http_server.headers[-1]["If-None-Match"] == known.etag

    path.write_bytes(b'{"version": 2}')
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    got = read_if_changed(store, DOC, max_bytes=CAP, known=known)
    assert isinstance(got, Stored)
    assert got.data == b'{"version": 2}'
    assert got.revalidation.etag != known.etag


def test_gz_sibling_is_read_as_the_plain_document(http_server: HttpServer) -> None:
    data = b'{"releases": []}' * 1000
    (http_server.root / DOC).write_bytes(data)
    (http_server.root / f"{DOC}.gz").write_bytes(gzip.compress(data, mtime=0))
    store = HttpStore(http_server.url)
    got = store.read(DOC, max_bytes=CAP)
    assert got is not None
    assert got.data == data
    assert store.read_if_changed(DOC, max_bytes=CAP, known=got.revalidation) == NotModified(
        got.revalidation
    )
