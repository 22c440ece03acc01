"""A simulated fleet: how a rollout resolves over many devices.

Release managers use it before widening a rollout ("how many devices move?"),
and the demo uses it to show a repository doing what its manifest says.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from aoe_pack.client.decide import Action, Device, decide, require_model
from aoe_pack.repository.model import Manifest


@dataclass(frozen=True)
class FleetResult:
    devices: int
    outcomes: Counter[str]
    """``"download 1.2.0"``, ``"keep"``, ``"revert-to-local"`` → number of devices."""

    def to_dict(self) -> dict[str, Any]:
        return {"devices": self.devices, "outcomes": dict(sorted(self.outcomes.items()))}


def outcome_label(action: Action, version: str | None) -> str:
    return f"{action.value} {version}" if version else action.value


def simulate(
    manifest: Manifest, tag: str, template: Device, *, devices: int, installed: Sequence[str] = ()
) -> FleetResult:
    """Decide for ``devices`` devices ``sim-000000``...; ``installed`` cycles their models.

    A tag the manifest lacks is refused: a fleet that all keeps its model
    would only hide the typo.
    """
    require_model(manifest, tag)
    outcomes: Counter[str] = Counter()
    for i in range(devices):
        version = installed[i % len(installed)] if installed else None
        dev = replace(template, device_id=f"sim-{i:06d}", installed_version=version)
        d = decide(manifest, tag, dev)
        outcomes[outcome_label(d.action, d.release.version if d.release else None)] += 1
    return FleetResult(devices, outcomes)
