"""Build, co-sign, verify, inspect and unpack ``.aoe`` bundles (format v1, docs/format.md).

``verify``, ``inspect`` and ``unpack`` only need the base install; nothing
here imports an ML framework.
"""

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
