"""Build, co-sign, verify, inspect and unpack ``.aoe`` bundles (format v1, docs/format.md).

``verify``, ``inspect`` and ``unpack`` only need the base install; nothing
here imports an ML framework.

Each name is imported from its module when first used: ``verify`` loads
neither the builder nor the config validation behind it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aoe_pack.bundle._chunked import Progress, worker_count
    from aoe_pack.bundle.build import BuildResult, EncryptionSpec, build_bundle
    from aoe_pack.bundle.cosign import SignResult, add_signatures
    from aoe_pack.bundle.format import DEFAULT_LIMITS, Limits
    from aoe_pack.bundle.inspect import InspectResult, inspect_bundle
    from aoe_pack.bundle.manifest import BundleManifest
    from aoe_pack.bundle.unpack import UnpackResult, unpack_bundle
    from aoe_pack.bundle.verify import VerifyResult, verify_bundle

__all__ = [
    "DEFAULT_LIMITS",
    "BuildResult",
    "BundleManifest",
    "EncryptionSpec",
    "InspectResult",
    "Limits",
    "Progress",
    "SignResult",
    "UnpackResult",
    "VerifyResult",
    "add_signatures",
    "build_bundle",
    "inspect_bundle",
    "unpack_bundle",
    "verify_bundle",
    "worker_count",
]

# Each name's module, imported on first use (PEP 562), so that a command
# pays only for the modules it uses.
_LAZY = {
    "BuildResult": "aoe_pack.bundle.build",
    "BundleManifest": "aoe_pack.bundle.manifest",
    "DEFAULT_LIMITS": "aoe_pack.bundle.format",
    "EncryptionSpec": "aoe_pack.bundle.build",
    "InspectResult": "aoe_pack.bundle.inspect",
    "Limits": "aoe_pack.bundle.format",
    "Progress": "aoe_pack.bundle._chunked",
    "SignResult": "aoe_pack.bundle.cosign",
    "UnpackResult": "aoe_pack.bundle.unpack",
    "VerifyResult": "aoe_pack.bundle.verify",
    "add_signatures": "aoe_pack.bundle.cosign",
    "build_bundle": "aoe_pack.bundle.build",
    "inspect_bundle": "aoe_pack.bundle.inspect",
    "unpack_bundle": "aoe_pack.bundle.unpack",
    "verify_bundle": "aoe_pack.bundle.verify",
    "worker_count": "aoe_pack.bundle._chunked",
}

if not TYPE_CHECKING:

    def __getattr__(name: str) -> object:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        # Not cached here: a test that patches the module is then seen, and undone.
        return getattr(importlib.import_module(module), name)

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})
