"""What became of one target: its status, artifact, parity figures or named error."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from aoe_pack.convert.api import Artifact, Parity, Target
from aoe_pack.errors import AoePackError

_REASON_CHARS = 2000
"""A refusal's reason as recorded in the signed provenance is cut at this length."""


class Status(enum.StrEnum):
    """What became of one target."""

    OK = "ok"
    PARITY_FAILED = "parity-failed"
    REFUSED = "refused"
    CRASHED = "crashed"


@dataclass(frozen=True, kw_only=True)
class TargetOutcome:
    """One target: its artifact and parity when it converted, else the named error."""

    target: Target
    status: Status
    artifact: Artifact | None = None
    parity: Parity | None = None
    error: AoePackError | None = None
    convert_seconds: float = 0.0
    parity_seconds: float = 0.0
    control: bool = False
    """Measured only to vouch for a reduced-precision variant; never shipped."""
    expanded: bool = False
    """Converted from the source's ONNX with its ONNX functions expanded."""

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    @property
    def reason(self) -> str | None:
        """The error's message (None when the target passed)."""
        return self.error.message if self.error else None

    def to_dict(self, *, timings: bool = True) -> dict[str, Any]:
        """The outcome as ``--json`` shows it; without ``timings`` as the bundle records it.

        The bundle records neither timings nor an error's hint, which depend on the
        machine and on aoe-pack's wording: the same inputs give the same bytes.
        """
        t = self.target
        out: dict[str, Any] = {
            "target": t.name,
            "runtime": t.runtime,
            "variant": t.variant,
            "status": self.status.value,
        }
        if self.artifact is not None and self.ok:
            out["files"] = [f.bundle_path for f in self.artifact.files]
            out["tools"] = dict(self.artifact.tools)
            if self.artifact.layout:
                out["layout"] = self.artifact.layout
        if self.artifact is not None and self.artifact.requires:
            out["requires"] = list(self.artifact.requires)
        if self.parity is not None:
            out["parity"] = self.parity.to_dict()
        if self.error is not None:
            out["code"] = self.error.code
            out["reason"] = self.error.message[:_REASON_CHARS]
            if timings and self.error.hint:  # advice for the one reading it now
                out["hint"] = self.error.hint
        if self.control:
            out["control"] = True
        if timings:
            out["seconds"] = {
                "convert": round(self.convert_seconds, 3),
                "parity": round(self.parity_seconds, 3),
            }
        return out
