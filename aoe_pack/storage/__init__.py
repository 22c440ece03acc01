"""Where repository files live, and how their bytes move.

One :class:`~aoe_pack.storage.store.Store` protocol with four backends: a local
folder (``local``), fsspec for object storage such as S3 (``fsspec_store``), an
OCI registry (``oci``) and read-only HTTP as devices use it (``http``).
:func:`open_store` picks one from a ``--repo`` URL. Both the publishing side
(:mod:`aoe_pack.publish`) and the device side (:mod:`aoe_pack.client`) sit on
this package; it imports neither, the way python-tuf keeps fetching behind its
``FetcherInterface``.
"""

from aoe_pack.storage.open import open_store
from aoe_pack.storage.store import (
    MANIFEST,
    ROOT,
    NotModified,
    Store,
    Stored,
    Validators,
    bundle_name,
    read_if_changed,
    root_name,
)

__all__ = [
    "MANIFEST",
    "ROOT",
    "NotModified",
    "Store",
    "Stored",
    "Validators",
    "bundle_name",
    "open_store",
    "read_if_changed",
    "root_name",
]
