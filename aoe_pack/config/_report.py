"""The values validation hands back: violations, legacy notices and the report.

They live apart from :mod:`aoe_pack.config.validate` so that the legacy mapper
can create them without importing the validation workflow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aoe_pack.config.model import ModelConfig


@dataclass(frozen=True)
class Violation:
    """One reason the config is invalid.

    ``pointer`` is an RFC 6901 JSON pointer into the canonical form of the
    config (``""`` is the whole document), which for a canonical config is the
    file as written; a legacy key that conflicts with its canonical spelling is
    named by its own pointer. ``line`` and ``column`` (1-based, counting
    characters) are where the file as written says it, or ``None`` when that
    is unknown. A missing key is placed at the object that lacks it.
    """

    pointer: str
    line: int | None
    column: int | None
    message: str
    hint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The violation as JSON-ready data."""
        return {
            "pointer": self.pointer,
            "line": self.line,
            "column": self.column,
            "message": self.message,
            "hint": self.hint,
        }

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        at = self.pointer or "(document)"
        return f"{where}{at}: {self.message}"


@dataclass(frozen=True)
class LegacyNotice:
    """One legacy AoE spelling that was understood and rewritten.

    ``legacy`` is what the file says, ``canonical`` what it became; an empty
    ``canonical`` means the key was dropped.
    """

    pointer: str
    line: int | None
    legacy: str
    canonical: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        """The notice as JSON-ready data."""
        return {
            "pointer": self.pointer,
            "line": self.line,
            "legacy": self.legacy,
            "canonical": self.canonical,
            "message": self.message,
        }


@dataclass(frozen=True)
class Rewrite:
    """What :func:`~aoe_pack.config.migrate_config` did to the file it wrote.

    ``written`` is false when the file already held exactly the canonical
    text (it is then left alone, mtime included); ``changes`` says in words
    what differs from the file as it was, one entry per change.
    """

    path: Path
    written: bool
    changes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The rewrite as JSON-ready data."""
        return {"path": str(self.path), "written": self.written, "changes": list(self.changes)}


@dataclass(frozen=True)
class ValidationReport:
    """Everything ``validate_config`` found out about one config file.

    ``canonical`` is the config in canonical form whenever the file parsed as
    a JSON object, valid or not; ``config`` is set only when there are no
    violations. ``rewrite`` is set by ``migrate_config`` (``validate --fix``)
    only.
    """

    path: Path
    violations: tuple[Violation, ...]
    notices: tuple[LegacyNotice, ...]
    canonical: Mapping[str, Any] | None
    config: ModelConfig | None
    rewrite: Rewrite | None = None

    @property
    def ok(self) -> bool:
        """True when the config has no violations (notices are fine)."""
        return not self.violations

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data, for ``--json`` output."""
        return {
            "path": str(self.path),
            "ok": self.ok,
            "violations": [v.to_dict() for v in self.violations],
            "notices": [n.to_dict() for n in self.notices],
            "canonical": dict(self.canonical) if self.canonical is not None else None,
            "rewritten": self.rewrite.to_dict() if self.rewrite is not None else None,
        }
