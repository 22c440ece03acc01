"""What other tools read, written from a verified bundle (docs/interop.md).

- :mod:`.model_signing`: an OpenSSF model-signing signature of the model
  folder ``aoe-pack unpack`` writes, for ``model_signing verify key``;
- :mod:`.slsa`: the bundle's build provenance as SLSA Provenance v1;
- :mod:`.intoto`: the in-toto Statement v1 and DSSE envelope both travel in;
- :mod:`.export`: verify a bundle, then write either, signed by one more key.
"""

from aoe_pack.interop.export import (
    ModelSigningExport,
    ProvenanceExport,
    VerifiedBundle,
    export_model_signing,
    export_provenance,
    read_verified,
)
from aoe_pack.interop.intoto import open_envelope

__all__ = [
    "ModelSigningExport",
    "ProvenanceExport",
    "VerifiedBundle",
    "export_model_signing",
    "export_provenance",
    "open_envelope",
    "read_verified",
]
