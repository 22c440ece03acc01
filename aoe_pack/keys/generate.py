"""``aoe-pack keygen``: write PREFIX.key and PREFIX.pub."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aoe_pack._crypto import asymmetric as _keys
from aoe_pack._crypto import wrap as _wrap
from aoe_pack._io import write_atomic
from aoe_pack.errors import OutputError, UsageError

AES256 = "aes256"
"""keygen's extra type: a symmetric key-encryption key (--encryption-key-file)."""
KEYGEN_TYPES = (*(k.value for k in _keys.KeyKind), AES256)


@dataclass(frozen=True)
class GeneratedKey:
    """What keygen wrote."""

    kind: str
    key_id: str
    private_path: Path
    public_path: Path | None
    encrypted: bool

    def to_dict(self) -> dict[str, object]:
        """For ``--json``."""
        return {
            "type": self.kind,
            "keyid": self.key_id,
            "private": str(self.private_path),
            "public": str(self.public_path) if self.public_path else None,
            "encrypted": self.encrypted,
        }


def keygen(
    kind: str, prefix: Path, *, password: bytes | None = None, force: bool = False
) -> GeneratedKey:
    """Generate a key of ``kind`` and write it next to ``prefix``."""
    if kind not in KEYGEN_TYPES:
        raise UsageError(f"unknown key type {kind!r}; choose one of {', '.join(KEYGEN_TYPES)}")
    priv_path, pub_path = Path(f"{prefix}.key"), Path(f"{prefix}.pub")
    existing = [p for p in (priv_path, pub_path) if p.exists()]
    if existing and not force:
        raise OutputError(
            f"{existing[0]} already exists; refusing to overwrite a key",
            hint="choose another --out prefix, or pass --force",
        )
    if kind == AES256:
        if password:
            raise UsageError("an aes256 key file is not password-protected; unset the password")
        kek = _wrap.new_kek()
        write_atomic(priv_path, kek.hex().encode() + b"\n", mode=0o600)
        return GeneratedKey(AES256, _wrap.kek_id(kek), priv_path, None, encrypted=False)
    key = _keys.generate(_keys.KeyKind(kind))
    write_atomic(priv_path, _keys.key_file(key, password), mode=0o600)
    write_atomic(pub_path, key.public.pem)
    return GeneratedKey(kind, key.key_id, priv_path, pub_path, encrypted=bool(password))
