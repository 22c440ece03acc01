"""What the interop tests share: their key files, and how they run the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from _cli import NO_PASSWORD, Cli

REPO = Path(__file__).resolve().parents[2]
aoe = Cli(env=NO_PASSWORD)


@dataclass(frozen=True)
class Keys:
    """Key files: P-256 signers (the export's key and a stranger), Ed25519, a device key."""

    folder: Path

    def key(self, name: str) -> Path:
        return self.folder / f"{name}.key"

    def pub(self, name: str) -> Path:
        return self.folder / f"{name}.pub"
