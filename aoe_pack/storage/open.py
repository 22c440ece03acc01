"""Turn ``--repo`` into a :class:`~aoe_pack.storage.store.Store`.

- a path or ``file://`` URL: a local folder (the default, nothing to install);
- ``oci://host/repo``: an OCI registry through oras-py (``[publish]`` extra);
- ``http://`` / ``https://``: read-only, as devices read a served folder;
- any other ``scheme://``: fsspec (``s3://`` through s3fs, ``[publish]`` extra).

Backends that need an extra are imported only when asked for.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path

from aoe_pack.errors import UsageError
from aoe_pack.storage.local import LocalStore
from aoe_pack.storage.store import Store


def open_store(url: str, *, plain_http: bool | None = None, timeout: float | None = None) -> Store:
    """The store for ``url`` (see the module docstring).

    ``timeout`` is the deadline of each download from an ``http(s)://``
    repository (see :class:`aoe_pack.storage.http.TransferLimits`); the other
    backends have their own, so asking them for one is a usage error.
    """
    scheme = urllib.parse.urlsplit(url).scheme if "://" in url else ""
    if timeout is not None and scheme not in ("http", "https"):
        raise UsageError(
            "--timeout applies to http(s):// repositories",
            hint="folders, s3:// and oci:// repositories use their backends' own timeouts",
        )
    if scheme in ("", "file"):
        return LocalStore(Path(_file_path(url) if scheme == "file" else url))
    if scheme == "oci":
        from aoe_pack.storage.oci import OciStore

        return OciStore.from_url(url, plain_http=plain_http)
    if scheme in ("http", "https"):
        from aoe_pack.storage.http import HttpStore, TransferLimits

        if timeout is None:
            return HttpStore(url)
        return HttpStore(url, limits=TransferLimits(deadline=timeout))
    from aoe_pack.storage.fsspec_store import FsspecStore

    return FsspecStore.from_url(url)


def _file_path(url: str) -> str:
    """The local path of a ``file://`` URL: unquoted (``%20``), and on Windows
    ``file:///C:/repo`` is ``C:\\repo``, not ``/C:/repo``."""
    from urllib.request import url2pathname

    return url2pathname(urllib.parse.urlsplit(url).path)
