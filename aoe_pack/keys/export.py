"""``aoe-pack public-key``: the public half of a signing key, as a ``.pub`` file.

A key in an HSM or KMS never leaves it, yet its public key is what
``manifest init --root-key``, ``verify --trusted-key`` and every device need.
This writes it exactly as ``keygen`` writes a ``.pub`` (SPKI PEM), from the
public key the token or KMS reports, so the key id a device computes from the
file is the one the signatures carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aoe_pack._io import write_atomic
from aoe_pack.keys.signer import SigningKey


@dataclass(frozen=True)
class ExportedPublicKey:
    """A signing key's public half, and where it was written (None: not written)."""

    kind: str
    """``ed25519`` or ``p256``, as ``keygen --type`` names them."""
    key_id: str
    pem: bytes
    path: Path | None

    def to_dict(self) -> dict[str, object]:
        """For ``--json``."""
        return {
            "type": self.kind,
            "keyid": self.key_id,
            "public": str(self.path) if self.path is not None else None,
            "pem": self.pem.decode("ascii"),
        }


def export_public_key(
    key: SigningKey, out: Path | None = None, *, force: bool = False
) -> ExportedPublicKey:
    """``key``'s public key as SPKI PEM; written to ``out`` when given (refused if it exists).

    ``key`` is what :func:`~aoe_pack.keys.load_signing_key` returns: a key
    file's private key, or a :class:`~aoe_pack.keys.Signer` (``pkcs11:``,
    ``awskms://``, a plugin's).
    """
    public = key.public
    if out is not None:
        write_atomic(out, public.pem, overwrite=force)
    return ExportedPublicKey(kind=public.kind.value, key_id=public.key_id, pem=public.pem, path=out)
